#!/usr/bin/env bash
# Sourced by backup.sh and restore.sh: hand libpq the password in a private
# password file, never on a command line or in the environment.
set -euo pipefail

# use_password_file SECRET_FILE FOLDER: write FOLDER/pgpass from the secret and
# export PGPASSFILE. Returns 1 when the secret is empty.
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
