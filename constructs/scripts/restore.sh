#!/usr/bin/env bash
# The restore Job's command (`python main.py restore-manifest` prints that Job;
# `python main.py local restore` runs this file with the same environment).
#
# Restores databases from one backup set written by backup.sh: for each, the
# SHA-256 checksum is checked first, then `pg_restore --clean --if-exists`,
# connected as the superuser so owners and privileges come back as they were.
# roles.sql is not applied: the database pod's start script recreates the roles
# (with their passwords) on every start.
#
# A failed restore must not lose what it did not restore. With one job (the
# default) each database is restored in one transaction (--single-transaction,
# which pg_restore allows only without --jobs): a failure, or the job being
# killed, rolls back the drops of --clean too, and the database is as it was.
# More jobs are faster on large sets but cannot be atomic: before anything is
# dropped the server must have a connection for every worker and the leader
# (jobs + 1, without the superuser-reserved slots), and a failure after that
# says the database may be partly restored.
#
# Environment:
#   PGHOST PGPORT PGUSER PGSSLMODE PGSSLROOTCERT [PGSSLCERT PGSSLKEY]  libpq connection
#   PG_PASSWORD_FILE    file holding PGUSER's password
#   BACKUP_DIR          where sets live
#   RESTORE_BACKUP      name of the set (a directory under BACKUP_DIR)
#   RESTORE_DATABASES   optional: space-separated databases, each once; default every dump in the set
#   RESTORE_JOBS        optional: pg_restore jobs (default 1: one transaction per database)
#
# Output: one summary line `restore complete: set=NAME databases=a,b bytes=N seconds=S`;
# on failure one line `restore failed: database DB: STEP: reason` on stderr and exit 1.
set -euo pipefail

job_name=restore
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

started=${EPOCHREALTIME/./}

for name in PGHOST PGUSER PG_PASSWORD_FILE BACKUP_DIR RESTORE_BACKUP; do
    [[ -n ${!name:-} ]] || fail "setup: environment variable $name is not set"
done
jobs=${RESTORE_JOBS:-1}
[[ $jobs =~ ^[1-9][0-9]*$ ]] || fail "setup: RESTORE_JOBS=$jobs is not a whole number >= 1"
[[ $RESTORE_BACKUP =~ ^[0-9]{8}T[0-9]{6}Z$ ]] ||
    fail "setup: RESTORE_BACKUP=$RESTORE_BACKUP is not a backup set name (like 20260101T020000Z)"
set_dir="$BACKUP_DIR/$RESTORE_BACKUP"
[[ -d $set_dir ]] || fail "setup: backup set $set_dir does not exist"
[[ -r $PG_PASSWORD_FILE ]] || fail "setup: password file $PG_PASSWORD_FILE is missing or unreadable"

if [[ -n ${RESTORE_DATABASES:-} ]]; then
    read -r -a databases <<<"$RESTORE_DATABASES"
else
    databases=()
    for dump in "$set_dir"/*.dump; do
        [[ -e $dump ]] && databases+=("$(basename "$dump" .dump)")
    done
fi
[[ ${#databases[@]} -gt 0 ]] || fail "setup: backup set $RESTORE_BACKUP holds no database dump"
declare -A seen=()
for db in "${databases[@]}"; do
    [[ -z ${seen[$db]:-} ]] || fail "setup: RESTORE_DATABASES names $db twice: list each database once"
    seen[$db]=1
done

scratch=$(mktemp -d "${TMPDIR:-/tmp}/restore.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

use_password_file "$PG_PASSWORD_FILE" "$scratch" || fail "setup: password file $PG_PASSWORD_FILE is empty"

# Every checksum first: a damaged set restores nothing.
total_bytes=0
for db in "${databases[@]}"; do
    [[ -f $set_dir/$db.dump ]] || fail "database $db: checksum: $set_dir/$db.dump does not exist"
    [[ -f $set_dir/$db.dump.sha256 ]] || fail "database $db: checksum: $set_dir/$db.dump.sha256 does not exist"
    (cd "$set_dir" && sha256sum --check --strict --status "$db.dump.sha256") ||
        fail "database $db: checksum: $db.dump does not match $db.dump.sha256 (damaged or altered)"
    total_bytes=$((total_bytes + $(stat -c %s -- "$set_dir/$db.dump")))
done
log "checksums of ${databases[*]} match"

if ((jobs > 1)); then
    # Connections a parallel restore may take: every slot but the superuser-reserved
    # ones (and PostgreSQL 16's reserved_connections), less those in use.
    free=$(psql -X -A -t -v ON_ERROR_STOP=1 --no-password --dbname="${databases[0]}" -c "
        SELECT current_setting('max_connections')::int
             - current_setting('superuser_reserved_connections')::int
             - coalesce(current_setting('reserved_connections', true)::int, 0)
             - (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'
                AND pid <> pg_backend_pid())" 2>"$scratch/check.err") ||
        fail "database ${databases[0]}: connections: $(reason "$scratch/check.err"); nothing was changed"
    ((jobs + 1 <= free)) || fail "setup: RESTORE_JOBS=$jobs needs $((jobs + 1)) connections but the server has" \
        "$free free (max_connections less reserved slots and those in use): use at most $((free - 1)) jobs," \
        "or 1 for a restore in one transaction; nothing was changed"
fi

restored=()
for db in "${databases[@]}"; do
    if ((jobs == 1)); then
        log "restoring $db in one transaction"
        mode=(--single-transaction)
        left="$db is as it was (the transaction was rolled back)"
    else
        log "restoring $db with $jobs jobs"
        mode=(--jobs="$jobs")
        left="$db may be partly restored (a parallel restore is not atomic): restore it again, with --jobs 1 for all or nothing"
    fi
    before=""
    ((${#restored[@]} == 0)) || before="; restored before it: ${restored[*]}"
    pg_restore "${mode[@]}" --clean --if-exists --no-password --dbname="$db" "$set_dir/$db.dump" \
        2>"$scratch/restore.err" || fail "database $db: restore: $(reason "$scratch/restore.err"); $left$before"
    restored+=("$db")
done

elapsed=$((${EPOCHREALTIME/./} - started))
printf -v seconds '%d.%03d' $((elapsed / 1000000)) $((elapsed % 1000000 / 1000))
IFS=,
echo "restore complete: set=$RESTORE_BACKUP databases=${databases[*]} bytes=$total_bytes seconds=$seconds"
