#!/usr/bin/env bash
# The restore Job's command (`python main.py restore-manifest` prints that Job;
# `python main.py local restore` runs this file with the same environment).
#
# Restores databases from one backup set written by backup.sh: for each, the
# SHA-256 checksum is checked first, then `pg_restore --clean --if-exists` in
# parallel, connected as the superuser so owners and privileges come back as
# they were. roles.sql is not applied: the database pod's start script recreates
# the roles (with their passwords) on every start.
#
# Environment:
#   PGHOST PGPORT PGUSER PGSSLMODE PGSSLROOTCERT [PGSSLCERT PGSSLKEY]  libpq connection
#   PG_PASSWORD_FILE    file holding PGUSER's password
#   BACKUP_DIR          where sets live
#   RESTORE_BACKUP      name of the set (a directory under BACKUP_DIR)
#   RESTORE_DATABASES   optional: space-separated databases; default every dump in the set
#   RESTORE_JOBS        optional: parallel pg_restore jobs (default 2)
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
jobs=${RESTORE_JOBS:-2}
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

for db in "${databases[@]}"; do
    log "restoring $db with $jobs jobs"
    pg_restore --jobs="$jobs" --clean --if-exists --no-password --dbname="$db" "$set_dir/$db.dump" \
        2>"$scratch/restore.err" || fail "database $db: restore: $(reason "$scratch/restore.err")"
done

elapsed=$((${EPOCHREALTIME/./} - started))
printf -v seconds '%d.%03d' $((elapsed / 1000000)) $((elapsed % 1000000 / 1000))
IFS=,
echo "restore complete: set=$RESTORE_BACKUP databases=${databases[*]} bytes=$total_bytes seconds=$seconds"
