"""The synthesized variants the production gates cover, and the checkov runner.

Shared by the tests (tests/test_policy.py, tests/test_pod_security.py) and by
bench/policy.py, which prints the figures.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from conftest import TOP, Manifests, deep_merge
from constructs.values import parse_values

import main

# checkov pins packaging<24 and pytest needs >=24: pip cannot install both in one
# environment, so checkov lives in its own virtualenv (requirements-checkov.txt).
CHECKOV = TOP / ".venv-checkov" / "bin" / "checkov"


def _defaults() -> dict:
    return yaml.safe_load((TOP / "values.yaml").read_text())


def _production() -> dict:
    return yaml.safe_load((TOP / "examples" / "production.yaml").read_text())


# name -> values; every variant starts from values.yaml so it reads as a diff from the defaults.
VARIANTS: dict[str, Callable[[], dict]] = {
    "defaults": _defaults,
    "production": _production,
    "temporal": lambda: deep_merge(_defaults(), {"postgres": {"temporal": {"enabled": True}}}),
    "network-policy": lambda: deep_merge(_defaults(), {"postgres": {"networkPolicy": {"enabled": True}}}),
    # A digest removes the tag-related skips: checkov's CKV_K8S_43 and CKV_K8S_15 pass on their own.
    "digest": lambda: deep_merge(_defaults(), {"postgres": {"image": {"digest": "sha256:" + "0" * 64}}}),
}


def synth_variant(name: str, out: Path) -> Manifests:
    main.synthesize(parse_values(VARIANTS[name](), name), out)
    return Manifests(out)


@dataclass
class CheckovReport:
    passed: list[dict] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)

    def summary(self) -> str:
        return f"passed {len(self.passed)}, failed {len(self.failed)}, skipped {len(self.skipped)}"


def run_checkov(folder: Path) -> CheckovReport:
    """checkov's Kubernetes framework over one folder, offline."""
    if not CHECKOV.exists():
        raise RuntimeError(f"{CHECKOV} is missing: run `make setup`")
    result = subprocess.run(
        # --skip-download: no call home for guidelines (this machine has no such network).
        [str(CHECKOV), "-d", str(folder), "--framework", "kubernetes", "--skip-download", "-o", "json", "--soft-fail"],
        capture_output=True,
        text=True,
        env={**os.environ, "LOG_LEVEL": "ERROR"},
        check=True,
    )
    report = json.loads(result.stdout)
    results = report.get("results", {}) if isinstance(report, dict) else {}
    return CheckovReport(
        passed=results.get("passed_checks", []),
        failed=results.get("failed_checks", []),
        skipped=results.get("skipped_checks", []),
    )


def checkov_all(root: Path) -> dict[str, tuple[Manifests, CheckovReport]]:
    """Synthesize every variant under `root` and run checkov on each, two at a time
    (checkov is slow to start and a run over several variants at once would let a
    NetworkPolicy of one variant cover the pods of another)."""
    manifests = {name: synth_variant(name, root / name) for name in VARIANTS}
    with ThreadPoolExecutor(max_workers=2) as pool:
        reports = dict(zip(manifests, pool.map(run_checkov, [m.folder for m in manifests.values()])))
    return {name: (manifests[name], reports[name]) for name in VARIANTS}
