#!/usr/bin/env bash
# STUB: replaced by the real probe (issue 3).
set -euo pipefail
exec pg_isready -q -h "${PG_RUN_DIR:-/var/run/postgresql}"
