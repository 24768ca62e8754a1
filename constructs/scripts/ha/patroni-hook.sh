#!/usr/bin/env bash
# Patroni runs this as post_bootstrap (one argument: a connection string), and
# as the on_start, on_restart and on_role_change callback (ACTION ROLE SCOPE). Whenever this
# member runs as the primary it applies init.sql, exactly as the single-instance
# start script does: roles, databases and grants exist, and every password is
# re-synced from the Secret files, so a rotated password holds after any
# failover. It also re-syncs the passwords of Patroni's own roles.
set -euo pipefail

: "${PGPORT:?}" "${PG_SCRIPTS_DIR:?}" "${PG_SECRETS_DIR:?}" "${PG_RUN_DIR:?}"  # run-init.sh checks the rest

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
bash "$PG_SCRIPTS_DIR/run-init.sh"
"${psql_socket[@]}" -d postgres -v secrets_dir="$PG_SECRETS_DIR" \
    -v replication_user="${PATRONI_REPLICATION_USERNAME:-replicator}" \
    -v rewind_user="${PATRONI_REWIND_USERNAME:-rewinder}" \
    -f "$PG_SCRIPTS_DIR/patroni-roles.sql"
# The primary archives WAL (archive_mode on): the stanza is created, or found
# valid, in every repository, as start.sh does (pitr-env.sh). After a major
# upgrade the upgraded leader's volume holds the marker (the replicas' data is
# cloned, without it): the stanza is upgraded and a full backup taken instead.
# Neither holds the hook back (post_bootstrap would hold the cluster's
# bootstrap): an unreachable repository, and the upgrade's work, are retried in
# the background for as long as this member is the primary. Patroni kills a
# callback still running when it starts the next one; a retry it left behind
# goes on, and one retry per member runs at a time.
if [[ -n ${PGBACKREST_STANZA:-} ]]; then
    # shellcheck source=../pitr/pitr-env.sh
    source "$PG_SCRIPTS_DIR/pitr-env.sh"
    hook_log() {
        echo "patroni-hook.sh: $role: $1" >&2
    }
    to_stderr() {
        cat >&2
    }
    still_primary() {
        if [[ $("${psql_socket[@]}" -d postgres -tA -c 'SELECT pg_is_in_recovery()' 2>/dev/null || true) == f ]]; then
            return 0
        fi
        hook_log "no longer the primary: no more tries at the pgBackRest stanza (the new primary's hook makes it)"
        return 1
    }
    # As in start.sh: after a start the checkpointer sleeps a whole checkpoint_timeout
    # before it looks at archive_timeout; a reload wakes it, so a quiet primary's first
    # writes are archived within archive_timeout. A promotion's checkpoint, or a new
    # replica's, wakes it too; after a restart (on_restart) nothing else does.
    "${psql_socket[@]}" -d postgres -c 'select pg_reload_conf()' >/dev/null ||
        hook_log "could not wake the checkpointer: a quiet database's first writes may wait checkpoint_timeout to be archived"
    pitr_stanza_start hook_log to_stderr still_primary
fi
echo "patroni-hook.sh: $role: done" >&2
