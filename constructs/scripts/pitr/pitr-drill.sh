#!/usr/bin/env bash
# The restore drill (CronJob postgres-pitr-drill; `local drill` runs it too): for
# each repository, restore its newest backup and replay every archived WAL segment
# into the scratch folder PG_DRILL_DIR, start PostgreSQL there with no network
# (listen_addresses empty, its socket in the scratch folder, archiving off) and
# check it: recovery reached the end of the archive, every database opens, each
# table of the application's database is counted (a full read of its heap) and,
# where the binary exists, pg_amcheck finds no corruption. The job mounts the
# repositories read-only and never reaches the database.
#
# Environment: pgBackRest's as the backup jobs have it (pitr-env.sh), plus
#   PG_DRILL_DIR        the scratch volume (emptied before and after)
#   PG_DRILL_DATABASE   the application's database
# Output: progress lines, then `pitr drill ok: repos=... backup=... databases=N
# tables=N rows=N amcheck=yes|unavailable seconds=S`; on failure one line
# `pitr drill failed: REASON` on stderr and exit 1.
set -euo pipefail

job_name="pitr drill"
: "${PG_SCRIPTS_DIR:?}" "${PG_DRILL_DIR:?}" "${PG_DRILL_DATABASE:?}" "${PGPORT:?}"
# shellcheck source=../lib.sh
source "$PG_SCRIPTS_DIR/lib.sh"
[[ -d $PG_DRILL_DIR && -w $PG_DRILL_DIR ]] || fail "setup: scratch folder $PG_DRILL_DIR is missing or not writable"
# The restored server's data and socket live in the scratch folder only.
export PGDATA="$PG_DRILL_DIR/pgdata" PG_RUN_DIR="$PG_DRILL_DIR/run"
# shellcheck source=pitr-env.sh
source "$PG_SCRIPTS_DIR/pitr-env.sh"
pitr_write_secrets
export PGBACKREST_LOG_LEVEL_CONSOLE=info PGBACKREST_LOG_LEVEL_STDERR=off

started=$SECONDS
scratch=$(mktemp -d "${TMPDIR:-/tmp}/pitr-drill.XXXXXX")
postmaster=""
stop_server() {
    if [[ -n $postmaster ]]; then
        kill -INT "$postmaster" 2>/dev/null || true
        wait "$postmaster" 2>/dev/null || true
        postmaster=""
    fi
}
finish() {
    stop_server
    rm -rf -- "$scratch" "$PGDATA" "$PG_RUN_DIR"
}
trap finish EXIT
# A deadline's SIGTERM still stops the server and empties the scratch folder.
trap 'exit 143' TERM INT

sql() { # sql DATABASE QUERY: one query as the superuser over the scratch socket, unaligned
    psql -X -At -v ON_ERROR_STOP=1 -h "$PG_RUN_DIR" -p "$PGPORT" -U postgres -d "$1" -c "$2"
}

# The restored server's settings: command-line options, so that nothing restored
# (postgresql.auto.conf from ALTER SYSTEM) can open a port or archive into the
# repository. hot_standby off: no connection before recovery ends, and no need for
# the primary's max_connections and friends.
write_settings() {
    printf '%s\n' "local all all trust" >"$scratch/pg_hba.conf"
    : >"$scratch/pg_ident.conf"
    : >"$scratch/postgresql.conf"
    server_options=(
        -c "config_file=$scratch/postgresql.conf" -c "hba_file=$scratch/pg_hba.conf"
        -c "ident_file=$scratch/pg_ident.conf"
        -c listen_addresses= -c "port=$PGPORT" -c "unix_socket_directories=$PG_RUN_DIR"
        -c unix_socket_permissions=0700 -c archive_mode=off -c hot_standby=off
        -c shared_preload_libraries= -c max_connections=20 -c shared_buffers=128MB
        -c logging_collector=off -c log_destination=stderr
    )
}

# start_server REPO: start the restored copy; return once recovery has ended and
# it accepts connections, or fail with the server's own reason.
start_server() {
    local log="$scratch/server-repo$1.log"
    postgres -D "$PGDATA" "${server_options[@]}" >"$log" 2>&1 &
    postmaster=$!
    until pg_isready -q -h "$PG_RUN_DIR" -p "$PGPORT" -U postgres -d postgres; do
        if ! kill -0 "$postmaster" 2>/dev/null; then
            wait "$postmaster" || true
            postmaster=""
            sed 's/^/postgres: /' "$log"
            # Its refusals of pg_isready while recovering are no reason.
            grep -vE 'not accepting connections|is starting up' "$log" >"$log.reason" || true
            local missing
            missing=$(grep -oE 'unable to find [0-9A-F]{24} in the archive' "$log" | head -n 1 || true)
            fail "repo$1: the restored server did not start: $(reason "$log.reason")${missing:+ ($missing)}"
        fi
        sleep 0.2
    done
}

# newest SEGMENT...: the highest segment number (a WAL name's last 16 digits).
newest() {
    printf '%s\n' "$@" | cut -c9-24 | sort | tail -n 1
}

total_tables=0 total_rows=0 databases=0 amcheck=unavailable labels=()
drill_repo() {
    local repo=$1 info label archive_max replayed out="$scratch/restore-repo$1.out"
    rm -rf -- "$PGDATA" "$PG_RUN_DIR"
    (umask 077 && mkdir -p "$PGDATA" "$PG_RUN_DIR")

    # What the repository holds now, before the restore reads it: the restore must reach at least this.
    if ! info=$(pgbackrest info --repo="$repo" --output=json 2>&1); then
        printf '%s\n' "$info" >"$out"
        fail "repo$repo: info: $(reason "$out")"
    fi
    label=$(grep -oE '"label":"[^"]+"' <<<"$info" | tail -n 1 | cut -d'"' -f4)
    [[ -n $label ]] || fail "repo$repo holds no backup"
    mapfile -t maxima < <(grep -oE '"max":"[0-9A-F]{24}"' <<<"$info" | cut -d'"' -f4)
    [[ ${#maxima[@]} -gt 0 ]] || fail "repo$repo holds no archived WAL"
    archive_max=$(newest "${maxima[@]}")
    log "repo$repo: restoring backup $label and the WAL archived after it (up to segment $archive_max)"

    # The newest backup, then every archived segment (recovery ends where the archive does), from this repository only.
    if ! pgbackrest restore --repo="$repo" --type=default \
        --recovery-option="restore_command=pgbackrest --repo=$repo archive-get %f \"%p\"" >"$out" 2>&1; then
        fail "repo$repo: restore: $(reason "$out")"
    fi
    start_server "$repo"
    [[ $(sql postgres 'SELECT pg_is_in_recovery()') == f ]] || fail "repo$repo: the restored server is still in recovery"
    # Recovery ends quietly at the first segment it cannot fetch: one missing in the
    # middle would lose everything after it. It must have replayed the newest one.
    replayed=$(sql postgres 'SELECT pg_walfile_name(pg_last_wal_replay_lsn())')
    if [[ $(newest "$replayed") < $archive_max ]]; then
        fail "repo$repo: recovery stopped in WAL segment $(newest "$replayed") but the archive reaches $archive_max:" \
            "a segment after it is missing or unreadable"
    fi

    local names name tables=0 rows=0 line
    mapfile -t names < <(sql postgres 'SELECT datname FROM pg_database WHERE datallowconn ORDER BY 1')
    for name in "${names[@]}"; do
        sql "$name" 'SELECT count(*) FROM pg_class' >/dev/null 2>"$out" || fail "repo$repo: database $name does not open: $(reason "$out")"
    done
    [[ " ${names[*]} " == *" $PG_DRILL_DATABASE "* ]] || fail "repo$repo: database $PG_DRILL_DATABASE is not in the restored copy"
    databases=${#names[@]}

    # Every user table of the application's database, counted: a read of each heap page.
    if ! psql -X -At -F $'\t' -v ON_ERROR_STOP=1 -h "$PG_RUN_DIR" -p "$PGPORT" -U postgres -d "$PG_DRILL_DATABASE" \
        >"$scratch/counts" 2>"$out" <<'SQL'
SELECT format('SELECT %L, count(*) FROM %I.%I', n.nspname || '.' || c.relname, n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
ORDER BY 1
\gexec
SQL
    then
        fail "repo$repo: counting the rows of $PG_DRILL_DATABASE: $(reason "$out")"
    fi
    while IFS=$'\t' read -r name line; do
        log "repo$repo: $PG_DRILL_DATABASE.$name rows=$line"
        tables=$((tables + 1))
        rows=$((rows + line))
    done <"$scratch/counts"

    if command -v pg_amcheck >/dev/null; then
        # amcheck goes into each database of the throw-away copy; tables and B-tree indexes are checked.
        if ! pg_amcheck -h "$PG_RUN_DIR" -p "$PGPORT" -U postgres --all --install-missing >"$out" 2>&1; then
            fail "repo$repo: pg_amcheck: $(grep -v '^[[:space:]]*$' "$out" | head -n 2 | tr '\n' ';' | sed 's/;$//')"
        fi
        amcheck=yes
    fi
    log "repo$repo ok: backup=$label replayed-to=$(newest "$replayed") databases=$databases tables=$tables rows=$rows"
    stop_server
    rm -rf -- "$PGDATA" "$PG_RUN_DIR"
    total_tables=$tables total_rows=$rows
    labels+=("$label")
}

write_settings
for repo in $PG_PITR_REPOS; do
    drill_repo "$repo"
done
labels_joined=$(IFS=,; echo "${labels[*]}")
echo "pitr drill ok: repos=${PG_PITR_REPOS// /,} backup=$labels_joined databases=$databases tables=$total_tables" \
    "rows=$total_rows amcheck=$amcheck seconds=$((SECONDS - started))"
