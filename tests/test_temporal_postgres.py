"""Temporal's roles and databases on real PostgreSQL, as the old chart's init
script defines them: a NOLOGIN owner of `temporal` and `temporal_visibility`, a
LOGIN role with USAGE and CREATE on public there (and default privileges from
the owner), nothing in the application database, and a backup role that can
dump both. Also the single-role model this project used before, and the move
from it to the two roles on an existing data directory."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
import yaml

import main
from conftest import connect, restart
from pgbundle.values.load import parse_values
from workstation.backup_local import backup
from workstation.localpod import LocalPod
from test_postgres import snapshot

TOP = Path(__file__).resolve().parent.parent
TEMPORAL = {"postgres": {"temporal": {"enabled": True}}}
SINGLE_ROLE = yaml.safe_load((TOP / "examples" / "temporal-single-role.yaml").read_text())
DATABASES = ("temporal", "temporal_visibility")


def query(pod: LocalPod, sql: str, dbname: str | None = None, params: list | None = None) -> list[tuple]:
    with connect(pod, "postgres", dbname=dbname) as conn:
        return conn.execute(sql, params).fetchall()


def backed_up(pod: LocalPod) -> None:
    names = {Path(f).name for f in backup(pod)["files"]}
    assert {"appdb.dump", "temporal.dump", "temporal_visibility.dump"} <= names


@pytest.fixture(scope="module")
def temporal(pods) -> LocalPod:
    return pods("temporal-roles", TEMPORAL)


def test_owner_cannot_log_in_and_owns_both_databases(temporal):
    assert query(temporal, "SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname LIKE 'temporal%' ORDER BY 1") == [
        ("temporalowner", False), ("temporaluser", True)]
    assert query(temporal, "SELECT datname, pg_get_userbyid(datdba) FROM pg_database WHERE datname LIKE 'temporal%' "
                           "ORDER BY 1") == [("temporal", "temporalowner"), ("temporal_visibility", "temporalowner")]
    # No password either: nothing could log in as the owner even with LOGIN turned on.
    assert query(temporal, "SELECT rolpassword IS NULL FROM pg_authid WHERE rolname = 'temporalowner'") == [(True,)]


@pytest.mark.parametrize("database", DATABASES)
def test_user_creates_and_uses_tables_in_public(temporal, database):
    with connect(temporal, "temporaluser", dbname=database) as conn:
        assert conn.execute("SELECT has_schema_privilege('public', 'USAGE'), has_schema_privilege('public', 'CREATE')"
                            ).fetchone() == (True, True)
        conn.execute("CREATE TABLE IF NOT EXISTS executions (id bigserial PRIMARY KEY, state text)")
        conn.execute("INSERT INTO executions (state) VALUES ('running')")
        conn.execute("ALTER TABLE executions ADD COLUMN IF NOT EXISTS updated timestamptz")  # a schema upgrade
    with connect(temporal, "backupuser", dbname=database) as conn:
        assert conn.execute("SELECT count(*) FROM executions").fetchone()[0] >= 1


@pytest.mark.parametrize("database", DATABASES)
def test_user_may_use_what_the_owner_creates(temporal, database):
    with connect(temporal, "postgres", dbname=database) as conn:
        conn.execute("SET ROLE temporalowner")
        conn.execute("CREATE TABLE IF NOT EXISTS by_owner (id serial PRIMARY KEY, note text)")
    with connect(temporal, "temporaluser", dbname=database) as conn:
        conn.execute("INSERT INTO by_owner (note) VALUES ('x')")
        conn.execute("UPDATE by_owner SET note = 'y'")
        conn.execute("DELETE FROM by_owner")
    with connect(temporal, "backupuser", dbname=database) as conn:
        conn.execute("SELECT * FROM by_owner").fetchall()
        conn.execute("SELECT last_value FROM by_owner_id_seq").fetchone()


@pytest.mark.parametrize(("statement", "error"), [
    ("DROP DATABASE temporal_visibility", "must be owner of database temporal_visibility"),
    ("CREATE SCHEMA elsewhere", "permission denied for database temporal"),
    ("CREATE ROLE intruder", "permission denied to create role"),
    ("SET ROLE temporalowner", 'permission denied to set role "temporalowner"'),
])
def test_user_does_not_own_the_databases(temporal, statement, error):
    with connect(temporal, "temporaluser", dbname="temporal") as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match=error):
            conn.execute(statement)


def test_user_has_nothing_in_the_application_database(temporal):
    with pytest.raises(psycopg.OperationalError, match='permission denied for database "appdb"'):
        connect(temporal, "temporaluser", dbname="appdb")
    for role in ("temporaluser", "temporalowner"):
        assert query(temporal, "SELECT has_schema_privilege(%s, 'app', 'USAGE')", params=[role]) == [(False,)]


def test_application_roles_cannot_reach_temporal(temporal):
    for role in ("appuser", "appmigrator"):
        with pytest.raises(psycopg.OperationalError, match='permission denied for database "temporal"'):
            connect(temporal, role, dbname="temporal")


def test_backup_dumps_both_databases(temporal):
    with connect(temporal, "temporaluser", dbname="temporal") as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS dumped (id int)")
    backed_up(temporal)


# --- the single-role model, and the move from it ------------------------------------------

PREVIOUS_INIT = Path(__file__).parent / "fixtures" / "init-previous-release.sql"


def previous_release_pod(pods, name: str) -> LocalPod:
    """A data directory the previous release initialized with its defaults
    (Temporal on: `temporal` owns both databases and logs in), with Temporal
    tables in it, stopped."""
    # The single-role values give the start script the environment the previous
    # release gave it (PG_TEMPORAL_USER=temporal); its init.sql knows nothing else.
    pod = pods(name, SINGLE_ROLE, start=False)
    script = pod.host_path("/opt/postgres/scripts/init.sql")
    script.write_text(PREVIOUS_INIT.read_text())
    pod.start()
    assert query(pod, "SELECT datname, pg_get_userbyid(datdba) FROM pg_database WHERE datname LIKE 'temporal%' "
                      "ORDER BY 1") == [("temporal", "temporal"), ("temporal_visibility", "temporal")]
    for database in DATABASES:
        with connect(pod, "temporal", dbname=database) as conn:
            conn.execute("CREATE TABLE executions (id serial PRIMARY KEY, state text)")
            conn.execute("INSERT INTO executions (state) VALUES ('before')")
    pod.stop()
    return pod


def upgrade(pod: LocalPod, values: dict) -> None:
    """Start the current scripts with `values` on the pod's data, then once more:
    the second start must change nothing."""
    pod.prepare(parse_values(values), main.synthesize)
    pod.start()
    before = snapshot(pod)
    restart(pod)
    assert snapshot(pod) == before


def test_single_role_example_keeps_a_previous_release_working(pods):
    pod = previous_release_pod(pods, "temporal-single-role")
    password = pod.connection_info()["passwords"]["temporal"]
    upgrade(pod, SINGLE_ROLE)
    assert query(pod, "SELECT datname, pg_get_userbyid(datdba) FROM pg_database WHERE datname LIKE 'temporal%' "
                      "ORDER BY 1") == [("temporal", "temporal"), ("temporal_visibility", "temporal")]
    for database in DATABASES:
        with connect(pod, "temporal", dbname=database, password=password) as conn:
            conn.execute("INSERT INTO executions (state) VALUES ('after')")
            conn.execute("ALTER TABLE executions ADD COLUMN updated timestamptz")
            conn.execute("CREATE TABLE created_later (id int)")
    with connect(pod, "backupuser", dbname="temporal") as conn:
        assert conn.execute("SELECT count(*) FROM created_later").fetchone() == (0,)
    backed_up(pod)


def test_previous_release_moves_to_the_two_roles(pods):
    pod = previous_release_pod(pods, "temporal-move")
    password = pod.connection_info()["passwords"]["temporal"]
    # The new defaults, with the earlier role named as the previous owner.
    upgrade(pod, {"postgres": {"temporal": {"enabled": True, "previousUsername": "temporal"}}})
    assert query(pod, "SELECT datname, pg_get_userbyid(datdba) FROM pg_database WHERE datname LIKE 'temporal%' "
                      "ORDER BY 1") == [("temporal", "temporalowner"), ("temporal_visibility", "temporalowner")]
    for database in DATABASES:
        assert query(pod, "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname IN "
                          "('executions', 'executions_id_seq') GROUP BY 1", dbname=database) == [("temporaluser",)]
        # Same password key: the Temporal server changes only its user name.
        with connect(pod, "temporaluser", dbname=database, password=password) as conn:
            conn.execute("INSERT INTO executions (state) VALUES ('after')")
            conn.execute("ALTER TABLE executions ADD COLUMN updated timestamptz")
            assert conn.execute("SELECT state FROM executions ORDER BY id").fetchall() == [("before",), ("after",)]
        with connect(pod, "backupuser", dbname=database) as conn:
            assert conn.execute("SELECT count(*) FROM executions").fetchone() == (2,)
    with pytest.raises(psycopg.OperationalError, match='role "temporal" is not permitted to log in'):
        connect(pod, "temporal", dbname="temporal", password=password)
    backed_up(pod)


def test_previous_release_on_the_new_defaults_alone(pods):
    # Without previousUsername the old role keeps its tables, and the new user
    # may use them (DML on what exists) but not change them: docs/temporal.md says to
    # keep the single-role names or to name the previous owner. The application
    # database gains the migration role on the same start.
    pod = previous_release_pod(pods, "temporal-defaults")
    upgrade(pod, TEMPORAL)
    with connect(pod, "appmigrator") as conn:
        conn.execute("CREATE TABLE after_upgrade (id int)")
    assert query(pod, "SELECT relnamespace::regnamespace::text, pg_get_userbyid(relowner) FROM pg_class "
                      "WHERE relname = 'after_upgrade'") == [("app", "appowner")]
    with connect(pod, "temporaluser", dbname="temporal") as conn:
        conn.execute("INSERT INTO executions (state) VALUES ('after')")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="must be owner of table executions"):
            conn.execute("ALTER TABLE executions ADD COLUMN updated timestamptz")
    backed_up(pod)
