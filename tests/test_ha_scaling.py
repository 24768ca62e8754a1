"""Scaling an existing single instance to three members keeps its data: the
first member adopts the data directory (the same PVC in a cluster), the
others clone from it, and Patroni's roles are created on the adopted database."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import psycopg
import pytest

import main
from pgbundle import contract
from pgbundle.values.load import parse_values
from pgbundle.workstation.cluster import LocalCluster
from pgbundle.workstation.localpod import LocalPod

pytestmark = pytest.mark.ha

SMALL = {"resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}}}
HA = {**SMALL, "replicas": 3, "ha": {"image": {"repository": "local", "tag": "unused"}}}


def connect(info: dict, port: int) -> psycopg.Connection:
    return psycopg.connect(host=info["host"], port=port, dbname=info["database"], user="appuser",
                           password=info["passwords"]["appuser"], sslmode="verify-full",
                           sslrootcert=info["sslrootcert"], connect_timeout=5, autocommit=True)


def test_scaling_from_one_to_three_keeps_the_data():
    base = Path(tempfile.mkdtemp(prefix="scaling-"))
    base.chmod(0o711)
    single = LocalPod(base / "single")
    cluster = LocalCluster(base / "cluster")
    try:
        single.prepare(parse_values({"postgres": SMALL}), main.synthesize)
        info = single.start()
        with connect(info, info["port"]) as conn:
            conn.execute("CREATE TABLE kept (id int)")
            conn.execute("INSERT INTO kept SELECT generate_series(1, 1000)")
        assert single.stop() == 0
        cluster.prepare(parse_values({"postgres": HA}), main.synthesize)
        # The StatefulSet keeps its name and claim template: postgres-0 keeps its volume.
        target = cluster.data_dir("postgres-0")
        assert not target.exists()  # initdb or a clone makes it
        shutil.move(str(single.host_path(contract.PGDATA)), str(target))
        info = cluster.up()
        members = cluster.status()
        assert [m.role for m in members].count("leader") == 1
        assert members[0].role == "leader"  # the adopted database leads
        for member in members:
            with connect(info, member.port) as conn:
                assert conn.execute("SELECT count(*) FROM kept").fetchone() == (1000,), member.name
        with connect(info, members[0].port) as conn:  # Patroni's roles now exist on the adopted database
            roles = dict(conn.execute(
                "SELECT rolname, rolreplication FROM pg_roles WHERE rolname IN ('replicator', 'rewinder')"))
        assert roles == {"replicator": True, "rewinder": False}
    finally:
        cluster.down()
        single.stop()
        shutil.rmtree(base)
