#!/usr/bin/env bash
# The `pgbackrest` sidecar of the database pod: pgBackRest's TLS server, through
# which the backup CronJobs read PGDATA and drive the backup (pg1-host-type=tls)
# without a shared volume or `kubectl exec`. Mutual TLS: PGBACKREST_TLS_SERVER_AUTH
# admits only the jobs' client certificate, for the stanza.
set -euo pipefail

: "${PG_SCRIPTS_DIR:?}" "${PGBACKREST_TLS_SERVER_AUTH:?}"
# shellcheck source=pitr-env.sh
source "$PG_SCRIPTS_DIR/pitr-env.sh"
# No repository secret here: the server serves PGDATA, the job holds the repositories.
(umask 077 && mkdir -p "$PGBACKREST_LOCK_PATH")
export PGBACKREST_LOG_LEVEL_CONSOLE=info PGBACKREST_LOG_LEVEL_STDERR=off
exec pgbackrest server
