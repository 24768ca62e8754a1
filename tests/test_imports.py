"""imports/ is what `make imports` generates from the CRDs in ../shared/crds: the
committed bindings match the CRDs, and regenerating them is reproducible."""

from __future__ import annotations

import filecmp
import os
import re
import subprocess
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent


def test_committed_bindings_match_a_fresh_import(tmp_path):
    # The same command and CRD list as the Makefile's `imports` target.
    makefile = (TOP / "Makefile").read_text()
    crds = re.search(r"^MONITORING_CRDS := (.+)$", makefile, flags=re.M).group(1).split()
    assert crds == ["servicemonitors", "prometheusrules"]
    for crd in crds:
        source = TOP.parent / "shared" / "crds" / f"monitoring.coreos.com_{crd}.yaml"
        subprocess.run(
            ["cdk8s", "import", f"{crd}:={source}", "-l", "python", "-o", str(tmp_path)],
            cwd=tmp_path, check=True, capture_output=True, timeout=120,
            env={**os.environ, "CDK8S_CHECK_UPGRADE": "false"},
        )
        compared = filecmp.dircmp(tmp_path / crd, TOP / "imports" / crd)
        assert_same(compared)


def assert_same(compared: filecmp.dircmp) -> None:
    assert not compared.left_only and not compared.right_only, (compared.left_only, compared.right_only)
    _, mismatch, errors = filecmp.cmpfiles(compared.left, compared.right, compared.common_files, shallow=False)
    assert not mismatch and not errors, f"imports/ is stale: run `make imports` ({mismatch or errors})"
    for sub in compared.subdirs.values():
        assert_same(sub)
