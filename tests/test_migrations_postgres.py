"""Schema migrations on real PostgreSQL, through the local pod runner: the
migration role (through the migration Job's own environment), the superuser's
paths, and a backup after each of them. No restart happens between a migration
and the checks: objects must be usable the moment they exist."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

import main
from conftest import connect, restart
from pgbundle.values.load import parse_values
from workstation.backup_local import LocalJobError, backup
from workstation.localpod import LocalPod
from workstation.migrate_manifest import run_local

# A migration as a tool writes it: unqualified names, no SET ROLE, no search_path.
MIGRATION = [
    "CREATE TABLE widgets (id bigserial PRIMARY KEY, name text NOT NULL)",
    "CREATE INDEX widgets_name ON widgets (name)",
    "CREATE VIEW widget_names AS SELECT name FROM widgets",
    "CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)",
    "INSERT INTO alembic_version VALUES ('0001')",
]
# Runs statements in one transaction over DATABASE_URL alone, as a migration tool
# would: no password in the URL (libpq takes PGPASSWORD), the rest from the Job.
CLIENT = """
import os, sys, psycopg
with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
    for statement in sys.argv[1:]:
        conn.execute(statement)
"""


def migrate(pod: LocalPod, statements: list[str]) -> None:
    """Run statements with the migration Job's environment (its DATABASE_URL)."""
    assert run_local(pod, parse_values({}), [sys.executable, "-c", CLIENT, *statements]) == 0


def placement(pod: LocalPod, name: str) -> tuple[str, str]:
    """(schema, owner) of a relation."""
    with connect(pod, "postgres") as conn:
        return conn.execute(
            "SELECT relnamespace::regnamespace::text, pg_get_userbyid(relowner) FROM pg_class WHERE relname = %s",
            [name]).fetchone()


def usable_by_app_and_backup(pod: LocalPod, table: str) -> None:
    """appuser writes (through the table's sequence) and reads; backupuser reads."""
    with connect(pod, "appuser") as conn:
        conn.execute(f"INSERT INTO {table} (note) VALUES ('written by appuser')")
        conn.execute(f"UPDATE {table} SET note = 'updated' WHERE note = 'written by appuser'")
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] >= 1
    with connect(pod, "backupuser") as conn:
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] >= 1
        conn.execute(f"SELECT last_value FROM {table}_id_seq").fetchone()


def dumped(pod: LocalPod, table: str, owner: str) -> None:
    """`local backup` succeeds and its appdb dump holds the table's data."""
    taken = backup(pod)
    dump = next(f for f in taken["files"] if f.endswith("appdb.dump"))
    listing = subprocess.run([f"{_bindir()}/pg_restore", "--list", dump], capture_output=True, text=True,
                             check=True).stdout
    assert f"TABLE DATA app {table} {owner}" in listing


def _bindir() -> str:
    return subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True).stdout.strip()


# --- the migration role ---------------------------------------------------------------


def test_migrator_sessions_act_as_the_owner_with_app_first(pod):
    # pg_hba.conf admits it as every application role: TLS (verify-full here) and SCRAM.
    with connect(pod, "appmigrator") as conn:
        pid = conn.info.backend_pid
        # Asked as the superuser: acting as the owner, the session no longer sees its own row.
        with connect(pod, "postgres") as admin:
            assert admin.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = %s", [pid]).fetchone() == (True,)
        assert conn.execute("SELECT session_user, current_user").fetchone() == ("appmigrator", "appowner")
        assert conn.execute("SELECT current_schemas(false)").fetchone() == (["app", "public"],)


def test_plain_sql_migration_as_the_migrator_lands_in_app_owned_by_the_owner(pod):
    migrate(pod, MIGRATION)
    for name in ("widgets", "widgets_id_seq", "widgets_name", "widget_names", "alembic_version"):
        assert placement(pod, name) == ("app", "appowner"), name
    with connect(pod, "appuser") as conn:
        conn.execute("INSERT INTO widgets (name) VALUES ('gear')")
        assert conn.execute("SELECT name FROM widget_names").fetchall() == [("gear",)]
    with connect(pod, "backupuser") as conn:
        assert conn.execute("SELECT name FROM widgets").fetchall() == [("gear",)]
        assert conn.execute("SELECT name FROM widget_names").fetchall() == [("gear",)]
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [("0001",)]
        assert conn.execute("SELECT last_value FROM widgets_id_seq").fetchone() == (1,)
    dumped(pod, "alembic_version", "appowner")


def test_migrator_is_a_member_of_the_owner_only(pod):
    with connect(pod, "postgres") as conn:
        assert conn.execute(
            "SELECT rolcanlogin, rolinherit, rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls "
            "FROM pg_roles WHERE rolname = 'appmigrator'").fetchone() == (True, False, False, False, False, False, False)
        assert conn.execute(
            "SELECT roleid::regrole::text FROM pg_auth_members WHERE member = 'appmigrator'::regrole").fetchall() == [
            ("appowner",)]


@pytest.mark.parametrize(("statement", "error"), [
    ("CREATE TABLE public.sneaky (id int)", "permission denied for schema public"),
    ("ALTER SCHEMA public OWNER TO appowner", "must be owner of schema public"),
    ("CREATE ROLE intruder", "permission denied to create role"),
    ("CREATE DATABASE other", "permission denied to create database"),
    ("SET ROLE postgres", 'permission denied to set role "postgres"'),
    ("SET ROLE appuser", 'permission denied to set role "appuser"'),
    # 15 says "must have admin option on role"; 16 and later "permission denied to grant role".
    ("GRANT appowner TO appuser", 'must have admin option on role "appowner"|permission denied to grant role "appowner"'),
    ("ALTER ROLE appmigrator CREATEROLE", "permission denied"),
    # As itself (no longer acting as the owner) it holds nothing: NOINHERIT.
    ("SET ROLE NONE; CREATE TABLE app.as_itself (id int)", "permission denied for schema app"),
    ("SET ROLE NONE; SELECT * FROM app.widgets", "permission denied for schema app"),
    ("SET ROLE NONE; GRANT appmigrator TO appuser",
     'must have admin option on role "appmigrator"|permission denied to grant role "appmigrator"'),
])
def test_migrator_cannot_create_in_public_or_escalate(pod, statement, error):
    with connect(pod, "appmigrator") as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match=error):
            conn.execute(statement)


def test_migrator_password_is_resynced_on_start(pods):
    pod = pods("migrator-rotation")
    old = pod.connection_info()["passwords"]["appmigrator"]
    pod.host_path("/etc/postgres/secrets/postgres_app_migrator_pw").write_text("Rotated0Password0For0Migrator012")
    restart(pod)
    with connect(pod, "appmigrator", password="Rotated0Password0For0Migrator012") as conn:
        assert conn.execute("SELECT session_user").fetchone() == ("appmigrator",)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        connect(pod, "appmigrator", password=old)


# --- every creator: usable at once, and in the backup -------------------------------


def by_migrator(pod: LocalPod, table: str) -> None:
    migrate(pod, [f"CREATE TABLE {table} (id serial PRIMARY KEY, note text)"])


def by_superuser_as_owner(pod: LocalPod, table: str) -> None:
    # SET ROLE without a search_path: the database's default puts it in app.
    with connect(pod, "postgres") as conn:
        conn.execute("SET ROLE appowner")
        conn.execute(f"CREATE TABLE {table} (id serial PRIMARY KEY, note text)")


def by_superuser_qualified(pod: LocalPod, table: str) -> None:
    with connect(pod, "postgres") as conn:
        conn.execute(f"CREATE TABLE app.{table} (id serial PRIMARY KEY, note text)")


def by_superuser_unqualified(pod: LocalPod, table: str) -> None:
    # A migration tool run as the superuser with no search_path (api-forge's own migrate command).
    with connect(pod, "postgres") as conn:
        conn.execute(f"CREATE TABLE {table} (id serial PRIMARY KEY, note text)")


def by_appuser(pod: LocalPod, table: str) -> None:
    # create_all() at application start.
    with connect(pod, "appuser") as conn:
        conn.execute(f"CREATE TABLE {table} (id serial PRIMARY KEY, note text)")


@pytest.mark.parametrize(("create", "owner"), [
    (by_migrator, "appowner"),
    (by_superuser_as_owner, "appowner"),
    (by_superuser_qualified, "postgres"),
    (by_superuser_unqualified, "postgres"),
    (by_appuser, "appuser"),
], ids=lambda v: v.__name__ if callable(v) else v)
def test_tables_are_usable_at_once_and_backed_up_whoever_creates_them(pod, create, owner):
    table = create.__name__
    create(pod, table)
    assert placement(pod, table) == ("app", owner)
    usable_by_app_and_backup(pod, table)
    dumped(pod, table, owner)


def test_public_belongs_to_the_superuser(pod):
    # Otherwise the database's owner would own it (through pg_database_owner) and could create there.
    with connect(pod, "postgres") as conn:
        assert conn.execute("SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'public'").fetchone() == (
            "postgres",)


# --- the command-line tools -----------------------------------------------------------


def test_local_migrate_runs_a_command_with_the_jobs_environment(pod):
    state = str(pod.state)
    result = subprocess.run(
        [sys.executable, str(Path(main.__file__)), "local", "migrate", "--state", state, "--",
         "psql", "-X", "-v", "ON_ERROR_STOP=1", "-At", "-c", "CREATE TABLE from_cli (id int)",
         "-c", "SELECT session_user, current_user, current_setting('application_name')"],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "appmigrator|appowner|migrate"
    assert placement(pod, "from_cli") == ("app", "appowner")


# SQLAlchemy 2.0 (api-forge's pin) with DATABASE_URL alone, as Alembic's env.py uses it.
SQLALCHEMY_CLIENT = """
import os, sqlalchemy
engine = sqlalchemy.create_engine(os.environ["DATABASE_URL"])
with engine.connect() as conn:
    print(engine.dialect.driver, *conn.execute(sqlalchemy.text("SELECT session_user, current_user")).one())
"""


def test_local_migrate_gives_sqlalchemy_the_driver_asked_for(pod):
    result = subprocess.run(
        [sys.executable, str(Path(main.__file__)), "local", "migrate", "--state", str(pod.state), "--driver", "psycopg",
         "--", sys.executable, "-c", SQLALCHEMY_CLIENT], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["psycopg", "appmigrator", "appowner"]  # over verify-full TLS: the URL's sslmode


def test_local_migrate_passes_the_commands_exit_status(pod):
    result = subprocess.run(
        [sys.executable, str(Path(main.__file__)), "local", "migrate", "--state", str(pod.state), "--",
         "psql", "-X", "-v", "ON_ERROR_STOP=1", "-c", "CREATE TABLE public.refused (id int)"],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 1  # psql's status for a failed -c command
    assert "permission denied for schema public" in result.stderr


def test_a_table_left_in_public_is_recovered_as_the_readme_says(pods):
    pod = pods("left-in-public")
    with connect(pod, "postgres") as conn:
        conn.execute("CREATE TABLE public.stranded (id serial PRIMARY KEY, note text)")
        conn.execute("INSERT INTO public.stranded (note) VALUES ('kept')")
    with pytest.raises(LocalJobError, match="permission denied for table stranded"):
        backup(pod)
    with connect(pod, "postgres") as conn:
        conn.execute("ALTER TABLE public.stranded SET SCHEMA app")
        conn.execute("ALTER TABLE app.stranded OWNER TO appowner")
    restart(pod)
    assert placement(pod, "stranded") == ("app", "appowner")
    assert placement(pod, "stranded_id_seq") == ("app", "appowner")
    usable_by_app_and_backup(pod, "stranded")
    dumped(pod, "stranded", "appowner")
