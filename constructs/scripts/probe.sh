#!/usr/bin/env bash
# Kubernetes probes: probe.sh startup|ready|live. Paths come from the pod's
# environment (see start.sh).
#   startup, ready: the server accepts connections and start.sh has finished
#                   init.sql (it writes the marker last).
#   live:           the server answers at all; "rejecting connections" during
#                   a long crash recovery or shutdown still counts as alive.
set -euo pipefail

: "${PG_RUN_DIR:?}" "${PGPORT:?}"
status=0
pg_isready -q -h "$PG_RUN_DIR" -p "$PGPORT" -U postgres -d postgres || status=$?

case "${1:-}" in
    startup | ready)
        [[ $status -eq 0 && -e "$PG_RUN_DIR/ready" ]]
        ;;
    live)
        # pg_isready: 0 accepting, 1 rejecting, 2 no response, 3 no attempt.
        [[ $status -le 1 ]]
        ;;
    *)
        echo "usage: probe.sh startup|ready|live" >&2
        exit 2
        ;;
esac
