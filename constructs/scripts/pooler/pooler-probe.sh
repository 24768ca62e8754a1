#!/usr/bin/env bash
# Probe: PgBouncer itself answers the PostgreSQL protocol, not just the kernel's
# listen queue. It sends the SSLRequest packet and expects PgBouncer's "S" (TLS
# is on). Uses bash's /dev/tcp: the image needs no client tools.
set -euo pipefail

: "${PGB_PROBE_HOST:=127.0.0.1}" "${PGB_PROBE_PORT:?}"

exec 3<>"/dev/tcp/$PGB_PROBE_HOST/$PGB_PROBE_PORT"
# Length 8, then the SSLRequest code 80877103.
printf '\x00\x00\x00\x08\x04\xd2\x16\x2f' >&3
reply=""
read -r -n 1 -t 3 reply <&3 || true
exec 3>&-
if [[ $reply != S ]]; then
    echo "pooler probe: no TLS answer from $PGB_PROBE_HOST:$PGB_PROBE_PORT (got '${reply}')" >&2
    exit 1
fi
