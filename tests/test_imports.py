"""imports/ is what `make imports` generates from the CRDs in ../shared/crds: the
committed bindings match the CRDs, and regenerating them is reproducible."""

from __future__ import annotations

import filecmp
import os
import subprocess
from pathlib import Path

import yaml

TOP = Path(__file__).resolve().parent.parent


def test_every_crd_binding_is_listed_in_cdk8s_yaml():
    """`make imports` imports exactly the list in cdk8s.yaml (the CI clone has ../shared beside it)."""
    listed = yaml.safe_load((TOP / "cdk8s.yaml").read_text())["imports"]
    assert listed == [
        "../shared/crds/cert-manager.io_certificates.yaml",
        "servicemonitors:=../shared/crds/monitoring.coreos.com_servicemonitors.yaml",
        "prometheusrules:=../shared/crds/monitoring.coreos.com_prometheusrules.yaml",
    ]
    for entry in listed:
        assert (TOP / entry.split(":=")[-1]).is_file(), entry


def test_committed_bindings_match_a_fresh_import(tmp_path):
    # The same command as the Makefile's `imports` target, into a scratch folder.
    subprocess.run(
        ["cdk8s", "import", "--language", "python", "--output", str(tmp_path / "imports")],
        cwd=TOP, check=True, capture_output=True, timeout=300,
        env={**os.environ, "CDK8S_CHECK_UPGRADE": "false",
             "PATH": f"{TOP / 'node_modules' / '.bin'}{os.pathsep}{os.environ['PATH']}"},
    )
    assert_same(filecmp.dircmp(tmp_path / "imports", TOP / "imports", ignore=["__pycache__"]))


def assert_same(compared: filecmp.dircmp) -> None:
    assert not compared.left_only and not compared.right_only, (compared.left_only, compared.right_only)
    _, mismatch, errors = filecmp.cmpfiles(compared.left, compared.right, compared.common_files, shallow=False)
    assert not mismatch and not errors, f"imports/ is stale: run `make imports` ({mismatch or errors})"
    for sub in compared.subdirs.values():
        assert_same(sub)
