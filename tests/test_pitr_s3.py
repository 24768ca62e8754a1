"""Point-in-time recovery to an encrypted S3 repository over TLS, and disaster
recovery from it alone: a real S3 protocol server (moto) behind Debian's nginx
for TLS (FIELD-NOTES: moto's own TLS breaks pgBackRest's uploads), one server
for the whole module, on a free loopback port below the ephemeral range."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import boto3
import pytest
import yaml

from pgbundle import contract
from pgbundle.values.load import parse_values
from workstation import pki, secretgen
from workstation.localpod import LocalPod
from workstation.pod_state import free_port
from pitr_helpers import TOP, archive_everything, cli, cli_json, commit_rows, event_ids, wait_past

BUCKET = "pgbundle-pitr"
KEY_ID, KEY_SECRET = "test-key-id", "test-key-secret"
# Below 32768, where the kernel never picks an outgoing connection's port.
PORT_RANGE = range(21000, 21100)


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
            proxy_pass http://127.0.0.1:{backend};
            proxy_set_header Host $http_host;
        }}
    }}
}}
"""


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """moto on a free HTTP port, nginx with TLS in front of it; yields (port, CA PEM)."""
    folder = tmp_path_factory.mktemp("s3")
    ca = pki.new_ca("pitr-test-s3-ca")
    pair = pki.server_certificate(ca, ["localhost"], ["127.0.0.1"])
    (folder / "server.crt").write_bytes(pair.cert_pem)
    (folder / "server.key").write_bytes(pair.key_pem)
    backend = free_port()
    port = next(p for p in PORT_RANGE if port_free(p))
    moto = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(backend)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    (folder / "nginx.conf").write_text(NGINX_CONF.format(dir=folder, port=port, backend=backend))
    nginx = subprocess.Popen(["nginx", "-c", str(folder / "nginx.conf"), "-g", "daemon off;"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(backend, moto, "moto_server")
        wait_for_port(port, nginx, "nginx")
        boto3.client("s3", endpoint_url=f"http://127.0.0.1:{backend}", region_name="us-east-1",
                     aws_access_key_id=KEY_ID, aws_secret_access_key=KEY_SECRET).create_bucket(Bucket=BUCKET)
        yield port, ca.cert_pem
    finally:
        for process in (nginx, moto):
            process.terminate()
            process.wait(timeout=30)


@pytest.fixture(scope="module")
def setup(s3, tmp_path_factory):
    """Values with an encrypted S3 repository beside the volume one, and the
    Secrets a cluster would hold: `secrets generate` plus the S3 keys and CA."""
    port, ca_pem = s3
    base = Path(tempfile.mkdtemp(prefix="pitr-s3-"))
    base.chmod(0o711)
    values = yaml.safe_load((TOP / "examples" / "pitr.yaml").read_text())
    values["postgres"]["pitr"]["repos"]["s3"] = {
        "enabled": True, "bucket": BUCKET, "endpoint": f"localhost:{port}", "uriStyle": "path",
        "path": "/cluster-a", "caSecret": "s3-ca"}
    values_file = base / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    chart = parse_values(values)
    secrets = base / "secrets"
    secretgen.generate(chart, secrets)
    s3_values = chart.postgres.pitr.repos.s3
    for name, data in ((s3_values.existing_secret, {contract.S3_KEY_ID_KEY: KEY_ID.encode(),
                                                    contract.S3_KEY_SECRET_KEY: KEY_SECRET.encode()}),
                       (s3_values.ca_secret, {contract.CA_CERT_FILE: ca_pem})):
        path = secrets / f"{name}.yaml"
        path.write_text(yaml.safe_dump(secretgen.secret_manifest(chart, name, data)))
        path.chmod(0o600)
    yield {"values": values_file, "secrets": secrets, "base": base}
    for state in base.iterdir():
        if (state / "pod.json").exists():
            LocalPod(state).stop()
    shutil.rmtree(base)


def test_disaster_recovery_from_the_encrypted_s3_repository_alone_is_exact(setup):
    values, secrets, base = setup["values"], setup["secrets"], setup["base"]
    old = base / "cluster-a"
    cli_json("up", "--state", str(old), "--secrets", str(secrets), values=values)
    origin = LocalPod(old)
    full = cli_json("backup", "--state", str(old), "--type", "full", values=values)
    assert [t["repo"] for t in full["taken"]] == [1, 2]  # the volume and S3 repositories each hold one
    commit_rows(origin, [1, 2])
    incr = cli_json("backup", "--state", str(old), "--type", "incr", values=values)
    assert incr["type"] == "incr"
    target = commit_rows(origin, [3]) + timedelta(milliseconds=100)
    wait_past(origin, target)
    commit_rows(origin, [4, 5])
    archive_everything(origin)
    # What the bucket holds is encrypted (OpenSSL's salted format), not zstd.
    client = s3_client(setup)
    wal = [key for key in bucket_keys(client) if "/archive/" in key and key.endswith(".zst")]
    assert wal and client.get_object(Bucket=BUCKET, Key=wal[0])["Body"].read(8) == b"Salted__"
    # The restore drill restores each repository in turn, the S3 one through its own archive-get.
    drill = cli("drill", "--state", str(old), values=values)
    assert drill.returncode == 0, drill.stderr
    assert "pitr drill: repo2: appdb.public.events rows=5" in drill.stdout.splitlines()
    labels = ",".join(t["label"] for t in incr["taken"])
    assert drill.stdout.splitlines()[-1].startswith(f"pitr drill ok: repos=1,2 backup={labels} "), drill.stdout

    # The namespace is lost: data, volume repository, everything but the bucket and the Secrets.
    LocalPod(old).stop()
    shutil.rmtree(old)
    new = base / "cluster-b"
    cli_json("restore", "--state", str(new), "--from", str(old), "--time", target.isoformat(),
             "--secrets", str(secrets), values=values)
    assert event_ids(LocalPod(new)) == [1, 2, 3]
    assert not old.exists()


def s3_client(setup):
    """A client of the bucket over TLS through nginx, trusting the test CA."""
    values = yaml.safe_load(setup["values"].read_text())
    endpoint = values["postgres"]["pitr"]["repos"]["s3"]["endpoint"]
    ca = setup["base"] / "s3-ca.pem"
    ca.write_bytes(secretgen.read_secret(setup["secrets"] / "s3-ca.yaml")[contract.CA_CERT_FILE])
    return boto3.client("s3", endpoint_url=f"https://{endpoint}", region_name="us-east-1", verify=str(ca),
                        aws_access_key_id=KEY_ID, aws_secret_access_key=KEY_SECRET)


def bucket_keys(client) -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="cluster-a/")
    return [item["Key"] for page in pages for item in page.get("Contents", [])]
