"""Backups and restores on real PostgreSQL, through the local pod runner.

The backup and restore scripts run exactly as the CronJob and the restore Job
would run them (command and environment from the synthesized objects), against
a local pod started from the same manifests. Faults are injected from outside
the scripts: a closed port, another CA, a pg_dump wrapper first on PATH, a file
size limit.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest

from acl import acl_entries
from conftest import connect, restart
from pgbundle import contract
from pgbundle.values.load import parse_values
from workstation import pki
from workstation.backup_local import LocalJobError, backup, cronjob_container, restore, restore_container, run_container
from workstation.localpod import LocalPod

pytestmark = pytest.mark.slow

TOP = Path(__file__).resolve().parent.parent
SET_PATTERN = r"^[0-9]{8}T[0-9]{6}Z$"


def backup_dir(pod: LocalPod) -> Path:
    return pod.host_path(contract.BACKUP_DIR)


@pytest.fixture
def empty_backups(pod) -> Path:
    """The default pod's backup volume, emptied."""
    folder = backup_dir(pod)
    for entry in folder.iterdir():
        shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    return folder


def sets(folder: Path) -> list[str]:
    import re

    return sorted(p.name for p in folder.iterdir() if p.is_dir() and re.match(SET_PATTERN, p.name))


def tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.startswith(".backup.lock")}


def failing_backup(pod: LocalPod, **options) -> str:
    """Run the backup expecting failure; return its one error line."""
    result = run_container(pod, cronjob_container(pod), **options)
    assert result.returncode != 0, result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("backup failed: ")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def make_big_table(pod: LocalPod, name: str, rows: int = 20000) -> None:
    """Random (poorly compressible) rows, so the middle of a dump is table data."""
    with connect(pod, "appuser") as conn:
        conn.execute(f"DROP TABLE IF EXISTS {name}")
        conn.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, payload text)")
        conn.execute(f"INSERT INTO {name} SELECT g, md5(random()::text) || md5(random()::text) "
                     f"FROM generate_series(1, {rows}) g")


# --- round trip ---------------------------------------------------------------------

TABLES = ["customers", "orders", "events", "big"]
OBJECTS_SQL = f"""
SELECT c.relname, c.relkind::text, pg_get_userbyid(c.relowner), {acl_entries('c.relacl')}
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'app' ORDER BY 1
"""
SCHEMA_SQL = f"SELECT nspname, pg_get_userbyid(nspowner), {acl_entries('nspacl')} FROM pg_namespace WHERE nspname = 'app'"
DEFAULT_ACL_SQL = f"""
SELECT pg_get_userbyid(defaclrole), defaclobjtype::text, {acl_entries('defaclacl')}
FROM pg_default_acl d JOIN pg_namespace n ON n.oid = d.defaclnamespace WHERE n.nspname = 'app' ORDER BY 1, 2
"""


def table_state(conn: psycopg.Connection) -> dict:
    state = {}
    for table in TABLES:
        count, digest = conn.execute(
            f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM app.{table} t"
        ).fetchone()
        state[table] = (count, digest)
    return state


def privileges(conn: psycopg.Connection) -> dict:
    return {
        "objects": conn.execute(OBJECTS_SQL).fetchall(),
        "schema": conn.execute(SCHEMA_SQL).fetchall(),
        "default_acl": conn.execute(DEFAULT_ACL_SQL).fetchall(),
    }


@pytest.fixture(scope="module")
def round_trip(pods):
    """Schema and data made by appuser, backed up as the CronJob does, everything
    dropped, then restored as the restore Job does. Returns what was seen before
    and after."""
    pod = pods("round-trip")
    with connect(pod, "appuser") as conn:
        conn.execute("""
            CREATE TABLE customers (id bigserial PRIMARY KEY, name text NOT NULL, tags int[]);
            CREATE TABLE orders (id serial PRIMARY KEY, customer_id bigint REFERENCES customers(id),
                                 amount numeric(10, 2), placed timestamptz DEFAULT now());
            CREATE SEQUENCE invoice_numbers START 1000;
            CREATE TABLE events (id int, kind text, at date);
            CREATE INDEX events_kind_id_gin ON events USING gin (kind, id);
            INSERT INTO customers (name, tags) SELECT 'customer ' || g, ARRAY[g, g * 2] FROM generate_series(1, 500) g;
            INSERT INTO orders (customer_id, amount) SELECT 1 + g % 500, g / 7.0 FROM generate_series(1, 3000) g;
            INSERT INTO events SELECT g, 'kind' || (g % 13), date '2026-01-01' + g % 365 FROM generate_series(1, 5000) g;
            SELECT nextval('invoice_numbers') FROM generate_series(1, 42);
        """)
    make_big_table(pod, "big", rows=50000)
    with connect(pod, "postgres") as conn:
        before = {"tables": table_state(conn), "privileges": privileges(conn),
                  "sequences": conn.execute("SELECT last_value FROM app.invoice_numbers").fetchone()[0],
                  "customers_seq": conn.execute("SELECT last_value FROM app.customers_id_seq").fetchone()[0]}
    taken = backup(pod)
    with connect(pod, "appuser") as conn:
        conn.execute("DROP TABLE orders, customers, events, big CASCADE; DROP SEQUENCE invoice_numbers")
        assert conn.execute("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                            "WHERE n.nspname = 'app'").fetchone() == (0,)
    restored = restore(pod, restore_container(parse_values({}), taken["set"]))
    with connect(pod, "postgres") as conn:
        after = {"tables": table_state(conn), "privileges": privileges(conn),
                 "sequences": conn.execute("SELECT last_value FROM app.invoice_numbers").fetchone()[0],
                 "customers_seq": conn.execute("SELECT last_value FROM app.customers_id_seq").fetchone()[0],
                 "gin": conn.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'events_kind_id_gin'").fetchone()}
    return {"pod": pod, "backup": taken, "restore": restored, "before": before, "after": after}


def test_round_trip_restores_every_row(round_trip):
    before, after = round_trip["before"], round_trip["after"]
    assert before["tables"]["big"][0] == 50000
    assert after["tables"] == before["tables"]


def test_round_trip_restores_the_btree_gin_index(round_trip):
    assert "USING gin (kind, id)" in round_trip["after"]["gin"][0]


def test_sequences_continue_where_they_were(round_trip):
    before, after = round_trip["before"], round_trip["after"]
    assert (after["sequences"], after["customers_seq"]) == (before["sequences"], before["customers_seq"]) == (1041, 500)
    with connect(round_trip["pod"], "appuser") as conn:
        assert conn.execute("SELECT nextval('invoice_numbers')").fetchone() == (1042,)
        assert conn.execute("INSERT INTO customers (name) VALUES ('new') RETURNING id").fetchone() == (501,)


def test_restore_keeps_owners_and_privileges(round_trip):
    before, after = round_trip["before"]["privileges"], round_trip["after"]["privileges"]
    assert after == before
    owners = {row[2] for row in after["objects"]}
    assert owners == {"appuser"}
    assert "backupuser=SELECT/appuser" in next(row[3] for row in after["objects"] if row[0] == "big")


def test_three_role_pattern_works_after_restore(round_trip):
    pod = round_trip["pod"]
    with connect(pod, "appuser") as conn:
        conn.execute("CREATE TABLE after_restore (id int)")
        conn.execute("INSERT INTO after_restore VALUES (1)")
    with connect(pod, "backupuser") as conn:
        assert conn.execute("SELECT count(*) FROM app.after_restore").fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM app.big").fetchone() == (50000,)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("INSERT INTO app.after_restore VALUES (2)")


def test_backup_set_layout_and_summary(round_trip):
    taken = round_trip["backup"]
    names = sorted(Path(f).name for f in taken["files"])
    assert names == ["appdb.dump", "appdb.dump.sha256", "roles.sql", "roles.sql.sha256"]
    folder = Path(taken["files"][0]).parent
    assert taken["bytes"] == sum(Path(f).stat().st_size for f in taken["files"] if not f.endswith(".sha256"))
    assert taken["seconds"] > 0
    check = subprocess.run(["sha256sum", "--check", "--strict", "appdb.dump.sha256", "roles.sql.sha256"],
                           cwd=folder, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_roles_dump_has_roles_but_no_passwords(round_trip):
    roles = (Path(round_trip["backup"]["files"][0]).parent / "roles.sql").read_text()
    for role in ("appowner", "appuser", "backupuser"):
        assert f"CREATE ROLE {role};" in roles
    assert "PASSWORD" not in roles.upper().replace("NO-ROLE-PASSWORDS", "")
    assert "SCRAM-SHA-256" not in roles


# --- least privilege ----------------------------------------------------------------


def test_backup_connects_as_the_read_only_role_over_verified_tls(pod, empty_backups):
    env = {e["name"]: e["value"] for e in cronjob_container(pod)["env"]}
    assert (env["PGUSER"], env["PGSSLMODE"]) == ("backupuser", "verify-full")
    with connect(pod, "backupuser") as conn:
        # The database refuses writes on the role's sessions, not only the grants.
        assert conn.execute("SHOW default_transaction_read_only").fetchone() == ("on",)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("CREATE TABLE app.sneaky (id int)")
        conn.execute("SET default_transaction_read_only = off")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE app.sneaky (id int)")
    assert backup(pod)["set"]


def test_the_jobs_own_connection_cannot_write(pod, empty_backups, wrapper_dir):
    # Just before dumping, a wrapper tries a write with the job's very connection settings.
    attempt = wrapper_dir(
        'if psql -X -q -d appdb -c "CREATE TABLE app.written_by_backup (id int)" 2>"$TMPDIR/write.err"; then\n'
        '    echo "the backup connection could write" >&2; exit 1\n'
        'fi\n'
        'grep -q "read-only transaction" "$TMPDIR/write.err"\n'
        'exec "$real" "$@"')
    result = run_container(pod, cronjob_container(pod), extra_path=attempt)
    assert result.returncode == 0, result.stderr
    with connect(pod, "postgres") as conn:
        assert conn.execute("SELECT to_regclass('app.written_by_backup')").fetchone() == (None,)


def test_table_created_later_by_appuser_is_in_the_backup(pod, empty_backups):
    with connect(pod, "appuser") as conn:
        conn.execute("DROP TABLE IF EXISTS late_table")
        conn.execute("CREATE TABLE late_table (id int); INSERT INTO late_table VALUES (7)")
    taken = backup(pod)
    dump = next(f for f in taken["files"] if f.endswith("appdb.dump"))
    listing = subprocess.run([shutil.which("pg_restore") or f"{_bindir()}/pg_restore", "--list", dump],
                             capture_output=True, text=True, check=True).stdout
    assert "TABLE DATA app late_table appuser" in listing


def _bindir() -> str:
    return subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True).stdout.strip()


# --- retention ----------------------------------------------------------------------

RETENTION = {"postgres": {"backup": {"retention": {"count": 2, "days": 30}}}}


@pytest.fixture
def retention_pod(pods) -> LocalPod:
    pod = pods("retention", RETENTION)
    for entry in backup_dir(pod).iterdir():
        shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    return pod


def test_retention_keeps_the_newest_sets_and_foreign_files(retention_pod):
    pod, folder = retention_pod, backup_dir(retention_pod)
    (folder / "notes.txt").write_text("mine")
    (folder / "manual-copy").mkdir()
    (folder / "manual-copy" / "appdb.dump").write_text("mine too")
    taken = [backup(pod)["set"]]
    (folder / taken[0] / "README").write_text("added by an operator")
    for _ in range(4):  # N + 3 runs in all, N = 2
        taken.append(backup(pod)["set"])
    assert sets(folder) == [taken[0], *taken[-2:]], "only the newest 2 sets, plus the operator's leftover folder"
    assert sorted(p.name for p in (folder / taken[0]).iterdir()) == ["README"]
    assert (folder / "notes.txt").read_text() == "mine"
    assert (folder / "manual-copy" / "appdb.dump").read_text() == "mine too"
    complete = [s for s in sets(folder) if (folder / s / "appdb.dump.sha256").exists()]
    assert complete == taken[-2:]


def test_retention_days_drops_old_sets_but_never_the_newest(retention_pod):
    pod, folder = retention_pod, backup_dir(retention_pod)
    newest = backup(pod)["set"]
    old = folder / "20200101T020000Z"
    shutil.copytree(folder / newest, old)  # a set from 2020, as the job would have written it
    for path in (old, *old.iterdir()):
        os.chown(path, pod.uid, pod.gid)
    latest = backup(pod)["set"]
    assert sets(folder) == [newest, latest]


# --- faults -------------------------------------------------------------------------


@pytest.fixture
def one_good_set(pod, empty_backups) -> tuple[Path, dict[str, str]]:
    """A verified set already in place, and the digest of every file."""
    backup(pod)
    return empty_backups, tree_digest(empty_backups)


def test_unreachable_database_fails_clearly_and_keeps_older_sets(pod, one_good_set):
    folder, digest = one_good_set
    with socket_closed() as port:
        error = failing_backup(pod, env_overrides={"PGPORT": str(port)})
    assert error.startswith("backup failed: database appdb: dump: ")
    assert "127.0.0.1" in error and "refused" in error
    assert tree_digest(folder) == digest, "no new file, older set untouched"


class socket_closed:
    """A local port nobody listens on."""

    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return self.sock.getsockname()[1]

    def __exit__(self, *exc) -> None:
        self.sock.close()


@pytest.fixture
def wrapper_dir():
    """wrapper_dir(body) -> a folder (for PATH) holding a `pg_dump` wrapper that
    runs `body` with $real = the real pg_dump; removed after the test."""
    made: list[Path] = []

    def make(body: str) -> str:
        folder = Path(tempfile.mkdtemp(prefix="fault-"))
        made.append(folder)
        folder.chmod(0o755)  # the job runs as the postgres user
        script = folder / "pg_dump"
        script.write_text(f"#!/usr/bin/env bash\nset -euo pipefail\nreal={_bindir()}/pg_dump\n{body}\n")
        script.chmod(0o755)
        return str(folder)

    yield make
    for folder in made:
        shutil.rmtree(folder)


def test_dump_killed_mid_write_leaves_no_final_file_and_is_cleaned_next_run(pod, one_good_set, wrapper_dir):
    folder, digest = one_good_set
    make_big_table(pod, "big_for_kill")
    # Half of the dump reaches the file, then the whole job dies (OOM kill, node loss).
    kill = wrapper_dir('"$real" "$@" > "$TMPDIR/full.dump"\n'
                       'head -c $(( $(stat -c %s "$TMPDIR/full.dump") / 2 )) "$TMPDIR/full.dump"\n'
                       'kill -KILL 0')
    result = run_container(pod, cronjob_container(pod), extra_path=kill)
    assert result.returncode == -signal.SIGKILL
    leftovers = [p for p in folder.iterdir() if p.name.startswith(".partial-")]
    assert len(leftovers) == 1 and list(leftovers[0].glob("*.partial")), "the interrupted file keeps its temporary name"
    assert {k: v for k, v in tree_digest(folder).items() if not k.startswith(".partial-")} == digest
    taken = backup(pod)
    assert not [p for p in folder.iterdir() if p.name.startswith(".partial-")]
    assert len(sets(folder)) == 2 and taken["set"] == sets(folder)[-1]


def test_dump_corrupted_in_its_data_fails_verification(pod, one_good_set, wrapper_dir):
    folder, digest = one_good_set
    make_big_table(pod, "big_for_corruption")
    # 64 bytes overwritten in the middle of the archive: inside table data, not the header.
    corrupt = wrapper_dir('"$real" "$@" > "$TMPDIR/full.dump"\n'
                          'size=$(stat -c %s "$TMPDIR/full.dump")\n'
                          'printf "%064d" 0 | dd of="$TMPDIR/full.dump" bs=1 seek=$((size / 2)) conv=notrunc status=none\n'
                          'cat "$TMPDIR/full.dump"')
    # The corrupted archive still has an intact table of contents: --list alone would pass it.
    error = failing_backup(pod, extra_path=corrupt)
    assert error.startswith("backup failed: database appdb: verify: the archive is damaged")
    assert tree_digest(folder) == digest, "the damaged dump is not kept, older set untouched"


def test_corruption_in_the_data_passes_a_table_of_contents_check(pod, tmp_path):
    """Why verification decompresses everything: the same damage passes `pg_restore --list`."""
    make_big_table(pod, "big_for_list")
    info = pod.connection_info()
    env = {**os.environ, "PGPASSWORD": info["passwords"]["postgres"], "PGSSLMODE": "verify-full",
           "PGSSLROOTCERT": info["sslrootcert"]}
    dump = tmp_path / "d.dump"
    subprocess.run([f"{_bindir()}/pg_dump", "-Fc", "-Z1", "-h", info["host"], "-p", str(info["port"]), "-U", "postgres",
                    "-f", str(dump), "appdb"], env=env, check=True)
    data = bytearray(dump.read_bytes())
    data[len(data) // 2:len(data) // 2 + 64] = b"0" * 64
    dump.write_bytes(bytes(data))
    assert subprocess.run([f"{_bindir()}/pg_restore", "--list", str(dump)], capture_output=True).returncode == 0
    assert subprocess.run([f"{_bindir()}/pg_restore", "--file=/dev/null", str(dump)], capture_output=True).returncode != 0


def test_full_disk_fails_and_keeps_older_sets(pod, one_good_set):
    folder, digest = one_good_set
    make_big_table(pod, "big_for_disk")

    def small_disk() -> None:
        # Files may grow to 256 KiB; writing past that fails with EFBIG like a full volume.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, 256 * 1024))

    error = failing_backup(pod, preexec_fn=small_disk)
    assert error.startswith("backup failed: database appdb: write: ")
    assert "File too large" in error
    assert tree_digest(folder) == digest


def test_server_certificate_from_another_ca_is_refused(pod, one_good_set):
    folder, digest = one_good_set
    other = pod.state / "other-ca.crt"  # readable by the job's user
    other.write_bytes(pki.new_ca("someone-else").cert_pem)
    other.chmod(0o644)
    error = failing_backup(pod, env_overrides={"PGSSLROOTCERT": str(other)})
    assert error.startswith("backup failed: database appdb: dump: ")
    assert "certificate verify failed" in error
    assert tree_digest(folder) == digest


def test_server_certificate_for_another_name_is_refused(pod, one_good_set):
    folder, digest = one_good_set
    # The right server at the right address, but asked for under a name its certificate does not carry.
    error = failing_backup(pod, env_overrides={"PGHOST": "db.example.com", "PGHOSTADDR": "127.0.0.1"})
    assert error.startswith("backup failed: database appdb: dump: ")
    assert 'does not match host name "db.example.com"' in error
    assert tree_digest(folder) == digest


def test_restore_refuses_a_damaged_set(pod, empty_backups):
    taken = backup(pod)
    dump = empty_backups / taken["set"] / "appdb.dump"
    data = bytearray(dump.read_bytes())
    data[100] ^= 0xFF
    dump.write_bytes(bytes(data))
    with pytest.raises(LocalJobError, match=r"^restore failed: database appdb: checksum: appdb\.dump does not match"):
        restore(pod, restore_container(parse_values({}), taken["set"]))


def test_a_second_backup_is_refused_while_one_holds_the_lock(pod, one_good_set):
    folder, digest = one_good_set
    lock = folder / ".backup.lock"  # made by the first run, as the job's user
    with open(lock, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        error = failing_backup(pod)
    assert error == f"backup failed: setup: another backup holds {lock}"
    assert tree_digest(folder) == digest, "nothing written, nothing pruned"


def test_a_missing_flock_is_an_error_not_a_skipped_lock(pod, one_good_set):
    folder, digest = one_good_set
    # Every program of the job's PATH except flock, linked into one folder.
    tools = Path(tempfile.mkdtemp(prefix="no-flock-"))
    tools.chmod(0o755)
    try:
        for entry in pod.environment()["PATH"].split(":"):
            for program in Path(entry).iterdir():
                if program.name != "flock" and not (tools / program.name).exists():
                    (tools / program.name).symlink_to(program)
        error = failing_backup(pod, env_overrides={"PATH": str(tools)})
    finally:
        shutil.rmtree(tools)
    assert error == "backup failed: setup: flock is not installed: it keeps two backups off one volume"
    assert tree_digest(folder) == digest


def test_restore_works_after_the_superuser_password_is_rotated(pod, empty_backups):
    """The restore Job logs in as postgres with the password from the Secret: init.sql must
    re-sync it on restart, or restores fail exactly when they are needed."""
    with connect(pod, "appuser") as conn:
        conn.execute("DROP TABLE IF EXISTS kept_across_rotation")
        conn.execute("CREATE TABLE kept_across_rotation (id int); INSERT INTO kept_across_rotation VALUES (1), (2)")
    taken = backup(pod)
    old = pod.connection_info()["passwords"]["postgres"]
    new = "Rotated0Superuser0Password0123456"
    pod.host_path(f"{contract.SECRETS_DIR}/{contract.SUPERUSER_PASSWORD_KEY}").write_text(new)
    restart(pod)
    with connect(pod, "postgres", password=new) as conn:  # over TLS, verify-full
        assert conn.execute("SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone() == (
            "postgres", True)
    with pytest.raises(psycopg.OperationalError, match='password authentication failed for user "postgres"'):
        connect(pod, "postgres", password=old)
    with connect(pod, "appuser") as conn:
        conn.execute("DELETE FROM kept_across_rotation")
    restored = restore(pod, restore_container(parse_values({}), taken["set"]))
    assert restored["databases"] == ["appdb"]
    with connect(pod, "appuser") as conn:
        assert conn.execute("SELECT count(*) FROM kept_across_rotation").fetchone() == (2,)


# --- more databases, client certificates, the command line ------------------------------


def test_temporal_databases_are_backed_up_and_restored(pods):
    values = {"postgres": {"temporal": {"enabled": True}}}
    pod = pods("temporal", values)
    with connect(pod, "temporaluser", dbname="temporal") as conn:
        conn.execute("CREATE TABLE executions (id int); INSERT INTO executions SELECT generate_series(1, 10)")
    taken = backup(pod)
    names = sorted(Path(f).name for f in taken["files"])
    assert {"appdb.dump", "temporal.dump", "temporal_visibility.dump"} <= set(names)
    with connect(pod, "temporaluser", dbname="temporal") as conn:
        conn.execute("DELETE FROM executions")
    restore(pod, restore_container(parse_values(values), taken["set"], ["temporal"]))
    with connect(pod, "temporaluser", dbname="temporal") as conn:
        assert conn.execute("SELECT count(*) FROM executions").fetchone() == (10,)


def test_backup_presents_a_client_certificate_when_clients_are_verified(pods):
    pod = pods("verify-clients", {"postgres": {"ca": {"verifyClients": True}}})
    taken = backup(pod)
    assert any(f.endswith("appdb.dump") for f in taken["files"])


def test_local_commands_print_json(pod, empty_backups):
    def run(*args: str) -> dict:
        result = subprocess.run([sys.executable, str(TOP / "main.py"), "local", *args, "--state", str(pod.state)],
                                capture_output=True, text=True, cwd=TOP, timeout=300)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    taken = run("backup")
    assert set(taken) >= {"files", "bytes", "seconds"} and taken["bytes"] > 0
    restored = run("restore", "--backup", taken["set"])
    assert restored["databases"] == ["appdb"]


def test_backup_with_a_password_that_needs_pgpass_escaping(pods):
    """':' and '\\' are special in a libpq password file: lib.sh must escape
    them, or libpq reads another password and the backup is refused."""
    pod = pods("special-password")
    pod.host_path(f"{contract.SECRETS_DIR}/{contract.READ_ONLY_PASSWORD_KEY}").write_text("Back:up\\Pass:word\\0")
    restart(pod)  # the start script re-syncs the role's password from the file
    taken = backup(pod)
    assert taken["set"] and taken["bytes"] > 0
