"""imports/ is what `make imports` generates: the Kubernetes kinds this app emits
(from kubernetes-validate's schema) and the CRDs vendored in crds/. The committed
bindings match their sources, and regenerating them is reproducible."""

from __future__ import annotations

import filecmp
import subprocess
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

TOP = Path(__file__).resolve().parent.parent


def test_every_binding_is_listed_in_cdk8s_yaml():
    """`make imports` imports exactly the list in cdk8s.yaml, from files inside the repository."""
    listed = yaml.safe_load((TOP / "cdk8s.yaml").read_text())["imports"]
    assert listed == [
        "k8s@1.27.0",  # the oldest Kubernetes the manifests are validated against
        "crds/cert-manager.io_certificates.yaml",
        "servicemonitors:=crds/monitoring.coreos.com_servicemonitors.yaml",
        "prometheusrules:=crds/monitoring.coreos.com_prometheusrules.yaml",
    ]
    for entry in listed:
        if entry.startswith("k8s@"):
            continue  # served from kubernetes-validate's schema, not a file
        path = (TOP / entry.split(":=")[-1]).resolve()
        assert path.is_file() and path.is_relative_to(TOP), entry


def test_kubernetes_bindings_hold_exactly_the_kinds_the_app_emits(synth_file):
    """tools/offline-k8s-schema.js trims the bindings to what constructs/ emits: a
    kind left over slows every synth, a kind missing fails at import."""
    from imports import k8s
    from pgbundle.values.load import load_values
    from workstation.restore_manifest import restore_manifest

    bound = {(cls.GVK.api_version, cls.GVK.kind) for name, cls in vars(k8s).items()
             if name.startswith("Kube") and hasattr(cls, "GVK")}
    production = TOP / "examples" / "production.yaml"
    docs = synth_file(production).docs + list(yaml.safe_load_all(
        restore_manifest(load_values(production), backup="20260101T020000Z", databases=[])))
    docs += synth_file(TOP / "examples" / "ha.yaml").docs  # Patroni's Role and RoleBinding
    custom_groups = ("cert-manager.io/", "monitoring.coreos.com/")
    emitted = {(d["apiVersion"], d["kind"]) for d in docs if not d["apiVersion"].startswith(custom_groups)}
    assert bound == emitted


def test_committed_bindings_match_a_fresh_import(tmp_path):
    # The same command as the Makefile's `imports` target, into a scratch folder.
    subprocess.run([TOP / "tools" / "cdk8s-import", tmp_path / "imports"], check=True, capture_output=True, timeout=300)
    assert_same(filecmp.dircmp(tmp_path / "imports", TOP / "imports", ignore=["__pycache__"]))


def assert_same(compared: filecmp.dircmp) -> None:
    assert not compared.left_only and not compared.right_only, (compared.left_only, compared.right_only)
    _, mismatch, errors = filecmp.cmpfiles(compared.left, compared.right, compared.common_files, shallow=False)
    assert not mismatch and not errors, f"imports/ is stale: run `make imports` ({mismatch or errors})"
    for sub in compared.subdirs.values():
        assert_same(sub)
