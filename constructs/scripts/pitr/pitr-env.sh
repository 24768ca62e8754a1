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
