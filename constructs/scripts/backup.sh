#!/usr/bin/env bash
# The backup CronJob's command (pgbundle/pgconf/env.py sets its environment; the
# local pod runner runs it unchanged with the same variables).
#
# One run writes one backup set: a directory BACKUP_DIR/<UTC timestamp> with, per
# database, <db>.dump (pg_dump custom format) and <db>.dump.sha256, plus
# roles.sql (no passwords) and roles.sql.sha256. The set is built in a hidden
# BACKUP_DIR/.partial-<timestamp> directory, every dump is verified by reading
# and decompressing all of it (pg_restore to /dev/null, streamed beside the dump
# so a second core does it), and only then is the directory renamed into place.
# After that, old sets are pruned. A set is whatever the *.sha256 files list:
# nothing else is ever deleted.
#
# Environment:
#   PGHOST PGPORT PGUSER PGSSLMODE PGSSLROOTCERT [PGSSLCERT PGSSLKEY]  libpq connection
#   PG_PASSWORD_FILE         file holding PGUSER's password
#   BACKUP_DIR               where sets live (the postgres-backups volume)
#   BACKUP_DATABASES         space-separated database names
#   BACKUP_COMPRESSION       pg_dump compression level (1-9)
#   BACKUP_RETENTION_COUNT   sets kept (>= 1)
#   BACKUP_RETENTION_DAYS    optional: sets older than this are deleted too
#
# Output: progress lines, then one summary line
#   backup complete: set=NAME databases=a,b files=N bytes=N pruned=N seconds=S
# On failure one line `backup failed: database DB: STEP: reason` on stderr and exit 1.
set -euo pipefail

job_name=backup
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

started=${EPOCHREALTIME/./}

for name in PGHOST PGUSER PG_PASSWORD_FILE BACKUP_DIR BACKUP_DATABASES BACKUP_COMPRESSION BACKUP_RETENTION_COUNT; do
    [[ -n ${!name:-} ]] || fail "setup: environment variable $name is not set"
done
read -r -a databases <<<"$BACKUP_DATABASES"
[[ ${#databases[@]} -gt 0 ]] || fail "setup: BACKUP_DATABASES lists no database"
[[ $BACKUP_COMPRESSION =~ ^[1-9]$ ]] || fail "setup: BACKUP_COMPRESSION=$BACKUP_COMPRESSION is not a level 1-9"
[[ $BACKUP_RETENTION_COUNT =~ ^[1-9][0-9]*$ ]] || fail "setup: BACKUP_RETENTION_COUNT=$BACKUP_RETENTION_COUNT is not a whole number >= 1"
retention_days=${BACKUP_RETENTION_DAYS:-}
[[ -z $retention_days || $retention_days =~ ^[1-9][0-9]*$ ]] ||
    fail "setup: BACKUP_RETENTION_DAYS=$retention_days is not a whole number >= 1"
[[ -d $BACKUP_DIR && -w $BACKUP_DIR ]] || fail "setup: backup directory $BACKUP_DIR is missing or not writable"
[[ -r $PG_PASSWORD_FILE ]] || fail "setup: password file $PG_PASSWORD_FILE is missing or unreadable"

# Scratch files (stderr captures, the libpq password file) live outside the
# backup volume and vanish with the run.
scratch=$(mktemp -d "${TMPDIR:-/tmp}/backup.XXXXXX")
work=""
# On any exit: drop the scratch files, and the unfinished set of a failed run
# (a run killed outright leaves it for the next run to remove).
finish() {
    rm -rf -- "$scratch"
    if [[ -n $work && -d $work ]]; then
        remove_partial "$work"
    fi
}
trap finish EXIT

use_password_file "$PG_PASSWORD_FILE" "$scratch" || fail "setup: password file $PG_PASSWORD_FILE is empty"

# One run at a time on this volume (the CronJob forbids overlap; this also
# covers a manual run): only the lock holder may clean up leftovers. Without
# flock two runs could delete each other's sets, so it is required.
command -v flock >/dev/null || fail "setup: flock is not installed: it keeps two backups off one volume"
exec 9>>"$BACKUP_DIR/.backup.lock"
flock --nonblock 9 || fail "setup: another backup holds $BACKUP_DIR/.backup.lock"

set_pattern='^[0-9]{8}T[0-9]{6}Z$'

# Delete the files a set's checksum files list (and the checksum files), then
# the directory if nothing else is left in it.
remove_set() {
    local dir=$1 sum listed
    for sum in "$dir"/*.sha256; do
        [[ -e $sum ]] || continue
        listed=$(basename "$sum" .sha256)
        rm -f -- "$dir/$listed" "$dir/$listed.partial" "$sum" 2>"$scratch/prune.err" ||
            fail "prune: set $(basename "$dir"): $(reason "$scratch/prune.err") (the new set $name is complete)"
    done
    rmdir -- "$dir" 2>/dev/null || log "kept $dir: it holds files this script did not write"
}

# An unfinished set directory: its *.partial files and the files it finished.
remove_partial() {
    local dir=$1 file
    for file in "$dir"/*.partial "$dir"/*.dump "$dir"/roles.sql; do
        [[ -e $file ]] || continue
        rm -f -- "$file" "$file.sha256"
    done
    rmdir -- "$dir" 2>/dev/null || log "kept $dir: it holds files this script did not write"
}

# Leftovers of an interrupted run.
for dir in "$BACKUP_DIR"/.partial-*; do
    [[ -d $dir && $(basename "$dir") =~ ^\.partial-[0-9]{8}T[0-9]{6}Z$ ]] || continue
    log "removing $(basename "$dir") left by an interrupted run"
    remove_partial "$dir"
done

# The set's name is its UTC start time; two runs in one second get different names.
while :; do
    name=$(date -u +%Y%m%dT%H%M%SZ)
    [[ -e $BACKUP_DIR/$name || -e $BACKUP_DIR/.partial-$name ]] || break
    sleep 1
done
work="$BACKUP_DIR/.partial-$name"
mkdir -- "$work" || fail "setup: cannot create $work"

# Write the checksum file of $work/$1.partial, then move both to their final names.
seal() {
    local file=$1 hash
    hash=$(sha256sum <"$work/$file.partial") || return 1
    printf '%s  %s\n' "${hash%% *}" "$file" >"$work/$file.sha256.partial" || return 1
    # Data on disk before the name says the file is complete.
    sync -- "$work/$file.partial" "$work/$file.sha256.partial" || return 1
    mv -- "$work/$file.partial" "$work/$file" && mv -- "$work/$file.sha256.partial" "$work/$file.sha256"
}

total_bytes=0
files=0
for db in "${databases[@]}"; do
    partial="$work/$db.dump.partial"
    # pg_dump streams into the file and, through tee, into pg_restore, which
    # reads and decompresses every block (pg_restore --list would read only the
    # table of contents and pass a dump with corrupt data).
    set +e
    pg_dump --format=custom --compress="$BACKUP_COMPRESSION" --no-password --dbname="$db" 2>"$scratch/dump.err" |
        tee -- "$partial" 2>"$scratch/write.err" |
        pg_restore --file=/dev/null 2>"$scratch/verify.err"
    status=("${PIPESTATUS[@]}")
    set -e
    # 141 = SIGPIPE: a process stopped because the next one had already failed.
    if [[ ${status[1]} -ne 0 && ${status[1]} -ne 141 ]]; then
        fail "database $db: write: $(reason "$scratch/write.err" "${status[1]}") ($partial)"
    elif [[ ${status[0]} -ne 0 && ${status[0]} -ne 141 ]]; then
        fail "database $db: dump: $(reason "$scratch/dump.err" "${status[0]}")"
    elif [[ ${status[2]} -ne 0 ]]; then
        fail "database $db: verify: the archive is damaged or incomplete: $(reason "$scratch/verify.err" "${status[2]}")"
    elif [[ ${status[0]} -ne 0 || ${status[1]} -ne 0 ]]; then
        fail "database $db: dump: interrupted (exit statuses ${status[*]})"
    fi
    seal "$db.dump" 2>"$scratch/seal.err" || fail "database $db: checksum: $(reason "$scratch/seal.err")"
    bytes=$(stat -c %s -- "$work/$db.dump")
    total_bytes=$((total_bytes + bytes))
    files=$((files + 1))
    log "$db: $bytes bytes, verified"
done

# Roles, memberships and their settings, without passwords: pg_dumpall reads
# pg_roles instead of pg_authid then, which a non-superuser may do.
pg_dumpall --roles-only --no-role-passwords --no-password --database="${databases[0]}" \
    >"$work/roles.sql.partial" 2>"$scratch/roles.err" ||
    fail "database ${databases[0]}: roles: $(reason "$scratch/roles.err")"
seal roles.sql 2>"$scratch/seal.err" || fail "database ${databases[0]}: roles checksum: $(reason "$scratch/seal.err")"
total_bytes=$((total_bytes + $(stat -c %s -- "$work/roles.sql")))
files=$((files + 1))

mv -- "$work" "$BACKUP_DIR/$name" 2>"$scratch/rename.err" ||
    fail "database ${databases[-1]}: rename: $(reason "$scratch/rename.err")"
work=""
sync -- "$BACKUP_DIR" || true
log "set $name complete"

# Prune only now that the new set is verified and in place. Sets are the
# timestamp-named directories holding checksum files, newest first; the newest
# is never deleted.
mapfile -t sets < <(
    for dir in "$BACKUP_DIR"/*/; do
        dir=${dir%/}
        set_name=$(basename "$dir")
        [[ $set_name =~ $set_pattern ]] || continue
        compgen -G "$dir/*.sha256" >/dev/null || continue
        printf '%s\n' "$set_name"
    done | sort -r
)
cutoff=""
if [[ -n $retention_days ]]; then
    cutoff=$(date -u -d "-$retention_days days" +%Y%m%dT%H%M%SZ)
fi
pruned=0
for i in "${!sets[@]}"; do
    [[ $i -eq 0 ]] && continue
    if [[ $i -ge $BACKUP_RETENTION_COUNT || (-n $cutoff && ${sets[$i]} < "$cutoff") ]]; then
        log "pruning set ${sets[$i]}"
        remove_set "$BACKUP_DIR/${sets[$i]}"
        pruned=$((pruned + 1))
    fi
done

elapsed=$((${EPOCHREALTIME/./} - started))
printf -v seconds '%d.%03d' $((elapsed / 1000000)) $((elapsed % 1000000 / 1000))
IFS=,
echo "backup complete: set=$name databases=${databases[*]} files=$files bytes=$total_bytes pruned=$pruned seconds=$seconds"
