"""The generated Secrets on real PostgreSQL, through the local pod runner fed with
them (`local up --secrets DIR`), laid out as the kubelet does: TLS by name,
password rotation, and certificates renewed while the server keeps running."""

from __future__ import annotations

import base64
import shutil
import socket
import ssl
import struct
import tempfile
import time
from pathlib import Path

import psycopg
import pytest
import yaml
from cryptography import x509

import main
from pgbundle import contract
from pgbundle.values.load import parse_values
from workstation import pki
from workstation import secretgen
from workstation.localpod import LocalPod

RELOAD_WAIT = 90  # seconds a test waits for the watcher before it fails (it polls every second here)


class Pod(LocalPod):
    """The runner with the certificate watcher polling every second instead of every 20."""

    def environment(self) -> dict[str, str]:
        return {**super().environment(), "PG_CERT_WATCH_INTERVAL": "1"}


@pytest.fixture(scope="module")
def base():
    # pytest's own temp folders are private to root; the pod runs as the postgres user.
    folder = Path(tempfile.mkdtemp(prefix="secretpods-"))
    folder.chmod(0o711)
    yield folder
    shutil.rmtree(folder)


@pytest.fixture(scope="module")
def pods(base):
    """pods(name, values) -> (pod, secrets folder): secrets generated, pod fed with them and started."""
    started: list[LocalPod] = []

    def make(name: str, values: dict | None = None, secrets: Path | None = None) -> tuple[LocalPod, Path]:
        parsed = parse_values(values or {})
        if secrets is None:
            secrets = base / f"{name}-secrets"
            secretgen.generate(parsed, secrets)
        pod = Pod(base / name)
        pod.prepare(parsed, main.synthesize, secrets)
        started.append(pod)
        pod.start()
        return pod, secrets

    yield make
    for pod in started:
        pod.stop()


def secret_data(secrets: Path, name: str) -> dict[str, bytes]:
    document = yaml.safe_load((secrets / f"{name}.yaml").read_text())
    return {k: base64.b64decode(v) for k, v in document["data"].items()}


def connect(pod: LocalPod, user: str, password: str, host: str = "localhost", **options) -> psycopg.Connection:
    info = pod.connection_info()
    params = {"sslmode": "verify-full", "sslrootcert": info["sslrootcert"], **options}
    return psycopg.connect(host=host, port=info["port"], dbname=info["database"], user=user, password=password,
                           autocommit=True, connect_timeout=10, **params)


def served_certificate(pod: LocalPod) -> x509.Certificate:
    """The certificate the server presents to a new connection (PostgreSQL's SSLRequest, then TLS)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", pod.connection_info()["port"]), timeout=10) as raw:
        raw.sendall(struct.pack("!II", 8, 80877103))
        assert raw.recv(1) == b"S"
        with context.wrap_socket(raw) as tls:
            return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))


def postmaster(pod: LocalPod) -> tuple[int, str]:
    """(pid, start time) of the running server: both stay the same when nothing restarts."""
    pid = int((pod.host_path(contract.PGDATA) / "postmaster.pid").read_text().splitlines()[0])
    info = pod.connection_info()
    with connect(pod, "postgres", info["passwords"]["postgres"]) as conn:
        started = str(conn.execute("SELECT pg_postmaster_start_time()").fetchone()[0])
    return pid, started


def wait_until_served(pod: LocalPod, certificate: x509.Certificate) -> None:
    deadline = time.monotonic() + RELOAD_WAIT
    while served_certificate(pod) != certificate:
        assert time.monotonic() < deadline, (
            f"the server still presents the old certificate {RELOAD_WAIT}s after the Secret changed:\n"
            + pod.log_tail())
        time.sleep(0.5)


# --- TLS by name ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def default_pod(pods):
    return pods("default")


def test_verify_full_connects_by_localhost_with_the_generated_ca(default_pod):
    pod, secrets = default_pod
    password = secret_data(secrets, "postgres-secrets")[contract.APP_PASSWORD_KEY].decode()
    with connect(pod, "appuser", password, sslrootcert=str(secrets / "ca.crt")) as conn:
        assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone() == (True,)


def test_the_server_presents_the_generated_certificate(default_pod):
    pod, secrets = default_pod
    generated = x509.load_pem_x509_certificate(secret_data(secrets, "postgres-tls")["server.crt"])
    assert served_certificate(pod) == generated


def test_verify_full_refuses_a_name_the_certificate_does_not_list(default_pod):
    pod, secrets = default_pod
    password = secret_data(secrets, "postgres-secrets")[contract.APP_PASSWORD_KEY].decode()
    with pytest.raises(psycopg.OperationalError, match="does not match host name|server certificate for"):
        connect(pod, "appuser", password, host="127.0.0.1", sslrootcert=str(secrets / "ca.crt"))


def test_verify_full_refuses_another_ca(default_pod, base):
    pod, secrets = default_pod
    other = base / "other-ca.crt"
    other.write_bytes(pki.new_ca("someone-else").cert_pem)
    password = secret_data(secrets, "postgres-secrets")[contract.APP_PASSWORD_KEY].decode()
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        connect(pod, "appuser", password, sslrootcert=str(other))


def test_secret_files_are_root_owned_0440_like_in_a_cluster(default_pod):
    pod, _ = default_pod
    key = pod.host_path(f"{contract.TLS_DIR}/{contract.TLS_KEY_FILE}")
    assert key.is_symlink() and (key.parent / "..data").is_symlink()
    status = key.stat()
    assert (status.st_uid, oct(status.st_mode & 0o777)) == (0, "0o440")


# --- password rotation ----------------------------------------------------------------------------


def test_rotated_password_works_after_the_resync_and_the_old_one_is_refused(pods):
    pod, secrets = pods("rotate-password")
    values = parse_values({})
    before = secret_data(secrets, "postgres-secrets")
    old = before[contract.APP_PASSWORD_KEY].decode()
    connect(pod, "appuser", old).close()

    secretgen.generate(values, secrets, rotate=contract.APP_PASSWORD_KEY)
    new = secret_data(secrets, "postgres-secrets")[contract.APP_PASSWORD_KEY].decode()
    assert new != old
    pod.stop()
    pod.prepare(values, main.synthesize, secrets)  # the kubelet's view of the applied Secret
    pod.start()  # the start script re-syncs every password

    with connect(pod, "appuser", new) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("appuser",)
    with pytest.raises(psycopg.OperationalError, match='password authentication failed for user "appuser"'):
        connect(pod, "appuser", old)
    # The others did not change.
    ro = before[contract.READ_ONLY_PASSWORD_KEY].decode()
    connect(pod, "backupuser", ro).close()


# --- certificates renewed while the server runs ------------------------------------------------------


def test_renewed_certificate_is_served_after_a_reload_without_restart(pods):
    pod, secrets = pods("renew")
    info = pod.connection_info()
    server_before = postmaster(pod)
    session = connect(pod, "appuser", info["passwords"]["appuser"])
    old = served_certificate(pod)

    secretgen.generate(parse_values({}), secrets, rotate="tls")
    renewed = x509.load_pem_x509_certificate(secret_data(secrets, "postgres-tls")["server.crt"])
    assert renewed != old
    pod.sync_secrets(secrets)  # the kubelet swaps the volume's ..data symlink
    wait_until_served(pod, renewed)

    assert postmaster(pod) == server_before, "the server restarted"
    assert session.execute("SELECT 1").fetchone() == (1,), "an open session was dropped"
    session.close()
    with connect(pod, "appuser", info["passwords"]["appuser"]) as conn:  # verify-full by localhost, new certificate
        assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone() == (True,)
    assert "PostgreSQL reloaded them" in pod.log_file.read_text()


def test_ca_rotation_runbook_keeps_clients_connected(pods, base):
    pod, secrets = pods("rotate-ca")
    values = parse_values({})
    password = pod.connection_info()["passwords"]["appuser"]
    old_ca = base / "rotate-ca-old.crt"
    shutil.copyfile(secrets / "ca.crt", old_ca)

    # 1. New CA trusted beside the old one: the old server certificate still verifies with the bundle.
    secretgen.generate(values, secrets, rotate="ca")
    pod.sync_secrets(secrets)
    connect(pod, "appuser", password, sslrootcert=str(secrets / "ca.crt")).close()

    # 2. Server certificate from the new CA, reloaded in place.
    secretgen.generate(values, secrets, rotate="tls")
    pod.sync_secrets(secrets)
    wait_until_served(pod, x509.load_pem_x509_certificate(secret_data(secrets, "postgres-tls")["server.crt"]))
    connect(pod, "appuser", password, sslrootcert=str(secrets / "ca.crt")).close()
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        connect(pod, "appuser", password, sslrootcert=str(old_ca))  # why clients get the bundle first

    # 3. Pruned: the new CA alone verifies the server.
    secretgen.generate(values, secrets, prune_ca=True)
    connect(pod, "appuser", password, sslrootcert=str(secrets / "ca.crt")).close()


# --- cert-manager's key names -----------------------------------------------------------------------------


def test_cert_manager_secret_is_served_and_its_ca_verifies_clients(pods, base):
    """A Secret shaped like cert-manager's (tls.crt, tls.key, ca.crt) and no postgres-ca at all:
    the pod serves the certificate and verifies client certificates with its ca.crt."""
    values = {"postgres": {"tls": {"certManager": {"enabled": True, "issuerRef": {"name": "internal-ca"}}},
                           "ca": {"verifyClients": True}}}
    secrets = base / "cert-manager-secrets"
    written, _ = secretgen.generate(parse_values(values), secrets)
    assert [p.name for p in written] == ["postgres-secrets.yaml"]
    ca = pki.new_ca("issuer-ca")
    server = pki.server_certificate(ca, contract.server_dns_names("api-forge-prod", 1), [])
    (secrets / "postgres-tls.yaml").write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": "postgres-tls", "namespace": "api-forge-prod"},
        "data": {"tls.crt": base64.b64encode(server.cert_pem).decode(),
                 "tls.key": base64.b64encode(server.key_pem).decode(),
                 "ca.crt": base64.b64encode(ca.cert_pem).decode()},
    }))
    (secrets / "ca.crt").write_bytes(ca.cert_pem)
    pod, _ = pods("cert-manager", values, secrets)

    assert served_certificate(pod) == server.certificate
    client = pki.client_certificate(ca, "appuser")
    cert_file, key_file = base / "appuser.crt", base / "appuser.key"
    cert_file.write_bytes(client.cert_pem)
    key_file.write_bytes(client.key_pem)
    key_file.chmod(0o600)
    password = secret_data(secrets, "postgres-secrets")[contract.APP_PASSWORD_KEY].decode()
    with connect(pod, "appuser", password, sslrootcert=str(secrets / "ca.crt"),
                 sslcert=str(cert_file), sslkey=str(key_file)) as conn:
        assert conn.execute("SELECT ssl, client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone() == (
            True, "/CN=appuser")
    with pytest.raises(psycopg.OperationalError):
        connect(pod, "appuser", password, sslrootcert=str(secrets / "ca.crt"), sslcert="", sslkey="")
