#!/usr/bin/env bash
# pgBackRest with the database container's settings: `pitr.sh COMMAND [OPTION...]`
# (backup --type=full|diff|incr, info, verify, expire, restore ...). Progress on
# stdout, one error line on stderr.
set -euo pipefail

: "${PG_SCRIPTS_DIR:?}"
# shellcheck source=pitr-env.sh
source "$PG_SCRIPTS_DIR/pitr-env.sh"
pitr_write_secrets
export PGBACKREST_LOG_LEVEL_CONSOLE=info PGBACKREST_LOG_LEVEL_STDERR=off
exec pgbackrest "$@"
