#!/usr/bin/env bash
# Apply init.sql (roles, databases, grants, passwords from the Secret files)
# over the local socket as the superuser. start.sh runs it after every start,
# and in a Patroni cluster patroni-hook.sh after bootstrap and every promotion:
# one call, so a variable init.sql gains reaches both.
set -euo pipefail

: "${PG_RUN_DIR:?}" "${PGPORT:?}" "${PG_SCRIPTS_DIR:?}" "${PG_SECRETS_DIR:?}" "${PG_DATABASE:?}" "${PG_SCHEMA:?}"
: "${PG_OWNER_USER:?}" "${PG_APP_USER:?}" "${PG_READ_ONLY_USER:?}" "${PG_MIGRATOR_USER:?}" "${PG_TEMPORAL:?}"
: "${PG_TEMPORAL_USER:?}" "${PG_TEMPORAL_OWNER:?}" "${PG_METRICS:?}" "${PG_MONITORING_USER:?}"
: "${PG_POOLER:?}" "${PG_POOLER_AUTH_USER:?}" "${PG_POOLER_AUTH_SCHEMA:?}" "${PG_POOLER_AUTH_FUNCTION:?}"
: "${PG_POOLER_ROLES:?}"

exec psql -X -q -v ON_ERROR_STOP=1 -h "$PG_RUN_DIR" -p "$PGPORT" -U postgres -d postgres \
    -v secrets_dir="$PG_SECRETS_DIR" -v database="$PG_DATABASE" -v schema="$PG_SCHEMA" \
    -v owner_user="$PG_OWNER_USER" -v app_user="$PG_APP_USER" -v read_only_user="$PG_READ_ONLY_USER" \
    -v migrator_user="$PG_MIGRATOR_USER" \
    -v temporal="$PG_TEMPORAL" -v temporal_user="$PG_TEMPORAL_USER" -v temporal_owner="$PG_TEMPORAL_OWNER" \
    -v temporal_previous_user="${PG_TEMPORAL_PREVIOUS_USER:-}" \
    -v metrics="$PG_METRICS" -v monitoring_user="$PG_MONITORING_USER" \
    -v pooler="$PG_POOLER" -v pooler_auth_user="$PG_POOLER_AUTH_USER" -v pooler_roles="$PG_POOLER_ROLES" \
    -v pooler_schema="$PG_POOLER_AUTH_SCHEMA" -v pooler_function="$PG_POOLER_AUTH_FUNCTION" \
    -f "$PG_SCRIPTS_DIR/init.sql"
