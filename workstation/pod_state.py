"""The local pod's state folder: where each of its files lives, the pod paths mapped into
it, the manifests `local up` synthesized there and the container's environment read from them.

State folder:
  dist/      the synthesized manifests
  root/      the pod's file system: root/etc/postgres/secrets/..., root/var/lib/postgresql/data/...
  pki/       the CA (its key never enters the pod) and a client certificate
  pod.log    the start script's stdout and stderr (the container log)
  pod.json   pid and port of the running start script
  values.json  the values file `local up` used: later commands read it (workstation/cli.py)
  pki/clients/ROLE.crt, ROLE.key  with ca.verifyClients: each login role's client
             certificate from the pod's CA, issued when missing, printed by `up`
  server.json, postgres/  after `local upgrade`: the state's PostgreSQL major and the
             folder of the binaries it runs on, postgres/bin
             (workstation/upgrade_local.py); without them, this
             machine's PostgreSQL (pg_config)
"""

from __future__ import annotations

import json
import os
import pwd
import socket
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

from pgbundle import contract
from pgbundle.manifests import ManifestError, Manifests, container
from pgbundle.pgconf.env import LISTEN_ENV, PORT_ENV
from pgbundle.values.models import ChartValues
from workstation import pgbackrest_install

HOST = "127.0.0.1"
# The name clients verify the server certificate against: both the runner's own
# certificate and the ones `secrets generate` and cert-manager make hold it
# (contract.server_dns_names), none of them need hold the address.
HOST_NAME = "localhost"
# Where the local processes listen: every address `localhost` resolves to, so a
# client that connects by that name alone (PgBouncer: no hostaddr, it uses each
# address the name resolves to in turn) reaches them on ::1 as on 127.0.0.1.
LISTEN = HOST_NAME
RUN_USER = "postgres"  # PostgreSQL refuses to run as root; pg_hba.conf admits this OS user as superuser
SUPERUSER = "postgres"
Synthesize = Callable[[ChartValues, Path], None]
# What LocalPooler (localpooler.py) keeps in the state folder: a state with the pooler on restarts.
# The read-only pooler's pod has its own root folder (its mount paths are the main pooler's).
POOLER_FILES = {"pooler.json", "pooler.log", "pooler-ro.json", "pooler-ro.log", "root-pooler-ro"}


class LocalPodError(Exception):
    """The local pod cannot be prepared, started or stopped; the message says why."""


def postgres_bindir() -> str:
    try:
        found = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        raise LocalPodError("pg_config not found: install PostgreSQL (apt-get install postgresql)") from None
    if not Path(found, "postgres").exists():
        raise LocalPodError(f"{found}/postgres not found: install the PostgreSQL server (apt-get install postgresql)")
    return found


def write_private(path: Path, data: bytes) -> None:
    """Write a file that nobody but its owner can read, not even for a moment."""
    path.unlink(missing_ok=True)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as file:
        file.write(data)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        # As the server binds: a port left in TIME_WAIT by the previous run is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
        return True


class PodState:
    """A local pod's state folder: its files, the manifests in it, what was recorded."""

    def __init__(self, state: Path) -> None:
        self.state = state.resolve()
        self.dist = self.state / "dist"
        self.root = self.state / "root"
        self.pki = self.state / "pki"
        self.log_file = self.state / "pod.log"
        # The `pgbackrest` sidecar's own log, as a cluster keeps each container's apart.
        self.server_log_file = self.state / "pgbackrest-server.log"
        self.pod_file = self.state / "pod.json"
        self.values_record = self.state / "values.json"
        self.server_file = self.state / "server.json"
        self.server_dir = self.state / "postgres"
        self._process: subprocess.Popen | None = None
        if os.geteuid() == 0:
            user = pwd.getpwnam(RUN_USER)
            self.uid, self.gid = user.pw_uid, user.pw_gid
        else:
            self.uid, self.gid = os.geteuid(), os.getegid()
            if pwd.getpwuid(self.uid).pw_name != RUN_USER:
                # pg_hba.conf lets only the postgres OS user in as the superuser over the socket (peer).
                raise LocalPodError(f"run as root (the pod then runs as {RUN_USER}) or as the {RUN_USER} user")

    # --- paths ---------------------------------------------------------------

    def _entries(self) -> set[str]:
        """What a state folder holds: another folder is refused, not taken over."""
        return {p.name for p in (self.dist, self.root, self.pki, self.log_file, self.server_log_file, self.pod_file,
                                 self.server_file, self.server_dir, self.values_record)} | POOLER_FILES

    def host_path(self, pod_path: str, root: Path | None = None) -> Path:
        """Where a path inside the pod lives in the state folder (`root`: another
        pod's root folder than this one's, as the read-only pooler's)."""
        return (root or self.root) / pod_path.lstrip("/")

    def host_environment(self, container: dict, root: Path | None = None) -> dict[str, str]:
        """A container's environment with every absolute path mapped into the state folder
        (values the kubelet fills in from the pod, `valueFrom`, are left out)."""
        return {item["name"]: self._host_value(item["value"], root) for item in container.get("env", [])
                if "value" in item}

    def host_command(self, container: dict, root: Path | None = None) -> list[str]:
        """A container's command with every absolute path mapped into the state folder."""
        return [self._host_value(part, root) for part in container["command"]]

    def _host_value(self, value: str, root: Path | None) -> str:
        return str(self.host_path(value, root)) if value.startswith("/") else value

    @property
    def sslrootcert(self) -> Path:
        return self.pki / "ca.crt"

    def _own(self, path: Path, mode: int) -> None:
        os.chown(path, self.uid, self.gid)
        path.chmod(mode)

    def _mkdir(self, path: Path, mode: int = 0o700) -> None:
        created = []
        while not path.exists():
            created.append(path)
            path = path.parent
        for folder in reversed(created):
            folder.mkdir()
            self._own(folder, mode)

    def _write(self, path: Path, data: bytes, mode: int) -> None:
        self._mkdir(path.parent, 0o755)
        write_private(path, data)
        self._own(path, mode)

    def _check_reachable(self) -> None:
        """The pod's user must be able to walk down to the state folder."""
        if self.uid == os.geteuid():
            return
        for folder in [self.state, *self.state.parents]:
            mode = folder.stat().st_mode
            if folder.stat().st_uid != self.uid and not mode & stat.S_IXOTH:
                raise LocalPodError(
                    f"{folder} is not searchable by the {RUN_USER} user (mode {stat.filemode(mode)}): "
                    "choose a state folder below world-searchable folders, or chmod o+x it"
                )

    # --- the values file -----------------------------------------------------

    def remember_values(self, path: Path) -> None:
        self.values_record.write_text(json.dumps({"values": str(path.resolve())}))

    def remembered_values(self) -> Path | None:
        """The values file `local up` last used here, while it exists."""
        try:
            path = Path(json.loads(self.values_record.read_text())["values"])
        except FileNotFoundError:
            return None
        return path if path.exists() else None

    # --- manifests -----------------------------------------------------------

    def manifests(self) -> Manifests:
        """The objects `local up` synthesized into the state folder."""
        if not self.dist.is_dir():
            raise LocalPodError(f"{self.dist} does not exist: run `local up` with values first")
        return Manifests(self.dist)

    def _container(self, manifests: Manifests) -> tuple[dict, dict]:
        try:
            pod = manifests.get("StatefulSet", contract.STATEFULSET)["spec"]["template"]["spec"]
            return pod, container(pod, contract.CONTAINER)
        except ManifestError as err:
            raise LocalPodError(str(err)) from None

    def recorded(self) -> dict:
        try:
            return json.loads(self.pod_file.read_text())
        except FileNotFoundError:
            return {}

    def environment(self) -> dict[str, str]:
        """The container's environment with paths mapped into the state folder,
        listening on localhost at the recorded port, and PATH leading to the
        local PostgreSQL binaries and the image's pgBackRest version (as in the image)."""
        _, main = self._container(self.manifests())
        env = self.host_environment(main)
        env[LISTEN_ENV] = LISTEN
        env[PORT_ENV] = str(self.recorded().get("port") or env[PORT_ENV])
        env["PATH"] = ":".join([*self.bin_path(), pgbackrest_install.bin_dir(), "/usr/local/bin", "/usr/bin", "/bin"])
        return env

    def _server(self) -> dict:
        try:
            return json.loads(self.server_file.read_text())
        except FileNotFoundError:
            return {}

    def bin_path(self) -> list[str]:
        """The folders of the PostgreSQL binaries this state runs on: those `local upgrade`
        recorded, else the machine's."""
        return self._server().get("path") or [postgres_bindir()]
