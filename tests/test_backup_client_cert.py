"""The backup job's client certificate (Secret postgres-backup-tls) when the server
verifies clients: written by `secrets generate`, or issued by cert-manager, with
exactly the keys the CronJob mounts, rotated with the server certificate, and
accepted by a real PostgreSQL that verifies clients."""

from __future__ import annotations

import base64
import shutil
import stat
import tempfile
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from conftest import container
from crd import validate_custom_resource
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import Criticality, ExtensionPolicy, PolicyBuilder, Store, VerificationError

import main
from pgbundle import contract
from pgbundle.values.load import parse_values
from workstation import secretgen
from workstation.backup_local import LocalJobError, backup
from workstation.localpod import LocalPod

NS = "api-forge-prod"
SECRET = "postgres-backup-tls"
CRD = "cert-manager.io_certificates.yaml"
VERIFIED = {"postgres": {"ca": {"verifyClients": True}}}


def with_cert_manager(values: dict) -> dict:
    postgres = {**values["postgres"], "tls": {"certManager": {
        "enabled": True, "issuerRef": {"name": "internal-ca", "kind": "ClusterIssuer"}}}}
    return {**values, "postgres": postgres}


def generate(out: Path, values: dict, **options) -> Path:
    secretgen.generate(parse_values(values), out, **options)
    return out


def data(out: Path, name: str) -> dict[str, bytes]:
    document = yaml.safe_load((out / f"{name}.yaml").read_text())
    return {k: base64.b64decode(v) for k, v in document["data"].items()}


def client_cert(out: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(data(out, SECRET)[contract.CLIENT_CERT_FILE])


def verify_client(out: Path, certificate: x509.Certificate) -> None:
    """Chain to the CA bundle in postgres-ca with the clientAuth purpose, as the server checks it.
    (The Web PKI default demands a subjectAltName; a PostgreSQL client certificate has none.)"""
    store = Store(x509.load_pem_x509_certificates(data(out, "postgres-ca")[contract.CA_CERT_FILE]))
    leaf = ExtensionPolicy.webpki_defaults_ee().may_be_present(x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)
    verifier = (PolicyBuilder().store(store)
                .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=leaf)
                .build_client_verifier())
    verifier.verify(certificate, [])


def cronjob_client_items(m) -> dict[str, str]:
    """Secret key -> file name of the backup CronJob's client-certificate volume."""
    spec = m.get("CronJob", "postgres-backup")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    volume = next(v for v in spec["volumes"] if v.get("secret", {}).get("secretName") == SECRET)
    return {item["key"]: item["path"] for item in volume["secret"]["items"]}


def cronjob_client_paths(m) -> dict[str, str]:
    """File name -> what the job's libpq reads it as (PGSSLCERT/PGSSLKEY)."""
    spec = m.get("CronJob", "postgres-backup")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    env = {e["name"]: e["value"] for e in container(spec, "backup")["env"]}
    return {Path(env["PGSSLCERT"]).name: "PGSSLCERT", Path(env["PGSSLKEY"]).name: "PGSSLKEY"}


# --- secrets generate ----------------------------------------------------------------


def test_generated_for_verified_clients_only(tmp_path):
    assert (generate(tmp_path / "on", VERIFIED) / f"{SECRET}.yaml").exists()
    assert not (generate(tmp_path / "off", {}) / f"{SECRET}.yaml").exists()
    no_backups = {"postgres": {"ca": {"verifyClients": True}, "backup": {"enabled": False}}}
    assert not (generate(tmp_path / "no-backup", no_backups) / f"{SECRET}.yaml").exists()


def test_generated_secret_follows_a_renamed_secret(tmp_path):
    values = {"postgres": {"ca": {"verifyClients": True}, "backup": {"clientCertificate": {"existingSecret": "bk"}}}}
    out = generate(tmp_path, values)
    assert (out / "bk.yaml").exists() and not (out / f"{SECRET}.yaml").exists()


def test_client_certificate_is_for_the_read_only_role_and_client_auth_only(tmp_path):
    certificate = client_cert(generate(tmp_path, VERIFIED))
    assert certificate.subject.rfc4514_string() == "CN=backupuser"
    usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_common_name_follows_the_read_only_username(tmp_path):
    values = {"postgres": {"ca": {"verifyClients": True}, "readOnlyUsername": "dumper"}}
    assert client_cert(generate(tmp_path, values)).subject.rfc4514_string() == "CN=dumper"


def test_client_certificate_verifies_against_the_generated_ca(tmp_path):
    out = generate(tmp_path, VERIFIED)
    verify_client(out, client_cert(out))


def test_client_verification_can_fail(tmp_path):
    """The check above refuses a certificate from another CA and a server-only certificate."""
    out = generate(tmp_path / "a", VERIFIED)
    other = generate(tmp_path / "b", VERIFIED)
    with pytest.raises(VerificationError):
        verify_client(out, client_cert(other))
    server = x509.load_pem_x509_certificate(data(out, "postgres-tls")[contract.TLS_CERT_FILE])
    with pytest.raises(VerificationError, match="EKU"):
        verify_client(out, server)


def test_key_matches_the_certificate(tmp_path):
    from cryptography.hazmat.primitives import serialization

    out = generate(tmp_path, VERIFIED)
    key = serialization.load_pem_private_key(data(out, SECRET)[contract.CLIENT_KEY_FILE], password=None)
    assert key.public_key() == client_cert(out).public_key()


def test_rsa_on_request(tmp_path):
    from cryptography.hazmat.primitives.asymmetric import rsa

    values = {"postgres": {"ca": {"verifyClients": True}, "tls": {"generator": {"keyAlgorithm": "RSA-3072"}}}}
    key = client_cert(generate(tmp_path, values)).public_key()
    assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 3072


@pytest.mark.parametrize("version", ["1.27.0", "1.35.0"])
def test_secret_validates_strictly_as_a_tls_secret(tmp_path, version):
    document = yaml.safe_load((generate(tmp_path, VERIFIED) / f"{SECRET}.yaml").read_text())
    kubernetes_validate.validate(document, version, strict=True)
    assert (document["kind"], document["metadata"]["name"], document["metadata"]["namespace"], document["type"]) == (
        "Secret", SECRET, NS, "kubernetes.io/tls")
    assert "app.kubernetes.io/instance" not in document["metadata"]["labels"]


def test_generated_secret_has_exactly_the_keys_the_cronjob_mounts(tmp_path, synth):
    out = generate(tmp_path, VERIFIED)
    m = synth(VERIFIED)
    items = cronjob_client_items(m)
    assert set(data(out, SECRET)) == set(items)
    # ... under the file names libpq is pointed at.
    assert set(items.values()) == set(cronjob_client_paths(m))


def test_file_is_private_and_never_overwritten_without_force(tmp_path):
    out = generate(tmp_path, VERIFIED)
    assert stat.S_IMODE((out / f"{SECRET}.yaml").stat().st_mode) == 0o600
    before = (out / f"{SECRET}.yaml").read_bytes()
    with pytest.raises(secretgen.SecretsError, match=rf"{SECRET}\.yaml.*already exist"):
        generate(out, VERIFIED)
    assert (out / f"{SECRET}.yaml").read_bytes() == before
    generate(out, VERIFIED, force=True)
    assert (out / f"{SECRET}.yaml").read_bytes() != before


def test_never_written_inside_dist(tmp_path):
    dist = tmp_path / "dist"
    with pytest.raises(secretgen.SecretsError, match="inside"):
        generate(dist / "secrets", VERIFIED, forbidden=(dist,))
    assert not dist.exists()


def test_rotate_backup_tls_replaces_only_the_client_certificate(tmp_path):
    out = generate(tmp_path, VERIFIED)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    generate(out, VERIFIED, rotate=secretgen.ROTATE_BACKUP_TLS)
    changed = sorted(p.name for p in out.iterdir() if p.read_bytes() != before[p.name])
    assert changed == [f"{SECRET}.yaml"]
    verify_client(out, client_cert(out))


def test_rotate_tls_reissues_server_and_client_certificates(tmp_path):
    out = generate(tmp_path, VERIFIED)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    generate(out, VERIFIED, rotate=secretgen.ROTATE_TLS)
    changed = sorted(p.name for p in out.iterdir() if p.read_bytes() != before[p.name])
    assert changed == [f"{SECRET}.yaml", "postgres-tls.yaml"]


def test_ca_rotation_moves_the_client_certificate_to_the_new_ca(tmp_path):
    """--rotate ca, --rotate tls, --prune-ca: the client certificate is issued by
    the new CA and is still accepted once only the new CA is trusted."""
    out = generate(tmp_path, VERIFIED)
    old = client_cert(out)
    generate(out, VERIFIED, rotate=secretgen.ROTATE_CA)
    assert client_cert(out) == old  # untouched until the certificates are re-issued
    generate(out, VERIFIED, rotate=secretgen.ROTATE_TLS)
    generate(out, VERIFIED, prune_ca=True)
    new_ca = x509.load_pem_x509_certificate((out / "ca.crt").read_bytes())
    assert client_cert(out).issuer == new_ca.subject and client_cert(out) != old
    verify_client(out, client_cert(out))
    with pytest.raises(VerificationError):
        verify_client(out, old)  # the old one would be refused after the prune


def test_rotate_backup_tls_is_offered_only_when_clients_are_verified(tmp_path):
    out = generate(tmp_path, {})
    with pytest.raises(secretgen.SecretsError, match=r"'backup-tls' is not something these values use"):
        generate(out, {}, rotate=secretgen.ROTATE_BACKUP_TLS)
    assert secretgen.ROTATE_BACKUP_TLS in secretgen.rotation_choices(parse_values(VERIFIED).postgres)


def test_rotate_backup_tls_adds_the_secret_when_clients_become_verified(tmp_path):
    """Secrets generated before verifyClients was turned on: one rotation adds it."""
    out = generate(tmp_path, {})
    generate(out, VERIFIED, rotate=secretgen.ROTATE_BACKUP_TLS)
    verify_client(out, client_cert(out))


def test_not_written_with_cert_manager(tmp_path):
    out = tmp_path / "secrets"
    written, notes = secretgen.generate(parse_values(with_cert_manager(VERIFIED)), out)
    assert sorted(p.name for p in written) == ["postgres-secrets.yaml"]
    assert any(SECRET in note and "cert-manager issues" in note for note in notes)
    with pytest.raises(secretgen.SecretsError, match="backup-tls"):
        secretgen.generate(parse_values(with_cert_manager(VERIFIED)), out, rotate=secretgen.ROTATE_BACKUP_TLS)


# --- cert-manager ----------------------------------------------------------------------


def test_cert_manager_issues_the_client_certificate(synth):
    m = synth(with_cert_manager(VERIFIED))
    spec = m.get("Certificate", SECRET)["spec"]
    server = m.get("Certificate", "postgres-tls")["spec"]
    assert spec["secretName"] == SECRET
    assert spec["issuerRef"] == server["issuerRef"]  # the CA the server verifies clients with
    assert spec["commonName"] == "backupuser"
    assert "dnsNames" not in spec
    assert spec["usages"] == ["client auth", "digital signature"]
    assert spec["privateKey"] == {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"}
    assert (spec["duration"], spec["renewBefore"]) == (server["duration"], server["renewBefore"])
    assert "app.kubernetes.io/instance" not in spec["secretTemplate"]["labels"]


def test_cert_manager_common_name_follows_the_read_only_username(synth):
    values = with_cert_manager(VERIFIED)
    values["postgres"]["readOnlyUsername"] = "dumper"
    assert synth(values).get("Certificate", SECRET)["spec"]["commonName"] == "dumper"


@pytest.mark.parametrize("values", [with_cert_manager({"postgres": {}}), VERIFIED],
                         ids=["clients-not-verified", "no-cert-manager"])
def test_no_client_certificate_object_otherwise(synth, values):
    assert synth(values).find("Certificate", SECRET) is None


def test_client_certificate_validates_against_the_crd_schema(synth):
    validate_custom_resource(synth(with_cert_manager(VERIFIED)).get("Certificate", SECRET), CRD)


def test_crd_validation_of_the_client_certificate_can_fail(synth):
    certificate = synth(with_cert_manager(VERIFIED)).get("Certificate", SECRET)
    certificate["spec"]["usages"].append("client authentication")
    with pytest.raises(jsonschema.ValidationError, match="client authentication"):
        validate_custom_resource(certificate, CRD)


def test_cronjob_maps_cert_manager_keys_to_its_file_names(synth):
    m = synth(with_cert_manager(VERIFIED))
    items = cronjob_client_items(m)
    # cert-manager writes tls.crt, tls.key and ca.crt; the job needs the pair (the CA has its own volume).
    assert set(items) <= {"tls.crt", "tls.key", "ca.crt"}
    assert set(items.values()) == set(cronjob_client_paths(m))
    assert items == {"tls.crt": "tls.crt", "tls.key": "tls.key"}


def test_with_cert_manager_no_object_refers_to_postgres_ca(synth):
    m = synth(with_cert_manager(VERIFIED))
    assert m.find("Certificate", SECRET) is not None
    assert "postgres-ca" not in m.text()


# --- real PostgreSQL ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def verified_pod():
    """A local pod verifying client certificates, fed with `secrets generate` output."""
    base = Path(tempfile.mkdtemp(prefix="backup-client-cert-"))
    base.chmod(0o711)  # the pod runs as the postgres user
    secrets = generate(base / "secrets", VERIFIED)
    pod = LocalPod(base / "pod")
    pod.prepare(parse_values(VERIFIED), main.synthesize, secrets)
    pod.start()
    yield pod, secrets
    pod.stop()
    shutil.rmtree(base)


def projected_client_files(pod: LocalPod) -> dict[str, bytes]:
    folder = pod.host_path("/etc/postgres/client-tls")
    return {name: (folder / name).read_bytes() for name in (contract.CLIENT_CERT_FILE, contract.CLIENT_KEY_FILE)}


def test_backup_with_the_generated_client_certificate(verified_pod):
    pod, secrets = verified_pod
    taken = backup(pod, secrets)
    assert any(f.endswith("appdb.dump") for f in taken["files"])
    # The job presented the generated certificate, not one the runner issued.
    assert projected_client_files(pod) == data(secrets, SECRET)


def test_backup_is_refused_with_a_certificate_the_server_does_not_accept(verified_pod, tmp_path):
    """The test above can fail: the server rejects a client certificate without
    clientAuth (here the server's own pair, signed by the same CA)."""
    pod, secrets = verified_pod
    wrong = tmp_path / "wrong"
    shutil.copytree(secrets, wrong)
    server = data(secrets, "postgres-tls")
    document = yaml.safe_load((wrong / f"{SECRET}.yaml").read_text())
    document["data"] = {contract.CLIENT_CERT_FILE: base64.b64encode(server[contract.TLS_CERT_FILE]).decode(),
                        contract.CLIENT_KEY_FILE: base64.b64encode(server[contract.TLS_KEY_FILE]).decode()}
    (wrong / f"{SECRET}.yaml").write_text(yaml.safe_dump(document))
    try:
        with pytest.raises(LocalJobError, match="appdb"):
            backup(pod, wrong)
    finally:
        backup(pod, secrets)  # put the generated certificate back for other tests
