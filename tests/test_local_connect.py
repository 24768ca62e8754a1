"""The local runner connects the way it prints (issue 22, part 1): with the
production example's values and the Secrets `secrets generate` wrote, psql and
psycopg connect with exactly what `local up` printed (a host the certificate
holds, client certificates for ca.verifyClients); later commands use the values
`local up` used; a backup set restores into another state; `local migrate` runs
where the caller is."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest

import main
from workstation.localpod import LocalPod

pytestmark = pytest.mark.slow

TOP = Path(main.__file__).resolve().parent
PRODUCTION = TOP / "examples" / "production.yaml"


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOP / "main.py"), *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd)


@pytest.fixture(scope="module")
def base() -> Path:
    # The pod runs as the postgres user: it must reach the state folders.
    folder = Path(tempfile.mkdtemp(prefix="local-connect-"))
    folder.chmod(0o711)
    yield folder
    subprocess.run(["rm", "-rf", str(folder)], check=True)


@pytest.fixture(scope="module")
def production(base):
    """A pod started as the README says: production values, generated Secrets."""
    secrets = base / "secrets"
    assert cli("secrets", "generate", "--values", str(PRODUCTION), "--out", str(secrets)).returncode == 0
    state = base / "db"
    up = cli("local", "up", "--state", str(state), "--values", str(PRODUCTION), "--secrets", str(secrets))
    try:
        assert up.returncode == 0, up.stderr
        yield state, json.loads(up.stdout)
    finally:
        cli("local", "down", "--state", str(state))
        assert LocalPod(state).leftovers() == []


def test_psql_connects_with_the_printed_dsn_and_client_certificate(production):
    state, info = production
    assert info["host"] == "localhost" and info["hostaddr"] == "127.0.0.1"
    for role in ("appuser", "appmigrator", "temporaluser"):
        certificate = info["client_certificates"][role]
        assert Path(certificate["sslcert"]).exists() and Path(certificate["sslkey"]).stat().st_mode & 0o077 == 0
        # Over TLS necessarily: pg_hba.conf rejects every TCP client without it.
        who = subprocess.run(["psql", info["dsn"][role], "-Atc", "SELECT session_user"], capture_output=True,
                             text=True, timeout=30)
        assert who.returncode == 0, who.stderr
        assert who.stdout.strip() == role


def test_the_client_certificate_is_what_lets_the_printed_parameters_in(production):
    _, info = production
    # The same parameters without the certificate: refused, so the certificate is what counts.
    without = {k: v for k, v in psycopg.conninfo.conninfo_to_dict(info["dsn"]["appuser"]).items()
               if k not in ("sslcert", "sslkey")}
    with pytest.raises(psycopg.OperationalError, match="valid client certificate"):
        psycopg.connect(**without, connect_timeout=10).close()


def test_database_url_is_the_application_roles_and_psycopg_takes_it(production):
    _, info = production
    assert info["DATABASE_URL"].startswith(f"postgresql://appuser:{info['passwords']['appuser']}@localhost:")
    with psycopg.connect(info["DATABASE_URL"], connect_timeout=10) as conn:
        assert conn.execute("SELECT current_user, current_database()").fetchone() == ("appuser", "appdb")


def test_the_printed_pooler_dsn_connects_with_the_client_certificate_only(production):
    _, info = production
    pooler = info["pooler"]
    assert pooler["port"] != info["port"] and pooler["host"] == "localhost"
    # PgBouncer reaches the database by the name the generated certificate holds (verify-full),
    # and the client by the same: psql with exactly what was printed.
    who = subprocess.run(["psql", pooler["dsn"], "-Atc", "SELECT session_user, inet_server_port()"],
                         capture_output=True, text=True, timeout=30)
    assert who.returncode == 0, who.stderr
    assert who.stdout.strip() == f"appuser|{info['port']}"
    with psycopg.connect(pooler["DATABASE_URL"], connect_timeout=10) as conn:
        assert conn.execute("SELECT current_user, current_database()").fetchone() == ("appuser", "appdb")
        assert conn.info.port == pooler["port"]
    # ca.verifyClients: PgBouncer too demands the certificate.
    without = {k: v for k, v in psycopg.conninfo.conninfo_to_dict(pooler["dsn"]).items()
               if k not in ("sslcert", "sslkey")}
    with pytest.raises(psycopg.OperationalError) as refused:
        psycopg.connect(**without, connect_timeout=10).close()
    assert "certificate required" in str(refused.value)


def test_later_commands_use_the_values_up_used(production, base):
    state, info = production
    assert json.loads(cli("local", "status", "--state", str(state)).stdout)["state"] == "ready"
    # Without --values (values.yaml would be the default): the production values, client certificates included.
    taken = cli("local", "backup", "--state", str(state))
    assert taken.returncode == 0, taken.stderr
    backup_set = json.loads(taken.stdout)["set"]
    restored = cli("local", "restore", "--state", str(state), "--backup", backup_set)
    assert restored.returncode == 0, restored.stderr
    assert "appdb" in json.loads(restored.stdout)["databases"]


def test_other_values_than_the_states_are_refused_in_one_line(production):
    state, _ = production
    other = TOP / "examples" / "ha.yaml"
    for command in (["backup"], ["restore", "--backup", "20260101T020000Z"], ["migrate", "--", "true"]):
        refused = cli("local", command[0], "--state", str(state), "--values", str(other), *command[1:])
        assert refused.returncode == 1
        assert refused.stderr == (f"error: --values: {other} is not {PRODUCTION}, the values file `local up` used "
                                  f"for {state}: leave --values out, or run `local down` first and then "
                                  f"`local up --values {other}`\n")


def test_migrate_runs_in_the_callers_folder(production, base):
    state, _ = production
    project = base / "project"
    project.mkdir()
    ran = cli("local", "migrate", "--state", str(state), "--", "sh", "-c",
              'pwd > where && psql "$DATABASE_URL" -Atc "SELECT session_user" > who', cwd=project)
    assert ran.returncode == 0, ran.stderr
    assert (project / "where").read_text().strip() == str(project)
    assert (project / "who").read_text().strip() == "appmigrator"


def test_a_backup_set_restores_into_another_state(production, base):
    old, info = production
    assert "appowner" not in info["dsn"]  # NOLOGIN: the migration role acts as it
    with psycopg.connect(info["dsn"]["appmigrator"], autocommit=True) as conn:
        conn.execute("CREATE TABLE rehearsal (note text)")
        conn.execute("INSERT INTO rehearsal VALUES ('from the old state')")
    taken = cli("local", "backup", "--state", str(old))
    assert taken.returncode == 0, taken.stderr
    backup_set = json.loads(taken.stdout)["set"]
    new = base / "rehearsal"
    up = cli("local", "up", "--state", str(new), "--values", str(PRODUCTION), "--secrets", str(base / "secrets"))
    try:
        assert up.returncode == 0, up.stderr
        new_info = json.loads(up.stdout)
        assert new_info["port"] != info["port"]
        restored = cli("local", "restore", "--state", str(new), "--from", str(old), "--backup", backup_set)
        assert restored.returncode == 0, restored.stderr
        with psycopg.connect(new_info["dsn"]["appuser"]) as conn:
            assert conn.execute("SELECT note FROM rehearsal").fetchall() == [("from the old state",)]
        # The set exists only in the old state's backups: without --from it is not found.
        alone = cli("local", "restore", "--state", str(new), "--backup", backup_set)
        assert alone.returncode != 0
    finally:
        cli("local", "down", "--state", str(new))
        assert LocalPod(new).leftovers() == []


def test_up_again_without_values_restarts_with_the_states_values(production):
    state, info = production
    assert cli("local", "down", "--state", str(state)).returncode == 0
    # values.yaml (the default) has no pooler and no client certificates: the production values must come back.
    again = cli("local", "up", "--state", str(state))
    assert again.returncode == 0, again.stderr
    restarted = json.loads(again.stdout)
    assert restarted["port"] == info["port"] and "pooler" in restarted
    assert restarted["client_certificates"] == info["client_certificates"]
    assert subprocess.run(["psql", restarted["dsn"]["appuser"], "-Atc", "SELECT 1"], capture_output=True,
                          timeout=30).returncode == 0
