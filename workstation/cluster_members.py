"""A local cluster's state folder and what each member runs: its folders, its
Patroni configuration and its container environment, all derived from the
manifests the local pod runner laid out (workstation/cluster.py starts them).

State folder:
  pod/                   the local pod runner's state: dist/, root/ (mounted files), pki/
  etcd/                  etcd's data folder and etcd.log
  members/postgres-N/    data/ (the volume), run/ (socket, pgpass), patroni.yaml,
                         bootstrap.yaml, patroni.log
  cluster.json           ports and pids of what runs
"""

from __future__ import annotations

import json
import shlex
import tempfile
from collections.abc import Callable
from pathlib import Path

import yaml

from pgbundle import contract
from pgbundle.patroni import config as patroni_config
from pgbundle.patroni import restore as patroni_restore
from pgbundle.pgconf.env import LISTEN_ENV, PORT_ENV
from pgbundle.values.models import ChartValues
from workstation import etcd, patroni_venv, pgbackrest_install, processes
from workstation.localpod import LocalPod
from workstation.pod_state import HOST, LocalPodError, Synthesize, free_port


class ClusterError(LocalPodError):
    """The local cluster cannot be started, inspected or stopped; the message says why."""


POD_FOLDER = "pod"


def down_command(state: Path) -> str:
    return f"`local down --state {shlex.quote(str(state))}`"


def _files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.glob("*.yaml"))}


class ClusterMembers:
    """The members' files and recorded processes in a state folder; `pod` makes the
    shared pod folder's runner."""

    def __init__(self, state: Path, pod: Callable[[Path], LocalPod]) -> None:
        self.state = state.resolve()
        self.pod = pod(self.state / POD_FOLDER)
        self.etcd_dir = self.state / "etcd"
        self.members_dir = self.state / "members"
        self.state_file = self.state / "cluster.json"

    # --- recorded state ------------------------------------------------------

    @staticmethod
    def holds_cluster(state: Path) -> bool:
        """Whether `state` is a cluster's state folder (not a single pod's)."""
        return (state / "cluster.json").exists()

    def recorded(self) -> dict:
        try:
            return json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return {"members": {}}

    def _record(self, data: dict) -> None:
        self.state_file.write_text(json.dumps(data, indent=1))

    @staticmethod
    def cluster_of(folder: Path) -> Path | None:
        """The cluster state folder `folder` is the shared pod folder of, if it is one."""
        parent = folder.resolve().parent
        return parent if folder.resolve().name == POD_FOLDER and ClusterMembers.holds_cluster(parent) else None

    def member_dir(self, name: str) -> Path:
        return self.members_dir / name

    def config_file(self, name: str) -> Path:
        return self.member_dir(name) / contract.PATRONI_CONFIG_FILE

    def log_file(self, name: str) -> Path:
        return self.member_dir(name) / "patroni.log"

    def data_dir(self, name: str) -> Path:
        return Path(self._mapper(name)(contract.PGDATA))

    # --- prepare -------------------------------------------------------------

    def prepare(self, values: ChartValues, synthesize: Synthesize) -> None:
        """Lay out the shared pod files and write each member's configuration
        (postgres.replicas members). While a member runs, only check that the
        values make the manifests it runs (`up` then starts the missing ones)."""
        members = values.postgres.replicas
        if members < 2:
            known = len(self.recorded()["members"])
            if known:
                raise ClusterError(f"postgres.replicas: {members}, but {self.state} holds a cluster of {known} "
                                   "members: pass its values with --values")
            raise ClusterError(f"postgres.replicas: {members}; a cluster needs at least 2")
        if self.running_members():
            self._check_manifests(values, synthesize)
            return
        self._adopt_single_pod()
        self.state.mkdir(parents=True, exist_ok=True)
        self.state.chmod(0o711)
        # The files every pod mounts: the scripts, Patroni's configuration, the
        # Secrets (generated once, kept after), the certificates.
        self.pod.prepare(values, synthesize)
        documents = {file: yaml.safe_load(self.pod.host_path(f"{contract.PATRONI_CONFIG_DIR}/{file}").read_text())
                     for file in (contract.PATRONI_CONFIG_FILE, contract.PATRONI_BOOTSTRAP_FILE)}
        recorded = self.recorded()
        recorded.setdefault("etcd", {"client_port": free_port(), "peer_port": free_port()})
        names = [f"{contract.STATEFULSET}-{n}" for n in range(members)]
        for name in names:
            ports = recorded["members"].setdefault(name, {"port": free_port(), "api_port": free_port()})
            self.pod._mkdir(self.member_dir(name), 0o755)
            for pod_dir in (contract.DATA_MOUNT, contract.RUN_DIR):
                self.pod._mkdir(Path(self._mapper(name)(pod_dir)))
            member = patroni_config.Member(name=name, host=HOST, listen=HOST, port=ports["port"],
                                           api_port=ports["api_port"])
            local = self._localize(patroni_config.with_member(documents[contract.PATRONI_CONFIG_FILE], member), name)
            # The image's binaries: this machine's, or after `local upgrade` the one folder holding the new major's.
            local["postgresql"]["bin_dir"] = self.pod.bin_path()[0]
            local = patroni_config.with_etcd3(local, [f"{HOST}:{recorded['etcd']['client_port']}"])
            # Beside it, as in the pod's folder: patroni.sh lets only the first member read it.
            bootstrap = self._localize(documents[contract.PATRONI_BOOTSTRAP_FILE], name)
            for file, document in ((contract.PATRONI_CONFIG_FILE, local), (contract.PATRONI_BOOTSTRAP_FILE, bootstrap)):
                self.pod._write(self.member_dir(name) / file, yaml.safe_dump(document, sort_keys=False).encode(), 0o644)
        recorded["members"] = {name: recorded["members"][name] for name in names}
        self._record(recorded)

    def bootstrap_with(self, settings: dict) -> None:
        """The first member initializes the cluster with Patroni's custom bootstrap
        method (`settings`: pgbundle/patroni/restore.py's) instead of initdb."""
        path = self.member_dir(contract.BOOTSTRAP_MEMBER) / contract.PATRONI_BOOTSTRAP_FILE
        document = patroni_restore.with_method(yaml.safe_load(path.read_text()), settings)
        self.pod._write(path, yaml.safe_dump(document, sort_keys=False).encode(), 0o644)

    def running_members(self) -> list[str]:
        """Members with a Patroni or a postmaster running."""
        return [name for name in self.recorded()["members"] if self.patroni_pid(name) or self.postmaster_pid(name)]

    def _check_manifests(self, values: ChartValues, synthesize: Synthesize) -> None:
        """Refuse values that would change what the running members run: in a cluster
        that is a rolling update, here it needs a `down` first."""
        with tempfile.TemporaryDirectory() as scratch:
            synthesize(values, Path(scratch))
            if _files(Path(scratch)) != _files(self.pod.dist):
                raise ClusterError(f"the cluster in {self.state} runs with other manifests than these values make: "
                                   f"run {down_command(self.state)} first")

    def _adopt_single_pod(self) -> None:
        """A single pod's state folder becomes this cluster's, as scaling the StatefulSet
        from 1 does: the data volume becomes postgres-0's (which keeps its claim and
        PGDATA), the other files (Secrets, CA, manifests, log) the shared pod folder's.
        A running pod is refused before anything changes."""
        single = LocalPod(self.state)
        if self.holds_cluster(self.state) or not single.root.exists():
            return
        running = single.pid() or single.postmaster()
        if running is not None:
            raise ClusterError(f"a single pod runs in {self.state} (pid {running}): run {down_command(self.state)} "
                               "first; `local up` with these values then makes its data postgres-0's")
        volume = single.host_path(contract.DATA_MOUNT)
        first = self.member_dir(contract.BOOTSTRAP_MEMBER)
        self.pod._mkdir(first, 0o755)
        if volume.exists():
            volume.rename(first / "data")
        self.pod.state.mkdir()
        self.pod.state.chmod(0o711)  # as LocalPod.prepare makes it: the pod's user must reach root/
        single.pod_file.unlink(missing_ok=True)  # the stopped pod's pid and port
        for entry in single._entries():
            if (self.state / entry).exists():
                (self.state / entry).rename(self.pod.state / entry)

    def _mapper(self, name: str):
        """Pod path -> this machine's path for member `name`: its volume and run
        folder are its own, every other mounted file is shared."""
        own = {contract.DATA_MOUNT: self.member_dir(name) / "data", contract.RUN_DIR: self.member_dir(name) / "run"}

        def map_path(path: str) -> str:
            for pod_dir, host_dir in own.items():
                if path == pod_dir or path.startswith(pod_dir + "/"):
                    return str(host_dir) + path[len(pod_dir):]
            return str(self.pod.host_path(path))

        return map_path

    def _localize(self, config: dict, name: str) -> dict:
        """Every absolute path in `config` mapped for member `name`."""
        map_path = self._mapper(name)

        def walk(node):
            if isinstance(node, dict):
                return {k: walk(v) for k, v in node.items()}
            if isinstance(node, list):
                return [walk(v) for v in node]
            if isinstance(node, str) and node.startswith("/"):
                return map_path(node)
            return node

        return walk(config)

    def environment(self, name: str) -> dict[str, str]:
        """The container's environment for member `name`: paths mapped, its port,
        Patroni, the PostgreSQL binaries and the image's pgBackRest version on PATH (as in the image)."""
        _, container = self.pod._container(self.pod.manifests())
        map_path = self._mapper(name)
        env = {}
        for item in container.get("env", []):
            value = item.get("value")
            if value is None or "$(" in value:
                continue  # the pod's name and addresses: in the member's configuration here
            env[item["name"]] = map_path(value) if value.startswith("/") else value
        env["PATRONI_NAME"] = name  # the pod's name, from the downward API in a cluster
        env[LISTEN_ENV] = HOST
        env[PORT_ENV] = str(self.recorded()["members"][name]["port"])
        env["PG_PATRONI_CONFIG"] = str(self.config_file(name))  # the member's own, mapped
        env["PATH"] = ":".join([str(patroni_venv.VENV / "bin"), *self.pod.bin_path(), pgbackrest_install.bin_dir(),
                                "/usr/local/bin", "/usr/bin", "/bin"])
        env["HOME"] = str(self.member_dir(name))
        env["LANG"] = "C.UTF-8"
        return env

    def server_environment(self, name: str, sidecar: dict) -> dict[str, str]:
        """The `pgbackrest` sidecar's environment for member `name`: the member's, plus
        the server's own settings, paths mapped."""
        map_path = self._mapper(name)
        env = self.environment(name)
        for item in sidecar.get("env", []):
            value = item.get("value")
            if value is not None and "$(" not in value and item["name"] not in env:
                env[item["name"]] = map_path(value) if value.startswith("/") else value
        return env

    # --- recorded processes --------------------------------------------------

    @property
    def _start_script(self) -> Path:
        return self.pod.host_path(f"{contract.SCRIPTS_DIR}/patroni.sh")

    def etcd_pid(self) -> int | None:
        return etcd.pid(self.etcd_dir, self.recorded().get("etcd", {}).get("pid"))

    def patroni_pid(self, name: str) -> int | None:
        pid = self.recorded()["members"].get(name, {}).get("pid")
        # The start script's command line until it execs Patroni, then Patroni's: its
        # configuration file, or for the first member the folder (a whole argument).
        markers = (str(self.config_file(name)), f"{self.member_dir(name)}\0", str(self._start_script))
        return pid if processes.running(pid, *markers) else None

    def pgbackrest_server_pid(self, name: str) -> int | None:
        pid = self.recorded()["members"].get(name, {}).get("pgbackrest_pid")
        return pid if processes.running(pid, "pgbackrest\0server") else None

    def postmaster_pid(self, name: str) -> int | None:
        return processes.postmaster(self.data_dir(name))
