"""The synthesized pod on real PostgreSQL, through the local pod runner.

One pod with the default values serves the read-only checks; tests that
restart, break or reconfigure the database get a pod of their own.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg
import pytest

import main
from acl import acl_entries
from conftest import connect, connect_socket, log_records, restart
from pgbundle import contract
from pgbundle.values.load import parse_values
from workstation.localpod import LocalPod
from workstation.pod_state import RUN_USER, LocalPodError, postgres_bindir

pytestmark = pytest.mark.slow


# --- connections ---------------------------------------------------------------


# --- connections ---------------------------------------------------------------


def test_non_tls_tcp_is_rejected(pod):
    with pytest.raises(psycopg.OperationalError, match="pg_hba.conf rejects connection .* no encryption"):
        connect(pod, "appuser", sslmode="disable")


def s_client(pod: LocalPod, *options: str) -> str:
    """What `openssl s_client` prints when it opens TLS to the pod with these options."""
    info = pod.connection_info()
    result = subprocess.run(
        ["openssl", "s_client", "-connect", f"{info['hostaddr']}:{info['port']}", "-starttls", "postgres", *options],
        input="", capture_output=True, text=True, timeout=30,
    )
    return result.stdout + result.stderr


def test_tls_1_1_is_rejected(pod):
    # libpq cannot even offer TLS 1.1 with modern OpenSSL; openssl s_client can (SECLEVEL=0).
    assert "alert protocol version" in s_client(pod, "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0")
    with connect(pod, "postgres") as conn:
        assert conn.execute("SHOW ssl_min_protocol_version").fetchone() == ("TLSv1.2",)


def test_tls_1_2_is_accepted(pod):
    assert "Protocol  : TLSv1.2" in s_client(pod, "-tls1_2")


# CBC suites with SHA-1 MACs, for ECDSA and RSA certificates, with and without ECDHE.
CBC_SHA1_SUITES = ("ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA:"
                   "AES128-SHA:AES256-SHA")


def test_tls_1_2_refuses_a_client_that_offers_only_cbc_sha1_suites(pod):
    # The server's own refusal (alert 40, handshake failure): the client did offer
    # the suites. A server with PostgreSQL's default ssl_ciphers accepts
    # ECDHE-ECDSA-AES256-SHA from this very command.
    printed = s_client(pod, "-tls1_2", "-cipher", CBC_SHA1_SUITES)
    assert "alert handshake failure" in printed and "SSL alert number 40" in printed
    assert "Cipher is (NONE)" in printed


@pytest.mark.parametrize("options, negotiated", [
    (["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"], "New, TLSv1.2, Cipher is ECDHE-ECDSA-AES128-GCM-SHA256"),
    (["-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384"], "New, TLSv1.2, Cipher is ECDHE-ECDSA-AES256-GCM-SHA384"),
    (["-tls1_2", "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305"], "New, TLSv1.2, Cipher is ECDHE-ECDSA-CHACHA20-POLY1305"),
    (["-tls1_3"], "New, TLSv1.3, Cipher is TLS_AES_256_GCM_SHA384"),
], ids=["tls1.2-aes128-gcm", "tls1.2-aes256-gcm", "tls1.2-chacha20", "tls1.3"])
def test_each_aead_suite_is_negotiated(pod, options, negotiated):
    assert negotiated in s_client(pod, *options)


def handshake(pod: LocalPod, *options: str) -> str:
    """What `openssl s_client` reports for one TLS handshake with the server (after PostgreSQL's SSLRequest)."""
    info = pod.connection_info()
    result = subprocess.run(
        ["openssl", "s_client", "-connect", f"{info['hostaddr']}:{info['port']}", "-starttls", "postgres", *options],
        input="", capture_output=True, text=True, timeout=30,
    )
    return result.stdout + result.stderr


# Suites a client may offer alone; the server must refuse each group over TLS 1.2.
WEAK_SUITES = {
    # No server authentication at all (SECLEVEL=0 lets the client offer them).
    "anonymous": "aNULL:@SECLEVEL=0",
    # CBC with HMAC-SHA1, with and without forward secrecy: in OpenSSL's default list.
    "cbc-sha1": "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA:"
                "AES128-SHA:AES256-SHA",
}


@pytest.mark.parametrize("suites", WEAK_SUITES.values(), ids=WEAK_SUITES.keys())
def test_weak_tls_1_2_suites_are_refused(pod, suites):
    report = handshake(pod, "-tls1_2", "-cipher", suites)
    assert "CONNECTED" in report, report  # reached: the refusal below comes from the TLS handshake itself
    assert "alert handshake failure" in report and "Cipher is (NONE)" in report, report


@pytest.mark.parametrize(("options", "protocol", "cipher"), [
    (["-tls1_3"], "TLSv1.3", r"TLS_(AES_(128|256)_GCM_SHA(256|384)|CHACHA20_POLY1305_SHA256)"),
    (["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"], "TLSv1.2",
     r"ECDHE-(ECDSA|RSA)-AES128-GCM-SHA256"),
], ids=["tls1.3", "tls1.2-ecdhe-gcm"])
def test_aead_suites_are_accepted(pod, options, protocol, cipher):
    # The client allows one protocol version only: a negotiated suite means that version was used.
    report = handshake(pod, *options)
    assert re.search(rf"^New, {protocol}, Cipher is {cipher}$", report, re.MULTILINE), report


def test_unix_socket_needs_the_password(pod):
    password = pod.connection_info()["passwords"]["appuser"]
    with connect_socket(pod, "appuser", password) as conn:
        assert conn.execute("SELECT inet_client_addr() IS NULL").fetchone() == (True,)  # NULL: the socket
    with pytest.raises(psycopg.OperationalError, match='password authentication failed for user "appuser"'):
        connect_socket(pod, "appuser", "not-the-password")


def test_unix_socket_admits_the_superuser_by_os_user_only(pod):
    # peer: the postgres OS user (start.sh, the probes) gets in; anyone else is refused even with the password.
    password = pod.connection_info()["passwords"]["postgres"]
    if pwd.getpwuid(os.geteuid()).pw_name == RUN_USER:
        connect_socket(pod, "postgres", "not-the-password").close()
    else:
        with pytest.raises(psycopg.OperationalError, match='Peer authentication failed for user "postgres"'):
            connect_socket(pod, "postgres", password)


def test_wrong_password_is_rejected(pod):
    with pytest.raises(psycopg.OperationalError, match='password authentication failed for user "appuser"'):
        connect(pod, "appuser", password="not-the-password")


def test_verify_full_with_the_generated_ca_succeeds(pod):
    with connect(pod, "appuser", sslmode="verify-full") as conn:
        assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone() == (True,)


def test_every_password_is_a_scram_verifier(pod):
    with connect(pod, "postgres") as conn:
        stored = dict(conn.execute("SELECT rolname, rolpassword FROM pg_authid WHERE rolpassword IS NOT NULL"))
    assert set(stored) == {"postgres", "appowner", "appuser", "backupuser", "appmigrator", "monitoring"}
    assert all(re.match(r"^SCRAM-SHA-256\$4096:[^$]+\$[^:]+:.+$", v) for v in stored.values()), stored


def test_config_is_applied_without_errors(pod):
    with connect(pod, "postgres") as conn:
        assert conn.execute("SELECT name, error FROM pg_file_settings WHERE error IS NOT NULL OR NOT applied").fetchall() == []
        assert conn.execute("SHOW shared_buffers").fetchone() == ("1GB",)
        assert conn.execute("SHOW data_checksums").fetchone() == ("on",)


# --- roles -----------------------------------------------------------------------


def test_appuser_has_full_dml_and_creates_tables_in_app(pod):
    with connect(pod, "appuser") as conn:
        conn.execute("CREATE TABLE app.dml_check (id serial PRIMARY KEY, note text)")
        conn.execute("INSERT INTO dml_check (note) VALUES ('a'), ('b')")
        conn.execute("UPDATE dml_check SET note = 'c' WHERE id = 1")
        conn.execute("DELETE FROM dml_check WHERE id = 2")
        assert conn.execute("SELECT id, note FROM dml_check").fetchall() == [(1, "c")]
        conn.execute("TRUNCATE dml_check")


def as_owner(pod: LocalPod, *statements: str) -> None:
    """Run statements as the NOLOGIN owner role, as a migration would (through the superuser)."""
    with connect(pod, "postgres") as conn:
        conn.execute("SET ROLE appowner")
        for statement in statements:
            conn.execute(statement)


def test_appuser_may_use_tables_the_owner_creates(pod):
    as_owner(pod, "CREATE TABLE app.owned_by_owner (id serial PRIMARY KEY, note text)")
    with connect(pod, "appuser") as conn:
        conn.execute("INSERT INTO owned_by_owner (note) VALUES ('x')")
        assert conn.execute("SELECT count(*) FROM owned_by_owner").fetchone() == (1,)


@pytest.mark.parametrize(("statement", "message"), [
    ("TRUNCATE app.migrated", "permission denied for table migrated"),
    ("CREATE TABLE app.referrer (id int REFERENCES app.migrated (id))", "permission denied for table migrated"),
    ("CREATE TRIGGER t BEFORE INSERT ON app.migrated FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()",
     "permission denied for table migrated"),
    ("SELECT setval('app.migrated_id_seq', 100)", "permission denied for sequence migrated_id_seq"),
])
def test_appuser_holds_row_privileges_only_on_migrated_tables(pod, statement, message):
    as_owner(pod, "CREATE TABLE IF NOT EXISTS app.migrated (id serial PRIMARY KEY)")
    with connect(pod, "appuser") as conn:
        conn.execute("INSERT INTO migrated DEFAULT VALUES")  # nextval: USAGE is enough
        with pytest.raises(DENIED, match=f"^{message}"):
            conn.execute(statement)


@pytest.mark.parametrize(("statement", "error"), [
    ("DROP SCHEMA app CASCADE", "must be owner of schema app"),
    ("DROP DATABASE appdb", "must be owner of database appdb"),
    ("CREATE TABLE public.sneaky (id int)", "permission denied for schema public"),
    ("CREATE ROLE intruder", "permission denied to create role"),
    ("CREATE DATABASE other", "permission denied to create database"),
])
def test_appuser_cannot_escape_its_schema(pod, statement, error):
    with connect(pod, "appuser") as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match=error):
            conn.execute(statement)


def test_backupuser_reads_every_table_and_sequence_even_later_ones(pod):
    with connect(pod, "appuser") as conn:
        conn.execute("CREATE TABLE app.later_by_app (id serial PRIMARY KEY)")
        conn.execute("INSERT INTO later_by_app DEFAULT VALUES")
    as_owner(pod, "CREATE TABLE app.later_by_owner (id serial PRIMARY KEY)",
             "INSERT INTO app.later_by_owner DEFAULT VALUES")
    with connect(pod, "backupuser") as conn:
        tables = [t for (t,) in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'app'")]
        sequences = [s for (s,) in conn.execute("SELECT sequencename FROM pg_sequences WHERE schemaname = 'app'")]
        assert {"later_by_app", "later_by_owner"} <= set(tables)
        for table in tables:
            conn.execute(f"SELECT * FROM app.{table}").fetchall()
        for sequence in sequences:
            conn.execute(f"SELECT last_value FROM app.{sequence}").fetchone()
        assert conn.execute("SELECT count(*) FROM later_by_owner").fetchone() == (1,)


READ_ONLY = psycopg.errors.ReadOnlySqlTransaction
DENIED = psycopg.errors.InsufficientPrivilege


@pytest.mark.parametrize(("statement", "error", "message"), [
    # The role's sessions are read-only ...
    ("INSERT INTO app.writes_check DEFAULT VALUES", READ_ONLY, "cannot execute INSERT in a read-only transaction"),
    ("UPDATE app.writes_check SET id = 2", READ_ONLY, "cannot execute UPDATE in a read-only transaction"),
    ("DELETE FROM app.writes_check", READ_ONLY, "cannot execute DELETE in a read-only transaction"),
    ("TRUNCATE app.writes_check", READ_ONLY, "cannot execute TRUNCATE TABLE in a read-only transaction"),
    ("CREATE TABLE app.by_backupuser (id int)", READ_ONLY, "cannot execute CREATE TABLE in a read-only transaction"),
    # (nextval checks its privilege before the transaction's mode)
    ("SELECT nextval('app.writes_check_id_seq')", DENIED, "permission denied for sequence writes_check_id_seq"),
    # ... and leaving read-only mode does not help: the grants refuse each write on the
    # table itself (writes_plain has no sequence that could refuse in its place).
    ("BEGIN READ WRITE; INSERT INTO app.writes_check DEFAULT VALUES", DENIED, "permission denied for table writes_check"),
    ("BEGIN READ WRITE; INSERT INTO app.writes_plain VALUES (1)", DENIED, "permission denied for table writes_plain"),
    ("BEGIN READ WRITE; UPDATE app.writes_plain SET id = 2", DENIED, "permission denied for table writes_plain"),
    ("BEGIN READ WRITE; DELETE FROM app.writes_plain", DENIED, "permission denied for table writes_plain"),
    ("BEGIN READ WRITE; TRUNCATE app.writes_plain", DENIED, "permission denied for table writes_plain"),
    ("BEGIN READ WRITE; CREATE TABLE app.by_backupuser (id int)", DENIED, "permission denied for schema app"),
])
def test_backupuser_cannot_write(pod, statement, error, message):
    with connect(pod, "appuser") as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS app.writes_check (id serial PRIMARY KEY)")
        conn.execute("CREATE TABLE IF NOT EXISTS app.writes_plain (id int)")
    with connect(pod, "backupuser") as conn:
        with pytest.raises(error, match=f"^{message}(\n|$)"):  # the whole first line of the error
            conn.execute(statement)


@pytest.mark.parametrize("database", ["postgres", "template1"])
@pytest.mark.parametrize("user", ["appuser", "backupuser", "monitoring"])
def test_app_roles_cannot_connect_to_the_maintenance_databases(pod, user, database):
    with pytest.raises(psycopg.OperationalError, match=f'permission denied for database "{database}"'):
        connect(pod, user, dbname=database)


def test_nobody_but_the_superuser_may_connect_or_create_temp_tables_in_the_maintenance_databases(pod):
    with connect(pod, "postgres") as conn:
        granted = conn.execute(
            "SELECT d.datname, r.rolname, p.privilege FROM pg_database d "
            "CROSS JOIN (SELECT rolname FROM pg_roles UNION ALL SELECT 'public') r "
            "CROSS JOIN unnest(ARRAY['CONNECT', 'TEMPORARY']) p(privilege) "
            "WHERE d.datname IN ('postgres', 'template1') AND r.rolname <> 'postgres' "
            "AND has_database_privilege(r.rolname, d.oid, p.privilege)").fetchall()
        # The application database still grants what the application needs.
        app = conn.execute("SELECT has_database_privilege('appuser', 'appdb', 'CONNECT, TEMPORARY')").fetchone()
    assert granted == []
    assert app == (True,)


def test_appowner_cannot_log_in(pod):
    with pytest.raises(psycopg.OperationalError, match='role "appowner" is not permitted to log in'):
        connect(pod, "appowner")


# --- extensions and logs ---------------------------------------------------------------


def test_btree_gin_is_installed(pod):
    with connect(pod, "appuser") as conn:
        assert conn.execute("SELECT extname FROM pg_extension WHERE extname = 'btree_gin'").fetchone() == ("btree_gin",)
        conn.execute("CREATE TABLE app.gin_check (n int)")
        conn.execute("CREATE INDEX ON app.gin_check USING gin (n)")


def test_pg_stat_statements_is_queryable(pod):
    with connect(pod, "appuser") as conn:
        conn.execute("SELECT 4242 AS marker")
        assert conn.execute("SELECT count(*) FROM pg_stat_statements").fetchone()[0] > 0


def test_logs_on_stderr_are_json_lines(pod):
    lines = pod.log_file.read_text().splitlines()
    records = [json.loads(line) for line in lines]  # fails on any plain-text line
    assert any(r.get("backend_type") == "postmaster" and r["message"] == "database system is ready to accept connections"
               for r in records)
    assert any(r.get("ps") == "start.sh" and r["message"] == "ready" for r in records)


def test_no_temporal_databases_when_temporal_is_off(pod):
    with connect(pod, "postgres") as conn:
        assert conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'temporal%'").fetchall() == []
        assert conn.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE 'temporal%'").fetchall() == []


# --- restarts, rotation, shutdown ------------------------------------------------------

# Everything init.sql decides; password verifiers are left out because each
# ALTER ROLE ... PASSWORD stores a fresh salt.
SNAPSHOT = {
    "roles": "SELECT rolname, rolsuper, rolcanlogin, rolcreaterole, rolcreatedb, rolconfig FROM pg_roles "
             "WHERE rolname !~ '^pg_' ORDER BY 1",
    "databases": f"SELECT datname, pg_get_userbyid(datdba), {acl_entries('datacl')} FROM pg_database ORDER BY 1",
    "role settings": "SELECT setdatabase, setrole::regrole::text, setconfig FROM pg_db_role_setting ORDER BY 1, 2",
    "schemas": f"SELECT nspname, pg_get_userbyid(nspowner), {acl_entries('nspacl')} FROM pg_namespace ORDER BY 1",
    "default privileges": (f"SELECT defaclrole::regrole::text, defaclobjtype, {acl_entries('defaclacl')} "
                           "FROM pg_default_acl ORDER BY 1, 2"),
    "extensions": "SELECT extname, extversion FROM pg_extension ORDER BY 1",
    "tables": f"SELECT relname, {acl_entries('relacl')} FROM pg_class WHERE relnamespace = 'app'::regnamespace ORDER BY 1",
}


def snapshot(pod: LocalPod) -> dict:
    with connect(pod, "postgres") as conn:
        return {name: conn.execute(query).fetchall() for name, query in SNAPSHOT.items()}


def test_restart_runs_init_again_and_changes_nothing(pods):
    pod = pods("restart")
    with connect(pod, "appuser") as conn:
        conn.execute("CREATE TABLE app.kept (id int)")
        conn.execute("INSERT INTO kept VALUES (7)")
    before = snapshot(pod)
    restart(pod)
    assert snapshot(pod) == before
    assert sum(1 for r in log_records(pod) if r.get("ps") == "start.sh" and r["message"] == "ready") == 2
    with connect(pod, "appuser") as conn:
        assert conn.execute("SELECT id FROM kept").fetchall() == [(7,)]


def test_restart_revokes_what_earlier_versions_granted_appuser(pods):
    pod = pods("least-privilege")
    as_owner(pod, "CREATE TABLE app.old (id serial PRIMARY KEY)",
             # what init.sql granted before: on existing objects and by default
             "GRANT TRUNCATE, REFERENCES, TRIGGER ON app.old TO appuser",
             "GRANT UPDATE ON app.old_id_seq TO appuser",
             "ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT TRUNCATE, REFERENCES, TRIGGER ON TABLES TO appuser",
             "ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT UPDATE ON SEQUENCES TO appuser")
    with connect(pod, "appuser") as conn:
        conn.execute("CREATE TABLE app.own (id int)")
    restart(pod)
    as_owner(pod, "CREATE TABLE app.new (id serial PRIMARY KEY)")
    query = ("SELECT array_agg(a.privilege_type ORDER BY a.privilege_type) FROM pg_class c, aclexplode(c.relacl) a "
             "WHERE c.oid = %s::regclass AND a.grantee = 'appuser'::regrole")
    with connect(pod, "postgres") as conn:
        held = {name: conn.execute(query, (name,)).fetchone()[0]
                for name in ("app.old", "app.new", "app.old_id_seq", "app.new_id_seq", "app.own")}
        owner_holds = conn.execute("SELECT array_agg(a.privilege_type ORDER BY a.privilege_type) "
                                   "FROM aclexplode(acldefault('r', 'appuser'::regrole)) a").fetchone()[0]
    rows = ["DELETE", "INSERT", "SELECT", "UPDATE"]
    assert held == {"app.old": rows, "app.new": rows, "app.old_id_seq": ["SELECT", "USAGE"],
                    "app.new_id_seq": ["SELECT", "USAGE"],
                    # its own table keeps what an owner holds: it could grant that to itself anyway
                    "app.own": owner_holds}
    assert {"TRUNCATE", "REFERENCES", "TRIGGER"} <= set(owner_holds)


def test_password_rotation_takes_effect_on_restart(pods):
    pod = pods("rotation")
    old = pod.connection_info()["passwords"]["appuser"]
    secret = pod.host_path("/etc/postgres/secrets/postgres_app_user_pw")
    secret.write_text("Rotated0Password0For0AppUser0123")
    restart(pod)
    with connect(pod, "appuser", password="Rotated0Password0For0AppUser0123") as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("appuser",)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        connect(pod, "appuser", password=old)


def test_init_leaks_no_password(pods):
    # Statement logging at its loudest: only init.sql's own SETs keep the passwords out.
    pod = pods("leaks", {"postgres": {"config": {"parameters": {
        "log_statement": "all", "log_min_duration_statement": 0, "pg_stat_statements.track_utility": True}}}})
    restart(pod)
    passwords = pod.connection_info()["passwords"].values()
    log = pod.log_file.read_text()
    # Statements are logged (init.sql's in appdb at least), so the check below can see them.
    assert "statement: GRANT" in log
    with connect(pod, "postgres") as conn:
        statements = "\n".join(q for (q,) in conn.execute("SELECT query FROM pg_stat_statements"))
    assert "CREATE EXTENSION" in statements
    for password in passwords:
        assert password not in log
        assert password not in statements


def test_sigterm_shuts_down_cleanly_and_the_next_start_needs_no_recovery(pods):
    pod = pods("sigterm")
    with connect(pod, "appuser") as conn:
        conn.execute("CREATE TABLE app.busy (id int)")
        # An open transaction would keep a "smart" shutdown waiting forever.
        idle = connect(pod, "appuser")
        idle.autocommit = False
        idle.execute("INSERT INTO busy VALUES (1)")
        assert pod.stop() == 0
    # The logging collector outlives the server by a moment: wait for its last line.
    deadline = time.monotonic() + 30
    while not any(r.get("message") == "database system is shut down" for r in log_records(pod)):
        assert time.monotonic() < deadline, "no 'database system is shut down' in the log"
        time.sleep(0.2)
    first_run = log_records(pod)
    assert any(r.get("ps") == "start.sh" and "received SIGTERM" in r["message"] for r in first_run)
    assert any(r.get("message") == "received fast shutdown request" for r in first_run)
    assert any(r.get("ps") == "start.sh" and r["message"] == "PostgreSQL exited with status 0" for r in first_run)
    pod.start()
    records = log_records(pod)
    last_shutdown = max(i for i, r in enumerate(records) if r.get("message") == "database system is shut down")
    messages = [r["message"] for r in records[last_shutdown + 1:]]
    assert any(m.startswith("database system was shut down at") for m in messages)
    assert not [m for m in messages if re.search(r"recovery|interrupted|not properly shut down", m)]


# --- other configurations --------------------------------------------------------------


TEMPORAL = {"postgres": {"temporal": {"enabled": True}}}


def database_acl(pod: LocalPod, database: str) -> list[str]:
    with connect(pod, "postgres") as conn:
        return conn.execute("SELECT datacl::text[] FROM pg_database WHERE datname = %s", [database]).fetchone()[0]


def test_appdb_admits_its_own_roles_only(pods):
    pod = pods("temporal", TEMPORAL)
    # No PUBLIC entry ("=Tc/..." is what CREATE DATABASE leaves): only named grantees.
    acl = database_acl(pod, "appdb")
    assert acl is not None and not [entry for entry in acl if entry.startswith("=")], acl
    assert {entry.split("=")[0] for entry in acl} == {"appowner", "appuser", "backupuser", "appmigrator", "monitoring"}
    passwords = pod.connection_info()["passwords"]
    with connect(pod, "postgres") as conn:
        conn.execute("DROP ROLE IF EXISTS stranger")
        conn.execute("CREATE ROLE stranger LOGIN PASSWORD 'Stranger0Password0With0No0Grants'")
    passwords["stranger"] = "Stranger0Password0With0No0Grants"
    # Temporal's role, and any role made later without a grant, are refused at the door.
    for role in ("temporaluser", "stranger"):
        with pytest.raises(psycopg.OperationalError, match='permission denied for database "appdb"'):
            connect(pod, role, dbname="appdb", password=passwords[role])
    # The exporter's role reaches appdb (pg_stat_statements lives there) but not Temporal's databases.
    connect(pod, "monitoring", dbname="appdb").close()
    for database in ("temporal", "temporal_visibility"):
        assert not [entry for entry in database_acl(pod, database) if entry.startswith("=")]
        with pytest.raises(psycopg.OperationalError, match=f'permission denied for database "{database}"'):
            connect(pod, "monitoring", dbname=database)


def test_verify_clients_requires_a_certificate_from_the_ca(pods):
    pod = pods("verify-clients", {"postgres": {"ca": {"verifyClients": True}}})
    with pytest.raises(psycopg.OperationalError, match="certificate"):
        connect(pod, "appuser")
    cert, key = pod.client_certificate("appuser")
    with connect(pod, "appuser", sslcert=str(cert), sslkey=str(key)) as conn:
        assert conn.execute("SELECT client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone() == ("/CN=appuser",)


@pytest.mark.parametrize("content", [None, ""], ids=["missing", "empty"])
def test_missing_secret_key_stops_the_start_naming_it(pods, content):
    pod = pods(f"no-app-password-{content is None}", start=False)
    secret = pod.host_path("/etc/postgres/secrets/postgres_app_user_pw")
    if content is None:
        secret.unlink()
    else:
        secret.write_text(content)
    with pytest.raises(LocalPodError, match="exited with status 1"):
        pod.start()
    records = log_records(pod)
    assert [r["message"] for r in records] == [
        f"secret key postgres_app_user_pw is missing or empty in {secret.parent}: add it to the passwords Secret"]


def test_file_logs_are_daily_json_files_with_retention(pods):
    pod = pods("file-logs", {"postgres": {"logging": {"toFile": True, "retentionDays": 2}}}, start=False)
    folder = pod.host_path("/var/lib/postgresql/data/log")
    folder.mkdir()
    os.chown(folder, pod.uid, pod.gid)
    expired, kept = folder / "postgresql-2000-01-01.json", folder / "postgresql-2000-01-02.json"
    for path, age_days in ((expired, 3), (kept, 1)):
        path.write_text("{}\n")
        stamp = time.time() - age_days * 86400 - 3600
        os.utime(path, (stamp, stamp))
    pod.start()
    today = [p for p in folder.glob("postgresql-*.json") if p not in (expired, kept)]
    assert len(today) == 1 and re.fullmatch(r"postgresql-\d{4}-\d{2}-\d{2}\.json", today[0].name)
    records = [json.loads(line) for line in today[0].read_text().splitlines()]
    assert any(r["message"] == "database system is ready to accept connections" for r in records)
    assert not expired.exists() and kept.exists()


def test_cli_up_status_down():
    state = Path(tempfile.mkdtemp(prefix="localpod-cli-"))
    state.chmod(0o711)

    def local(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(Path(main.__file__)), "local", *args, "--state", str(state / "db")],
                              capture_output=True, text=True, timeout=180)

    try:
        up = local("up")
        assert up.returncode == 0, up.stderr
        info = json.loads(up.stdout)
        assert set(info) == {"host", "hostaddr", "port", "database", "sslrootcert", "passwords", "dsn",
                             "DATABASE_URL"}
        assert set(info["passwords"]) == {"postgres", "appowner", "appuser", "backupuser", "appmigrator", "monitoring"}
        assert json.loads(local("status").stdout)["state"] == "ready"
        with psycopg.connect(host=info["host"], port=info["port"], dbname=info["database"], user="appuser",
                             password=info["passwords"]["appuser"], sslmode="verify-full",
                             sslrootcert=info["sslrootcert"]) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("appdb",)
    finally:
        assert local("down").returncode == 0
    assert json.loads(local("status").stdout)["state"] == "stopped"
    shutil.rmtree(state)


def test_probes_follow_the_server_and_the_init(pods):
    pod = pods("probes")
    assert pod.probe("startup") and pod.probe("ready") and pod.probe("live")
    # Before init.sql has finished the pod must not receive traffic, but it is alive.
    marker = pod.host_path("/var/run/postgresql/ready")
    marker.unlink()
    assert not pod.probe("ready") and not pod.probe("startup") and pod.probe("live")
    assert not pod.probe("sideways")
    pod.stop()
    assert not pod.probe("live")


class GatedInitPod(LocalPod):
    """The runner with a `psql` wrapper first on PATH: start.sh's init.sql run
    signals that it has begun (`waiting` in the gate folder) and holds until the
    test creates `open` there (or gives up after a minute)."""

    def __init__(self, state: Path, gate: Path) -> None:
        super().__init__(state)
        self.gate = gate
        wrapper = gate / "psql"
        wrapper.write_text(
            "#!/usr/bin/env bash\nset -euo pipefail\n"
            f'touch "{gate}/waiting"\n'
            "for _ in $(seq 600); do\n"
            f'    [[ -e "{gate}/open" ]] && exec "{postgres_bindir()}/psql" "$@"\n'
            "    sleep 0.1\n"
            "done\n"
            'echo "psql wrapper: the test never opened the gate" >&2\nexit 1\n')
        wrapper.chmod(0o755)
        os.chown(gate, self.uid, self.gid)

    def environment(self) -> dict[str, str]:
        env = super().environment()
        return {**env, "PATH": f"{self.gate}:{env['PATH']}"}


def wait_for(condition, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not after {timeout:.0f}s"
        time.sleep(0.1)


def test_a_stale_ready_marker_does_not_make_the_pod_ready_before_init():
    base = Path(tempfile.mkdtemp(prefix="localpod-gated-"))
    base.chmod(0o711)
    gate = base / "gate"
    gate.mkdir()
    pod = GatedInitPod(base / "pod", gate)
    pod.prepare(parse_values({}), main.synthesize)
    # Left behind by a container that was killed outright (its exit trap never ran);
    # the run folder (an emptyDir) outlives the container.
    marker = pod.host_path(f"{contract.RUN_DIR}/ready")
    marker.touch()
    os.chown(marker, pod.uid, pod.gid)
    failures: list[BaseException] = []

    def start() -> None:
        try:
            pod.start(timeout=120)
        except BaseException as err:  # reported by the test thread below
            failures.append(err)

    starter = threading.Thread(target=start)
    starter.start()
    try:
        wait_for(lambda: (gate / "waiting").exists() or not starter.is_alive(), "init.sql did not begin")
        assert not failures, failures
        # The server accepts connections (start.sh waited for that before psql), init.sql has not run.
        assert pod.probe("live")
        assert not pod.probe("ready") and not pod.probe("startup")
        assert not marker.exists()
        (gate / "open").touch()
        starter.join(timeout=120)
        assert not starter.is_alive() and not failures, failures
        assert pod.probe("ready") and marker.exists()
    finally:
        (gate / "open").touch()
        starter.join(timeout=120)
        pod.stop()
        shutil.rmtree(base)


def test_without_tls_tcp_still_needs_the_password(pods):
    pod = pods("no-tls", {"postgres": {"tls": {"enabled": False}}})
    with connect(pod, "appuser", sslmode="disable") as conn:
        assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone() == (False,)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        connect(pod, "appuser", sslmode="disable", password="wrong")


# --- a stable local port ----------------------------------------------------------------


def test_restart_keeps_the_port_unless_told_otherwise(pods):
    pod = pods("port")
    port = pod.connection_info()["port"]
    restart(pod)
    assert pod.connection_info()["port"] == port
    pod.stop()
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        chosen = other.getsockname()[1]
    pod.start(port=chosen)
    assert pod.connection_info()["port"] == chosen
    with connect(pod, "appuser") as conn:
        assert conn.execute("SELECT inet_server_port()").fetchone() == (chosen,)


def test_a_taken_port_is_named(pods):
    pod = pods("port-taken")
    port = pod.connection_info()["port"]
    pod.stop()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        with pytest.raises(LocalPodError, match=f"port {port} on 127.0.0.1 is in use: .* pass --port"):
            pod.start()
    pod.start()
    assert pod.connection_info()["port"] == port


def test_up_adds_a_secret_key_an_older_state_lacks(pods):
    # A state folder made before the migration role: `up` adds its key and keeps the others.
    pod = pods("older-state", start=False)
    secrets = pod.host_path("/etc/postgres/secrets")
    (secrets / "postgres_app_migrator_pw").unlink()
    kept = (secrets / "postgres_app_user_pw").read_text()
    pod.prepare(parse_values({}), main.synthesize)
    assert (secrets / "postgres_app_user_pw").read_text() == kept
    pod.start()
    with connect(pod, "appmigrator") as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("appowner",)
