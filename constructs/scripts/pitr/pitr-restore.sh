#!/usr/bin/env bash
# The PITR restore Job's script (`main.py pitr-restore-manifest`, docs/pitr.md),
# also what `main.py local restore --from` runs: `pgbackrest restore` into PGDATA,
# which the database container's start.sh then recovers to the target and promotes.
#
#   PG_PITR_RESTORE_TYPE    time | name | latest | immediate (a backup's own end)
#   PG_PITR_RESTORE_TARGET  the time (ISO 8601 with a zone) or the restore point's name
#   PG_PITR_RESTORE_SET     a backup label to restore from (default: pgBackRest picks,
#                           for a time the newest backup that ended before it)
#   PG_PITR_RESTORE_IN_PLACE  non-empty: PGDATA may hold the (stopped) database, which
#                           is moved aside on the same volume first, beside PGDATA, as
#                           this prefix and the UTC time (pgdata.before-pitr-20261205T140500Z)
#
# Further arguments go to `pgbackrest restore` (the local runner names the old
# state's repository with them). A new volume must be empty. On failure the
# restore's partial files go and data moved aside comes back: nothing changed.
set -euo pipefail
job_name=pitr-restore
# shellcheck source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${PG_SCRIPTS_DIR:?}" "${PGDATA:?}" "${PG_PITR_RESTORE_TYPE:?}"
target=${PG_PITR_RESTORE_TARGET:-}
label=${PG_PITR_RESTORE_SET:-}

case $PG_PITR_RESTORE_TYPE in
    time | name)
        [[ -n $target ]] || fail "PG_PITR_RESTORE_TARGET is empty: a $PG_PITR_RESTORE_TYPE target needs it"
        recovery=(--type="$PG_PITR_RESTORE_TYPE" --target="$target" --target-action=promote) ;;
    latest) recovery=(--type=default) ;;
    immediate)
        [[ -n $label ]] || fail "PG_PITR_RESTORE_SET is empty: restoring to a backup's end needs its label"
        recovery=(--type=immediate --target-action=promote) ;;
    *) fail "PG_PITR_RESTORE_TYPE '$PG_PITR_RESTORE_TYPE' is not time, name, latest or immediate" ;;
esac
if [[ -n $label ]]; then
    recovery+=(--set="$label")
fi

# shellcheck source=pitr-env.sh
source "$PG_SCRIPTS_DIR/pitr-env.sh"
pitr_write_secrets
export PGBACKREST_LOG_LEVEL_CONSOLE=info PGBACKREST_LOG_LEVEL_STDERR=off

aside=""
if [[ -d $PGDATA && -n $(ls -A "$PGDATA") ]]; then
    if [[ -z ${PG_PITR_RESTORE_IN_PLACE:-} ]]; then
        fail "$PGDATA is not empty: a restore into a new volume needs an empty one (in place: pitr-restore-manifest --in-place)"
    fi
    # A clean shutdown removes it: the database may still run (a ReadWriteOnce
    # volume is shared by pods on one node).
    if [[ -e $PGDATA/postmaster.pid ]]; then
        fail "$PGDATA/postmaster.pid exists: the database may still run; scale the StatefulSet to 0 first (after a crash, start it once and stop it cleanly)"
    fi
    aside="$(dirname "$PGDATA")/$PG_PITR_RESTORE_IN_PLACE$(date -u +%Y%m%dT%H%M%SZ)"
    mv "$PGDATA" "$aside"
    log "moved the current data aside to $aside"
fi

undo() {
    rm -rf "$PGDATA"
    if [[ -n $aside ]]; then
        mv "$aside" "$PGDATA"
        log "restore failed: the data moved aside is back in $PGDATA"
    fi
}
mkdir -p "$PGDATA"
chmod 0700 "$PGDATA"
started=$SECONDS
if ! pgbackrest restore "${recovery[@]}" "$@"; then
    undo
    fail "pgbackrest restore failed (its ERROR line above); nothing changed"
fi
echo "pitr restore complete: type=$PG_PITR_RESTORE_TYPE target=${target:-none} set=${label:-auto} aside=${aside:-none} seconds=$((SECONDS - started))"
