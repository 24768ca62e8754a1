"""Synthesis: deterministic, committed dist/ is current, and bad input never damages dist/."""

from __future__ import annotations

import filecmp
import re
import os
import subprocess
import sys
from pathlib import Path

import pytest

import main
from pgbundle.synth.output import replace_folder
from pgbundle.values.load import parse_values

TOP = Path(__file__).resolve().parent.parent


def run_main(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOP / "main.py"), *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=TOP, timeout=120)


def same_tree(a: Path, b: Path) -> bool:
    cmp = filecmp.dircmp(a, b)
    if cmp.left_only or cmp.right_only:
        return False
    _, mismatch, errors = filecmp.cmpfiles(a, b, cmp.common_files, shallow=False)
    return not mismatch and not errors


def test_two_synths_are_byte_identical(tmp_path):
    values = parse_values({"postgres": {"temporal": {"enabled": True}, "networkPolicy": {"enabled": True}}})
    main.synthesize(values, tmp_path / "a")
    main.synthesize(values, tmp_path / "b")
    assert same_tree(tmp_path / "a", tmp_path / "b")


def test_committed_dist_is_a_fresh_synth_of_values_yaml(tmp_path):
    result = run_main("--values", str(TOP / "values.yaml"), "--out", str(tmp_path / "dist"))
    assert result.returncode == 0, result.stderr
    assert same_tree(TOP / "dist", tmp_path / "dist"), "dist/ is stale: run `make synth` and commit dist/"


def test_values_from_environment_variable(tmp_path):
    values = tmp_path / "v.yaml"
    values.write_text("global:\n  namespace: from-env\n")
    result = run_main("--out", str(tmp_path / "out"), env={"VALUES": str(values)})
    assert result.returncode == 0, result.stderr
    assert "namespace: from-env" in (tmp_path / "out" / "10-postgres.k8s.yaml").read_text()


BAD_INPUT = {
    "unknown key": ("postgres:\n  replica: 2\n", r"postgres\.replica: unknown key"),
    "zero replicas": ("postgres:\n  replicas: 0\n", r"postgres\.replicas"),
    "size with GB": ("postgres:\n  persistence:\n    data:\n      size: 20GB\n", r"postgres\.persistence\.data\.size: '20GB'"),
    "negative size": ("postgres:\n  persistence:\n    data:\n      size: -1Gi\n", r"postgres\.persistence\.data\.size: '-1Gi'"),
    "requests above limits": ("postgres:\n  resources:\n    requests: {cpu: '4', memory: 1Gi}\n", r"postgres\.resources\.requests\.cpu"),
    "pdb above replicas": ("postgres:\n  podDisruptionBudget:\n    minAvailable: 3\n", r"postgres\.podDisruptionBudget\.minAvailable: 3"),
    "bad name": ("global:\n  namespace: Prod_DB\n", r"global\.namespace: 'Prod_DB' is not a DNS-1123 label"),
    "malformed yaml": ("postgres: [\n", r"is not valid YAML"),
}


@pytest.fixture
def existing_dist(tmp_path) -> Path:
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "keep.k8s.yaml").write_text("kind: Sentinel\n")
    return dist


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_input_fails_clearly_and_leaves_dist_untouched(tmp_path, existing_dist, case):
    text, message = BAD_INPUT[case]
    values = tmp_path / "values.yaml"
    values.write_text(text)
    result = run_main("--values", str(values), "--out", str(existing_dist))
    assert result.returncode != 0
    assert len([line for line in result.stderr.splitlines() if line.startswith("error:")]) == 1
    assert re.search(message, result.stderr), result.stderr
    assert [p.name for p in existing_dist.iterdir()] == ["keep.k8s.yaml"]
    assert not [p for p in existing_dist.parent.iterdir() if "staging" in p.name]


def test_missing_values_file_fails_and_leaves_dist_untouched(tmp_path, existing_dist):
    result = run_main("--values", str(tmp_path / "missing.yaml"), "--out", str(existing_dist))
    assert result.returncode != 0
    assert "missing.yaml does not exist" in result.stderr
    assert [p.name for p in existing_dist.iterdir()] == ["keep.k8s.yaml"]


def test_pdb_equal_to_replicas_warns_but_synthesizes(tmp_path):
    result = run_main("--values", str(TOP / "values.yaml"), "--out", str(tmp_path / "out"))
    assert result.returncode == 0
    assert "warning: postgres.podDisruptionBudget.minAvailable equals replicas" in result.stderr


def test_check_writes_nothing(tmp_path):
    result = run_main("--check", "--out", str(tmp_path / "out"))
    assert result.returncode == 0
    assert not (tmp_path / "out").exists()


def test_failure_during_synth_keeps_the_previous_output(existing_dist):
    def explode(staging: Path) -> None:
        (staging / "half.k8s.yaml").write_text("kind: Half\n")
        raise RuntimeError("synth failed half-way")

    with pytest.raises(RuntimeError):
        replace_folder(existing_dist, explode)
    assert [p.name for p in existing_dist.iterdir()] == ["keep.k8s.yaml"]
    assert sorted(p.name for p in existing_dist.parent.iterdir()) == ["dist"]


def test_successful_synth_replaces_stale_files(existing_dist):
    main.synthesize(parse_values({}), existing_dist)
    assert sorted(p.name for p in existing_dist.iterdir()) == [
        "00-namespace.k8s.yaml", "10-postgres.k8s.yaml", "20-backup.k8s.yaml", "20-metrics.k8s.yaml"]
