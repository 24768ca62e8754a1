"""A real S3 protocol server for the PITR tests and benchmarks: moto on plain
HTTP behind Debian's nginx for TLS (FIELD-NOTES: moto's own TLS breaks
pgBackRest's uploads), on a free loopback port below the ephemeral range.
An outage: nginx answers every request with 503 (S3's "service unavailable")
until it is over; it keeps its port (another process could take a freed one)."""

from __future__ import annotations

import http.client
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import boto3
import yaml

from pgbundle import contract
from pgbundle.values.models import ChartValues
from workstation import pki, secretgen
from workstation.pod_state import free_port

BUCKET = "pgbundle-pitr"
KEY_ID, KEY_SECRET = "test-key-id", "test-key-secret"
# Below 32768, where the kernel never picks an outgoing connection's port.
PORT_RANGE = range(21000, 21100)

NGINX_CONF = """
worker_processes 1;
error_log {dir}/error.log warn;
pid {dir}/nginx.pid;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name localhost;
        ssl_certificate {dir}/server.crt;
        ssl_certificate_key {dir}/server.key;
        # pgBackRest streams uploads: no buffering, no size limit, keep-alive to moto.
        client_max_body_size 0;
        proxy_request_buffering off;
        proxy_http_version 1.1;
        location / {{
{location}
        }}
    }}
}}
"""


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def wait_for_port(port: int, process: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        assert process.poll() is None, f"{what} exited with {process.returncode}"
        assert time.monotonic() < deadline, f"{what} is not listening on {port}"
        time.sleep(0.1)


class S3Server:
    """moto with the bucket BUCKET created, nginx with TLS (certificate for
    `localhost`) in front; `port` and `ca_pem` once started."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        ca = pki.new_ca("pitr-test-s3-ca")
        pair = pki.server_certificate(ca, ["localhost"], ["127.0.0.1"])
        (folder / "server.crt").write_bytes(pair.cert_pem)
        (folder / "server.key").write_bytes(pair.key_pem)
        self.ca_pem = ca.cert_pem
        self.backend = free_port()
        self.port = next(p for p in PORT_RANGE if port_free(p))
        self._configure(outage=False)
        self.moto: subprocess.Popen | None = None
        self.nginx: subprocess.Popen | None = None

    def __enter__(self) -> S3Server:
        self.moto = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1",
                                      "-p", str(self.backend)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for_port(self.backend, self.moto, "moto_server")
            self.start_tls()
            boto3.client("s3", endpoint_url=f"http://127.0.0.1:{self.backend}", region_name="us-east-1",
                         aws_access_key_id=KEY_ID, aws_secret_access_key=KEY_SECRET).create_bucket(Bucket=BUCKET)
        except BaseException:
            self.__exit__()
            raise
        return self

    def repo_values(self, path: str) -> dict:
        """`pitr.repos.s3` for this server, the repository under `path`."""
        return {"enabled": True, "bucket": BUCKET, "endpoint": f"localhost:{self.port}", "uriStyle": "path",
                "path": path, "caSecret": "s3-ca"}

    def write_secrets(self, chart: ChartValues, secrets: Path) -> None:
        """The Secrets a cluster would hold: `secrets generate` plus the S3 keys and CA."""
        secretgen.generate(chart, secrets)
        s3_values = chart.postgres.pitr.repos.s3
        for name, data in ((s3_values.existing_secret, {contract.S3_KEY_ID_KEY: KEY_ID.encode(),
                                                        contract.S3_KEY_SECRET_KEY: KEY_SECRET.encode()}),
                           (s3_values.ca_secret, {contract.CA_CERT_FILE: self.ca_pem})):
            path = secrets / f"{name}.yaml"
            path.write_text(yaml.safe_dump(secretgen.secret_manifest(chart, name, data)))
            path.chmod(0o600)

    def _configure(self, outage: bool) -> None:
        location = ("            return 503;" if outage else
                    "            proxy_pass http://127.0.0.1:{backend};\n"
                    "            proxy_set_header Host $http_host;".format(backend=self.backend))
        (self.folder / "nginx.conf").write_text(NGINX_CONF.format(dir=self.folder, port=self.port, location=location))

    def start_tls(self) -> None:
        self.nginx = subprocess.Popen(["nginx", "-c", str(self.folder / "nginx.conf"), "-g", "daemon off;"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, self.nginx, "nginx")

    def status(self) -> int:
        """The HTTP status of a request to the endpoint, over TLS."""
        context = ssl.create_default_context(cadata=self.ca_pem.decode())
        conn = http.client.HTTPSConnection("localhost", self.port, context=context, timeout=10)
        try:
            conn.request("GET", "/")
            return conn.getresponse().status
        finally:
            conn.close()

    def set_outage(self, outage: bool) -> None:
        """Start or end an outage: nginx reloads its configuration (the port stays
        bound) and the endpoint answers accordingly once the new workers run."""
        self._configure(outage)
        self.nginx.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while (self.status() == 503) != outage:
            assert time.monotonic() < deadline, f"nginx did not reload (outage={outage})"
            time.sleep(0.1)

    def __exit__(self, *exc) -> None:
        if self.nginx is not None:
            self.nginx.terminate()
            self.nginx.wait(timeout=30)
            self.nginx = None
        if self.moto is not None:
            self.moto.terminate()
            self.moto.wait(timeout=30)
            self.moto = None
