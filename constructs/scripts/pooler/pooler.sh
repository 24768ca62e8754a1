#!/usr/bin/env bash
# Start PgBouncer with the rendered pgbouncer.ini. Its auth file holds the auth
# role's password from the Secret: PgBouncer logs in with it to look up
# every other client's SCRAM verifier (auth_query), so no password list exists.
# The file is written into the memory-backed run folder, readable by this user only.
# With metrics on (PGB_STATS_USER), a second line: the metrics exporter's login to
# the admin console (stats_users), which is no PostgreSQL role; and the same
# password as a pgpass file (mode 0600) in the socket's folder, for the exporter.
set -euo pipefail

: "${PGB_CONFIG:?}" "${PGB_PASSWORD_FILE:?}" "${PGB_AUTH_FILE:?}" "${PGB_AUTH_USER:?}"

# auth_line USER PASSWORD_FILE: the auth file's line for USER. The format quotes
# both fields; a quote inside is doubled.
auth_line() {
    local password
    password=$(<"$2")
    if [[ -z $password ]]; then
        echo "pooler: $2 is empty: run \`secrets generate\` or fill the key" >&2
        return 1
    fi
    printf '"%s" "%s"\n' "$1" "${password//\"/\"\"}"
}

umask 077
{
    auth_line "$PGB_AUTH_USER" "$PGB_PASSWORD_FILE"
    if [[ -n ${PGB_STATS_USER:-} ]]; then
        auth_line "$PGB_STATS_USER" "${PGB_STATS_PASSWORD_FILE:?}"
    fi
} >"$PGB_AUTH_FILE.new"
mv -f "$PGB_AUTH_FILE.new" "$PGB_AUTH_FILE"
if [[ -n ${PGB_STATS_USER:-} ]]; then
    : "${PGB_STATS_PASSFILE:?}" "${PGB_ADMIN_DATABASE:?}"
    password=$(<"$PGB_STATS_PASSWORD_FILE")
    # pgpass fields escape a backslash and a colon with a backslash.
    password=${password//\\/\\\\}
    printf '*:*:%s:%s:%s\n' "$PGB_ADMIN_DATABASE" "$PGB_STATS_USER" "${password//:/\\:}" >"$PGB_STATS_PASSFILE.new"
    mv -f "$PGB_STATS_PASSFILE.new" "$PGB_STATS_PASSFILE"
    unset password
fi
exec pgbouncer "$PGB_CONFIG"
