"""PgBouncer in front of a real 3-member Patroni cluster, as `local up` runs them:
the pooler reaches the primary through the local stand-in for the Service
`postgres` (service_proxy), and a kill -9 of the leader costs its clients no
acknowledged write. The write gap through the pooler is printed beside the
gap of a direct multi-host connection, measured in the same failover."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import tempfile
import time
from pathlib import Path

import psycopg
import pytest
import yaml

import main
from ha import APP_USER, wait_for
from ha import VALUES as HA_VALUES
from workstation.cluster import LocalCluster
from workstation.localpooler import LocalPooler
from workstation.service_proxy import LocalService
from workstation.writeprobe import WriteProbe

pytestmark = pytest.mark.ha

VALUES = {"postgres": {**HA_VALUES["postgres"],
                       "pooler": {"enabled": True, "replicas": 1, "defaultPoolSize": 5, "maxDbConnections": 10}}}


def local(*argv: str) -> dict | None:
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main.main(["local", *argv]) == 0
    return json.loads(printed.getvalue()) if printed.getvalue().strip() else None


@pytest.fixture(scope="module")
def started():
    """(cluster, the JSON `main.py local up` printed)."""
    base = Path(tempfile.mkdtemp(prefix="localcluster-pooler-"))
    base.chmod(0o711)  # the members run as the postgres user
    values = base / "values.yaml"
    values.write_text(yaml.safe_dump(VALUES))
    cluster = LocalCluster(base / "cluster")
    try:
        yield cluster, local("up", "--state", str(cluster.state), "--values", str(values))
    finally:
        local("down", "--state", str(cluster.state))
        shutil.rmtree(base)


def test_up_prints_the_pooler_and_it_reaches_the_primary(started):
    cluster, info = started
    pooler = info["pooler"]
    assert set(pooler) == {"host", "hostaddr", "port", "dsn", "DATABASE_URL"}
    with psycopg.connect(pooler["dsn"], password=info["passwords"][APP_USER], connect_timeout=10) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
        assert conn.info.parameter_status("in_hot_standby") == "off"


def test_leader_kill_through_the_pooler_loses_no_acknowledged_write(started):
    cluster, info = started
    password = info["passwords"][APP_USER]
    old = cluster.leader()
    assert old is not None
    pooler_pid = LocalPooler(cluster.pod).pid()
    pooled = WriteProbe(info["pooler"]["dsn"], APP_USER, password, table="write_probe_pooler").start()
    direct = WriteProbe(cluster.dsn_all(), APP_USER, password, table="write_probe_direct").start()
    try:
        wait_for(lambda: len(pooled.acknowledged) >= 20 and len(direct.acknowledged) >= 20, 30,
                 "writes before the fault")
        fault = time.monotonic()
        cluster.kill_member(old.name)  # kill -9 of Patroni and the postmaster: the node is gone
        wait_for(lambda: pooled.acknowledged_since(fault) >= 20 and direct.acknowledged_since(fault) >= 20, 120,
                 "writes on a new leader, through the pooler and directly")
    finally:
        pooled.stop()
        direct.stop()
    new = cluster.leader()
    assert new is not None and new.name != old.name
    with psycopg.connect(host=new.host, port=new.port, user=APP_USER, password=password,
                         dbname=info["database"], sslmode="verify-full", sslrootcert=info["sslrootcert"],
                         autocommit=True) as conn:
        assert pooled.lost(conn) == []
        assert direct.lost(conn) == []
    print(f"leader kill -9: writes stopped {pooled.longest_gap(fault):.1f}s through the pooler, "
          f"{direct.longest_gap(fault):.1f}s direct (target_session_attrs=read-write)")
    # The pooler adds at most its own reconnect (server_login_retry 1 s) and the Service's
    # follow interval to the direct gap; PgBouncer's default retry (15 s) would fail this.
    assert pooled.longest_gap(fault) <= direct.longest_gap(fault) + 10
    # Not restarted: the same PgBouncer carried its clients over to the new primary.
    assert LocalPooler(cluster.pod).pid() == pooler_pid
    cluster.up()


def test_down_stops_the_pooler_and_the_local_service(started):
    cluster, _ = started
    pooler, service = LocalPooler(cluster.pod), LocalService(cluster)
    assert pooler.pid() is not None and service.pid() is not None
    local("down", "--state", str(cluster.state))
    assert pooler.pid() is None and service.pid() is None
