"""PgBouncer in front of a real 3-member Patroni cluster, as `local up` runs them:
the pooler reaches the primary through the local stand-in for the Service
`postgres` (service_proxy), and a kill -9 of the leader costs its clients no
acknowledged write. The write gap through the pooler is printed beside the
gap of a direct multi-host connection, measured in the same failover. The
read-only pooler reaches a replica through the stand-in for `postgres-replicas`,
before and after that failover, and refuses writes as a hot standby does."""

from __future__ import annotations

import configparser
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
from pgbundle import contract
from ha import VALUES as HA_VALUES
from workstation.cluster import LocalCluster
from workstation.localpooler import LocalPooler
from workstation.service_proxy import LocalService
from workstation.writeprobe import WriteProbe

pytestmark = pytest.mark.ha

VALUES = {"postgres": {**HA_VALUES["postgres"],
                       "pooler": {"enabled": True, "replicas": 1, "defaultPoolSize": 5, "maxDbConnections": 10,
                                  "readOnly": {"enabled": True, "replicas": 1}}}}


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


def server(dsn: str, password: str) -> tuple[bool, int]:
    """(pg_is_in_recovery(), the port of the member that answered) through `dsn`."""
    with psycopg.connect(dsn, password=password, connect_timeout=10) as conn:
        return conn.execute("SELECT pg_is_in_recovery(), inet_server_port()").fetchone()


def test_up_prints_the_pooler_and_it_reaches_the_primary(started):
    cluster, info = started
    pooler = info["pooler"]
    assert set(pooler) == {"host", "hostaddr", "port", "dsn", "DATABASE_URL"}
    with psycopg.connect(pooler["dsn"], password=info["passwords"][APP_USER], connect_timeout=10) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
        assert conn.info.parameter_status("in_hot_standby") == "off"


def test_the_read_only_pooler_reaches_a_replica_and_refuses_writes(started):
    cluster, info = started
    password = info["passwords"][APP_USER]
    read_only = info["pooler_ro"]
    assert set(read_only) == {"host", "hostaddr", "port", "dsn", "DATABASE_URL"}
    assert read_only["port"] != info["pooler"]["port"]
    leader = cluster.leader()
    replicas = {m.port for m in cluster.status() if m.name != leader.name}
    with psycopg.connect(info["pooler"]["dsn"], password=password, connect_timeout=10, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS pooler_ro_probe (id int PRIMARY KEY)")
        assert conn.execute("INSERT INTO pooler_ro_probe VALUES (1) RETURNING id").fetchone() == (1,)
        assert conn.execute("SELECT pg_is_in_recovery(), inet_server_port()").fetchone() == (False, leader.port)
    with psycopg.connect(read_only["dsn"], password=password, connect_timeout=10, autocommit=True) as conn:
        in_recovery, port = conn.execute("SELECT pg_is_in_recovery(), inet_server_port()").fetchone()
        assert in_recovery is True and port in replicas
        assert conn.info.parameter_status("in_hot_standby") == "on"
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction, match="read-only transaction"):
            conn.execute("INSERT INTO pooler_ro_probe VALUES (2)")
        # The acknowledged write reaches the replicas by streaming.
        wait_for(lambda: conn.execute("SELECT count(*) FROM pooler_ro_probe WHERE id = 1").fetchone() == (1,), 30,
                 "the primary's row on the replica")


def ini(text: str) -> dict[str, dict[str, str]]:
    parser = configparser.RawConfigParser()
    parser.optionxform = str  # PgBouncer's keys as written
    parser.read_string(text)
    return {section: dict(parser[section]) for section in parser.sections()}


def test_the_read_only_pooler_runs_the_config_maps_pgbouncer_ini_but_for_places(started):
    """The renderer's output of the ConfigMap postgres-pooler-ro, with this machine's
    paths, port and server (the local stand-in for the Service postgres-replicas)."""
    cluster, _ = started
    pooler = LocalPooler(cluster.pod, read_only=True)
    local_ini = ini(pooler.host_path(f"{contract.POOLER_CONFIG_DIR}/{contract.POOLER_CONFIG_FILE}").read_text())
    config_map = cluster.pod.manifests().get("ConfigMap", contract.POOLER_RO)
    shipped = ini(config_map["data"][contract.POOLER_CONFIG_FILE])
    namespace = config_map["metadata"]["namespace"]
    service = f"host={contract.REPLICAS_SERVICE}.{namespace}.svc port={contract.PORT} "
    here = f"host=localhost port={LocalService(cluster, replicas=True).port} "
    assert local_ini["databases"] == {db: line.replace(service, here) for db, line in shipped["databases"].items()}
    assert local_ini["databases"] != shipped["databases"]
    places = {key for key, value in shipped["pgbouncer"].items() if value.startswith("/")}
    assert all(local_ini["pgbouncer"][key] == str(pooler.host_path(shipped["pgbouncer"][key])) for key in places)
    assert pooler.root != cluster.pod.root  # not the main pooler's files
    assert local_ini["pgbouncer"]["listen_port"] == str(pooler.recorded()["port"])
    assert ({k: v for k, v in local_ini["pgbouncer"].items() if k not in places | {"listen_addr", "listen_port"}}
            == {k: v for k, v in shipped["pgbouncer"].items() if k not in places | {"listen_addr", "listen_port"}})


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


def test_the_read_only_pooler_follows_the_replicas_after_the_failover(started):
    """After the leader kill above (the old leader back as a replica): the promoted
    member left `postgres-replicas`, so each connection lands on a replica again,
    through the same PgBouncer."""
    cluster, info = started
    password = info["passwords"][APP_USER]
    pooler_pid = LocalPooler(cluster.pod, read_only=True).pid()
    assert pooler_pid is not None
    leader = cluster.leader()
    replicas = {m.port for m in cluster.status() if m.name != leader.name}

    def answered():
        try:
            return {server(info["pooler_ro"]["dsn"], password) for _ in range(6)}
        except psycopg.OperationalError:  # a server connection to the promoted member, closed by the Service
            return None

    found = wait_for(answered, 60, "answers through the read-only pooler")
    assert all(in_recovery for in_recovery, _ in found), found
    assert {port for _, port in found} <= replicas
    assert server(info["pooler"]["dsn"], password) == (False, leader.port)
    assert LocalPooler(cluster.pod, read_only=True).pid() == pooler_pid


def test_down_stops_the_pooler_and_the_local_service(started):
    cluster, _ = started
    running = [LocalPooler(cluster.pod), LocalService(cluster),
               LocalPooler(cluster.pod, read_only=True), LocalService(cluster, replicas=True)]
    assert all(each.pid() is not None for each in running)
    local("down", "--state", str(cluster.state))
    assert [each.pid() for each in running] == [None] * 4
