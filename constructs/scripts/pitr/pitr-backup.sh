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
# With Patroni (PGBACKREST_BACKUP_STANDBY=y, pg1..pgN every member) the files are
# read from a standby, the primary only starts and stops the backup. When no
# standby answers (a one-member cluster left, every standby down) the backup is
# still taken, from the primary: a late backup is worse than a loaded primary.
source_kind=primary
if [[ ${PGBACKREST_BACKUP_STANDBY:-n} == y ]]; then
    source_kind=standby
fi
# pgBackRest's error [056] when no pg host is a standby it can reach (2.45 to 2.55).
no_standby="unable to find standby cluster"
output=$(mktemp)
trap 'rm -f "$output"' EXIT
for repo in $PG_PITR_REPOS; do
    if ! pgbackrest backup --type="$type" --repo="$repo" | tee "$output"; then
        if [[ $source_kind == standby ]] && grep -q "$no_standby" "$output"; then
            echo "pitr-backup.sh: no standby answers: backing up from the primary" >&2
            export PGBACKREST_BACKUP_STANDBY=n
            source_kind=primary
            pgbackrest backup --type="$type" --repo="$repo"
        else
            exit 1
        fi
    fi
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
echo "pitr backup complete: type=$type source=$source_kind repos=${PG_PITR_REPOS// /,} verified=yes seconds=$((SECONDS - started))"
