"""No key, certificate or password ever lands in dist/, whatever the options."""

from __future__ import annotations

import base64
import itertools
import re
from pathlib import Path

import pytest
from conftest import Manifests

from pgbundle.values.load import parse_values
from workstation import secretgen
from test_secrets import data

pytestmark = pytest.mark.slow

TOP = Path(__file__).resolve().parent.parent
PEM = re.compile(r"-----BEGIN [A-Z ]+-----")


def combinations() -> list[dict]:
    """Every combination of the options that change which Secrets and certificates exist."""
    found = []
    tls_modes = [("off", False, False), ("generated", False, False), ("generated", False, True),
                 ("cert-manager", True, False), ("cert-manager", True, True)]
    metrics = [False, True]
    for (mode, cert_manager, verify), temporal, policy, metric in itertools.product(
            tls_modes, [False, True], [False, True], metrics):
        postgres: dict = {
            "tls": {"enabled": mode != "off"},
            "ca": {"verifyClients": verify},
            "temporal": {"enabled": temporal},
            "networkPolicy": {"enabled": policy},
        }
        if cert_manager:
            postgres["tls"]["certManager"] = {"enabled": True, "issuerRef": {"name": "internal-ca"}}
        postgres["metrics"] = {"enabled": metric}
        found.append({"postgres": postgres})
    return found


def material(out: Path) -> list[bytes]:
    """Every secret value generate() wrote, raw and base64-encoded, and each PEM body line."""
    values = []
    for manifest in out.glob("*.yaml"):
        for value in data(out, manifest.stem).values():
            values += [value, base64.b64encode(value)]
            values += [line for line in value.splitlines() if len(line) >= 40 and not line.startswith(b"-----")]
    for name in ("ca.key", "ca.crt"):
        if (out / name).exists():
            values += [line for line in (out / name).read_bytes().splitlines() if len(line) >= 40]
    return values


def assert_clean(folder: Path, secrets: list[bytes]) -> None:
    m = Manifests(folder)
    assert m.docs
    assert not [d for d in m.docs if d["kind"] == "Secret"], "a Secret object in the manifests"
    text = m.text()
    assert not PEM.search(text), "a PEM block in the manifests"
    assert "PRIVATE KEY" not in text
    raw = text.encode()
    leaked = [s for s in secrets if s and s in raw]
    assert not leaked, "generated secret material in the manifests"


@pytest.mark.parametrize("values", combinations(), ids=lambda v: "-".join(
    f"{k}={v['postgres'][k].get('enabled', v['postgres'][k].get('verifyClients'))}" for k in v["postgres"])
    + ("-cm" if v["postgres"]["tls"].get("certManager") else ""))
def test_no_secret_material_in_the_manifests(tmp_path, synth, values):
    out = tmp_path / "secrets"
    secretgen.generate(parse_values(values), out)
    secrets = material(out)
    assert secrets
    assert_clean(synth(values).folder, secrets)


def test_committed_dist_holds_no_secret_material(tmp_path):
    out = tmp_path / "secrets"
    secretgen.generate(parse_values({}), out)
    assert_clean(TOP / "dist", material(out))


def test_the_check_can_fail(tmp_path):
    """assert_clean finds a password and a PEM block when they are there."""
    out = tmp_path / "secrets"
    secretgen.generate(parse_values({}), out)
    secrets = material(out)
    folder = tmp_path / "dist"
    folder.mkdir()
    password = data(out, "postgres-secrets")["postgres_app_user_pw"].decode()
    (folder / "a.k8s.yaml").write_text(f"kind: ConfigMap\nmetadata: {{name: x}}\ndata: {{pw: {password}}}\n")
    with pytest.raises(AssertionError, match="generated secret material"):
        assert_clean(folder, secrets)
    (folder / "a.k8s.yaml").write_text("kind: ConfigMap\nmetadata: {name: x}\ndata: {k: '-----BEGIN PRIVATE KEY-----'}\n")
    with pytest.raises(AssertionError, match="PEM block"):
        assert_clean(folder, secrets)
