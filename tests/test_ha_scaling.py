"""Scaling an existing single instance to three members keeps its data, as the
docs/high-availability.md's "From `replicas: 1`" does it and as a user types it: `local up` with
the HA values on the stopped single pod's state. postgres-0 adopts the data
directory (the same PVC in a cluster), the others clone from it, and Patroni's
roles are created on the adopted database. A running single pod is refused."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest

import main
from pgbundle import contract
from workstation.cluster import LocalCluster
from workstation.localpod import LocalPod

pytestmark = pytest.mark.ha

TOP = Path(main.__file__).resolve().parent
HA_VALUES = TOP / "examples" / "ha.yaml"
ROWS = 1234


def local(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOP / "main.py"), "local", *args], capture_output=True, text=True,
                          timeout=300)


def connect(info: dict, port: int) -> psycopg.Connection:
    return psycopg.connect(host=info["host"], port=port, dbname=info["database"], user="appuser",
                           password=info["passwords"]["appuser"], sslmode="verify-full",
                           sslrootcert=info["sslrootcert"], connect_timeout=5, autocommit=True)


def tree(folder: Path) -> dict[str, tuple[int, float]]:
    """Every path and its mode and time, less what the running server writes (its data, its log)."""
    live = (folder / "pod.log", LocalPod(folder).host_path(contract.DATA_MOUNT))
    return {str(p.relative_to(folder)): (p.lstat().st_mode, p.lstat().st_mtime) for p in sorted(folder.rglob("*"))
            if not any(p == path or path in p.parents for path in live)}


def test_up_with_the_ha_values_on_a_single_pods_state():
    base = Path(tempfile.mkdtemp(prefix="scaling-"))
    base.chmod(0o711)  # the pods run as the postgres user
    state = str(base / "db")
    try:
        started = local("up", "--state", state)  # values.yaml: replicas 1
        assert started.returncode == 0, started.stderr
        single = json.loads(started.stdout)
        with connect(single, single["port"]) as conn:
            conn.execute("CREATE TABLE kept (id int)")
            conn.execute("INSERT INTO kept SELECT generate_series(1, %s)", (ROWS,))

        # Running: refused before anything starts or changes.
        before = tree(Path(state))
        refused = local("up", "--state", state, "--values", str(HA_VALUES))
        assert refused.returncode == 1
        assert refused.stderr.strip().splitlines() == [
            f"error: a single pod runs in {state} (pid {json.loads(local('status', '--state', state).stdout)['pid']}): "
            f"run `local down --state {state}` first; `local up` with these values then makes its data postgres-0's"]
        assert tree(Path(state)) == before
        with connect(single, single["port"]) as conn:
            assert conn.execute("SELECT count(*) FROM kept").fetchone() == (ROWS,)

        assert local("down", "--state", state).returncode == 0
        scaled = local("up", "--state", state, "--values", str(HA_VALUES))
        assert scaled.returncode == 0, scaled.stderr
        info = json.loads(scaled.stdout)
        members = LocalCluster(Path(state)).status()
        assert [(m.name, m.role == "leader") for m in members if m.role == "leader"] == [("postgres-0", True)]
        assert sorted(m.state for m in members) == ["running", "streaming", "streaming"]
        assert info["passwords"]["appuser"] == single["passwords"]["appuser"]  # the Secret is kept
        for member in members:
            with connect(info, member.port) as conn:
                assert conn.execute("SELECT count(*) FROM kept").fetchone() == (ROWS,), member.name
        with connect(info, members[0].port) as conn:  # Patroni's roles now exist on the adopted database
            roles = dict(conn.execute(
                "SELECT rolname, rolreplication FROM pg_roles WHERE rolname IN ('replicator', 'rewinder')"))
        assert roles == {"replicator": True, "rewinder": False}
    finally:
        local("down", "--state", state)
        shutil.rmtree(base)
