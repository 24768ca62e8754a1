"""cert-manager: the Certificate, the volume mapping, the CA source, and the values rules."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from conftest import container
from crd import validate_custom_resource

from pgbundle.values.load import ValuesError, parse_values

TOP = Path(__file__).resolve().parent.parent
NS = "api-forge-prod"
CRD = "cert-manager.io_certificates.yaml"


def cert_manager(**settings) -> dict:
    config = {"enabled": True, "issuerRef": {"name": "internal-ca", "kind": "ClusterIssuer"}, **settings}
    return {"postgres": {"tls": {"certManager": config}}}


def pod(m) -> dict:
    return m.get("StatefulSet", "postgres")["spec"]["template"]["spec"]


def volume(m, name) -> dict:
    return next(v for v in pod(m)["volumes"] if v["name"] == name)


def mounted_files(m, volume_name) -> dict[str, str]:
    """File name inside the pod -> Secret key."""
    return {item["path"]: item["key"] for item in volume(m, volume_name)["secret"]["items"]}


def mount_path(m, volume_name) -> str:
    return next(v["mountPath"] for v in container(pod(m), "postgres")["volumeMounts"] if v["name"] == volume_name)


def strings(node):
    if isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)
    elif isinstance(node, str):
        yield node


EXPECTED_DNS_NAMES = [
    "postgres", f"postgres.{NS}", f"postgres.{NS}.svc", f"postgres.{NS}.svc.cluster.local",
    "postgres-headless", f"postgres-headless.{NS}", f"postgres-headless.{NS}.svc",
    f"postgres-headless.{NS}.svc.cluster.local",
    "postgres-0.postgres-headless", f"postgres-0.postgres-headless.{NS}",
    f"postgres-0.postgres-headless.{NS}.svc", f"postgres-0.postgres-headless.{NS}.svc.cluster.local",
    "localhost",
]


# --- the Certificate --------------------------------------------------------


def test_no_certificate_without_cert_manager(synth):
    assert not [d for d in synth().docs if d["kind"] == "Certificate"]


def test_certificate_writes_the_tls_secret(synth):
    spec = synth(cert_manager()).get("Certificate", "postgres-tls")["spec"]
    assert spec["secretName"] == "postgres-tls"
    assert spec["issuerRef"] == {"name": "internal-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"}
    assert (spec["duration"], spec["renewBefore"]) == ("2160h", "360h")


def test_certificate_follows_a_renamed_tls_secret(synth):
    values = cert_manager()
    values["postgres"]["tls"]["existingSecret"] = "db-cert"
    m = synth(values)
    assert m.get("Certificate", "db-cert")["spec"]["secretName"] == "db-cert"
    assert volume(m, "tls")["secret"]["secretName"] == "db-cert"
    assert volume(m, "ca")["secret"]["secretName"] == "db-cert"


def test_cert_manager_secret_is_not_tracked_as_an_argo_cd_object(synth):
    template = synth(cert_manager()).get("Certificate", "postgres-tls")["spec"]["secretTemplate"]["labels"]
    assert "app.kubernetes.io/instance" not in template
    assert template["app.kubernetes.io/name"] == "postgres"


def test_certificate_covers_every_service_and_pod_name(synth):
    spec = synth(cert_manager()).get("Certificate", "postgres-tls")["spec"]
    assert spec["dnsNames"] == EXPECTED_DNS_NAMES


def test_certificate_names_follow_the_namespace(synth):
    values = cert_manager()
    values["global"] = {"namespace": "db"}
    names = synth(values).get("Certificate", "postgres-tls")["spec"]["dnsNames"]
    assert "postgres.db.svc.cluster.local" in names
    assert "postgres-0.postgres-headless.db.svc.cluster.local" in names
    assert not [n for n in names if NS in n]


def test_private_key_is_new_at_every_renewal(synth):
    key = synth(cert_manager()).get("Certificate", "postgres-tls")["spec"]["privateKey"]
    assert key == {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"}


def test_certificate_is_a_server_certificate(synth):
    spec = synth(cert_manager()).get("Certificate", "postgres-tls")["spec"]
    assert "server auth" in spec["usages"]


def test_certificate_validates_against_the_crd_schema(synth):
    validate_custom_resource(synth(cert_manager()).get("Certificate", "postgres-tls"), CRD)


def test_crd_validation_rejects_an_unknown_field(synth):
    """The gate above can fail: a misspelt field is refused, not pruned."""
    certificate = copy.deepcopy(synth(cert_manager()).get("Certificate", "postgres-tls"))
    certificate["spec"]["privateKey"]["rotationPolicyy"] = "Always"
    with pytest.raises(jsonschema.ValidationError, match="rotationPolicyy"):
        validate_custom_resource(certificate, CRD)


def test_crd_validation_rejects_a_bad_value(synth):
    certificate = copy.deepcopy(synth(cert_manager()).get("Certificate", "postgres-tls"))
    certificate["spec"]["privateKey"]["rotationPolicy"] = "Sometimes"
    with pytest.raises(jsonschema.ValidationError, match="Sometimes"):
        validate_custom_resource(certificate, CRD)


# --- what the pod sees --------------------------------------------------------


def test_cert_manager_keys_appear_under_the_usual_file_names(synth):
    m = synth(cert_manager())
    assert mount_path(m, "tls") == "/etc/postgres/tls"
    assert mounted_files(m, "tls") == {"server.crt": "tls.crt", "server.key": "tls.key"}
    assert mount_path(m, "ca") == "/etc/postgres/ca"
    assert mounted_files(m, "ca") == {"ca.crt": "ca.crt"}


def test_generated_secrets_appear_under_the_same_file_names(synth):
    m = synth()
    assert mounted_files(m, "tls") == {"server.crt": "server.crt", "server.key": "server.key"}
    assert volume(m, "tls")["secret"]["secretName"] == "postgres-tls"
    assert mounted_files(m, "ca") == {"ca.crt": "ca.crt"}
    assert volume(m, "ca")["secret"]["secretName"] == "postgres-ca"


def test_with_cert_manager_the_ca_comes_from_the_tls_secret(synth):
    assert volume(synth(cert_manager()), "ca")["secret"]["secretName"] == "postgres-tls"


@pytest.mark.parametrize("verify_clients", [False, True])
def test_with_cert_manager_nothing_refers_to_postgres_ca(synth, verify_clients):
    values = cert_manager()
    values["postgres"]["ca"] = {"verifyClients": verify_clients}
    m = synth(values)
    assert not [s for d in m.docs for s in strings(d) if "postgres-ca" in s]
    assert "postgres-ca" not in m.text()


def test_without_cert_manager_the_ca_secret_is_used(synth):
    """The check above can fail: the default manifests do refer to postgres-ca."""
    assert "postgres-ca" in synth().text()


def test_ca_is_required_only_when_clients_are_verified(synth):
    assert volume(synth(cert_manager()), "ca")["secret"]["optional"] is True
    values = cert_manager()
    values["postgres"]["ca"] = {"verifyClients": True}
    assert volume(synth(values), "ca")["secret"]["optional"] is False


def test_secret_files_are_readable_by_postgres_through_fs_group(synth):
    m = synth(cert_manager())
    for name in ("tls", "ca"):
        assert volume(m, name)["secret"]["defaultMode"] == 0o440
    assert pod(m)["securityContext"]["fsGroup"] == 999


# --- the binding ---------------------------------------------------------------


def test_binding_is_loaded_only_when_cert_manager_is_on(tmp_path):
    """Synthesizing without cert-manager does not pay for the binding."""
    probe = (
        "import sys, main\n"
        "from pgbundle.values.load import parse_values\n"
        f"main.synthesize(parse_values({{}}), __import__('pathlib').Path({str(tmp_path / 'a')!r}))\n"
        "print('imports.io.cert_manager' in sys.modules)\n"
        f"main.synthesize(parse_values({cert_manager()!r}), __import__('pathlib').Path({str(tmp_path / 'b')!r}))\n"
        "print('imports.io.cert_manager' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=TOP, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True"]


# --- values: one test per rule ------------------------------------------------------


def test_cert_manager_defaults():
    cm = parse_values({}).postgres.tls.cert_manager
    assert (cm.enabled, cm.issuer_ref.name, cm.issuer_ref.kind, cm.issuer_ref.group) == (
        False, None, "Issuer", "cert-manager.io")
    assert (cm.duration, cm.renew_before) == ("2160h", "360h")


def test_issuer_name_is_required_when_enabled():
    with pytest.raises(ValuesError, match=r"postgres\.tls\.certManager\.issuerRef\.name: missing"):
        parse_values({"postgres": {"tls": {"certManager": {"enabled": True}}}})


def test_issuer_name_must_be_a_dns_subdomain():
    with pytest.raises(ValuesError, match=r"postgres\.tls\.certManager\.issuerRef\.name: 'Internal CA' is not a DNS-1123 subdomain"):
        parse_values(cert_manager(issuerRef={"name": "Internal CA"}))


def test_issuer_kind_must_be_a_cert_manager_kind():
    with pytest.raises(ValuesError, match=r"postgres\.tls\.certManager\.issuerRef\.kind: 'Isuer' is not a cert-manager\.io issuer kind: use Issuer or ClusterIssuer"):
        parse_values(cert_manager(issuerRef={"name": "ca", "kind": "Isuer"}))


def test_external_issuer_kinds_are_allowed():
    values = parse_values(cert_manager(issuerRef={"name": "pca", "kind": "AWSPCAClusterIssuer", "group": "awspca.cert-manager.io"}))
    assert values.postgres.tls.cert_manager.issuer_ref.kind == "AWSPCAClusterIssuer"


def test_duration_must_be_a_go_duration():
    with pytest.raises(ValuesError, match=r"postgres\.tls\.certManager\.duration: '90d' is not a duration: use .* units h, m, s"):
        parse_values(cert_manager(duration="90d"))


def test_duration_at_least_one_hour():
    with pytest.raises(ValuesError, match=r"postgres\.tls\.certManager\.duration: '30m' is below cert-manager's minimum of 1h"):
        parse_values(cert_manager(duration="30m", renewBefore="10m"))


def test_renew_before_at_least_five_minutes():
    with pytest.raises(ValuesError, match=r"postgres\.tls\.certManager\.renewBefore: '1m' is below cert-manager's minimum of 5m"):
        parse_values(cert_manager(renewBefore="1m"))


def test_renew_before_shorter_than_duration():
    with pytest.raises(ValuesError, match=r"postgres\.tls\.certManager\.renewBefore: '2160h' is not shorter than duration '2160h'"):
        parse_values(cert_manager(renewBefore="2160h"))


def test_cert_manager_needs_tls():
    values = cert_manager()
    values["postgres"]["tls"]["enabled"] = False
    with pytest.raises(ValuesError, match=r"postgres\.tls\.certManager\.enabled: true needs tls\.enabled: true"):
        parse_values(values)


def test_disabled_cert_manager_needs_no_issuer():
    assert parse_values({"postgres": {"tls": {"certManager": {"enabled": False}}}}).postgres.tls.cert_manager.issuer_ref.name is None
