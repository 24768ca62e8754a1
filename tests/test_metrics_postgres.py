"""The exporter's `monitoring` role on real PostgreSQL, through the local pod runner:
it connects over the pod's Unix socket the way the exporter does, can run the
queries the alerts and the dashboard depend on, and cannot read table data."""

from __future__ import annotations

import psycopg
import pytest
import yaml
from psycopg import errors

import main
from conftest import connect, connect_socket, container, log_records, restart
from pgbundle import contract
from pgbundle.values.load import parse_values
from workstation.localpod import LocalPod
from workstation.pod_state import LocalPodError

SECRET = f"{contract.SECRETS_DIR}/{contract.MONITORING_PASSWORD_KEY}"


@pytest.fixture(scope="module")
def pod(pods) -> LocalPod:
    pod = pods("metrics")
    # Something for the statistics to show: another role's table, rows and statements.
    with connect(pod, "appuser") as conn:
        conn.execute("CREATE TABLE app.customers (id int PRIMARY KEY, email text)")
        conn.execute("INSERT INTO customers VALUES (1, 'someone@example.com')")
        conn.execute("SELECT email FROM customers WHERE id = 1")
    return pod


def exporter_env(pod: LocalPod) -> dict[str, str]:
    docs = yaml.safe_load_all((pod.dist / "10-postgres.k8s.yaml").read_text())
    statefulset = next(d for d in docs if d and d["kind"] == "StatefulSet")
    exporter = container(statefulset["spec"]["template"]["spec"], contract.EXPORTER_CONTAINER)
    return {e["name"]: e["value"] for e in exporter["env"]}


def monitoring(pod: LocalPod, password: str | None = None) -> psycopg.Connection:
    """Connect as the exporter does: its DATA_SOURCE_URI (socket directory mapped to
    where the runner put the pod's run folder), its user, the password file's content."""
    env = exporter_env(pod)
    info = pod.connection_info()
    uri = env["DATA_SOURCE_URI"].replace(contract.RUN_DIR, str(pod.host_path(contract.RUN_DIR)))
    return psycopg.connect(
        f"postgresql://{env['DATA_SOURCE_USER']}@{uri}",
        password=password or info["passwords"][contract.MONITORING_ROLE],
        port=info["port"],  # the socket file carries the port in its name
        autocommit=True,
        connect_timeout=10,
    )


def test_monitoring_connects_over_the_socket(pod):
    with monitoring(pod) as conn:
        user, database, address = conn.execute("SELECT current_user, current_database(), inet_client_addr()").fetchone()
    assert (user, database) == ("monitoring", "appdb")
    assert address is None  # NULL: a Unix-socket connection


def memberships(pod: LocalPod) -> list[str]:
    with connect(pod, "postgres") as conn:
        return [role for (role,) in conn.execute(
            "SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid "
            "WHERE m.member = 'monitoring'::regrole ORDER BY 1")]


def test_monitoring_is_a_member_of_pg_monitor_only(pod):
    with connect(pod, "postgres") as conn:
        attributes = conn.execute(
            "SELECT rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls "
            "FROM pg_roles WHERE rolname = 'monitoring'").fetchone()
    assert attributes == (True, False, False, False, False, False)
    assert memberships(pod) == ["pg_monitor"]


def test_memberships_granted_by_hand_are_revoked_on_restart(pod):
    with connect(pod, "postgres") as conn:
        conn.execute("GRANT pg_read_all_data, appuser TO monitoring")
    assert memberships(pod) == ["appuser", "pg_monitor", "pg_read_all_data"]
    restart(pod)
    assert memberships(pod) == ["pg_monitor"]


# The statistics behind each alert and panel, read the way the exporter's collectors do.
EXPORTER_QUERIES = {
    "stat_database": "SELECT datname, xact_commit, xact_rollback, blks_hit, blks_read, deadlocks, "
                     "tup_inserted, tup_updated, tup_deleted FROM pg_stat_database",
    "stat_archiver": "SELECT archived_count, failed_count, extract(epoch from now() - last_archived_time) "
                     "FROM pg_stat_archiver",
    "stat_activity": "SELECT datname, state, usename, EXTRACT(EPOCH FROM now() - xact_start) FROM pg_stat_activity",
    "stat_replication": "SELECT application_name, client_addr, state, replay_lag FROM pg_stat_replication",
    "settings": "SELECT name, setting, unit, vartype FROM pg_settings WHERE name = 'max_connections'",
    "stat_statements": "SELECT pg_get_userbyid(userid), queryid, calls, total_exec_time FROM pg_stat_statements",
    "database sizes": "SELECT datname, pg_database_size(datname) FROM pg_database",
    "locks": "SELECT database, lower(mode), count(*) FROM pg_locks GROUP BY 1, 2",
    "wraparound": "SELECT datname, age(datfrozenxid), mxid_age(datminmxid) FROM pg_database WHERE datallowconn",
    "stat_archiver": "SELECT archived_count, failed_count, extract(epoch from now() - last_archived_time) "
                     "FROM pg_stat_archiver",
}


@pytest.mark.parametrize("name", sorted(EXPORTER_QUERIES))
def test_monitoring_runs_the_exporter_queries(pod, name):
    with monitoring(pod) as conn:
        conn.execute(EXPORTER_QUERIES[name]).fetchall()


def test_monitoring_sees_other_roles_statistics(pod):
    """pg_monitor (through pg_read_all_stats) shows every role's sessions and
    statements; without it the exporter would report only its own."""
    with connect(pod, "appuser") as app, monitoring(pod) as conn:
        app.execute("BEGIN")
        app.execute("SELECT 1")
        states = conn.execute(
            "SELECT state, xact_start IS NOT NULL FROM pg_stat_activity WHERE usename = 'appuser'").fetchall()
        assert ("idle in transaction", True) in states
        app.execute("ROLLBACK")
        queries = conn.execute(
            "SELECT count(*) FROM pg_stat_statements WHERE userid = 'appuser'::regrole AND queryid IS NOT NULL").fetchone()
        assert queries[0] > 0
        sizes = dict(conn.execute("SELECT datname, pg_database_size(datname) FROM pg_database").fetchall())
        assert sizes["appdb"] > 0 and sizes["postgres"] > 0


def test_monitoring_cannot_read_table_data(pod):
    with monitoring(pod) as conn:
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("SELECT email FROM app.customers")
        # Not through a copy or a catalog function either.
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("COPY app.customers TO STDOUT")
        assert conn.execute("SELECT pg_has_role('monitoring', 'pg_read_all_data', 'MEMBER')").fetchone() == (False,)


def test_monitoring_cannot_write(pod):
    with monitoring(pod) as conn:
        for statement in ("CREATE TABLE public.t (id int)", "CREATE TABLE app.t (id int)", "CREATE ROLE intruder"):
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute(statement)


def test_monitoring_password_follows_the_secret_on_restart(pods):
    pod = pods("metrics-rotation")
    old = pod.connection_info()["passwords"][contract.MONITORING_ROLE]
    pod.host_path(SECRET).write_text("Rotated0Monitoring0Password01234")
    restart(pod)
    with monitoring(pod, password="Rotated0Monitoring0Password01234") as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("monitoring",)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        monitoring(pod, password=old)


def test_missing_monitoring_password_stops_the_start_while_metrics_are_on(pods):
    pod = pods("metrics-no-password", start=False)
    secret = pod.host_path(SECRET)
    secret.unlink()
    with pytest.raises(LocalPodError, match="exited with status 1"):
        pod.start()
    assert [r["message"] for r in log_records(pod)] == [
        f"secret key postgres_monitoring_pw is missing or empty in {secret.parent}: add it to the passwords Secret"]


def test_metrics_off_needs_no_monitoring_password_and_creates_no_role(pods):
    pod = pods("metrics-off", {"postgres": {"metrics": {"enabled": False}}}, start=False)
    pod.host_path(SECRET).unlink()
    pod.start()
    assert contract.MONITORING_ROLE not in pod.connection_info()["passwords"]
    with connect(pod, "postgres") as conn:
        assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname = 'monitoring'").fetchone() == (0,)


def test_metrics_switched_off_on_existing_data_refuses_the_monitoring_login(pods):
    pod = pods("metrics-switched-off")
    password = pod.connection_info()["passwords"][contract.MONITORING_ROLE]
    monitoring(pod).close()
    pod.stop()
    # Same data folder and Secret files (the password is still there), metrics off.
    pod.prepare(parse_values({"postgres": {"metrics": {"enabled": False}}}), main.synthesize)
    pod.start()
    refused = 'role "monitoring" is not permitted to log in'
    with pytest.raises(psycopg.OperationalError, match=refused):
        connect_socket(pod, contract.MONITORING_ROLE, password)
    with pytest.raises(psycopg.OperationalError, match=refused):
        connect(pod, contract.MONITORING_ROLE, password=password)
