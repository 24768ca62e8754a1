"""checkov over every synthesized variant: zero failed checks, and every skip
is declared in the manifest with its reason."""

from __future__ import annotations

import copy
import re

import pytest
import yaml

from chart.policy import SKIP_ANNOTATION_PREFIX
from variants import POLICY_VARIANTS, checkov_all, run_checkov

pytestmark = pytest.mark.slow

SKIP_VALUE = re.compile(r"^(CKV2?_K8S_\d+)=(.*)$", re.S)


@pytest.fixture(scope="session")
def checkov_results(tmp_path_factory):
    """One checkov run per variant, for the whole session: each run takes seconds."""
    return checkov_all(tmp_path_factory.mktemp("variants"))


def skip_problems(docs: list[dict]) -> list[str]:
    """Every checkov skip annotation that does not read `CKV_K8S_nn=<reason>`."""
    problems = []
    for doc in docs:
        for key, value in ((doc["metadata"].get("annotations")) or {}).items():
            if not key.startswith(SKIP_ANNOTATION_PREFIX):
                continue
            match = SKIP_VALUE.match(value)
            if not match or not match.group(2).strip():
                problems.append(f"{doc['kind']}/{doc['metadata']['name']} {key}: {value!r} has no reason")
    return problems


def skips(docs: list[dict]) -> list[tuple[str, str, str]]:
    return [
        (f"{d['kind']}/{d['metadata']['name']}", *SKIP_VALUE.match(v).groups())
        for d in docs
        for k, v in (d["metadata"].get("annotations") or {}).items()
        if k.startswith(SKIP_ANNOTATION_PREFIX)
    ]


@pytest.mark.parametrize("variant", POLICY_VARIANTS)
def test_no_failed_checks(checkov_results, variant):
    _, report = checkov_results[variant]
    assert report.passed, "checkov checked nothing"
    failed = [f"{c['check_id']} {c['resource']}: {c['check_name']}" for c in report.failed]
    assert failed == []


@pytest.mark.parametrize("variant", POLICY_VARIANTS)
def test_every_skip_has_a_reason(checkov_results, variant):
    manifests, report = checkov_results[variant]
    assert skip_problems(manifests.docs) == []
    # The listing, for the record (pytest -s or bench/policy.py shows it).
    for resource, check, reason in skips(manifests.docs):
        print(f"{variant}: {resource} skips {check}: {reason}")
    # What checkov reports as skipped is exactly what the manifests declare, with the reason.
    declared = {(check, reason) for _, check, reason in skips(manifests.docs)}
    assert {(c["check_id"], c["check_result"]["suppress_comment"]) for c in report.skipped} <= declared


def test_skip_without_reason_is_reported():
    doc = {"kind": "StatefulSet", "metadata": {"name": "x", "annotations": {"checkov.io/skip1": "CKV_K8S_40="}}}
    assert skip_problems([doc]) == ["StatefulSet/x checkov.io/skip1: 'CKV_K8S_40=' has no reason"]


def test_skips_follow_the_values(checkov_results):
    def skipped(variant: str) -> set[str]:
        return {check for _, check, _ in skips(checkov_results[variant][0].docs)}

    # A digest pins the image: the tag-related checks pass without a skip.
    assert {"CKV_K8S_43", "CKV_K8S_15"} <= skipped("defaults")
    assert not {"CKV_K8S_43", "CKV_K8S_15"} & skipped("digest")
    # With the NetworkPolicy on, the pods are isolated and checkov sees it.
    assert "CKV2_K8S_6" in skipped("defaults")
    assert "CKV2_K8S_6" not in skipped("network-policy")


def test_checkov_fails_on_a_broken_manifest(checkov_results, tmp_path):
    # Proves the gate can fail: the compliant StatefulSet with one privileged container.
    statefulset = copy.deepcopy(checkov_results["defaults"][0].get("StatefulSet", "postgres"))
    statefulset["spec"]["template"]["spec"]["containers"][0]["securityContext"]["privileged"] = True
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump(statefulset))
    report = run_checkov(tmp_path)
    assert "CKV_K8S_16" in {c["check_id"] for c in report.failed}  # "Container should not be privileged"
