"""Run the synthesized database pod on this machine's PostgreSQL binaries.

`python main.py local up --state DIR` synthesizes the values into DIR/dist,
reads the StatefulSet and ConfigMaps from that YAML, lays their files and the
Secrets a cluster would hold out at the pod's mount paths under DIR/root, and
runs the pod's own start script with the pod's environment (paths remapped
under DIR/root, listening on localhost) as the `postgres` system user.

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

Secret files that exist are kept, so a state folder can be restarted with its
data, and a test can rotate a password by replacing its file before `up`; a
key the values need and the folder lacks is added. A restarted state keeps the
port it had unless `--port` names another.

With `--secrets DIR` (the manifests `secrets generate` wrote) the runner uses
those Secrets instead of its own, laid out as the kubelet does (items, modes,
`..data` symlink; workstation/localsecrets.py), rewritten at every `up`;
`local sync-secrets` re-projects them into a running pod as the kubelet does
when a Secret changes.
"""

from __future__ import annotations

import json
import os
import pwd
import urllib.parse
import shutil
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from chart.output import OutputError, check_replaceable
from pgbundle import contract
from pgbundle.manifests import ManifestError, Manifests, container
from pgbundle.pgconf.env import LISTEN_ENV, PORT_ENV
from pgbundle.pgconf.pgbackrest import SERVER_ADDRESS_ENV, SERVER_PORT_ENV
from pgbundle.values.models import ChartValues
from workstation import localsecrets, pki, processes

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
POOLER_FILES = {"pooler.json", "pooler.log"}


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


class LocalPod:
    """One local database pod living in a state folder."""

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

    def host_path(self, pod_path: str) -> Path:
        """Where a path inside the pod lives in the state folder."""
        return self.root / pod_path.lstrip("/")

    def host_environment(self, container: dict) -> dict[str, str]:
        """A container's environment with every absolute path mapped into the state folder
        (values the kubelet fills in from the pod, `valueFrom`, are left out)."""
        return {item["name"]: self._host_value(item["value"]) for item in container.get("env", []) if "value" in item}

    def host_command(self, container: dict) -> list[str]:
        """A container's command with every absolute path mapped into the state folder."""
        return [self._host_value(part) for part in container["command"]]

    def _host_value(self, value: str) -> str:
        return str(self.host_path(value)) if value.startswith("/") else value

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

    def environment(self) -> dict[str, str]:
        """The container's environment with paths mapped into the state folder,
        listening on localhost at the recorded port, and PATH leading to the
        local PostgreSQL binaries (as in the image)."""
        _, main = self._container(self.manifests())
        env = self.host_environment(main)
        env[LISTEN_ENV] = LISTEN
        env[PORT_ENV] = str(self.recorded().get("port") or env[PORT_ENV])
        env["PATH"] = ":".join([*self.bin_path(), "/usr/local/bin", "/usr/bin", "/bin"])
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

    # --- prepare -------------------------------------------------------------

    def prepare(self, values: ChartValues, synthesize: Synthesize, secrets_dir: Path | None = None) -> None:
        """Synthesize the values and lay the pod's volumes out under root/.

        ConfigMap files are rewritten; Secret files are generated only when missing,
        or, with `secrets_dir`, projected from the Secret manifests there.
        """
        self._refuse_if_running()
        try:
            check_replaceable(self.state, self._entries(), option="--state", what="`local up`", action="use")
            check_replaceable(self.dist, contract.CHART_FILES, option="--state", what="a synth", action="use")
        except OutputError as err:
            raise LocalPodError(str(err)) from None
        if not self.state.exists():
            self.state.mkdir(parents=True)
            self.state.chmod(0o711)  # only a folder made here: the pod's user must reach root/
        self._check_reachable()
        synthesize(values, self.dist)
        manifests = self.manifests()
        pod, main = self._container(manifests)
        volumes = {v["name"]: v for v in pod["volumes"]}
        secrets = self._secret_sources(values)
        for mount in main["volumeMounts"]:
            volume = volumes.get(mount["name"], {})  # volumeClaimTemplates are not in volumes
            target = self.host_path(mount["mountPath"])
            if "configMap" in volume:
                config_map = manifests.get("ConfigMap", volume["configMap"]["name"])
                if target.exists():
                    shutil.rmtree(target)
                self._mkdir(target, 0o755)
                for key, text in config_map["data"].items():
                    self._write(target / key, text.encode(), volume["configMap"]["defaultMode"])
            elif "secret" in volume:
                self._mkdir(target, 0o755)
                if secrets_dir is None:
                    self._fill_secret(target, secrets[volume["secret"]["secretName"]])
            else:  # emptyDir or persistent volume claim
                self._mkdir(target)
        if secrets_dir is not None:
            self.sync_secrets(secrets_dir)

    def _secret_sources(self, values: ChartValues) -> dict[str, Callable[[], dict[str, bytes]]]:
        """For each Secret name, a function producing its files (called only for an empty folder)."""
        pg = values.postgres

        def passwords() -> dict[str, bytes]:
            keys = contract.password_keys(temporal=True, metrics=True, ha=pg.replicas > 1, pooler=True,
                                          cipher=pg.pitr.cipher)
            return {key: pki.random_password().encode() for key in keys}

        def tls() -> dict[str, bytes]:
            pair = pki.server_certificate(self._ca(), contract.service_names(values.global_.namespace), [HOST, "::1"])
            return {contract.TLS_CERT_FILE: pair.cert_pem, contract.TLS_KEY_FILE: pair.key_pem}

        def ca() -> dict[str, bytes]:
            return {contract.CA_CERT_FILE: self._ca().cert_pem}

        def supplied(name: str) -> Callable[[], dict[str, bytes]]:
            # Credentials of outside storage cannot be invented here.
            def refuse() -> dict[str, bytes]:
                raise LocalPodError(f"the Secret {name} (pitr.repos.s3) is not something the runner can make: "
                                    f"pass --secrets DIR with a Secret manifest named {name} in it")
            return refuse

        sources = {pg.secrets.existing_secret: passwords, pg.tls.existing_secret: tls, pg.ca.existing_secret: ca}
        s3 = pg.pitr.repos.s3
        for name in (s3.existing_secret, s3.ca_secret):
            if name is not None:
                sources[name] = supplied(name)
        return sources

    def _fill_secret(self, folder: Path, source: Callable[[], dict[str, bytes]]) -> None:
        # Files that exist are kept (a restart keeps its passwords, a test may have
        # replaced one); only keys that are missing, such as a new role's, are written.
        for key, data in source().items():
            if not (folder / key).exists():
                self._write(folder / key, data, 0o600)

    def sync_secrets(self, secrets_dir: Path) -> None:
        """Project the Secret manifests in `secrets_dir` into every Secret volume, as
        the kubelet does (also while the pod runs); the generated CA becomes the
        runner's (sslrootcert, client certificates)."""
        try:
            manifests = localsecrets.read_manifests(secrets_dir)
            pod, main = self._container(self.manifests())
            volumes = {v["name"]: v for v in pod["volumes"]}
            for mount in main["volumeMounts"]:
                source = volumes.get(mount["name"], {}).get("secret")
                if source is not None:
                    files = localsecrets.payload(source, manifests)
                    localsecrets.project(self.host_path(mount["mountPath"]), files, gid=self.gid)
        except localsecrets.SecretVolumeError as err:
            raise LocalPodError(str(err)) from None
        self.pki.mkdir(mode=0o700, exist_ok=True)
        for name in ("ca.key", "ca.crt"):
            source, target = secrets_dir / name, self.pki / name
            if source.exists():
                if name == "ca.key" and target.exists() and target.read_bytes() != source.read_bytes():
                    shutil.rmtree(self.clients_dir, ignore_errors=True)  # signed by the CA replaced here
                shutil.copyfile(source, target)
                target.chmod(0o600 if name == "ca.key" else 0o644)

    def _ca(self) -> pki.KeyPair:
        key, cert = self.pki / "ca.key", self.pki / "ca.crt"
        if not key.exists():
            self.pki.mkdir(mode=0o700, exist_ok=True)
            pair = pki.new_ca("postgres-local-ca")
            write_private(key, pair.key_pem)
            cert.write_bytes(pair.cert_pem)
            cert.chmod(0o644)
        return pki.KeyPair(key.read_bytes(), cert.read_bytes())

    def client_certificate(self, user: str) -> tuple[Path, Path]:
        """Files (certificate, key) of a client certificate for `user`, signed by the pod's CA."""
        pair = pki.client_certificate(self._ca(), user)
        cert, key = self.pki / f"{user}.crt", self.pki / f"{user}.key"
        cert.write_bytes(pair.cert_pem)
        write_private(key, pair.key_pem)  # libpq refuses a key others can read
        return cert, key

    @property
    def clients_dir(self) -> Path:
        return self.pki / "clients"

    def login_certificate(self, role: str) -> tuple[Path, Path]:
        """(certificate, key) of `role`'s client certificate for users of the pod,
        issued from the pod's CA when missing."""
        cert, key = self.clients_dir / f"{role}.crt", self.clients_dir / f"{role}.key"
        if not (cert.exists() and key.exists()):
            self.clients_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            pair = pki.client_certificate(self._ca(), role)
            write_private(key, pair.key_pem)  # libpq refuses a key others can read
            cert.write_bytes(pair.cert_pem)
        return cert, key

    # --- run -----------------------------------------------------------------

    def recorded(self) -> dict:
        try:
            return json.loads(self.pod_file.read_text())
        except FileNotFoundError:
            return {}

    def pid(self) -> int | None:
        """The running start script's pid, or None."""
        pid = self.recorded().get("pid")
        if pid is None:
            return None
        if self._process is not None and self._process.pid == pid:
            return pid if self._process.poll() is None else None
        return pid if processes.running(pid, str(self.host_path(contract.SCRIPTS_DIR))) else None

    def postmaster(self) -> int | None:
        """The pid of a server running on this state's data, with or without its start script."""
        return processes.postmaster(self.host_path(contract.PGDATA))

    def leftovers(self) -> list[int]:
        """Live processes the pod started (they inherit its PGDATA), the server included."""
        marker = f"PGDATA={self.host_path(contract.PGDATA)}".encode()
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if marker in (entry / "environ").read_bytes().split(b"\0"):
                        found.append(int(entry.name))
                except OSError:  # gone meanwhile, or a zombie
                    continue
        return found

    def _refuse_if_running(self) -> None:
        if self.pid() is not None:
            raise LocalPodError(f"already running (pid {self.pid()}): run `local down --state {self.state}` first")
        server = self.postmaster()
        if server is not None:
            raise LocalPodError(
                f"a server still runs on {self.state} (pid {server}) although its start script is gone: "
                f"run `local down --state {self.state}` first")

    def run(self, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
        """Run a command as the pod's user with the pod's environment (e.g. a pod script)."""
        return subprocess.run(argv, env=self.environment(), cwd=self.state, **self.user_options(), **kwargs)

    def user_options(self) -> dict:
        """subprocess options that run a command as the pod's user."""
        if self.uid == os.geteuid():
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def probe(self, kind: str) -> bool:
        script = self.host_path(f"{contract.SCRIPTS_DIR}/probe.sh")
        return self.run(["bash", str(script), kind], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0

    def start(self, port: int | None = None, timeout: float = 120) -> dict:
        """Start the pod's start script and wait until the readiness probe passes.

        The port: `port`, else the one this state had before (clients keep their
        connection strings across restarts), else a free one."""
        self._refuse_if_running()
        port = port or self.recorded().get("port")
        if port is None:
            port = free_port()
        elif not port_is_free(port):
            raise LocalPodError(f"port {port} on {HOST} is in use: stop what listens there, or pass --port")
        self.pod_file.write_text(json.dumps({"port": port}))
        env = self.environment()
        _, main = self._container(self.manifests())
        command = self.host_command(main)
        with open(self.log_file, "ab") as log:
            # The server reopens its stderr through /dev/stderr (the jsonlog symlink): it must own the file.
            os.chown(self.log_file, self.uid, self.gid)
            self._process = subprocess.Popen(
                command, env=env, cwd=self.state, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True, **self.user_options(),
            )
        self.pod_file.write_text(json.dumps({"pid": self._process.pid, "port": int(env[PORT_ENV])}))
        deadline = time.monotonic() + timeout
        while not self.probe("ready"):
            if self._process.poll() is not None:
                raise LocalPodError(
                    f"the start script exited with status {self._process.returncode}; log {self.log_file}:\n"
                    + self.log_tail()
                )
            if time.monotonic() > deadline:
                raise LocalPodError(f"not ready after {timeout:.0f}s; log {self.log_file}:\n" + self.log_tail())
            time.sleep(0.2)
        server_port = self._start_pgbackrest_server()
        if server_port is not None:
            self.pod_file.write_text(json.dumps({**self.recorded(), "pgbackrest_port": server_port}))
        return self.connection_info()

    def _start_pgbackrest_server(self, timeout: float = 30) -> int | None:
        """The `pgbackrest` sidecar (PITR) as the StatefulSet runs it, on 127.0.0.1 at
        a free port: the backup jobs' way to the data. Its environment holds PGDATA,
        so `stop` ends it with the pod's other processes. None without PITR."""
        pod, _ = self._container(self.manifests())
        sidecars = [c for c in pod["containers"] if c["name"] == contract.PGBACKREST_SERVER_CONTAINER]
        if not sidecars:
            return None
        port = free_port()
        env = {**self.host_environment(sidecars[0]), SERVER_ADDRESS_ENV: HOST, SERVER_PORT_ENV: str(port),
               "PATH": self.environment()["PATH"]}
        with open(self.server_log_file, "ab") as log:
            server = subprocess.Popen(self.host_command(sidecars[0]), env=env, cwd=self.state, stdin=subprocess.DEVNULL,
                                      stdout=log, stderr=log, start_new_session=True, **self.user_options())

        def answers() -> bool:
            if server.poll() is not None:
                log = self.server_log_file.read_text(errors="replace").splitlines()[-20:]
                raise LocalPodError(f"pgbackrest server exited with status {server.returncode}; log "
                                    f"{self.server_log_file}:\n" + "\n".join(log))
            return subprocess.run(["pgbackrest", "server-ping", "localhost"], env=env, cwd=self.state,
                                  capture_output=True, **self.user_options()).returncode == 0

        processes.wait(answers, timeout, "pgbackrest server answering", error=LocalPodError)
        return port

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])

    def connection_info(self, port: int | None = None) -> dict:
        """How to reach the database (at `port`, default the pod's): host (a name the
        server certificate holds) and hostaddr, port, database, CA file, every login
        role's password, with ca.verifyClients its client certificate, and per role a
        ready libpq connection string (`dsn`); DATABASE_URL is the application role's."""
        env = self.environment()
        secrets_dir = Path(env["PG_SECRETS_DIR"])
        keys = {SUPERUSER: contract.SUPERUSER_PASSWORD_KEY}
        for var, key in contract.ROLE_PASSWORD_KEYS.items():
            if var not in contract.OPTIONAL_ROLES or env[contract.OPTIONAL_ROLES[var]] == "on":
                keys[env[var]] = key
        passwords = {role: (secrets_dir / key).read_text().strip() for role, key in keys.items()}
        info = {
            "host": HOST_NAME,
            "hostaddr": HOST,
            "port": port or int(env[PORT_ENV]),
            "database": env["PG_DATABASE"],
            "sslrootcert": str(self.sslrootcert),
            "passwords": passwords,
        }
        # The owner is NOLOGIN (init.sql): the migration role acts as it.
        logins = [role for role in passwords if role != env["PG_OWNER_USER"]]
        tls = {"sslmode": "verify-full", "sslrootcert": info["sslrootcert"]} if "PG_TLS_DIR" in env \
            else {"sslmode": "disable"}
        per_role = {role: dict(tls) for role in logins}
        if "PG_CA_DIR" in env and (self.pki / "ca.key").exists():
            certificates = {}
            for role in logins:
                cert, key = self.login_certificate(role)
                certificates[role] = {"sslcert": str(cert), "sslkey": str(key)}
                per_role[role].update(certificates[role])
            info["client_certificates"] = certificates
        # The Temporal role may connect only to Temporal's databases; every other role to the application's.
        databases = {env["PG_TEMPORAL_USER"]: contract.TEMPORAL_DATABASES[0]}
        info["dsn"] = {role: _dsn({"host": HOST_NAME, "hostaddr": HOST, "port": str(info["port"]),
                                   "dbname": databases.get(role, info["database"]), "user": role,
                                   "password": passwords[role], **per_role[role]})
                       for role in logins}
        app = env["PG_APP_USER"]
        info["DATABASE_URL"] = (f"postgresql://{urllib.parse.quote(app, safe='')}:"
                                f"{urllib.parse.quote(passwords[app], safe='')}@{HOST_NAME}:{info['port']}/"
                                f"{urllib.parse.quote(info['database'], safe='')}?"
                                + urllib.parse.urlencode({"hostaddr": HOST, **per_role[app]}))
        return info

    def stop(self, timeout: float = 60) -> int | None:
        """SIGTERM to the start script (a fast shutdown) and wait for it to exit. A
        server whose start script died (kill -9) gets PostgreSQL's fast shutdown
        itself, and what else that script had started is ended too.

        Returns the start script's exit status when this object started it, else None."""
        deadline = time.monotonic() + timeout

        def wait_for(gone: Callable[[], bool], what: str) -> None:
            while not gone():
                if time.monotonic() > deadline:
                    raise LocalPodError(f"{what} still running {timeout:.0f}s after the signal; log {self.log_file}")
                time.sleep(0.1)

        status = None
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            wait_for(lambda: self.pid() is None, f"pid {pid}")
            status = self._process.wait() if self._process is not None else None
        server = self.postmaster()
        if server is not None:
            os.kill(server, signal.SIGINT)  # PostgreSQL's fast shutdown
            wait_for(lambda: self.postmaster() is None, f"the server (pid {server})")
        for leftover in self.leftovers():
            try:
                os.kill(leftover, signal.SIGTERM)
            except ProcessLookupError:
                pass
        wait_for(lambda: not self.leftovers(), "a process of the pod")
        return status

    def status(self) -> dict:
        pid = self.pid()
        if pid is not None:
            state = "ready" if self.probe("ready") else "starting"
        else:
            # A server whose start script died: `down` stops it.
            pid = self.postmaster()
            state = "stopped" if pid is None else "orphaned"
        return {"state": state, "pid": pid, "port": self.recorded().get("port")}


def _dsn(parameters: dict[str, str]) -> str:
    """A libpq keyword/value connection string; a value with a space, quote or
    backslash (a state path may hold one) is quoted as libpq reads it."""
    def quote(value: str) -> str:
        if value and not any(c in value for c in " '\\"):
            return value
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return " ".join(f"{key}={quote(value)}" for key, value in parameters.items())
