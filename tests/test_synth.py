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
from constructs import layout
from constructs.output import replace_folder
from constructs.values import parse_values

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
    """An earlier synth's output folder (one file of the names a synth writes)."""
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "10-postgres.k8s.yaml").write_text("kind: Sentinel\n")
    return dist


def unchanged(dist: Path) -> bool:
    return ([p.name for p in dist.iterdir()] == ["10-postgres.k8s.yaml"]
            and (dist / "10-postgres.k8s.yaml").read_text() == "kind: Sentinel\n"
            and not [p for p in dist.parent.iterdir() if "staging" in p.name or "-old-" in p.name])


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_input_fails_clearly_and_leaves_dist_untouched(tmp_path, existing_dist, case):
    text, message = BAD_INPUT[case]
    values = tmp_path / "values.yaml"
    values.write_text(text)
    result = run_main("--values", str(values), "--out", str(existing_dist))
    assert result.returncode != 0
    assert len([line for line in result.stderr.splitlines() if line.startswith("error:")]) == 1
    assert re.search(message, result.stderr), result.stderr
    assert unchanged(existing_dist)


def test_missing_values_file_fails_and_leaves_dist_untouched(tmp_path, existing_dist):
    result = run_main("--values", str(tmp_path / "missing.yaml"), "--out", str(existing_dist))
    assert result.returncode != 0
    assert "missing.yaml does not exist" in result.stderr
    assert unchanged(existing_dist)


@pytest.mark.parametrize("path", ["/usr/bin:/bin", "/nonexistent"], ids=["older-node-first", "no-node"])
def test_default_synth_prints_nothing_on_stderr_whatever_the_callers_path(tmp_path, path):
    # The CLI starts the Node pinned in package.json itself: an older one on the
    # caller's PATH would print its end-of-life banner, none at all would fail.
    result = run_main("--values", str(TOP / "values.yaml"), "--out", str(tmp_path / "out"), env={"PATH": path})
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert same_tree(TOP / "dist", tmp_path / "out")


def test_a_warning_still_reaches_the_console(tmp_path):
    values = tmp_path / "v.yaml"
    values.write_text("postgres:\n  tls:\n    enabled: false\n")
    result = run_main("--values", str(values), "--out", str(tmp_path / "out"))
    assert result.returncode == 0
    assert result.stderr.startswith("warning: postgres.tls.enabled is false")


def test_check_writes_nothing(tmp_path):
    result = run_main("--check", "--out", str(tmp_path / "out"))
    assert result.returncode == 0
    assert not (tmp_path / "out").exists()


def test_failure_during_synth_keeps_the_previous_output(existing_dist):
    def explode(staging: Path) -> None:
        (staging / "half.k8s.yaml").write_text("kind: Half\n")
        raise RuntimeError("synth failed half-way")

    with pytest.raises(RuntimeError):
        replace_folder(existing_dist, explode, ours=layout.CHART_FILES)
    assert unchanged(existing_dist)
    assert sorted(p.name for p in existing_dist.parent.iterdir()) == ["dist"]


def test_successful_synth_replaces_an_earlier_output(existing_dist):
    (existing_dist / "20-metrics.k8s.yaml").write_text("kind: Stale\n")  # metrics were on before
    main.synthesize(parse_values({"postgres": {"metrics": {"enabled": False}}}), existing_dist)
    assert sorted(p.name for p in existing_dist.iterdir()) == [
        "00-namespace.k8s.yaml", "10-postgres.k8s.yaml", "20-backup.k8s.yaml"]
    assert "Sentinel" not in (existing_dist / "10-postgres.k8s.yaml").read_text()


def test_a_writer_of_unknown_files_is_a_defect_and_changes_nothing(existing_dist):
    def stray(staging: Path) -> None:
        (staging / "10-postgres.k8s.yaml").write_text("kind: New\n")
        (staging / "notes.txt").write_text("not a chart\n")

    with pytest.raises(RuntimeError, match="notes.txt"):
        replace_folder(existing_dist, stray, ours=layout.CHART_FILES)
    assert unchanged(existing_dist)


# --- --out never replaces what a synth did not write ------------------------------

def _checkout_like(folder: Path) -> dict[str, bytes]:
    """A folder that is not a synth's output: a checkout with .git, sources and a manifest."""
    (folder / ".git").mkdir(parents=True)
    (folder / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (folder / "main.py").write_text("print('mine')\n")
    (folder / "10-postgres.k8s.yaml").write_text("kind: Mine\n")
    return _contents(folder)


def _contents(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("spelling", ["absolute", "dot"])
def test_out_refuses_a_folder_with_other_content(tmp_path, spelling):
    checkout = tmp_path / "checkout"
    before = _checkout_like(checkout)
    out = "." if spelling == "dot" else str(checkout)
    result = subprocess.run([sys.executable, str(TOP / "main.py"), "--out", out], capture_output=True, text=True,
                            cwd=checkout, timeout=120)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert f"--out: {checkout} holds .git, main.py, which a synth did not write: refusing to replace it" in errors[0]
    assert _contents(checkout) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkout"]  # no staging folder left beside it


def test_out_refuses_a_file(tmp_path):
    target = tmp_path / "manifest.yaml"
    target.write_text("kind: Mine\n")
    result = run_main("--out", str(target))
    assert result.returncode == 2
    assert f"error: --out: {target} is not a folder" in result.stderr
    assert target.read_text() == "kind: Mine\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.yaml"]


def test_out_refuses_a_folder_where_a_chart_file_would_go(existing_dist):
    (existing_dist / "20-backup.k8s.yaml").mkdir()
    (existing_dist / "20-backup.k8s.yaml" / "mine").write_text("x\n")
    result = run_main("--out", str(existing_dist))
    assert result.returncode == 2
    assert "20-backup.k8s.yaml is a folder" in result.stderr
    assert (existing_dist / "20-backup.k8s.yaml" / "mine").read_text() == "x\n"


def test_out_fills_an_empty_folder(tmp_path):
    (tmp_path / "out").mkdir()
    result = run_main("--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert {p.name for p in (tmp_path / "out").iterdir()} <= layout.CHART_FILES


def test_make_synth_runs_the_cli_without_its_upgrade_check(tmp_path):
    # The CLI version is pinned in package.json; its upgrade check needs the internet
    # and prints a stack trace without it. Run the Makefile's own command line.
    planned = subprocess.run(["make", "-n", "synth"], cwd=TOP, capture_output=True, text=True, check=True).stdout
    command = [line for line in planned.splitlines() if line.startswith("cdk8s synth")]
    assert command == ["cdk8s synth --no-check-upgrade"]
    result = subprocess.run(f"{command[0]} --output {tmp_path / 'out'}", shell=True, cwd=TOP, capture_output=True,
                            text=True, timeout=120, env={**os.environ, "PATH": f"{TOP / 'node_modules' / '.bin'}:/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert same_tree(TOP / "dist", tmp_path / "out")
