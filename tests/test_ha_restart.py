"""The HA cluster comes back after any stop, driven as a user drives it
(`python main.py local ...` in a subprocess): a member lost with kill -9, and
every member stopped after the leadership moved away from postgres-0, in two
orders. After each, every acknowledged write is on the new leader, every
member runs and writes are accepted.

The tests share one cluster and run in file order; every wait has a deadline.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import psycopg
import pytest
import yaml

import main
from ha import APP_USER, MEMBERS, VALUES, settled, wait_for
from pgbundle import contract
from workstation.cluster import LocalCluster
from workstation.cluster_status import MemberStatus
from workstation.writeprobe import WriteProbe

pytestmark = pytest.mark.ha

TOP = Path(main.__file__).resolve().parent
FIRST = contract.BOOTSTRAP_MEMBER  # the member that adopts existing data; the leadership moves off it


def local(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOP / "main.py"), "local", *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def cluster():
    base = Path(tempfile.mkdtemp(prefix="ha-restart-"))
    base.chmod(0o711)  # the members run as the postgres user
    (base / "values.yaml").write_text(yaml.safe_dump(VALUES))
    cluster = LocalCluster(base / "cluster")
    try:
        started = up(cluster)
        assert started.returncode == 0, started.stderr
        yield cluster
    finally:
        local("down", "--state", str(cluster.state))
        shutil.rmtree(base)


def up(cluster: LocalCluster) -> subprocess.CompletedProcess:
    return local("up", "--state", str(cluster.state), "--values", str(cluster.state.parent / "values.yaml"))


def status(cluster: LocalCluster) -> dict:
    result = local("status", "--state", str(cluster.state))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def connect(cluster: LocalCluster, member: MemberStatus) -> psycopg.Connection:
    info = cluster.connection_info()
    return psycopg.connect(host=member.host, port=member.port, dbname=info["database"], user=APP_USER,
                           password=info["passwords"][APP_USER], sslmode="verify-full",
                           sslrootcert=info["sslrootcert"], connect_timeout=5, autocommit=True)


def probe(cluster: LocalCluster) -> WriteProbe:
    return WriteProbe(cluster.dsn_all(), APP_USER, cluster.connection_info()["passwords"][APP_USER]).start()


def lead_elsewhere(cluster: LocalCluster) -> MemberStatus:
    """A leader other than postgres-0, by a switchover to the synchronous standby when needed."""
    leader, standbys = settled(cluster)
    if leader.name == FIRST:
        candidate = next(m for m in standbys if m.role == "sync_standby")
        result = cluster.patronictl("switchover", "--leader", FIRST, "--candidate", candidate.name, "--force")
        assert result.returncode == 0, result.stdout + result.stderr
        leader, _ = settled(cluster)
    assert leader.name != FIRST
    return leader


def assert_back(cluster: LocalCluster, writes: WriteProbe) -> MemberStatus:
    """Every member runs, the leader holds every acknowledged write and takes new ones."""
    leader, standbys = settled(cluster)
    assert all(m.patroni_pid and m.postmaster_pid for m in [leader, *standbys])
    with connect(cluster, leader) as conn:
        assert writes.lost(conn) == []
        conn.execute("INSERT INTO write_probe (id) VALUES (-1) ON CONFLICT (id) DO UPDATE SET at = now()")
    return leader


def test_up_as_typed_starts_a_member_lost_with_kill_9(cluster):
    _, standbys = settled(cluster)
    lost = standbys[0].name
    running = {m.name: m.patroni_pid for m in cluster.status() if m.name != lost}
    cluster.kill_member(lost)  # kill -9 of its Patroni and PostgreSQL
    again = up(cluster)
    assert again.returncode == 0, again.stderr
    leader, standbys = settled(cluster)
    assert {m.name: m.patroni_pid for m in [leader, *standbys] if m.name in running} == running  # left alone


def test_status_follows_the_processes_after_kill_9_of_the_leader(cluster):
    leader, _ = settled(cluster)
    cluster.kill_member(leader.name)  # the DCS still names it leader until its lock expires
    shown = status(cluster)
    member = next(m for m in shown["members"] if m["name"] == leader.name)
    assert (member["role"], member["state"], member["patroni_pid"], member["postmaster_pid"]) == (
        None, "stopped", None, None)
    assert shown["state"] != "ready" and shown["pid"] != leader.patroni_pid
    again = up(cluster)
    assert again.returncode == 0, again.stderr
    settled(cluster)
    assert status(cluster)["state"] == "ready"


def test_up_with_other_values_on_a_running_cluster_is_refused_with_the_right_down_command(cluster):
    other = cluster.state.parent / "other.yaml"
    other.write_text(yaml.safe_dump({"postgres": {**VALUES["postgres"], "config": {"maxConnections": 50}}}))
    before = {m.name: m.patroni_pid for m in cluster.status()}
    refused = local("up", "--state", str(cluster.state), "--values", str(other))
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f"error: the cluster in {cluster.state} runs with other manifests than these values make: "
        f"run `local down --state {cluster.state}` first")
    assert {m.name: m.patroni_pid for m in cluster.status()} == before


def test_down_on_the_clusters_pod_folder_is_refused_and_stops_nothing(cluster):
    before = {m.name: m.patroni_pid for m in cluster.status()}
    refused = local("down", "--state", str(cluster.state / "pod"))
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f"error: --state: {cluster.state / 'pod'} is a folder of the cluster in {cluster.state}: "
        f"run `local down --state {cluster.state}`")
    assert {m.name: m.patroni_pid for m in cluster.status()} == before


T = TypeVar("T")


def stop_while_writing(cluster: LocalCluster, stop: Callable[[WriteProbe], T]) -> tuple[WriteProbe, T]:
    """Writes go on while `stop` stops every member; the probe (stopped) and what `stop` returned."""
    writes = probe(cluster)
    try:
        wait_for(lambda: len(writes.acknowledged) >= 20, 30, "writes before the stop")
        stopped = stop(writes)
    finally:
        writes.stop()
    return writes, stopped


def come_back(cluster: LocalCluster, writes: WriteProbe, stop: str) -> MemberStatus:
    """`local up` after a full stop; the leader once every member is back whole."""
    moment = time.monotonic()
    again = up(cluster)
    assert again.returncode == 0, again.stderr
    leader = assert_back(cluster, writes)
    print(f"{stop}: `local up` back in {time.monotonic() - moment:.1f}s")
    return leader


def test_full_stop_after_a_switchover_comes_back_whole(cluster):
    lead_elsewhere(cluster)
    # postgres-0 first, while writes go on
    writes, down = stop_while_writing(cluster, lambda _: local("down", "--state", str(cluster.state)))
    assert down.returncode == 0, down.stderr
    stopped = status(cluster)
    assert (stopped["state"], stopped["pid"], stopped["port"]) == ("stopped", None, None)
    assert [(m["name"], m["role"], m["state"]) for m in stopped["members"]] == [
        (f"postgres-{n}", None, "stopped") for n in range(MEMBERS)]
    come_back(cluster, writes, "full stop with `local down`")


def test_full_stop_with_the_leader_stopped_last_comes_back_on_that_leader(cluster):
    leader = lead_elsewhere(cluster)

    def leader_last(writes: WriteProbe) -> None:
        for member in sorted((m for m in cluster.status() if m.name != leader.name), key=lambda m: m.name,
                             reverse=True):
            cluster.stop_member(member.name)
        # Alone (synchronousModeStrict is off), the leader goes on committing: only it holds these rows.
        alone = time.monotonic()
        wait_for(lambda: writes.acknowledged_since(alone) >= 20, 60, "writes on the leader alone")
        cluster.stop_member(leader.name)

    writes, _ = stop_while_writing(cluster, leader_last)
    assert status(cluster)["state"] == "stopped"
    assert come_back(cluster, writes, "full stop, leader last").name == leader.name


def test_full_stop_by_kill_9_of_every_member_comes_back_whole(cluster):
    # A zone outage: every member's Patroni and PostgreSQL gone at once, the DCS
    # still naming the old leader until its lock expires.
    lead_elsewhere(cluster)

    def kill_every_member(_: WriteProbe) -> None:
        for member in cluster.status():
            cluster.kill_member(member.name)

    writes, _ = stop_while_writing(cluster, kill_every_member)
    assert status(cluster)["state"] == "stopped"
    come_back(cluster, writes, "full stop by kill -9")
