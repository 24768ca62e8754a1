#!/usr/bin/env bash
# Upgrades the stopped database's data to a new PostgreSQL major in place with
# `pg_upgrade --link` (README.md, "Major-version upgrades"). Run by the printed
# upgrade Job (`main.py upgrade-manifest`) and by `main.py local upgrade`.
#
#   PGDATA          the data directory (the database must be stopped)
#   PG_OLD_BINDIR   binaries of the data's major (the old image's, copied)
#   PG_NEW_BINDIR   binaries of the target major
#   PG_UPGRADE_WORK a private scratch folder (sockets, pg_upgrade's cwd)
#   PG_PITR_UPGRADE_MARKER  (PITR on) the file left for start.sh's stanza upgrade
#
# Steps: `pg_upgrade --check` against a new cluster made with the old one's
# checksum setting, encoding and locale (any finding stops here, nothing
# changed); `pg_upgrade --link`; ALTER EXTENSION ... UPDATE in every database;
# statistics; then the new data takes PGDATA's place and the old one is kept
# beside it as PGDATA.old-<major> until deleted by hand.
#
# Re-runnable: data already on the target major is left alone; an upgrade
# interrupted before the link step starts over; one interrupted after pg_upgrade
# finished resumes; one interrupted while linking is refused (restore the backup).
job_name=upgrade
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${PGDATA:?}" "${PG_OLD_BINDIR:?}" "${PG_NEW_BINDIR:?}" "${PG_UPGRADE_WORK:?}"

major_of() {  # major_of BINDIR: "postgres (PostgreSQL) 18.1 (Debian ...)" -> 18
    local version
    version=$("$1/postgres" --version) || fail "cannot run $1/postgres"
    version=${version#*) }
    printf '%s' "${version%%.*}"
}

old_major=$(major_of "$PG_OLD_BINDIR")
new_major=$(major_of "$PG_NEW_BINDIR")
new_data="$PGDATA.upgrade-$new_major"
old_kept="$PGDATA.old-$old_major"
socket_dir="$PG_UPGRADE_WORK"
port=50432
# The data's own postgresql.conf may name what only the database pod has (Patroni
# writes one: a log folder on the pod's run volume, the TLS files, archiving): every
# server this script and pg_upgrade start runs without them, on a socket only.
server_options="-c logging_collector=off -c ssl=off -c archive_mode=off"
# Local connections are `peer` (start.sh's initdb): the OS user is the bootstrap superuser.
superuser=$(id -un)
(( new_major > old_major )) || fail "the new binaries are PostgreSQL $new_major, not newer than the old ones ($old_major)"

# The swap below is two renames: finish one that was interrupted between them.
if [[ ! -e $PGDATA && -s $new_data/PG_VERSION && -d $old_kept ]]; then
    mv "$new_data" "$PGDATA"
    log "finished an interrupted swap: $PGDATA is PostgreSQL $new_major"
fi
[[ -s $PGDATA/PG_VERSION ]] || fail "no database in $PGDATA (PG_VERSION missing)"
data_major=$(<"$PGDATA/PG_VERSION")
if [[ $data_major == "$new_major" ]]; then
    log "$PGDATA is already PostgreSQL $new_major: nothing to do"
    exit 0
fi
[[ $data_major == "$old_major" ]] ||
    fail "$PGDATA is PostgreSQL $data_major but the old binaries are $old_major: give the binaries of $data_major"
[[ ! -e $old_kept ]] || fail "$old_kept exists from an earlier upgrade: move or delete it first"
if "$PG_OLD_BINDIR/pg_ctl" status -D "$PGDATA" >/dev/null 2>&1; then
    fail "a server runs on $PGDATA: stop the database first (scale the StatefulSet to 0)"
fi

# pg_upgrade renames the old pg_control just before it links the files: from then on
# the old cluster cannot be started and only a finished pg_upgrade is usable.
linked=no
if [[ -e $PGDATA/global/pg_control.old && ! -e $PGDATA/global/pg_control ]]; then
    linked=yes
fi

with_server() {  # with_server BINDIR DATA COMMAND...: run COMMAND against a socket-only server
    local bindir=$1 data=$2 status=0
    shift 2
    "$bindir/pg_ctl" start -w -s -D "$data" -l "$PG_UPGRADE_WORK/server.log" \
        -o "-c listen_addresses= -c port=$port -c unix_socket_directories=$socket_dir $server_options" >/dev/null ||
        fail "the PostgreSQL $(major_of "$bindir") server did not start on $data: $(reason "$PG_UPGRADE_WORK/server.log")"
    "$@" || status=$?
    "$bindir/pg_ctl" stop -w -s -m fast -D "$data" || fail "the server on $data did not stop"
    return "$status"
}

psql_new() {  # psql_new DATABASE [psql options]: the new server as the superuser
    local database=$1
    shift
    "$PG_NEW_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h "$socket_dir" -p "$port" -U "$superuser" -d "$database" "$@"
}

mkdir -p "$PG_UPGRADE_WORK"
chmod 0700 "$PG_UPGRADE_WORK"
cd "$PG_UPGRADE_WORK"

if [[ $linked == yes ]]; then
    # pg_upgrade deletes its output folder when it succeeds.
    if [[ ! -s $new_data/PG_VERSION || -e $new_data/pg_upgrade_output.d ]]; then
        fail "an earlier pg_upgrade --link of $PGDATA stopped while linking: the old data cannot be started and" \
            "the new is incomplete; restore the backup (README.md#major-version-upgrades)"
    fi
    log "resuming after a finished pg_upgrade: $new_data"
else
    if [[ -e $new_data ]]; then
        log "removing $new_data, left by an upgrade that stopped before linking"
        rm -rf "$new_data"
    fi
    # What the new cluster must share with the old: the bootstrap superuser, data
    # checksums (18's initdb turns them on by default), encoding and locale.
    settings="$PG_UPGRADE_WORK/settings"
    read_settings() {
        "$PG_OLD_BINDIR/psql" -X -A -t -F '|' -h "$socket_dir" -p "$port" -d template1 -c "
            SELECT (SELECT rolname FROM pg_authid WHERE oid = 10), pg_encoding_to_char(encoding),
                   datcollate, datctype, datlocprovider,
                   coalesce(to_jsonb(d) ->> 'datlocale', to_jsonb(d) ->> 'daticulocale', ''),
                   current_setting('data_checksums')
            FROM pg_database d WHERE datname = 'template0'" >"$settings"
    }
    PGUSER=$superuser with_server "$PG_OLD_BINDIR" "$PGDATA" read_settings ||
        fail "cannot read the settings of $PGDATA: $(reason "$settings")"
    IFS='|' read -r bootstrap encoding collate ctype provider locale checksums <"$settings"
    [[ $bootstrap == "$superuser" ]] ||
        fail "the bootstrap superuser of $PGDATA is $bootstrap, not the OS user $superuser: run as $bootstrap"
    options=(--username="$superuser" --encoding="$encoding" --lc-collate="$collate" --lc-ctype="$ctype")
    case $provider in
        c) options+=(--locale-provider=libc) ;;
        i) options+=(--locale-provider=icu --icu-locale="$locale") ;;
        b) options+=(--locale-provider=builtin --builtin-locale="$locale") ;;
        *) fail "unknown locale provider $provider of template0" ;;
    esac
    if [[ $checksums == on ]]; then
        options+=(--data-checksums)
    elif (( new_major >= 18 )); then
        options+=(--no-data-checksums)
    fi
    log "PostgreSQL $old_major -> $new_major: superuser $superuser, $encoding, collate $collate, ctype $ctype," \
        "provider $provider${locale:+ $locale}, checksums $checksums"
    "$PG_NEW_BINDIR/initdb" --pgdata="$new_data" --auth-local=peer --auth-host=scram-sha-256 --no-instructions \
        "${options[@]}" >"$PG_UPGRADE_WORK/initdb.log" 2>&1 ||
        fail "initdb of the new cluster failed: $(reason "$PG_UPGRADE_WORK/initdb.log")"

    # pg_upgrade's finding reports and logs live in the new cluster's folder, which
    # is removed on failure: show the reports and each log's error lines first.
    show_reports() {
        local file errors
        while IFS= read -r -d '' file; do
            if [[ $file == *.txt ]]; then
                printf '== %s\n' "${file##*/}" >&2
                cat "$file" >&2
            elif errors=$(grep -E 'ERROR|FATAL|error:' "$file"); then
                printf '== %s\n%s\n' "${file##*/}" "$errors" >&2
            fi
        done < <(find "$new_data" -path '*pg_upgrade_output.d*' \( -name '*.txt' -o -name '*.log' \) -print0 2>/dev/null)
    }

    upgrade=("$PG_NEW_BINDIR/pg_upgrade" --old-bindir="$PG_OLD_BINDIR" --new-bindir="$PG_NEW_BINDIR"
        --old-datadir="$PGDATA" --new-datadir="$new_data" --username="$superuser" --socketdir="$socket_dir"
        --old-port="$port" --new-port="$port" --old-options="$server_options" --new-options="$server_options")
    if ! "${upgrade[@]}" --check --link >"$PG_UPGRADE_WORK/check.log" 2>&1; then
        cat "$PG_UPGRADE_WORK/check.log" >&2
        show_reports
        rm -rf "$new_data"
        fail "pg_upgrade --check found problems (above); nothing was changed, the data is still PostgreSQL $old_major"
    fi
    log "pg_upgrade --check passed"
    if ! "${upgrade[@]}" --link >"$PG_UPGRADE_WORK/upgrade.log" 2>&1; then
        cat "$PG_UPGRADE_WORK/upgrade.log" >&2
        show_reports
        if [[ -e $PGDATA/global/pg_control.old && ! -e $PGDATA/global/pg_control ]]; then
            fail "pg_upgrade --link failed while linking: restore the backup (README.md#major-version-upgrades)"
        fi
        rm -rf "$new_data"
        fail "pg_upgrade failed before linking; nothing was changed, the data is still PostgreSQL $old_major"
    fi
    log "pg_upgrade --link finished"
fi

# Settings made with ALTER SYSTEM live in the data directory; pg_upgrade leaves them behind.
if [[ -s $PGDATA/postgresql.auto.conf ]]; then
    cp "$PGDATA/postgresql.auto.conf" "$new_data/postgresql.auto.conf"
fi

update_extensions() {
    local database
    psql_new postgres -A -t -c "SELECT datname FROM pg_database WHERE datallowconn ORDER BY 1" >"$PG_UPGRADE_WORK/databases"
    while IFS= read -r database; do
        # Only extensions whose installed version is not the new default; each update is its own statement.
        psql_new "$database" <<'SQL'
SELECT format('ALTER EXTENSION %I UPDATE', e.extname)
FROM pg_extension e JOIN pg_available_extensions a ON a.name = e.extname
WHERE a.default_version IS DISTINCT FROM e.extversion \gexec
SQL
        log "extensions up to date in $database"
    done <"$PG_UPGRADE_WORK/databases"
    # From 18 pg_upgrade carries the planner statistics over, all but extended
    # statistics: analyze only what has none. Older targets start with none at all.
    local analyze=(--all --analyze-in-stages)
    if (( new_major >= 18 )); then
        analyze+=(--missing-stats-only)
    fi
    "$PG_NEW_BINDIR/vacuumdb" -h "$socket_dir" -p "$port" -U "$superuser" -q "${analyze[@]}"
    log "statistics: vacuumdb ${analyze[*]} done"
}
with_server "$PG_NEW_BINDIR" "$new_data" update_extensions || fail "updating extensions or statistics failed (above)"

# With PITR on, the first start on the new major upgrades pgBackRest's stanza and
# takes a full backup (start.sh): written before the swap, so an interrupted swap keeps it.
if [[ -n ${PG_PITR_UPGRADE_MARKER:-} ]]; then
    printf '%s\n' "$old_major" >"$PG_PITR_UPGRADE_MARKER"
    log "PITR: the first start on PostgreSQL $new_major upgrades the pgBackRest stanza and takes a full backup"
fi

# The new data takes PGDATA's place; the old (hard links to the same files) stays
# beside it until the upgrade is verified: then delete it.
mv "$PGDATA" "$old_kept"
mv "$new_data" "$PGDATA"
log "done: $PGDATA is PostgreSQL $new_major; the old data is in $old_kept (delete it once the upgrade is verified)"
