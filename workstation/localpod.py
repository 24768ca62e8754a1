"""Run the synthesized database pod on this machine's PostgreSQL binaries.

`python main.py local up --state DIR` synthesizes the values into DIR/dist,
reads the StatefulSet and ConfigMaps from that YAML, lays their files and the
Secrets a cluster would hold out at the pod's mount paths under DIR/root, and
runs the pod's own start script with the pod's environment (paths remapped
under DIR/root, listening on localhost) as the `postgres` system user.

Its state folder: pod_state.py; how clients reach it: pod_clients.py.

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
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from chart.output import OutputError, check_replaceable
from pgbundle import contract
from pgbundle.pgconf.env import PORT_ENV
from pgbundle.pgconf.pgbackrest import SERVER_ADDRESS_ENV, SERVER_PORT_ENV
from pgbundle.values.models import ChartValues
from workstation import localsecrets, pki, processes
from workstation.pod_clients import PodClients
from workstation.pod_state import HOST, LocalPodError, Synthesize, free_port, port_is_free


class LocalPod(PodClients):
    """One local database pod living in a state folder: laying its files out, running it."""

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

    # --- run -----------------------------------------------------------------

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

    def run(self, argv: list[str], extra_env: dict[str, str] | None = None, **kwargs) -> subprocess.CompletedProcess:
        """Run a command as the pod's user with the pod's environment (e.g. a pod script), plus `extra_env`."""
        return subprocess.run(argv, env={**self.environment(), **(extra_env or {})}, cwd=self.state,
                              **self.user_options(), **kwargs)

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

    def _start_pgbackrest_server(self) -> int | None:
        """The `pgbackrest` sidecar (PITR) as the StatefulSet runs it, on 127.0.0.1 at
        a free port: the backup jobs' way to the data. Its environment holds PGDATA,
        so `stop` ends it with the pod's other processes. None without PITR."""
        sidecar = self.pgbackrest_sidecar()
        if sidecar is None:
            return None
        _, port = self.start_pgbackrest_server(sidecar, self.host_environment(sidecar), self.server_log_file, self.state)
        return port

    def pgbackrest_sidecar(self) -> dict | None:
        """The pod's `pgbackrest` container (PITR), or None."""
        pod, _ = self._container(self.manifests())
        return next((c for c in pod["containers"] if c["name"] == contract.PGBACKREST_SERVER_CONTAINER), None)

    def start_pgbackrest_server(self, sidecar: dict, environment: dict[str, str], log_path: Path, cwd: Path,
                                timeout: float = 30) -> tuple[subprocess.Popen, int]:
        """Run `sidecar` with `environment` (its paths mapped) on loopback at a free port,
        as the pod's user, until it answers: (its process, its port)."""
        port = free_port()
        env = {**environment, SERVER_ADDRESS_ENV: HOST, SERVER_PORT_ENV: str(port), "PATH": self.environment()["PATH"]}
        with open(log_path, "ab") as log:
            server = subprocess.Popen(self.host_command(sidecar), env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                                      stdout=log, stderr=log, start_new_session=True, **self.user_options())

        def answers() -> bool:
            if server.poll() is not None:
                lines = log_path.read_text(errors="replace").splitlines()[-20:]
                raise LocalPodError(f"pgbackrest server exited with status {server.returncode}; log "
                                    f"{log_path}:\n" + "\n".join(lines))
            return subprocess.run(["pgbackrest", "server-ping", "localhost"], env=env, cwd=cwd,
                                  capture_output=True, **self.user_options()).returncode == 0

        processes.wait(answers, timeout, "pgbackrest server answering", error=LocalPodError)
        return server, port

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])

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
