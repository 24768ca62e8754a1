"""Failover times of the HA cluster with the shipped Patroni settings.

Starts a 3-member cluster with the local cluster runner (the configuration
every pod gets, etcd as the DCS) and runs ROUNDS of each fault while a writer
commits every 50 ms through the multi-host connection string
(target_session_attrs=read-write, connect_timeout 2 s):
- node loss: kill -9 of the leader's Patroni and postmaster, then the member
  is started again (as Kubernetes restarts a pod) and rejoins;
- postmaster crash: kill -9 of the leader's postmaster only;
- graceful shutdown: SIGTERM to the leader's Patroni (a pod deletion), then
  the member is started again;
- switchover: `patronictl switchover` to the synchronous standby.
For each, the longest time without an acknowledged write from the fault until
ten writes went to the new leader (median [min-max]), and the acknowledged
writes missing on the new leader.
The cluster settles (a leader, a synchronous standby, all streaming) before
every round.

Targets (issue 13): 0 writes lost; switchover <= 3 s; graceful shutdown <= 5 s;
postmaster crash <= 5 s; node loss <= 20 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TOP))
sys.path.insert(0, str(TOP / "bench"))
os.environ["PATH"] = f"{TOP / 'node_modules' / '.bin'}{os.pathsep}{os.environ['PATH']}"

import psycopg  # noqa: E402

import main  # noqa: E402
from pgbundle.values.load import parse_values  # noqa: E402
from pgbench import spread, stop_on_sigterm  # noqa: E402
from workstation.cluster import LocalCluster  # noqa: E402
from workstation.cluster_status import MemberStatus  # noqa: E402
from workstation.writeprobe import WriteProbe  # noqa: E402

MEMBERS = 3
VALUES = {"postgres": {"replicas": MEMBERS, "ha": {"image": {"repository": "local", "tag": "unused"}},
                       "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                                     "limits": {"cpu": "1", "memory": "512Mi"}}}}
USER = "appuser"
SETTLE_TIMEOUT = 120
RESUME_TIMEOUT = 90


def settle(cluster: LocalCluster) -> tuple[MemberStatus, MemberStatus]:
    """Wait for a leader, a synchronous standby and every member streaming; return (leader, sync standby)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while time.monotonic() < deadline:
        members = cluster.status()
        leader = [m for m in members if m.role == "leader" and m.state == "running"]
        sync = [m for m in members if m.role == "sync_standby" and m.state == "streaming"]
        if len(leader) == 1 and len(sync) == 1 and all(m.state in ("running", "streaming") for m in members):
            return leader[0], sync[0]
        time.sleep(0.5)
    raise SystemExit(f"the cluster did not settle within {SETTLE_TIMEOUT}s: {cluster.status()}")


def node_loss(cluster: LocalCluster, leader: MemberStatus, _: MemberStatus) -> None:
    cluster.kill_member(leader.name)


def postmaster_crash(cluster: LocalCluster, leader: MemberStatus, _: MemberStatus) -> None:
    os.kill(leader.postmaster_pid, signal.SIGKILL)


def graceful_shutdown(cluster: LocalCluster, leader: MemberStatus, _: MemberStatus) -> None:
    cluster.kill_member(leader.name, signal.SIGTERM, postmaster=False)


def switchover(cluster: LocalCluster, leader: MemberStatus, sync: MemberStatus) -> None:
    result = cluster.patronictl("switchover", "--leader", leader.name, "--candidate", sync.name, "--force")
    if result.returncode != 0:
        raise SystemExit(f"patronictl switchover failed:\n{result.stdout}{result.stderr}")


FAULTS = {
    "node loss (kill -9 Patroni + postmaster)": node_loss,
    "postmaster crash (kill -9)": postmaster_crash,
    "graceful leader shutdown (SIGTERM)": graceful_shutdown,
    "switchover (patronictl)": switchover,
}


def one_round(cluster: LocalCluster, fault) -> tuple[float, int]:
    leader, sync = settle(cluster)
    password = cluster.connection_info()["passwords"][USER]
    probe = WriteProbe(cluster.dsn_all(), USER, password).start()
    try:
        deadline = time.monotonic() + 30
        while len(probe.acknowledged) < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        moment = time.monotonic()
        fault(cluster, leader, sync)
        deadline = moment + RESUME_TIMEOUT
        new = None
        while new is None or new.name == leader.name:
            if time.monotonic() > deadline:
                raise SystemExit(f"no new leader within {RESUME_TIMEOUT}s of the fault")
            time.sleep(0.2)
            new = cluster.leader()
        changed = time.monotonic()
        while probe.acknowledged_since(changed) < 10:
            if time.monotonic() > deadline:
                raise SystemExit(f"no writes on the new leader within {RESUME_TIMEOUT}s of the fault")
            time.sleep(0.05)
    finally:
        probe.stop()
    resumed = probe.longest_gap(moment)
    with psycopg.connect(host=new.host, port=new.port, dbname=cluster.connection_info()["database"], user=USER,
                         password=password, sslmode="verify-full", sslrootcert=str(cluster.pod.sslrootcert)) as conn:
        lost = len(probe.lost(conn))
    cluster.up()  # a killed or stopped member starts again, as its pod would
    return resumed, lost


def main_() -> int:
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="failover-"))
    folder.chmod(0o711)
    cluster = LocalCluster(folder / "cluster")
    try:
        cluster.prepare(parse_values(VALUES), main.synthesize)
        cluster.up()
        print(f"{MEMBERS} members, shipped Patroni settings, {args.rounds} rounds per fault; "
              "writer: autocommit insert every 50 ms through dsn_all", flush=True)
        results: dict[str, list[tuple[float, int]]] = {name: [] for name in FAULTS}
        for round_number in range(args.rounds):
            for name, fault in FAULTS.items():
                resumed, lost = one_round(cluster, fault)
                results[name].append((resumed, lost))
                print(f"round {round_number + 1} {name:42} no writes for {resumed:5.1f}s, "
                      f"{lost} acknowledged writes lost", flush=True)
        print(f"\n{'fault':42} {'s without writes: median [min-max]':>36} {'acknowledged writes lost':>26}")
        for name, rounds in results.items():
            print(f"{name:42} {spread([r for r, _ in rounds], '.1f'):>36} {sum(lost for _, lost in rounds):>26}")
    finally:
        cluster.down()
        shutil.rmtree(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main_())
