#!/usr/bin/env bash
# STUB: replaced by the real start script (issue 3).
set -euo pipefail
exec postgres
