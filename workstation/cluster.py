"""Run the HA database on this machine: an etcd and N Patroni members.

Each member runs the pod's own HA script (patroni.sh) as the `postgres` OS
user with the Patroni configuration every pod gets (ConfigMap
postgres-patroni, synthesized from the values), with only the DCS section
swapped from Kubernetes to a local etcd (Debian's etcd-server on loopback
ports) and the member's name, ports and folders filled in. The files a pod
mounts (scripts, configuration, passwords, TLS certificate and CA) are laid
out once by the local pod runner and shared by every member, as every pod of
a StatefulSet mounts the same ConfigMaps and Secrets; each member has its own
data and run folders.

`up` starts what is not running: etcd, then every missing member at once, as
the StatefulSet's pod management policy (Parallel) starts pods, so a full stop
comes back as it does in a cluster. On a running cluster it starts the missing
members and rewrites nothing; values that would change the manifests are
refused. A stopped single pod's state folder becomes a cluster's, its data
postgres-0's (the PVC that pod keeps). `status` checks the processes, then
asks Patroni's REST API; `down` stops everything it started, including a
postmaster left behind by a killed Patroni.

The state folder and what each member runs: cluster_members.py; what the
members say (REST API, status, connection details): cluster_status.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import yaml

from pgbundle import contract
from workstation import etcd, patroni_venv, processes
from workstation.cluster_members import ClusterError
from workstation.cluster_status import ClusterStatus, MemberStatus, cluster_state
from workstation.localpod import LocalPod
from workstation.pod_state import HOST


class PrimaryPod(LocalPod):
    """The cluster's files as the backup and restore jobs see them, with the
    Service `postgres` answered by the current primary (as it selects role=primary)."""

    def __init__(self, state: Path, cluster: LocalCluster) -> None:
        super().__init__(state)
        self.cluster = cluster

    def pid(self) -> int | None:
        leader = self.cluster.leader()
        return leader.patroni_pid if leader is not None else None

    def status(self) -> dict:
        leader = self.cluster.leader()
        return {"state": "ready" if leader else "stopped", "pid": leader.patroni_pid if leader else None,
                "port": leader.port if leader else None}


def _wait(condition, timeout: float, what: str, interval: float = 0.2):
    return processes.wait(condition, timeout, what, error=ClusterError, interval=interval)


class LocalCluster(ClusterStatus):
    """An etcd and Patroni members living in a state folder: starting and stopping them."""

    def __init__(self, state: Path) -> None:
        super().__init__(state, lambda folder: PrimaryPod(folder, self))

    # --- processes -----------------------------------------------------------

    def _start_etcd(self) -> None:
        recorded = self.recorded()
        ports = recorded["etcd"]
        process = etcd.start(self.etcd_dir, HOST, ports["client_port"], ports["peer_port"])
        ports["pid"] = process.pid  # recorded first: `down` stops it even if it never gets healthy
        self._record(recorded)
        etcd.wait_healthy(process, self.etcd_dir, HOST, ports["client_port"])

    def start_member(self, name: str) -> int:
        """Start member `name`'s Patroni (the pod's HA script), as Kubernetes starts a pod."""
        log_path = self.log_file(name)
        with open(log_path, "ab") as log:
            os.chown(log_path, self.pod.uid, self.pod.gid)
            process = subprocess.Popen(
                ["bash", str(self._start_script)],
                env=self.environment(name), cwd=self.member_dir(name), stdin=subprocess.DEVNULL,
                stdout=log, stderr=log, start_new_session=True, **self.pod.user_options(),
            )
        recorded = self.recorded()
        recorded["members"][name]["pid"] = process.pid
        self._record(recorded)
        # Until the child has exec'd, its command line is still this program's.
        _wait(lambda: self.patroni_pid(name) or process.poll() is not None, 10, f"member {name} started")
        self._start_pgbackrest_server(name)
        return process.pid

    def _start_pgbackrest_server(self, name: str) -> None:
        """The member's `pgbackrest` sidecar (PITR): the backup jobs reach every member through one."""
        sidecar = self.pod.pgbackrest_sidecar()
        if sidecar is None or self.pgbackrest_server_pid(name) is not None:
            return
        server, port = self.pod.start_pgbackrest_server(
            sidecar, self.server_environment(name, sidecar), self.member_dir(name) / "pgbackrest-server.log",
            self.member_dir(name))
        recorded = self.recorded()
        recorded["members"][name].update({"pgbackrest_pid": server.pid, "pgbackrest_port": port})
        self._record(recorded)

    def up(self, timeout: float = 180) -> dict:
        """Start whatever is not running and wait for a leader with every other member streaming."""
        if not self.state_file.exists():
            raise ClusterError(f"{self.state} holds no cluster: run `local up` with values first")
        if not patroni_venv.installed():
            raise ClusterError(f"Patroni is not installed in {patroni_venv.VENV}: run `make test` or "
                               "`python -m workstation.patroni_venv`")
        statefulset = self.pod.manifests().get("StatefulSet", contract.STATEFULSET)
        policy = statefulset["spec"].get("podManagementPolicy", "OrderedReady")  # Kubernetes' default
        if policy != contract.HA_POD_MANAGEMENT_POLICY:
            raise ClusterError(f"podManagementPolicy {policy} in {self.pod.dist}: the runner starts members "
                               f"together, as {contract.HA_POD_MANAGEMENT_POLICY} does")
        if self.etcd_pid() is None:
            self._start_etcd()
        # Together, as the StatefulSet starts its pods: after a full stop only the
        # last leader or its synchronous standby may take the lock, whichever
        # member that is. Only postgres-0 may initialize a cluster (patroni.sh).
        for name in self.recorded()["members"]:
            if self.patroni_pid(name) is None:
                self.start_member(name)
        self.wait_healthy(timeout)
        return self.connection_info()

    def wait_healthy(self, timeout: float = 180) -> list[MemberStatus]:
        """Until one member leads and every other one streams from it."""

        def healthy():
            members = self.status()
            if cluster_state(members) == "ready":
                return members
            for member in members:
                if member.patroni_pid is None:
                    raise ClusterError(f"member {member.name} stopped; log {self.log_file(member.name)}:\n"
                                       + self.log_tail(member.name))
            return None

        return _wait(healthy, timeout, "a leader with every other member streaming", interval=0.5)

    def log_tail(self, name: str, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file(name).read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def remove_dcs_state(self) -> None:
        """`patronictl remove`: the cluster's keys in etcd (leader, config, the
        initialize key holding the system identifier...) are deleted, as a major
        upgrade's new data needs (a new identifier). etcd is started for it when stopped."""
        scope = yaml.safe_load(self.config_file(contract.BOOTSTRAP_MEMBER).read_text())["scope"]
        started = self.etcd_pid() is None
        if started:
            self._start_etcd()
        try:
            removed = self.patronictl("remove", scope, answers=f"{scope}\nYes I am aware\n")
            if removed.returncode != 0:
                raise ClusterError(f"patronictl remove {scope} failed: {(removed.stderr or removed.stdout).strip()}")
        finally:
            if started:
                self._stop_etcd()

    # --- faults and shutdown -------------------------------------------------

    def kill_member(self, name: str, sig: int = signal.SIGKILL, postmaster: bool = True) -> None:
        """Send `sig` to the member's Patroni and (with `postmaster`) its postmaster: a lost node."""
        for pid in (self.patroni_pid(name), self.postmaster_pid(name) if postmaster else None):
            if pid is not None:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass

    def stop_member(self, name: str, timeout: float = 60) -> None:
        """SIGTERM to Patroni (it stops PostgreSQL); a Patroni that does not exit in
        time is killed with its process group. What is left of that group (the
        certificate watcher, a hook) gets SIGTERM. A postmaster left behind by a
        killed Patroni gets a fast shutdown, then SIGKILL; its backends exit on
        their own when it is gone."""
        group = self.recorded()["members"].get(name, {}).get("pid")
        for pid, sig, force in ((self.patroni_pid(name), signal.SIGTERM, True),
                                (self.postmaster_pid(name), signal.SIGINT, False),
                                (self.pgbackrest_server_pid(name), signal.SIGTERM, False)):
            if pid is None:
                continue
            try:
                os.kill(pid, sig)
                if not processes.poll(lambda: not processes.running(pid, ""), timeout):
                    os.killpg(pid, signal.SIGKILL) if force else os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass  # gone meanwhile (the postmaster stops with its Patroni)
            _wait(lambda: not processes.running(pid, ""), 10, f"pid {pid} of member {name} stopped")
        for pid in self._leftovers(group):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def _leftovers(self, group: int | None) -> list[int]:
        """Processes still in a member's process group that run files of this state folder."""
        found = []
        for entry in Path("/proc").iterdir():
            if group is None or not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(stat[2]) == group and str(self.state).encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
        return found

    def down(self) -> None:
        """Stop every member, then etcd."""
        if not self.state_file.exists():
            return
        for name in self.recorded()["members"]:
            self.stop_member(name)
        self._stop_etcd()

    def _stop_etcd(self) -> None:
        pid = self.etcd_pid()
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            if not processes.poll(lambda: self.etcd_pid() is None, 30):
                os.kill(pid, signal.SIGKILL)
