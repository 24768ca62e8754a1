#!/usr/bin/env bash
# The HA database container's command: Patroni runs PostgreSQL (initdb or a
# clone on first start, streaming replication, failover). Every path comes
# from the pod's environment, so the local cluster runner runs this file
# unchanged for each member.
#
# Patroni takes its passwords from the PATRONI_*_PASSWORD variables, read here from
# the mounted Secret files, so neither the configuration nor the pod spec
# holds one.
set -euo pipefail

fail() {
    echo "patroni.sh: $1" >&2
    exit 1
}

: "${PG_SECRETS_DIR:?}" "${PG_RUN_DIR:?}" "${PG_PATRONI_CONFIG:?}"
: "${PG_SCRIPTS_DIR:?}" "${PG_REQUIRED_KEYS:?}" "${PATRONI_NAME:?}" "${PG_BOOTSTRAP_MEMBER:?}" "${PGDATA:?}"

# Data of another major: one clear line instead of Patroni's crash loop (check-major.sh).
# shellcheck source=../check-major.sh
source "$PG_SCRIPTS_DIR/check-major.sh"
if ! refusal=$(data_major_mismatch); then
    fail "$refusal"
fi

# The Secret's keys these values need (PG_REQUIRED_KEYS, from pgbundle/contract.py).
for key in $PG_REQUIRED_KEYS; do
    if [[ ! -s "$PG_SECRETS_DIR/$key" ]]; then
        fail "secret key $key is missing or empty in $PG_SECRETS_DIR: add it to the passwords Secret"
    fi
done

PATRONI_SUPERUSER_PASSWORD=$(<"$PG_SECRETS_DIR/postgres_password")
PATRONI_REPLICATION_PASSWORD=$(<"$PG_SECRETS_DIR/postgres_replication_pw")
PATRONI_REWIND_PASSWORD=$(<"$PG_SECRETS_DIR/postgres_rewind_pw")
PATRONI_RESTAPI_PASSWORD=$(<"$PG_SECRETS_DIR/patroni_api_pw")
export PATRONI_SUPERUSER_PASSWORD PATRONI_REPLICATION_PASSWORD PATRONI_REWIND_PASSWORD PATRONI_RESTAPI_PASSWORD

# Point-in-time recovery: archive_command, restore_command and the pgbackrest
# replica method (pitr-replica.sh) inherit pgBackRest's settings from here.
if [[ -n ${PGBACKREST_STANZA:-} ]]; then
    # shellcheck source=../pitr/pitr-env.sh
    source "$PG_SCRIPTS_DIR/pitr-env.sh"
    pitr_write_secrets
fi

# The logging collector writes to log_directory ($PG_RUN_DIR/log in the
# configuration): both of its files lead to this process's stderr, which
# Patroni keeps after the exec below, so the server's log is the container's.
log_dir="$PG_RUN_DIR/log"
mkdir -p "$log_dir"
ln -sfn "/proc/$$/fd/2" "$log_dir/postgresql.json"
ln -sfn "/proc/$$/fd/2" "$log_dir/postgresql.log"

# Renewed or rotated certificates are reloaded without a restart, whichever
# postmaster Patroni runs; the watcher exits with Patroni (this pid after the exec).
if [[ -n ${PG_TLS_DIR:-} ]]; then
    bash "$PG_SCRIPTS_DIR/cert-watch.sh" "$$" &
fi

# Members start together (the StatefulSet's Parallel policy), so only the first
# may initialize a cluster: it alone reads the folder, whose bootstrap.yaml
# Patroni merges into patroni.yaml. The others have no bootstrap section: they
# never run initdb, they wait for a leader and clone it. Otherwise an empty
# member could start a new, empty cluster while postgres-0 adopts existing data.
config=$PG_PATRONI_CONFIG
if [[ $PATRONI_NAME == "$PG_BOOTSTRAP_MEMBER" ]]; then
    config=$(dirname "$PG_PATRONI_CONFIG")
fi
exec patroni "$config"
