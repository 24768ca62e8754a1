"""The values variants that every gate (schema, snapshots, policy) checks, and
the checkov runner the policy gate and bench/policy.py share."""

from __future__ import annotations

import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import yaml

TOP = Path(__file__).resolve().parent.parent


def _with_read_only_pooler(document: dict) -> dict:
    document["postgres"]["pooler"]["readOnly"] = {"enabled": True}
    return document


VARIANTS: dict[str, dict] = {
    "defaults": {},
    "production": yaml.safe_load((TOP / "examples" / "production.yaml").read_text()),
    "ha": yaml.safe_load((TOP / "examples" / "ha.yaml").read_text()),
    "ha-pitr": yaml.safe_load((TOP / "examples" / "ha-pitr.yaml").read_text()),
    # The HA example with the read-only pooler in front of postgres-replicas too.
    "ha-pooler-ro": _with_read_only_pooler(yaml.safe_load((TOP / "examples" / "ha.yaml").read_text())),
    "temporal": {"postgres": {"temporal": {"enabled": True}}},
    "network-policy": {"postgres": {"networkPolicy": {"enabled": True}}},
    "tls-off": {"postgres": {"tls": {"enabled": False}}},
    "cert-manager": {"postgres": {"tls": {"certManager": {
        "enabled": True, "issuerRef": {"name": "internal-ca", "kind": "ClusterIssuer"}}}}},
    "metrics-off": {"postgres": {"metrics": {"enabled": False}}},
    # The Prometheus Operator objects and the dashboard on, everything else at defaults.
    "metrics-objects": {"postgres": {"metrics": {"serviceMonitor": {"enabled": True},
                                                 "prometheusRule": {"enabled": True},
                                                 "dashboard": {"enabled": True}}}},
    # Every backup option away from its default: RWX volume (no affinity), client certificates.
    "backup-options": {"postgres": {
        "persistence": {"backups": {"accessMode": "ReadWriteMany"}},
        "ca": {"verifyClients": True},
        "backup": {"schedule": "30 3 * * 0", "timeZone": "Europe/Berlin", "retention": {"count": 14, "days": 30},
                   "compression": 6, "suspend": True, "databases": ["appdb"], "timeoutMinutes": 60}}},
    "backup-off": {"postgres": {"backup": {"enabled": False}}},
    # Point-in-time recovery with both repositories: its own PVC and an S3 bucket with a private CA.
    "pitr": {"postgres": {
        "ha": {"image": {"repository": "ghcr.io/example/api-forge-postgres/postgres-patroni", "tag": "v1.0.0"}},
        "pitr": {"enabled": True, "repos": {
            "volume": {"claim": "own", "size": "50Gi"},
            "s3": {"enabled": True, "bucket": "pg-backups", "endpoint": "minio.storage.svc:9000", "uriStyle": "path",
                   "caSecret": "minio-ca"}}}}},
}

# The policy gates also cover an image pinned by digest: checkov's CKV_K8S_43 and
# CKV_K8S_15 then pass on their own and their skips must disappear.
POLICY_VARIANTS: dict[str, dict] = {
    **VARIANTS,
    "digest": {"postgres": {"image": {"digest": "sha256:" + "0" * 64},
                            "metrics": {"image": {"digest": "sha256:" + "1" * 64}}}},
}

# checkov pins packaging<24 and pytest needs >=24: pip cannot install both in one
# environment, so checkov lives in its own virtualenv (requirements-checkov.txt).
CHECKOV = TOP / ".venv-checkov" / "bin" / "checkov"


def synth_variant(name: str, out: Path):
    """Synthesize a policy variant into `out` (in-process) -> conftest.Manifests."""
    import main
    from conftest import Manifests
    from pgbundle.values.load import parse_values

    main.synthesize(parse_values(POLICY_VARIANTS[name], name), out)
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


def checkov_all(root: Path) -> dict:
    """Synthesize every policy variant under `root` and run checkov on each
    separately, two at a time: checkov is slow to start, and one run over all
    variants would let a NetworkPolicy of one variant cover the pods of another.
    Returns {variant: (Manifests, CheckovReport)}."""
    manifests = {name: synth_variant(name, root / name) for name in POLICY_VARIANTS}
    with ThreadPoolExecutor(max_workers=2) as pool:
        reports = dict(zip(manifests, pool.map(run_checkov, [m.folder for m in manifests.values()])))
    return {name: (manifests[name], reports[name]) for name in POLICY_VARIANTS}
