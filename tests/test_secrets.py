"""`secrets generate`: the files, their modes, the keys the pods mount, the certificates, rotation."""

from __future__ import annotations

import base64
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from pgbundle import contract
from pgbundle.values.load import parse_values
from workstation import secretgen

TOP = Path(__file__).resolve().parent.parent
NS = "api-forge-prod"
SERVER_NAMES = [
    "postgres", f"postgres.{NS}", f"postgres.{NS}.svc", f"postgres.{NS}.svc.cluster.local",
    "postgres-headless", f"postgres-headless.{NS}", f"postgres-headless.{NS}.svc",
    f"postgres-headless.{NS}.svc.cluster.local",
    "postgres-0.postgres-headless", f"postgres-0.postgres-headless.{NS}",
    f"postgres-0.postgres-headless.{NS}.svc", f"postgres-0.postgres-headless.{NS}.svc.cluster.local",
    "localhost",
]


def generate(tmp_path: Path, values: dict | None = None, **options) -> Path:
    out = tmp_path / "secrets"
    secretgen.generate(parse_values(values or {}), out, **options)
    return out


def secret(out: Path, name: str) -> dict:
    return yaml.safe_load((out / f"{name}.yaml").read_text())


def data(out: Path, name: str) -> dict[str, bytes]:
    return {k: base64.b64decode(v) for k, v in secret(out, name)["data"].items()}


def certificate(out: Path, name: str = "postgres-tls") -> x509.Certificate:
    return x509.load_pem_x509_certificate(data(out, name)["server.crt"])


def verifier(out: Path, name: str):
    store = Store(x509.load_pem_x509_certificates(data(out, "postgres-ca")["ca.crt"]))
    return PolicyBuilder().store(store).build_server_verifier(x509.DNSName(name))


# --- files -----------------------------------------------------------------------------


def test_writes_the_three_secrets_and_the_ca_files(tmp_path):
    out = generate(tmp_path)
    assert sorted(p.name for p in out.iterdir()) == [
        "ca.crt", "ca.key", "postgres-ca.yaml", "postgres-secrets.yaml", "postgres-tls.yaml"]


def test_every_file_is_private(tmp_path):
    out = generate(tmp_path)
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    for path in out.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


@pytest.mark.parametrize("name", ["postgres-secrets", "postgres-tls", "postgres-ca"])
@pytest.mark.parametrize("version", ["1.27.0", "1.35.0"])
def test_secrets_validate_strictly(tmp_path, name, version):
    document = secret(generate(tmp_path), name)
    kubernetes_validate.validate(document, version, strict=True)
    assert (document["kind"], document["metadata"]["namespace"], document["type"]) == ("Secret", NS, "Opaque")


@pytest.mark.parametrize("name", ["postgres-secrets", "postgres-tls", "postgres-ca"])
def test_secrets_are_not_tracked_as_argo_cd_objects(tmp_path, name):
    """Argo CD tracks by app.kubernetes.io/instance by default and prunes what dist/ lacks."""
    labels = secret(generate(tmp_path), name)["metadata"]["labels"]
    assert "app.kubernetes.io/instance" not in labels
    assert labels["app.kubernetes.io/managed-by"] == "secrets-generate"


def test_secret_names_and_namespace_follow_the_values(tmp_path):
    out = generate(tmp_path, {"global": {"namespace": "db"}, "postgres": {
        "secrets": {"existingSecret": "pw"}, "tls": {"existingSecret": "cert"}, "ca": {"existingSecret": "trust"}}})
    for name in ("pw", "cert", "trust"):
        assert secret(out, name)["metadata"]["namespace"] == "db"
    assert "postgres.db.svc.cluster.local" in certificate(out, "cert").extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)


def test_refuses_to_overwrite(tmp_path):
    out = generate(tmp_path)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(secretgen.SecretsError, match=r"already exist: refusing to overwrite.*--rotate KEY.*--force"):
        generate(tmp_path)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_force_replaces_everything(tmp_path):
    out = generate(tmp_path)
    before = data(out, "postgres-secrets")
    generate(tmp_path, force=True)
    after = data(out, "postgres-secrets")
    assert all(before[k] != after[k] for k in before)


def test_refuses_an_output_folder_inside_dist(tmp_path):
    with pytest.raises(secretgen.SecretsError, match=r"--out: .* is inside .*dist, which is committed"):
        secretgen.generate(parse_values({}), TOP / "dist" / "secrets", forbidden=(TOP / "dist",))
    assert not (TOP / "dist" / "secrets").exists()


@pytest.mark.parametrize("mode", [0o755, 0o750, 0o701, 0o770])
def test_refuses_an_existing_folder_others_can_enter_and_keeps_its_mode(tmp_path, mode):
    out = tmp_path / "shared-folder"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    out.chmod(mode)
    with pytest.raises(secretgen.SecretsError, match=rf"--out: {out} is open to other users .*chmod 700"):
        secretgen.generate(parse_values({}), out)
    assert stat.S_IMODE(out.stat().st_mode) == mode
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_uses_an_existing_private_folder_without_touching_its_mode_or_files(tmp_path):
    out = tmp_path / "private"
    out.mkdir()
    out.chmod(0o500 | 0o200)  # 0700 without anything for group or others
    (out / "notes.txt").write_text("mine\n")
    secretgen.generate(parse_values({}), out)
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert (out / "notes.txt").read_text() == "mine\n"
    assert (out / "postgres-secrets.yaml").exists()


def test_creates_a_missing_folder_private_whatever_the_umask(tmp_path):
    previous = os.umask(0)
    try:
        out = generate(tmp_path)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(out.stat().st_mode) == 0o700


def test_refuses_an_output_that_is_a_file(tmp_path):
    target = tmp_path / "secrets"
    target.write_text("mine\n")
    with pytest.raises(secretgen.SecretsError, match=rf"--out: {target} is not a folder"):
        secretgen.generate(parse_values({}), target)
    assert target.read_text() == "mine\n"


def test_cli_refuses_an_open_folder_with_one_error_line(tmp_path):
    out = tmp_path / "open"
    out.mkdir(mode=0o755)
    out.chmod(0o755)
    result = subprocess.run([sys.executable, str(TOP / "main.py"), "secrets", "generate", "--out", str(out)],
                            capture_output=True, text=True, cwd=TOP, timeout=120)
    assert result.returncode != 0
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")] == [result.stderr.strip()]
    assert "is open to other users" in result.stderr
    assert list(out.iterdir()) == [] and stat.S_IMODE(out.stat().st_mode) == 0o755


def test_cli_prints_the_kubectl_apply_line(tmp_path):
    out = tmp_path / "s"
    result = subprocess.run([sys.executable, str(TOP / "main.py"), "secrets", "generate", "--out", str(out)],
                            capture_output=True, text=True, cwd=TOP, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (f"kubectl apply -f {out}/postgres-secrets.yaml -f {out}/postgres-tls.yaml -f {out}/postgres-ca.yaml"
            in result.stdout)
    again = subprocess.run([sys.executable, str(TOP / "main.py"), "secrets", "generate", "--out", str(out)],
                           capture_output=True, text=True, cwd=TOP, timeout=120)
    assert again.returncode == 1
    assert "refusing to overwrite" in again.stderr


def test_default_output_is_the_ignored_secrets_folder():
    ignored = subprocess.run(["git", "check-ignore", "-q", "secrets/postgres-secrets.yaml"], cwd=TOP)
    assert ignored.returncode == 0
    assert "/secrets/" in (TOP / ".gitignore").read_text()


# --- passwords ----------------------------------------------------------------------------


@pytest.mark.parametrize("temporal", [False, True])
@pytest.mark.parametrize("metrics", [False, True])
def test_password_secret_has_exactly_the_keys_the_pod_requires(tmp_path, synth, temporal, metrics):
    values = {"postgres": {"temporal": {"enabled": temporal}, "metrics": {"enabled": metrics}}}
    keys = set(data(generate(tmp_path, values), "postgres-secrets"))
    pod = synth(values).get("StatefulSet", "postgres")["spec"]["template"]["spec"]
    database = next(c for c in pod["containers"] if c["name"] == contract.CONTAINER)
    env = {e["name"]: e.get("value") for e in database["env"]}
    # start.sh refuses to start without each key of PG_REQUIRED_KEYS (test_postgres and
    # test_metrics_postgres take one away on a real server).
    assert keys == set(env["PG_REQUIRED_KEYS"].split())
    # ...and it is the Secret the database pod mounts (all keys: start.sh names a missing one).
    assert "postgres-secrets" in {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}


def test_temporal_key_only_when_temporal_is_on(tmp_path):
    assert contract.TEMPORAL_PASSWORD_KEY not in data(generate(tmp_path), "postgres-secrets")


def test_monitoring_key_when_metrics_are_on(tmp_path):
    assert contract.MONITORING_PASSWORD_KEY in data(generate(tmp_path), "postgres-secrets")


def test_passwords_are_long_url_safe_and_distinct(tmp_path):
    passwords = list(data(generate(tmp_path), "postgres-secrets").values())
    assert len(set(passwords)) == len(passwords)
    for password in passwords:
        assert re.fullmatch(rb"[A-Za-z0-9]{40}", password)


def pod_templates(m) -> list[dict]:
    templates = []
    for doc in m.docs:
        if doc["kind"] in ("StatefulSet", "Deployment", "Job"):
            templates.append(doc["spec"]["template"]["spec"])
        elif doc["kind"] == "CronJob":
            templates.append(doc["spec"]["jobTemplate"]["spec"]["template"]["spec"])
    return templates


@pytest.mark.parametrize("verify_clients", [False, True])
def test_certificate_secrets_have_exactly_the_keys_the_pods_mount(tmp_path, synth, verify_clients):
    """Every pod (database, and the backup CronJob once it exists) maps these keys by name."""
    values = {"postgres": {"ca": {"verifyClients": verify_clients}}}
    out = generate(tmp_path, values)
    for name in ("postgres-tls", "postgres-ca"):
        mounted = {item["key"] for pod in pod_templates(synth(values)) for v in pod["volumes"]
                   if v.get("secret", {}).get("secretName") == name for item in v["secret"]["items"]}
        # api-forge's Temporal manifests mount the CA under two more keys
        extra = set(contract.CA_CERT_ALIASES) if name == "postgres-ca" else set()
        assert set(data(out, name)) == mounted | extra, name


# --- certificates ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", SERVER_NAMES)
def test_certificate_verifies_for_every_service_and_pod_name(tmp_path_factory, name):
    out = generate(tmp_path_factory.mktemp("pki"))
    verifier(out, name).verify(certificate(out), [])


@pytest.mark.parametrize("name", ["postgres.other-namespace.svc", "postgres-1.postgres-headless", "example.com"])
def test_certificate_is_refused_for_another_name(tmp_path, name):
    out = generate(tmp_path)
    with pytest.raises(VerificationError, match="no matching subjectAltName"):
        verifier(out, name).verify(certificate(out), [])


def test_names_are_the_ones_cert_manager_requests(tmp_path, synth):
    values = {"postgres": {"tls": {"certManager": {"enabled": True, "issuerRef": {"name": "ca"}}}}}
    requested = synth(values).get("Certificate", "postgres-tls")["spec"]["dnsNames"]
    sans = certificate(generate(tmp_path)).extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert sans == requested == SERVER_NAMES


def test_key_matches_the_certificate(tmp_path):
    from cryptography.hazmat.primitives import serialization

    out = generate(tmp_path)
    key = serialization.load_pem_private_key(data(out, "postgres-tls")["server.key"], password=None)
    assert key.public_key() == certificate(out).public_key()


def test_validity_comes_from_the_values(tmp_path):
    out = generate(tmp_path, {"postgres": {"tls": {"generator": {"serverValidityDays": 30, "caValidityDays": 400}}}})
    server = certificate(out)
    ca = x509.load_pem_x509_certificate(data(out, "postgres-ca")["ca.crt"])
    assert (server.not_valid_after_utc - server.not_valid_before_utc).days in (30, 29)
    assert (ca.not_valid_after_utc - ca.not_valid_before_utc).days in (400, 399)


def test_default_validity_is_a_year_and_ten_years(tmp_path):
    out = generate(tmp_path)
    server = certificate(out)
    ca = x509.load_pem_x509_certificate(data(out, "postgres-ca")["ca.crt"])
    assert (server.not_valid_after_utc - server.not_valid_before_utc).days in (365, 364)
    assert (ca.not_valid_after_utc - ca.not_valid_before_utc).days in (3650, 3649)


def test_default_keys_are_ecdsa_p256(tmp_path):
    key = certificate(generate(tmp_path)).public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"


def test_rsa_3072_on_request(tmp_path):
    out = generate(tmp_path, {"postgres": {"tls": {"generator": {"keyAlgorithm": "RSA-3072"}}}})
    for cert in (certificate(out), x509.load_pem_x509_certificate(data(out, "postgres-ca")["ca.crt"])):
        assert isinstance(cert.public_key(), rsa.RSAPublicKey) and cert.public_key().key_size == 3072
    verifier(out, "postgres").verify(certificate(out), [])


def test_ca_key_never_goes_into_a_manifest(tmp_path):
    out = generate(tmp_path)
    ca_key = (out / "ca.key").read_bytes()
    for manifest in out.glob("*.yaml"):
        text = manifest.read_bytes()
        assert ca_key not in text and base64.b64encode(ca_key) not in text
        assert all(d["kind"] == "Secret" for d in yaml.safe_load_all(text))


def test_with_cert_manager_only_passwords_are_generated(tmp_path):
    out = generate(tmp_path, {"postgres": {"tls": {"certManager": {"enabled": True, "issuerRef": {"name": "ca"}}}}})
    assert sorted(p.name for p in out.iterdir()) == ["postgres-secrets.yaml"]


def test_with_tls_off_only_passwords_are_generated(tmp_path):
    out = generate(tmp_path, {"postgres": {"tls": {"enabled": False}}})
    assert sorted(p.name for p in out.iterdir()) == ["postgres-secrets.yaml"]


# --- rotation ----------------------------------------------------------------------------------


def test_rotate_replaces_one_password_only(tmp_path):
    out = generate(tmp_path)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    old = data(out, "postgres-secrets")
    generate(tmp_path, rotate=contract.APP_PASSWORD_KEY)
    new = data(out, "postgres-secrets")
    assert new[contract.APP_PASSWORD_KEY] != old[contract.APP_PASSWORD_KEY]
    assert {k: v for k, v in new.items() if k != contract.APP_PASSWORD_KEY} == {
        k: v for k, v in old.items() if k != contract.APP_PASSWORD_KEY}
    assert list(new) == list(old)
    for name in ("postgres-tls.yaml", "postgres-ca.yaml", "ca.key", "ca.crt"):
        assert (out / name).read_bytes() == before[name]
    assert stat.S_IMODE((out / "postgres-secrets.yaml").stat().st_mode) == 0o600


def test_rotate_adds_a_key_the_values_now_need(tmp_path):
    out = generate(tmp_path)
    old = data(out, "postgres-secrets")
    generate(tmp_path, {"postgres": {"temporal": {"enabled": True}}}, rotate=contract.TEMPORAL_PASSWORD_KEY)
    new = data(out, "postgres-secrets")
    assert set(new) == set(old) | {contract.TEMPORAL_PASSWORD_KEY}
    assert {k: new[k] for k in old} == old


def test_rotate_refuses_an_unknown_key(tmp_path):
    generate(tmp_path)
    with pytest.raises(secretgen.SecretsError, match=r"--rotate: 'postgres_app_usr_pw' is not something these values use; choose one of postgres_password, .*tls, ca"):
        generate(tmp_path, rotate="postgres_app_usr_pw")


def test_rotate_needs_existing_secrets(tmp_path):
    with pytest.raises(secretgen.SecretsError, match=r"postgres-secrets\.yaml does not exist: run `secrets generate` without --rotate first"):
        generate(tmp_path, rotate=contract.APP_PASSWORD_KEY)


def test_rotate_tls_issues_a_new_key_from_the_same_ca(tmp_path):
    out = generate(tmp_path)
    old_cert, old_key = data(out, "postgres-tls")["server.crt"], data(out, "postgres-tls")["server.key"]
    ca_before = (out / "postgres-ca.yaml").read_bytes()
    generate(tmp_path, rotate="tls")
    assert data(out, "postgres-tls")["server.crt"] != old_cert
    assert data(out, "postgres-tls")["server.key"] != old_key
    assert (out / "postgres-ca.yaml").read_bytes() == ca_before
    verifier(out, "postgres.api-forge-prod.svc").verify(certificate(out), [])


def test_rotate_ca_trusts_old_and_new_until_pruned(tmp_path):
    out = generate(tmp_path)
    old_ca = data(out, "postgres-ca")["ca.crt"]
    old_server = certificate(out)
    generate(tmp_path, rotate="ca")
    bundle = x509.load_pem_x509_certificates(data(out, "postgres-ca")["ca.crt"])
    assert len(bundle) == 2 and bundle[1] == x509.load_pem_x509_certificate(old_ca)
    assert (out / "ca.crt").read_bytes() == data(out, "postgres-ca")["ca.crt"]
    verifier(out, "postgres").verify(old_server, [])  # the old server certificate still verifies
    generate(tmp_path, rotate="tls")
    new_server = certificate(out)
    assert new_server.issuer == bundle[0].subject
    new_server.verify_directly_issued_by(bundle[0])
    generate(tmp_path, prune_ca=True)
    assert x509.load_pem_x509_certificates(data(out, "postgres-ca")["ca.crt"]) == [bundle[0]]
    verifier(out, "postgres").verify(new_server, [])
    with pytest.raises(VerificationError):
        verifier(out, "postgres").verify(old_server, [])


def test_options_exclude_each_other(tmp_path):
    generate(tmp_path)
    with pytest.raises(secretgen.SecretsError, match="exclude each other"):
        generate(tmp_path, force=True, rotate=contract.APP_PASSWORD_KEY)


def test_rotate_tls_is_refused_with_cert_manager(tmp_path):
    values = {"postgres": {"tls": {"certManager": {"enabled": True, "issuerRef": {"name": "ca"}}}}}
    generate(tmp_path, values)
    with pytest.raises(secretgen.SecretsError, match=r"--rotate: 'tls' is not something these values use"):
        generate(tmp_path, values, rotate="tls")


def test_generated_files_stay_private_after_rotation_as_another_umask(tmp_path):
    previous = os.umask(0)
    try:
        out = generate(tmp_path)
        generate(tmp_path, rotate="tls")
    finally:
        os.umask(previous)
    for path in out.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
