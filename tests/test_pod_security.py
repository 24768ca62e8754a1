"""Pod Security Standards `restricted`: every pod the project ships passes every
control, the checker catches each control's violation on its own, and the
namespace makes the cluster enforce the profile."""

from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Callable

import pytest
import yaml

from chart.policy import pod_template
from conftest import TOP
from pss import CONTROLS, violations
from variants import POLICY_VARIANTS, synth_variant

# Sub-commands of main.py (with arguments) that print manifests to apply by hand.
PRINTED_MANIFEST_COMMANDS = [
    ["restore-manifest", "--backup", "20260101T020000Z"],
    ["migrate-manifest", "--image", "ghcr.io/example/api:1.2.3", "--", "alembic", "upgrade", "head"],
    ["upgrade-manifest", "--to-image", "postgres:18.1-bookworm"],
    ["pitr-restore-manifest", "--values", "examples/pitr.yaml", "--latest"],
    ["pitr-restore-manifest", "--values", "examples/pitr.yaml", "--in-place", "--latest"],
]


def pod_templates(docs: list[dict]) -> list[tuple[str, dict]]:
    return [(f"{d['kind']}/{d['metadata']['name']}", t) for d in docs if (t := pod_template(d)) is not None]


def test_every_pod_template_in_dist_is_restricted(source_dist):
    templates = pod_templates(source_dist.docs)
    assert "StatefulSet/postgres" in dict(templates)
    for name, template in templates:
        assert violations(template) == [], name


@pytest.mark.parametrize("variant", POLICY_VARIANTS)
def test_every_variant_is_restricted(variant, tmp_path):
    templates = pod_templates(synth_variant(variant, tmp_path).docs)
    assert templates
    for name, template in templates:
        assert violations(template) == [], f"{variant}: {name}"


def test_no_workload_kind_escapes_the_checker(source_dist):
    # A pod template under a kind pod_template() does not know would go unchecked.
    for doc in source_dist.docs:
        spec = doc.get("spec") or {}
        if "template" in spec or "jobTemplate" in spec:
            assert pod_template(doc) is not None, doc["kind"]


@pytest.mark.parametrize("command", PRINTED_MANIFEST_COMMANDS, ids=lambda c: c[0])
def test_printed_manifests_are_restricted(command):
    printed = subprocess.run(
        [sys.executable, str(TOP / "main.py"), *command], capture_output=True, text=True, cwd=TOP, check=True
    )
    templates = pod_templates([d for d in yaml.safe_load_all(printed.stdout) if d])
    assert templates, f"`main.py {command}` printed no pod"
    for name, template in templates:
        assert violations(template) == [], name


# --- the checker can fail: one violation per control -------------------------


def _container(t: dict) -> dict:
    return t["spec"]["containers"][0]


def _csc(t: dict) -> dict:
    return _container(t).setdefault("securityContext", {})


def _psc(t: dict) -> dict:
    return t["spec"].setdefault("securityContext", {})


Mutation = Callable[[dict], None]
# (control, what breaks it): each leaves every other control satisfied.
VIOLATIONS: list[tuple[str, str, Mutation]] = [
    ("HostProcess", "pod hostProcess", lambda t: _psc(t).update(windowsOptions={"hostProcess": True})),
    ("Host Namespaces", "hostNetwork", lambda t: t["spec"].update(hostNetwork=True)),
    ("Host Namespaces", "hostPID", lambda t: t["spec"].update(hostPID=True)),
    ("Host Namespaces", "hostIPC", lambda t: t["spec"].update(hostIPC=True)),
    ("Privileged Containers", "privileged", lambda t: _csc(t).update(privileged=True)),
    ("Capabilities", "no drop ALL", lambda t: _csc(t).update(capabilities={"drop": ["NET_RAW"]})),
    ("Capabilities", "adds SYS_ADMIN", lambda t: _csc(t).update(capabilities={"drop": ["ALL"], "add": ["SYS_ADMIN"]})),
    ("Capabilities", "adds CHOWN (baseline only)", lambda t: _csc(t).update(capabilities={"drop": ["ALL"], "add": ["CHOWN"]})),
    ("HostPath Volumes", "hostPath", lambda t: t["spec"]["volumes"].append({"name": "host", "hostPath": {"path": "/"}})),
    ("Host Ports", "hostPort", lambda t: _container(t)["ports"][0].update(hostPort=5432)),
    (
        "AppArmor",
        "unconfined annotation",
        lambda t: t["metadata"].setdefault("annotations", {}).update(
            {"container.apparmor.security.beta.kubernetes.io/postgres": "unconfined"}
        ),
    ),
    ("AppArmor", "appArmorProfile Unconfined", lambda t: _csc(t).update(appArmorProfile={"type": "Unconfined"})),
    ("SELinux", "type spc_t", lambda t: _csc(t).update(seLinuxOptions={"type": "spc_t"})),
    ("SELinux", "custom user", lambda t: _psc(t).update(seLinuxOptions={"user": "system_u"})),
    ("/proc Mount Type", "Unmasked", lambda t: _csc(t).update(procMount="Unmasked")),
    ("Seccomp", "container Unconfined", lambda t: _csc(t).update(seccompProfile={"type": "Unconfined"})),
    (
        "Seccomp",
        "no profile anywhere",
        lambda t: (_csc(t).pop("seccompProfile", None), _psc(t).pop("seccompProfile", None)),
    ),
    ("Sysctls", "unsafe sysctl", lambda t: _psc(t).update(sysctls=[{"name": "kernel.msgmax", "value": "65536"}])),
    ("Volume Types", "nfs volume", lambda t: t["spec"]["volumes"].append({"name": "nfs", "nfs": {"server": "nfs", "path": "/"}})),
    ("Privilege Escalation", "allowed", lambda t: _csc(t).update(allowPrivilegeEscalation=True)),
    ("Privilege Escalation", "left unset", lambda t: _csc(t).pop("allowPrivilegeEscalation")),
    ("Running as Non-root", "container false", lambda t: _csc(t).update(runAsNonRoot=False)),
    ("Running as Non-root", "unset everywhere", lambda t: (_csc(t).pop("runAsNonRoot", None), _psc(t).pop("runAsNonRoot", None))),
    ("Running as Non-root user", "uid 0", lambda t: _csc(t).update(runAsUser=0)),
    (
        "Privilege Escalation",
        "init container",
        lambda t: t["spec"].setdefault("initContainers", []).append(
            {**copy.deepcopy(_container(t)), "name": "init", "securityContext": {**_csc(t), "allowPrivilegeEscalation": True}}
        ),
    ),
]


@pytest.fixture(scope="module")
def compliant_template(tmp_path_factory) -> dict:
    manifests = synth_variant("defaults", tmp_path_factory.mktemp("dist"))
    template = pod_template(manifests.get("StatefulSet", "postgres"))
    assert violations(template) == []
    return template


@pytest.mark.parametrize("control,case,mutate", VIOLATIONS, ids=[f"{c}: {k}" for c, k, _ in VIOLATIONS])
def test_checker_reports_exactly_the_broken_control(compliant_template, control, case, mutate):
    template = copy.deepcopy(compliant_template)
    mutate(template)
    assert {v.control for v in violations(template)} == {control}


def test_every_control_has_a_failing_case():
    assert {control for control, _, _ in VIOLATIONS} == set(CONTROLS)


# --- the namespace --------------------------------------------------------------


def test_namespace_enforces_restricted(synth):
    labels = synth().get("Namespace", "api-forge-prod")["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
