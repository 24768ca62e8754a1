#!/usr/bin/env bash
# Patroni runs this as post_bootstrap (one argument: a connection string), and
# as the on_start and on_role_change callback (ACTION ROLE SCOPE). Whenever this
# member runs as the primary it applies init.sql, exactly as the single-instance
# start script does: roles, databases and grants exist, and every password is
# re-synced from the Secret files, so a rotated password holds after any
# failover. It also re-syncs the passwords of Patroni's own roles.
set -euo pipefail

: "${PGPORT:?}" "${PG_SCRIPTS_DIR:?}" "${PG_SECRETS_DIR:?}" "${PG_RUN_DIR:?}" "${PG_DATABASE:?}" "${PG_SCHEMA:?}"
: "${PG_OWNER_USER:?}" "${PG_APP_USER:?}" "${PG_READ_ONLY_USER:?}" "${PG_MIGRATOR_USER:?}" "${PG_TEMPORAL:?}"
: "${PG_TEMPORAL_USER:?}" "${PG_TEMPORAL_OWNER:?}" "${PG_METRICS:?}" "${PG_MONITORING_USER:?}"

if [[ $# -eq 1 ]]; then
    role=primary # post_bootstrap: the new cluster's first leader
else
    role=${2:-}
fi
if [[ $role != primary && $role != master ]]; then
    exit 0
fi

psql_socket=(psql -X -q -v ON_ERROR_STOP=1 -h "$PG_RUN_DIR" -p "$PGPORT" -U postgres)

# on_role_change runs right after `pg_ctl promote`: wait until the server
# accepts writes (bounded: Patroni runs the hook again on the next change).
for _ in $(seq 1 300); do
    if [[ $("${psql_socket[@]}" -d postgres -tA -c 'SELECT pg_is_in_recovery()' 2>/dev/null || true) == f ]]; then
        break
    fi
    sleep 0.2
done

echo "patroni-hook.sh: $role: running init.sql" >&2
"${psql_socket[@]}" -d postgres \
    -v secrets_dir="$PG_SECRETS_DIR" -v database="$PG_DATABASE" -v schema="$PG_SCHEMA" \
    -v owner_user="$PG_OWNER_USER" -v app_user="$PG_APP_USER" -v read_only_user="$PG_READ_ONLY_USER" \
    -v migrator_user="$PG_MIGRATOR_USER" \
    -v temporal="$PG_TEMPORAL" -v temporal_user="$PG_TEMPORAL_USER" -v temporal_owner="$PG_TEMPORAL_OWNER" \
    -v temporal_previous_user="${PG_TEMPORAL_PREVIOUS_USER:-}" \
    -v metrics="$PG_METRICS" -v monitoring_user="$PG_MONITORING_USER" \
    -f "$PG_SCRIPTS_DIR/init.sql"
"${psql_socket[@]}" -d postgres -v secrets_dir="$PG_SECRETS_DIR" \
    -v replication_user="${PATRONI_REPLICATION_USERNAME:-replicator}" \
    -v rewind_user="${PATRONI_REWIND_USERNAME:-rewinder}" \
    -f "$PG_SCRIPTS_DIR/patroni-roles.sql"
echo "patroni-hook.sh: $role: done" >&2
