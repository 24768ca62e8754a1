#!/usr/bin/env bash
# Sourced by start.sh, patroni.sh, its hook and pitr.sh when point-in-time recovery is on: pgBackRest's
# locations from the pod's environment (the local pod runner remaps them), and
# its secrets in a private conf.d file, so that neither the ConfigMap nor any
# command line or environment holds them. archive_command inherits all of it
# from the server's environment.
set -euo pipefail

: "${PGDATA:?}" "${PGPORT:?}" "${PG_RUN_DIR:?}" "${PGBACKREST_CONFIG_INCLUDE_PATH:?}" "${PGBACKREST_LOCK_PATH:?}"
: "${PG_PITR_REPOS:?}"

export PGBACKREST_PG1_PATH="$PGDATA" PGBACKREST_PG1_PORT="$PGPORT" PGBACKREST_PG1_SOCKET_PATH="$PG_RUN_DIR"

# pitr_write_secrets: conf.d/secrets.conf (mode 0600) from the Secret files:
# the passphrase of every repository, the S3 repository's keys.
pitr_write_secrets() {
    local conf="$PGBACKREST_CONFIG_INCLUDE_PATH/secrets.conf" tmp repo
    (umask 077 && mkdir -p "$PGBACKREST_LOCK_PATH" "$PGBACKREST_CONFIG_INCLUDE_PATH")
    tmp=$(mktemp "$conf.XXXXXX")
    {
        echo "[global]"
        if [[ -n ${PG_PITR_CIPHER_FILE:-} ]]; then
            for repo in $PG_PITR_REPOS; do
                printf 'repo%s-cipher-pass=%s\n' "$repo" "$(<"$PG_PITR_CIPHER_FILE")"
            done
        fi
        if [[ -n ${PG_PITR_S3_REPO:-} ]]; then
            printf 'repo%s-s3-key=%s\n' "$PG_PITR_S3_REPO" "$(<"${PG_PITR_S3_KEY_FILE:?}")"
            printf 'repo%s-s3-key-secret=%s\n' "$PG_PITR_S3_REPO" "$(<"${PG_PITR_S3_KEY_SECRET_FILE:?}")"
        fi
    } >"$tmp"
    mv -f "$tmp" "$conf"
}

# pitr_stanza_upgrade LOG FILTER: after a major upgrade (upgrade.sh left
# $PG_PITR_UPGRADE_MARKER, holding the old major) the stanza follows the new
# major and a full backup of it goes into every repository: archived WAL of the
# new major replays only onto it. LOG MESSAGE logs a line; FILTER reads
# pgBackRest's output. The marker goes only once the last backup finished, so
# an interrupted run (a failed repository, a killed Patroni callback) is retried
# by the next one; stanza-upgrade accepts a stanza already upgraded.
pitr_stanza_upgrade() {
    local log=$1 filter=$2 repo
    pgbackrest --log-level-console=info stanza-upgrade 2>&1 | "$filter" || return 1
    for repo in $PG_PITR_REPOS; do
        pgbackrest --log-level-console=info backup --type=full --repo="$repo" 2>&1 | "$filter" || return 1
    done
    "$log" "pgBackRest stanza upgraded from PostgreSQL $(<"$PG_PITR_UPGRADE_MARKER") to $(<"$PGDATA/PG_VERSION") and a full backup taken"
    rm -f "$PG_PITR_UPGRADE_MARKER"
}

# Seconds between tries at the stanza while a repository is unreachable.
pitr_retry_seconds=30

# pitr_stanza LOG FILTER: the stanza this server archives into, ready in every
# repository: after a major upgrade pitr_stanza_upgrade, otherwise stanza-create
# (it finds a valid stanza and leaves it as it is). Logs the outcome.
pitr_stanza() {
    local log=$1 filter=$2
    if [[ -e ${PG_PITR_UPGRADE_MARKER:-} ]]; then
        pitr_stanza_upgrade "$log" "$filter" && return 0
        "$log" "pgBackRest stanza-upgrade or full backup failed: archiving waits; retrying in ${pitr_retry_seconds}s"
        return 1
    fi
    if pgbackrest --log-level-console=info stanza-create 2>&1 | "$filter"; then
        "$log" "pgBackRest stanza ready: archiving goes on"
        return 0
    fi
    "$log" "pgBackRest stanza-create failed: archiving waits (WAL stays in pg_wal); retrying in ${pitr_retry_seconds}s"
    return 1
}

# pitr_stanza_start LOG FILTER [WHILE...]: pitr_stanza when a server starts (or
# becomes the primary), never holding it back: an unreachable repository must
# not keep the database down, and a full backup after a major upgrade may take
# long. A failed try, and the upgrade's work, go to the background, tried every
# pitr_retry_seconds until one succeeds, and only while the command WHILE does
# (Patroni's hook: this member is still the primary). One such retry per server
# (a lock in the run folder: hooks may run again meanwhile); its pid in pitr_retry.
pitr_stanza_start() {
    local log=$1 filter=$2 delay=0
    shift 2
    pitr_retry=""
    if [[ -e ${PG_PITR_UPGRADE_MARKER:-} ]]; then
        "$log" "PostgreSQL was upgraded from $(<"$PG_PITR_UPGRADE_MARKER"): upgrading the pgBackRest stanza and taking a full backup"
    elif pitr_stanza "$log" "$filter"; then
        return 0
    else
        delay=$pitr_retry_seconds
    fi
    (
        # Stopped with its caller: its sleep must not outlive it.
        trap 'kill $(jobs -p) 2>/dev/null; exit 0' TERM
        exec {lock}>"$PG_RUN_DIR/pitr-stanza.lock"
        flock -n "$lock" || exit 0
        while sleep "$delay" & wait $!; do
            delay=$pitr_retry_seconds
            if (($# > 0)) && ! "$@"; then
                exit 0
            fi
            if pitr_stanza "$log" "$filter"; then
                exit 0
            fi
        done
    ) &
    pitr_retry=$!
}
