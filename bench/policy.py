"""Figures of the production gates, per synthesized variant: checkov
passed/failed/skipped (and which checks are skipped), the Pod Security
Standards `restricted` table, and strict schema validation across Kubernetes
versions. The tests assert the same things; this prints them for a report."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent
# jsii needs the pinned Node from node_modules; the gates' helpers live in tests/.
os.environ["PATH"] = f"{TOP / 'node_modules' / '.bin'}{os.pathsep}{os.environ['PATH']}"
sys.path[:0] = [str(TOP / "tests"), str(TOP)]

import kubernetes_validate  # noqa: E402
from pss import CONTROLS, violations  # noqa: E402
from variants import POLICY_VARIANTS, checkov_all  # noqa: E402

from chart.policy import pod_template  # noqa: E402

VERSIONS = ["1.27.0", "1.31.0", "1.35.0", kubernetes_validate.latest_version()]


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        results = checkov_all(Path(tmp))
        elapsed = time.perf_counter() - start
        variants = list(POLICY_VARIANTS)

        print(f"checkov (Kubernetes framework; "
              f"{len(variants)} variants in {elapsed:.1f} s incl. synth)")
        rows = []
        for name in variants:
            manifests, report = results[name]
            skipped = ", ".join(sorted({c["check_id"] for c in report.skipped})) or "-"
            rows.append([name, len(manifests.docs), len(report.passed), len(report.failed), len(report.skipped), skipped])
        print(table(["variant", "objects", "passed", "failed", "skipped", "skipped checks"], rows))
        reasons = sorted({(c["check_id"], c["check_result"]["suppress_comment"]) for _, r in results.values() for c in r.skipped})
        print("skip reasons (declared in the manifests):")
        for check, reason in reasons:
            print(f"  {check}: {reason}")

        print("\nPod Security Standards `restricted` (every pod template of each variant)")
        templates = {
            name: [(f"{d['kind']}/{d['metadata']['name']}", t) for d in results[name][0].docs if (t := pod_template(d))]
            for name in variants
        }
        rows = []
        for control in CONTROLS:
            row = [control]
            for name in variants:
                broken = sum(1 for _, t in templates[name] for v in violations(t) if v.control == control)
                row.append("pass" if not broken else f"FAIL {broken}")
            rows.append(row)
        print(table(["control", *variants], rows))
        print("pod templates: " + "; ".join(f"{n}: {', '.join(w for w, _ in templates[n])}" for n in variants))

        print("\nStrict schema validation (kubernetes-validate "
              f"{kubernetes_validate.__version__}; built-in kinds valid / total; custom resources, "
              "which it has no schema for, are checked against their CRDs by the tests)")
        rows = []
        for name in variants:
            docs = results[name][0].docs
            builtin = [d for d in docs if is_builtin(d)]
            row = [name]
            for version in VERSIONS:
                valid = 0
                for doc in builtin:
                    try:
                        kubernetes_validate.validate(doc, version, strict=True)
                        valid += 1
                    except kubernetes_validate.ValidationError:
                        pass
                row.append(f"{valid}/{len(builtin)}")
            row.append(str(len(docs) - len(builtin)))
            rows.append(row)
        print(table(["variant", *VERSIONS, "custom resources"], rows))


def is_builtin(doc: dict) -> bool:
    """Kubernetes' own kinds: the core group, groups without a dot, and *.k8s.io."""
    group = doc["apiVersion"].rpartition("/")[0]
    return "." not in group or group.endswith(".k8s.io")


if __name__ == "__main__":
    main()
