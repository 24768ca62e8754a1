"""PgBouncer beside the local pod, as the Deployment `postgres-pooler` runs it.

`local up` with `postgres.pooler.enabled` lays the pooler pod's files out in the
pod's state folder (its scripts from the synthesized ConfigMap, the auth role's
password from the pod's Secret, a certificate for the pooler's names, localhost
among them, signed by the pod's CA), renders pgbouncer.ini with the same
renderer as the ConfigMap but local paths, listening on localhost at a free
port, the database at localhost (the name every server certificate holds,
the runner's own and those of `secrets generate`), and runs the pod's own
pooler.sh as the `postgres` user until pooler-probe.sh passes. PgBouncer is
the local build or package (pgbouncer_install).

State: root/ holds the pooler's files at its mount paths; pooler.log its
output; pooler.json its pid and port.

The read-only pooler (`postgres.pooler.readOnly`, beside a cluster) is the same
with the Deployment and ConfigMap `postgres-pooler-ro`, its database the local
stand-in for the Service `postgres-replicas`; its files are root-pooler-ro/,
pooler-ro.log and pooler-ro.json (pod_state.POOLER_FILES), so that both run
from one state folder with the same mount paths.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from pgbundle import contract
from pgbundle.manifests import ManifestError, container
from pgbundle.pgconf import pgbouncer
from pgbundle.values.models import ChartValues
from workstation import pgbouncer_install, pki, processes
from workstation.localpod import LocalPod
from workstation.pod_state import HOST, HOST_NAME, LISTEN, LocalPodError, free_port


class LocalPooler:
    """The pooler of one local pod (same state folder)."""

    def __init__(self, pod: LocalPod, database_port: int | None = None, *, read_only: bool = False) -> None:
        """`database_port`: where the database answers, if not at the pod's own port
        (a cluster's: its local Services, service_proxy). `read_only`: the read-only pooler."""
        self.pod = pod
        self.database_port = database_port
        self.read_only = read_only
        self.name = contract.POOLER_RO if read_only else contract.POOLER
        # All named in pod_state.POOLER_FILES.
        self.root = pod.state / "root-pooler-ro" if read_only else pod.root
        self.log_file = pod.state / f"{self.name.removeprefix('postgres-')}.log"
        self.pid_file = pod.state / f"{self.name.removeprefix('postgres-')}.json"
        self._process: subprocess.Popen | None = None

    def host_path(self, pod_path: str) -> Path:
        """Where a path inside the pooler's pod lives in the state folder."""
        return self.pod.host_path(pod_path, self.root)

    def _container(self) -> dict:
        try:
            deployment = self.pod.manifests().get("Deployment", self.name)
            return container(deployment["spec"]["template"]["spec"], contract.POOLER_CONTAINER)
        except ManifestError as err:
            raise LocalPodError(str(err)) from None

    def _site(self, port: int) -> pgbouncer.PoolerSite:
        """The pod's site with every path under the state folder, listening on
        localhost, and the database at localhost: verify-full checks the name, and
        the certificates `secrets generate` writes hold no IP address."""
        pod_site = pgbouncer.pod_site("local")
        paths = {field: str(self.host_path(getattr(pod_site, field)))
                 for field in ("config", "hba", "password_file", "auth_file", "tls_cert", "tls_key", "ca_cert",
                               "socket_dir", "stats_password_file", "stats_passfile")}
        return pgbouncer.PoolerSite(listen_addr=LISTEN, listen_port=port, server_host=HOST_NAME,
                                    server_port=self.database_port or self.pod.connection_info()["port"], **paths)

    def recorded(self) -> dict:
        """What the last start of PgBouncer recorded (pid, port), as LocalPod.recorded(); empty when none."""
        try:
            return json.loads(self.pid_file.read_text())
        except FileNotFoundError:
            return {}

    def pid(self) -> int | None:
        pid = self.recorded().get("pid")
        # A recycled pid would not name this state's files.
        return pid if processes.running(pid, str(self.host_path(contract.POOLER_CONFIG_DIR)),
                                        str(self.host_path(contract.POOLER_SCRIPTS_DIR))) else None

    def environment(self) -> dict[str, str]:
        env = self.pod.host_environment(self._container(), self.root)
        env["PGB_PROBE_HOST"] = HOST
        env["PGB_PROBE_PORT"] = str(self.recorded()["port"])
        env["PATH"] = f"{pgbouncer_install.binary().parent}:/usr/local/bin:/usr/bin:/bin"
        return env

    def prepare(self, values: ChartValues, port: int | None = None) -> None:
        """Lay the pooler's files out and render pgbouncer.ini; the pod must be prepared first."""
        if self.pid() is not None:
            raise LocalPodError(f"the pooler {self.name} already runs (pid {self.pid()}): run `local down` first")
        if not pgbouncer_install.installed():
            raise LocalPodError(f"PgBouncer {contract.POOLER_VERSION} is not installed: run `make pgbouncer`")
        port = port or self.recorded().get("port") or free_port()
        self.pid_file.write_text(json.dumps({"port": port}))
        main = self._container()
        config_map = self.pod.manifests().get("ConfigMap", self.name)["data"]
        scripts = self.host_path(contract.POOLER_SCRIPTS_DIR)
        if scripts.exists():
            shutil.rmtree(scripts)
        for name, text in config_map.items():
            if name not in (contract.POOLER_CONFIG_FILE, contract.POOLER_HBA_FILE):
                self.pod._write(scripts / name, text.encode(), contract.SCRIPT_FILE_MODE)
        site = self._site(port)
        self.pod._write(Path(site.config), pgbouncer.render_pgbouncer_ini(values.postgres, site).encode(),
                        contract.CONFIG_FILE_MODE)
        metrics = pgbouncer.metrics_on(values.postgres)
        self.pod._write(Path(site.hba), pgbouncer.render_pooler_hba(metrics=metrics).encode(), contract.CONFIG_FILE_MODE)
        secrets = {site.password_file: contract.POOLER_PASSWORD_KEY}
        if metrics:
            secrets[site.stats_password_file] = contract.POOLER_STATS_PASSWORD_KEY
        for path, key in secrets.items():
            self.pod._write(Path(path), self.pod.host_path(f"{contract.SECRETS_DIR}/{key}").read_bytes(), 0o600)
        ca = self.pod.host_path(f"{contract.CA_DIR}/{contract.CA_CERT_FILE}").read_bytes()
        self.pod._write(Path(site.ca_cert), ca, 0o644)
        pair = pki.server_certificate(self.pod._ca(), contract.pooler_dns_names(values.global_.namespace,
                                                                                read_only=self.read_only), [],
                                      client_auth=True)
        self.pod._write(Path(site.tls_cert), pair.cert_pem, 0o644)
        self.pod._write(Path(site.tls_key), pair.key_pem, 0o600)
        for mount in main["volumeMounts"]:
            self.pod._mkdir(self.host_path(mount["mountPath"]), 0o700)

    def probe(self) -> bool:
        script = self.host_path(f"{contract.POOLER_SCRIPTS_DIR}/pooler-probe.sh")
        return subprocess.run(["bash", str(script)], env=self.environment(), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL).returncode == 0

    def start(self, timeout: float = 30) -> dict:
        """Run pooler.sh until the probe passes -> the pooler's connection info."""
        env = self.environment()
        command = self.pod.host_command(self._container(), self.root)
        with open(self.log_file, "ab") as log:
            self._process = subprocess.Popen(command, env=env, cwd=self.pod.state, stdin=subprocess.DEVNULL,
                                             stdout=log, stderr=log, start_new_session=True,
                                             **self.pod.user_options())
        self.pid_file.write_text(json.dumps({"pid": self._process.pid, "port": int(env["PGB_PROBE_PORT"])}))
        deadline = time.monotonic() + timeout
        while not self.probe():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = "\n".join(self.log_file.read_text(errors="replace").splitlines()[-20:])
                raise LocalPodError(f"PgBouncer ({self.name}) did not start; log {self.log_file}:\n{tail}")
            time.sleep(0.1)
        return self.connection_info()

    def connection_info(self) -> dict:
        """{host, hostaddr, port, dsn, DATABASE_URL}: the application role's connection
        string and URL as the database's (LocalPod.connection_info: TLS verified against
        the pod's CA by the name localhost, its client certificate with ca.verifyClients),
        at the pooler's port."""
        port = self.recorded()["port"]
        info = self.pod.connection_info(port=port)
        role = self.pod.environment()["PG_APP_USER"]
        return {"host": info["host"], "hostaddr": info["hostaddr"], "port": port, "dsn": info["dsn"][role],
                "DATABASE_URL": info["DATABASE_URL"]}

    def stop(self, timeout: float = 15) -> None:
        """SIGINT (PgBouncer's safe shutdown: running queries finish), SIGKILL after `timeout`."""
        pid = self.pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGINT)
        if processes.poll(lambda: self.pid() is None, timeout) is None:
            os.kill(pid, signal.SIGKILL)
            processes.poll(lambda: self.pid() is None, 5)
        if self._process is not None:
            self._process.wait()
