#!/usr/bin/env bash
# Sourced by backup.sh and restore.sh: their shared preamble. The sourcing
# script sets `job_name` (backup, restore) first: it starts every log and error line.
set -euo pipefail

# fail MESSAGE: the one error line (`<job> failed: MESSAGE`) on stderr, exit 1.
fail() {
    printf '%s failed: %s\n' "$job_name" "$*" >&2
    exit 1
}

log() {
    printf '%s: %s\n' "$job_name" "$*"
}

# reason FILE [STATUS]: a tool's stderr as one line: its error lines if any
# (at most three), else its last line; a tool killed by a signal without a word
# says which signal.
reason() {
    local text status=${2:-}
    text=$(grep -E 'error|fatal|FATAL|ERROR|failed|FAILED|denied|No space|too large' "$1" 2>/dev/null | head -n 3 || true)
    if [[ -z $text ]]; then
        text=$(grep -v '^[[:space:]]*$' "$1" 2>/dev/null | tail -n 1 || true)
    fi
    if [[ -z $text && -n $status && $status -gt 128 ]]; then
        text="killed by signal $(kill -l $((status - 128)) 2>/dev/null || echo $((status - 128)))"
    fi
    text=${text//$'\n'/; }
    printf '%s' "${text:-no message (exit status ${status:-unknown})}"
}

# use_password_file SECRET_FILE FOLDER: hand libpq the password in a private
# password file (FOLDER/pgpass, exported as PGPASSFILE), never on a command line
# or in the environment. Returns 1 when the secret is empty.
use_password_file() {
    local password
    password=$(<"$1")
    [[ -n $password ]] || return 1
    # .pgpass escapes: backslash and colon.
    password=${password//\\/\\\\}
    password=${password//:/\\:}
    (umask 077 && printf '*:*:*:*:%s\n' "$password" >"$2/pgpass")
    export PGPASSFILE="$2/pgpass"
}
