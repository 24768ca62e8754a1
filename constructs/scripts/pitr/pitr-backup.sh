#!/usr/bin/env bash
# The PITR backup CronJobs' script: `pitr-backup.sh full|diff|incr`. A backup into
# every repository, taken through pgBackRest's TLS server in the database pod
# (PGBACKREST_PG1_HOST, pg1-host-type=tls, this pod's client certificate): the job
# has no PGDATA. Then `expire` by the retention in pgbackrest.conf, and `verify` of
# each repository. The last line on success is the summary; a failure exits
# non-zero with pgBackRest's error (or verify's finding on stderr).
set -euo pipefail

: "${PG_SCRIPTS_DIR:?}" "${PGBACKREST_PG1_HOST:?}"
type=${1:-}
case $type in
    full | diff | incr) ;;
    *) echo "usage: pitr-backup.sh full|diff|incr (got '$type')" >&2; exit 2 ;;
esac
# shellcheck source=pitr-env.sh
source "$PG_SCRIPTS_DIR/pitr-env.sh"
pitr_write_secrets
export PGBACKREST_LOG_LEVEL_CONSOLE=info PGBACKREST_LOG_LEVEL_STDERR=off
started=$SECONDS
for repo in $PG_PITR_REPOS; do
    pgbackrest backup --type="$type" --repo="$repo"
done
pgbackrest expire
# Every backup and WAL file left, against its checksum. pgBackRest's verify (2.45,
# and 2.55.1 still) ends with status 0 whatever it finds; its summary says `status: error`.
for repo in $PG_PITR_REPOS; do
    report=$(pgbackrest verify --repo="$repo")
    printf '%s\n' "$report"
    if grep -qE '^\s*status: error' <<<"$report"; then
        finding=$(grep -m1 -oE '(invalid|missing)[^"]*' <<<"$report" || echo "status: error")
        echo "pitr-backup.sh: verify repo$repo failed: $finding" >&2
        exit 1
    fi
done
echo "pitr backup complete: type=$type repos=${PG_PITR_REPOS// /,} verified=yes seconds=$((SECONDS - started))"
