#!/usr/bin/env bash
# The database container's command. Every path comes from the environment the
# StatefulSet sets (pgbundle/pgconf/env.py pod_environment), so the local pod
# runner can run this file unchanged against a state folder.
#
# First start: initdb. Every start: run PostgreSQL with the mounted
# configuration, apply init.sql (roles, databases, grants, passwords from the
# Secret files), mark the pod ready, then wait for the server. SIGTERM/SIGINT
# become a fast shutdown.
set -euo pipefail

# One JSON object per line, like the server's own jsonlog lines: log_as SOURCE MESSAGE.
log_as() {
    local message=${2//\\/\\\\}
    message=${message//\"/\\\"}
    message=${message//$'\t'/\\t}
    printf '{"timestamp":"%(%Y-%m-%dT%H:%M:%S%z)T","ps":"%s","message":"%s"}\n' -1 "$1" "$message" >&2
}

log() {
    log_as start.sh "$1"
}

fail() {
    log "$1"
    exit 1
}

: "${PGDATA:?}" "${PGPORT:?}" "${PG_LISTEN_ADDRESSES:?}" "${PG_CONFIG_DIR:?}" "${PG_SCRIPTS_DIR:?}"
: "${PG_SECRETS_DIR:?}" "${PG_RUN_DIR:?}" "${PG_DATABASE:?}" "${PG_SCHEMA:?}" "${PG_OWNER_USER:?}"
: "${PG_APP_USER:?}" "${PG_READ_ONLY_USER:?}" "${PG_MIGRATOR_USER:?}" "${PG_TEMPORAL:?}"
: "${PG_TEMPORAL_USER:?}" "${PG_TEMPORAL_OWNER:?}"
: "${PG_METRICS:?}" "${PG_MONITORING_USER:?}" "${PG_REQUIRED_KEYS:?}"

# shellcheck source=check-major.sh
source "$PG_SCRIPTS_DIR/check-major.sh"
if ! refusal=$(data_major_mismatch); then
    fail "$refusal"
fi

ready_marker="$PG_RUN_DIR/ready"
# The run folder outlives a container restart inside the same pod: a stale marker would lie.
rm -f "$ready_marker"

# The Secret's keys these values need (PG_REQUIRED_KEYS, from pgbundle/contract.py).
for key in $PG_REQUIRED_KEYS; do
    if [[ ! -s "$PG_SECRETS_DIR/$key" ]]; then
        fail "secret key $key is missing or empty in $PG_SECRETS_DIR: add it to the passwords Secret"
    fi
done

# Each non-empty line of a program's output becomes a log line: log_lines SOURCE.
log_lines() {
    local line
    while IFS= read -r line; do
        if [[ -n $line ]]; then
            log_as "$1" "$line"
        fi
    done
}

if [[ ! -s "$PGDATA/PG_VERSION" ]]; then
    log "no database in $PGDATA: running initdb"
    mkdir -p "$PGDATA"
    chmod 0700 "$PGDATA"
    initdb --pgdata="$PGDATA" --username=postgres --pwfile="$PG_SECRETS_DIR/postgres_password" \
        --auth-local=peer --auth-host=scram-sha-256 --data-checksums \
        --encoding=UTF8 --locale=C.UTF-8 --no-instructions 2>&1 | log_lines initdb
fi

pitr=""
if [[ -n ${PGBACKREST_STANZA:-} ]]; then
    # Point-in-time recovery: archive_command (pgBackRest) inherits these settings.
    pitr=on
    # shellcheck source=pitr-env.sh
    source "$PG_SCRIPTS_DIR/pitr-env.sh"
    pitr_write_secrets
fi
# A restored data folder (pgBackRest wrote recovery.signal) replays WAL to its
# target and is promoted before init.sql may write.
recovering=""
if [[ -e "$PGDATA/recovery.signal" ]]; then
    recovering=on
fi

options=(
    -D "$PGDATA"
    -c "config_file=$PG_CONFIG_DIR/postgresql.conf"
    -c "hba_file=$PG_CONFIG_DIR/pg_hba.conf"
    -c "listen_addresses=$PG_LISTEN_ADDRESSES"
    -c "port=$PGPORT"
    -c "unix_socket_directories=$PG_RUN_DIR"
)
if [[ -n ${PG_TLS_DIR:-} ]]; then
    options+=(-c "ssl_cert_file=$PG_TLS_DIR/server.crt" -c "ssl_key_file=$PG_TLS_DIR/server.key")
fi
if [[ -n ${PG_CA_DIR:-} ]]; then
    options+=(-c "ssl_ca_file=$PG_CA_DIR/ca.crt")
fi

cleaner=""
if [[ -n ${PG_LOG_DIR:-} ]]; then
    # File logs on the data volume: daily files, those older than the retention
    # deleted now and then hourly.
    mkdir -p "$PG_LOG_DIR"
    delete_old_logs() {
        # A file that cannot be deleted is logged; it must not stop the database.
        find "$PG_LOG_DIR" -maxdepth 1 -name 'postgresql-*' -mtime "+${PG_LOG_RETENTION_DAYS:?}" -delete 2>&1 |
            log_lines find || true
    }
    delete_old_logs
    (
        # Stopped with the script: its sleep must not outlive it.
        trap 'kill $(jobs -p) 2>/dev/null; exit 0' TERM
        while true; do
            sleep 3600 &
            wait $!
            delete_old_logs
        done
    ) &
    cleaner=$!
    options+=(-c "log_directory=$PG_LOG_DIR")
else
    # The logging collector (needed for jsonlog) writes to log_directory/postgresql.json:
    # the symlink sends it to this script's stderr, the container's. Plain text
    # the collector receives (a library writing to stderr) goes to postgresql.log:
    # that one leads to the JSON wrapper on fd 3 below.
    log_dir="$PG_RUN_DIR/log"
    mkdir -p "$log_dir"
    ln -sfn "/proc/$$/fd/2" "$log_dir/postgresql.json"
    ln -sfn "/proc/$$/fd/3" "$log_dir/postgresql.log"
    options+=(-c "log_directory=$log_dir")
fi

# The server's own stderr carries only the few plain-text lines written before
# the collector takes over (and the collector's own failures): wrap them as JSON.
exec 3> >(log_lines postgres)
postgres "${options[@]}" 2>&3 3>&- &
postmaster=$!

stop() {
    log "received $1: fast shutdown"
    if [[ -n $pitr ]]; then
        # The segment in use holds the last commits: switched now, it is archived while
        # the server shuts down (its archiver pushes every finished segment before it
        # exits), so the archive ends where the data does. Not while recovering.
        PGCONNECT_TIMEOUT=5 PGOPTIONS="-c statement_timeout=5s" psql -X -q -h "$PG_RUN_DIR" -p "$PGPORT" \
            -U postgres -d postgres -c 'select pg_switch_wal() where not pg_is_in_recovery()' \
            >/dev/null 2>&1 || true
    fi
    # SIGINT is PostgreSQL's fast shutdown; its SIGTERM (smart) waits for every client to leave.
    kill -INT "$postmaster" 2>/dev/null || true
}
trap 'stop SIGTERM' TERM
trap 'stop SIGINT' INT

finish() {
    rm -f "$ready_marker"
    if [[ -n ${watcher:-} ]]; then
        kill "$watcher" 2>/dev/null || true
    fi
    if [[ -n $cleaner ]]; then
        kill "$cleaner" 2>/dev/null || true
    fi
    if [[ -n ${pitr_retry:-} ]]; then
        kill "$pitr_retry" 2>/dev/null || true
    fi
}
trap finish EXIT

# Wait for the server and return its exit status. `wait` also returns when a
# trapped signal arrives (status > 128) while the server still runs: wait again.
# Once it is gone, bash still holds its status for a last `wait`.
wait_postmaster() {
    while kill -0 "$postmaster" 2>/dev/null; do
        wait "$postmaster" || true
    done
    wait "$postmaster"
}

# Poll until the command given succeeds; a server that stops meanwhile ends
# the start, naming the phase and the server's exit status.
wait_while_postmaster_lives() {
    local phase=$1 status=0
    shift
    until "$@"; do
        if ! kill -0 "$postmaster" 2>/dev/null; then
            wait_postmaster || status=$?
            fail "PostgreSQL stopped during $phase with status $status"
        fi
        sleep 0.2
    done
}
accepts_connections() {
    pg_isready -q -h "$PG_RUN_DIR" -p "$PGPORT" -U postgres -d postgres
}
promoted() {
    [[ $(psql -X -At -h "$PG_RUN_DIR" -p "$PGPORT" -U postgres -d postgres \
        -c 'select pg_is_in_recovery()' 2>/dev/null) == f ]]
}

wait_while_postmaster_lives startup accepts_connections
if [[ -n $recovering ]]; then
    log "recovering from the archive to the restore target"
    wait_while_postmaster_lives recovery promoted
    log "recovery finished: promoted"
fi

log "PostgreSQL accepts connections: running init.sql"
bash "$PG_SCRIPTS_DIR/run-init.sh" 2>&1 | log_lines init.sql || {
    kill -INT "$postmaster" 2>/dev/null || true
    wait_postmaster || true
    fail "init.sql failed: PostgreSQL stopped"
}

# The stanza is created (or found valid) in every repository at each start,
# or after a major upgrade (upgrade.sh left PG_PITR_UPGRADE_MARKER) upgraded
# with a full backup of the new major into every repository (archived WAL of
# the new major replays only onto it; until then archive-push refuses it and
# it waits in pg_wal). An unreachable repository does not keep the database
# down, nor does a large database's backup hold back readiness: both are
# retried in the background (pitr-env.sh).
pgbackrest_lines() {
    log_lines pgbackrest
}
if [[ -n $pitr ]]; then
    pitr_stanza_start log pgbackrest_lines
fi

if [[ -n $pitr ]]; then
    # After a start PostgreSQL's checkpointer first sleeps a whole checkpoint_timeout
    # before it looks at archive_timeout (measured on 15.18: 15 min here), so a quiet
    # database's first writes would wait that long to be archived. A reload wakes it
    # into its usual rhythm (a sleep of at most archive_timeout).
    psql -X -q -h "$PG_RUN_DIR" -p "$PGPORT" -U postgres -d postgres -c 'select pg_reload_conf()' >/dev/null ||
        log "could not wake the checkpointer: a quiet database's first writes may wait checkpoint_timeout to be archived"
fi

touch "$ready_marker"
log "ready"

# Renewed or rotated certificates are reloaded without a restart; the watcher exits with the server.
watcher=""
if [[ -n ${PG_TLS_DIR:-} ]]; then
    bash "$PG_SCRIPTS_DIR/cert-watch.sh" "$postmaster" &
    watcher=$!
fi

status=0
wait_postmaster || status=$?
log "PostgreSQL exited with status $status"
exit "$status"
