#!/usr/bin/env bash
# Patroni's `pgbackrest` replica method (create_replica_methods): a new member's
# data from the repository's newest backup instead of a copy of the whole primary.
# Arguments go to `pgbackrest restore` (a restored cluster's first member, which
# bootstraps from a backup set of a repository: pgbundle/patroni/restore.py).
# Patroni then starts it as a standby: it replays the archive (restore_command)
# and streams the rest from the primary. It fails fast when the repository holds
# no backup yet; Patroni then removes what is left and clones with pg_basebackup.
# Settings: the PGBACKREST_* environment patroni.sh set up (pitr-env.sh).
set -euo pipefail

: "${PGDATA:?}" "${PGBACKREST_STANZA:?}" "${PG_SCRIPTS_DIR:?}"
# Patroni removed the data folder; pgBackRest restores into an existing one.
mkdir -p "$PGDATA"
chmod 0700 "$PGDATA"
# preserve: no recovery settings of pgBackRest's own (they would outrank Patroni's
# in postgresql.auto.conf); Patroni writes standby.signal and restore_command.
# A bootstrap to a time without a backup label passes --type=time --target=T
# instead, so that pgBackRest picks the newest backup that ended before T; Patroni
# removes the recovery settings that writes into postgresql.auto.conf and writes
# its own (recovery_conf).
type=--type=preserve
for arg in "$@"; do
    if [[ $arg == --type=* ]]; then
        type=""
    fi
done
pgbackrest --log-level-console=info restore ${type:+"$type"} "$@"
# After a major upgrade, until the new leader's full backup is taken, the newest
# backup is of the old major: fail, so Patroni clones with pg_basebackup instead.
# shellcheck source=../check-major.sh
source "$PG_SCRIPTS_DIR/check-major.sh"
if ! refusal=$(PG_TERMINATION_LOG=/dev/null data_major_mismatch); then
    echo "pitr-replica.sh: the newest backup is of another major, the leader is cloned instead: $refusal" >&2
    exit 1
fi
