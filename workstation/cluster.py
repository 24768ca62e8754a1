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

State folder:
  pod/                   the local pod runner's state: dist/, root/ (mounted files), pki/
  etcd/                  etcd's data folder and etcd.log
  members/postgres-N/    data/ (the volume), run/ (socket, pgpass), patroni.yaml,
                         bootstrap.yaml, patroni.log
  cluster.json           ports and pids of what runs

`up` starts what is not running: etcd, then every missing member at once, as
the StatefulSet's pod management policy (Parallel) starts pods, so a full stop
comes back as it does in a cluster. On a running cluster it starts the missing
members and rewrites nothing; values that would change the manifests are
refused. A stopped single pod's state folder becomes a cluster's, its data
postgres-0's (the PVC that pod keeps). `status` checks the processes, then
asks Patroni's REST API; `down` stops everything it started, including a
postmaster left behind by a killed Patroni.
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import signal
import ssl
import subprocess
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml

from pgbundle import contract
from pgbundle.patroni import config as patroni_config
from pgbundle.pgconf.env import LISTEN_ENV, PORT_ENV
from pgbundle.values.models import ChartValues
from workstation import etcd, patroni_venv, processes
from workstation.localpod import HOST, HOST_NAME, LocalPod, LocalPodError, Synthesize, free_port


class ClusterError(LocalPodError):
    """The local cluster cannot be started, inspected or stopped; the message says why."""


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


@dataclass(frozen=True)
class MemberStatus:
    name: str
    host: str
    port: int
    api_port: int
    role: str | None
    """leader, sync_standby or replica (Patroni's words); None when its Patroni does not run
    or the DCS does not list it."""
    state: str
    """Patroni's word (running, streaming, starting...) while its Patroni runs; else
    stopped, or orphaned when its postmaster outlived Patroni."""
    timeline: int | None
    lag: int | None
    """Bytes behind the leader (replicas)."""
    patroni_pid: int | None
    postmaster_pid: int | None


POD_FOLDER = "pod"


def down_command(state: Path) -> str:
    return f"`local down --state {shlex.quote(str(state))}`"


def _files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.glob("*.yaml"))}


def _leader(members: list[MemberStatus]) -> MemberStatus | None:
    return next((m for m in members if m.role == "leader" and m.state == "running"), None)


def _cluster_state(members: list[MemberStatus]) -> str:
    """ready (a leader, every other member streaming), degraded (a leader), starting
    (a Patroni runs), orphaned (only postmasters run) or stopped."""
    leader = _leader(members)
    if leader is not None:
        return "ready" if all(m.state == "streaming" for m in members if m is not leader) else "degraded"
    if any(m.patroni_pid for m in members):
        return "starting"
    return "orphaned" if any(m.postmaster_pid for m in members) else "stopped"


def _wait(condition, timeout: float, what: str, interval: float = 0.2):
    return processes.wait(condition, timeout, what, error=ClusterError, interval=interval)


class LocalCluster:
    """An etcd and Patroni members living in a state folder."""

    def __init__(self, state: Path) -> None:
        self.state = state.resolve()
        self.pod = PrimaryPod(self.state / POD_FOLDER, self)
        self.etcd_dir = self.state / "etcd"
        self.members_dir = self.state / "members"
        self.state_file = self.state / "cluster.json"

    # --- recorded state --------------------------------------------------------

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
        return parent if folder.resolve().name == POD_FOLDER and LocalCluster.holds_cluster(parent) else None

    def member_dir(self, name: str) -> Path:
        return self.members_dir / name

    def config_file(self, name: str) -> Path:
        return self.member_dir(name) / contract.PATRONI_CONFIG_FILE

    def log_file(self, name: str) -> Path:
        return self.member_dir(name) / "patroni.log"

    def data_dir(self, name: str) -> Path:
        return Path(self._mapper(name)(contract.PGDATA))

    # --- prepare ---------------------------------------------------------------

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
        Patroni and the PostgreSQL binaries on PATH (as in the image)."""
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
        env["PATH"] = ":".join([str(patroni_venv.VENV / "bin"), *self.pod.bin_path(),
                                "/usr/local/bin", "/usr/bin", "/bin"])
        env["HOME"] = str(self.member_dir(name))
        env["LANG"] = "C.UTF-8"
        return env

    # --- processes ---------------------------------------------------------------

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

    def postmaster_pid(self, name: str) -> int | None:
        return processes.postmaster(self.data_dir(name))

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
        return process.pid

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
            if _cluster_state(members) == "ready":
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

    # --- REST API ----------------------------------------------------------------

    def _ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.pod.sslrootcert))

    def api(self, name: str, path: str, method: str = "GET", body: dict | None = None,
            timeout: float = 2) -> tuple[int, dict | str]:
        """Call member `name`'s REST API over TLS (basic auth for unsafe methods)."""
        port = self.recorded()["members"][name]["api_port"]
        request = urllib.request.Request(f"https://{HOST}:{port}{path}", method=method,
                                         data=json.dumps(body).encode() if body is not None else None)
        if method != "GET":
            token = base64.b64encode(f"{patroni_config.Users().restapi}:{self.api_password()}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=self._ssl_context()) as response:
                status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as err:
            status, text = err.code, err.read().decode()
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def api_password(self) -> str:
        return (self.pod.host_path(contract.SECRETS_DIR) / contract.PATRONI_API_PASSWORD_KEY).read_text().strip()

    def patronictl(self, *args: str, timeout: float | None = 120, answers: str | None = None,
                   capture: bool = True) -> subprocess.CompletedProcess:
        """Run patronictl against the cluster, as `kubectl exec ... patronictl` does in a pod:
        with a member's configuration and the REST API password it reads from the
        environment; `answers` are typed at its prompts (`local patronictl` passes
        the terminal through: capture=False)."""
        members = self.recorded()["members"]
        if not members:
            raise ClusterError(f"{self.state} holds no cluster: run `local up` with values of postgres.replicas >= 2")
        env = {**os.environ, patroni_config.PASSWORD_ENV["restapi"]: self.api_password()}
        return subprocess.run([str(patroni_venv.PATRONICTL), "-c", str(self.config_file(next(iter(members)))), *args],
                              env=env, input=answers, capture_output=capture, text=True, timeout=timeout)

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

    def status(self) -> list[MemberStatus]:
        """Every member: its processes, and while its Patroni runs, what Patroni's
        /cluster says of it (asked of the first running member that answers). The
        DCS names a killed leader until its lock expires: the processes decide."""
        recorded = self.recorded()["members"]
        pids = {name: (self.patroni_pid(name), self.postmaster_pid(name)) for name in recorded}
        cluster: dict = {}
        for name in recorded:
            if pids[name][0] is None:
                continue
            try:
                code, body = self.api(name, "/cluster")
            except OSError:
                continue
            if code == 200 and isinstance(body, dict):
                cluster = {m["name"]: m for m in body.get("members", [])}
                break
        result = []
        for name, ports in recorded.items():
            patroni, postmaster = pids[name]
            seen = cluster.get(name, {}) if patroni is not None else {}
            if patroni is not None:
                state = seen.get("state", "starting")  # running, but not (yet) in the DCS
            else:
                state = "stopped" if postmaster is None else "orphaned"
            lag = seen.get("lag")
            result.append(MemberStatus(
                name=name, host=HOST, port=ports["port"], api_port=ports["api_port"],
                role=seen.get("role"), state=state, timeline=seen.get("timeline"),
                lag=lag if isinstance(lag, int) else None, patroni_pid=patroni, postmaster_pid=postmaster,
            ))
        return result

    def summary(self) -> dict:
        """`local status` for a cluster: the single pod's keys (state, and the pid and
        port of the leader, as clients reach it) plus every member."""
        members = self.status()
        leader = _leader(members)
        return {"state": _cluster_state(members), "pid": leader.patroni_pid if leader else None,
                "port": leader.port if leader else None, "members": [member.__dict__ for member in members]}

    def leader(self) -> MemberStatus | None:
        return _leader(self.status())

    # --- connection details ------------------------------------------------------

    def dsn_all(self) -> str:
        """A libpq connection string over every member that reaches whichever accepts writes."""
        members = self.recorded()["members"].values()
        # The name the certificate holds, the address to connect to (as the single pod's dsn).
        return (f"host={','.join(HOST_NAME for _ in members)} hostaddr={','.join(HOST for _ in members)} "
                f"port={','.join(str(m['port']) for m in members)} "
                f"dbname={self.pod.environment()['PG_DATABASE']} target_session_attrs=read-write "
                f"sslmode=verify-full sslrootcert={self.pod.sslrootcert} connect_timeout=2")

    def connection_info(self) -> dict:
        """The single pod's keys (host, port = the leader, database, sslrootcert, passwords,
        dsn per role and DATABASE_URL to the leader) plus every member and a connection string over all of them."""
        members = self.status()
        leader = next((m for m in members if m.role == "leader"), None)
        info = self.pod.connection_info(port=leader.port if leader is not None else None)
        info["members"] = [
            {"name": m.name, "host": m.host, "port": m.port, "api_port": m.api_port, "role": m.role,
             "patroni_pid": m.patroni_pid, "postmaster_pid": m.postmaster_pid} for m in members
        ]
        info["dsn_all"] = self.dsn_all()
        return info

    # --- faults and shutdown -----------------------------------------------------

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
                                (self.postmaster_pid(name), signal.SIGINT, False)):
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

