#!/usr/bin/env bash
# Start PgBouncer with the rendered pgbouncer.ini. Its auth file holds one line,
# the auth role's password from the Secret: PgBouncer logs in with it to look up
# every other client's SCRAM verifier (auth_query), so no password list exists.
# The file is written into the memory-backed run folder, readable by this user only.
set -euo pipefail

: "${PGB_CONFIG:?}" "${PGB_PASSWORD_FILE:?}" "${PGB_AUTH_FILE:?}" "${PGB_AUTH_USER:?}"

password=$(<"$PGB_PASSWORD_FILE")
if [[ -z $password ]]; then
    echo "pooler: $PGB_PASSWORD_FILE is empty: run \`secrets generate\` or fill the key" >&2
    exit 1
fi
umask 077
# The auth file's format quotes both fields; a quote inside is doubled.
printf '"%s" "%s"\n' "$PGB_AUTH_USER" "${password//\"/\"\"}" >"$PGB_AUTH_FILE.new"
mv -f "$PGB_AUTH_FILE.new" "$PGB_AUTH_FILE"
unset password
exec pgbouncer "$PGB_CONFIG"
