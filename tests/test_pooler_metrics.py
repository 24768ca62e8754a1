"""The pooler's metrics against the real PgBouncer (the image's version) beside the
real local pod: the exporter's login reaches the admin console over the Unix
socket and nowhere else, and every SHOW column the catalogued pgbouncer_* metrics
come from is there.

The exporter itself (a Go binary) is not run: Debian 12's
prometheus-pgbouncer-exporter is another program (a Python exporter with other
metric names), and the Go one is not packaged. Its names are catalogued from its
source at contract.POOLER_EXPORTER_VERSION; what this checks is the other half,
that PgBouncer gives it the columns and the login it needs."""

from __future__ import annotations

import psycopg
import pytest

from pgbundle import contract
from pgbundle.monitoring.metric_catalog import POOLER_COLUMNS
from workstation.localpooler import LocalPooler
from test_pooler_postgres import running_pooler, through

VALUES = {"postgres": {"pooler": {"enabled": True, "replicas": 1}}}


@pytest.fixture(scope="module")
def pod(pods):
    return pods("pooler-metrics", VALUES)


@pytest.fixture(scope="module")
def pooler(pod):
    yield from running_pooler(pod, VALUES)


def stats_password(pod) -> str:
    return pod.host_path(f"{contract.SECRETS_DIR}/{contract.POOLER_STATS_PASSWORD_KEY}").read_text()


def console(pooler: LocalPooler, password: str | None = None) -> psycopg.Connection:
    """The admin console as the exporter reaches it: the socket, the stats user, no TLS,
    the password from the pgpass file pooler.sh wrote (or `password`).
    ClientCursor: the console speaks the simple query protocol only."""
    secret = {"password": password} if password is not None else {
        "passfile": str(pooler.pod.host_path(contract.POOLER_STATS_PASSFILE))}
    return psycopg.connect(host=str(pooler.pod.host_path(contract.POOLER_SOCKET_DIR)),
                           port=pooler.connection_info()["port"], dbname=contract.POOLER_ADMIN_DATABASE,
                           user=contract.POOLER_STATS_USER, sslmode="disable", autocommit=True,
                           cursor_factory=psycopg.ClientCursor, connect_timeout=10, **secret)


def test_pooler_sh_writes_the_exporters_pgpass_file_private(pooler, pod):
    passfile = pod.host_path(contract.POOLER_STATS_PASSFILE)
    # lib/pq, like libpq, ignores a pgpass file that group or others may read.
    assert passfile.stat().st_mode & 0o777 == 0o600
    assert passfile.read_text() == f"*:*:pgbouncer:{contract.POOLER_STATS_USER}:{stats_password(pod)}\n"


def test_every_catalogued_column_is_in_the_admin_consoles_answer(pooler, pod):
    # Traffic first, so the pools exist (SHOW POOLS lists a pool once a client used it).
    with through(pooler, "appuser") as conn:
        conn.execute("SELECT 1")
    with console(pooler) as conn:
        for name, (command, column) in POOLER_COLUMNS.items():
            cursor = conn.execute(f"SHOW {command}")
            columns = [c.name for c in cursor.description]
            rows = [dict(zip(columns, row)) for row in cursor.fetchall()]
            assert column in columns, (name, command, columns)
            assert any(row.get("database") == "appdb" for row in rows), (command, rows)


def test_the_stats_user_may_only_look(pooler, pod):
    with console(pooler) as conn:
        with pytest.raises(psycopg.Error, match="admin access needed"):
            conn.execute("PAUSE appdb")


def test_the_stats_user_is_refused_with_a_wrong_password_and_over_tcp(pooler, pod):
    with pytest.raises(psycopg.OperationalError) as err:
        console(pooler, "wrong").close()
    assert "SASL authentication failed" in str(err.value)
    # Over TCP (TLS), as any client: its hba line rejects it, even with the right password.
    info = {**pod.connection_info(), **pooler.connection_info()}
    with pytest.raises(psycopg.OperationalError) as err:
        psycopg.connect(host=info["host"], port=info["port"], dbname=contract.POOLER_ADMIN_DATABASE,
                        user=contract.POOLER_STATS_USER, password=stats_password(pod), sslmode="verify-full",
                        sslrootcert=info["sslrootcert"], connect_timeout=10).close()
    assert "login rejected" in str(err.value)


def test_application_roles_cannot_use_the_socket(pooler, pod):
    password = pooler.pod.connection_info()["passwords"]["appuser"]
    with pytest.raises(psycopg.OperationalError) as err:
        psycopg.connect(host=str(pod.host_path(contract.POOLER_SOCKET_DIR)), port=pooler.connection_info()["port"],
                        dbname="appdb", user="appuser", password=password, sslmode="disable",
                        connect_timeout=10).close()
    # No `local` line admits it: only the stats user may use the socket.
    assert "no authentication method" in str(err.value)
