"""Checkov skip annotations for the checks that do not fit this database, each
with its reason, derived from the synthesized objects themselves.

A skip is emitted only where the object really breaks the check: pin the image
by digest and CKV_K8S_43/CKV_K8S_15 pass and their skips disappear; enable the
NetworkPolicy and CKV2_K8S_6 passes. `apply_policy_annotations(app)` walks
every chart once, after all constructs exist, so a workload added later (the
backup CronJob, a restore Job) gets the same treatment without touching this
file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import cdk8s

from pgbundle.contract import POOLER_COMPONENT, POOLER_RO_COMPONENT
from pgbundle.k8s.objects import api_objects

# Kinds whose pods checkov scans, with the path from the object to its pod template.
POD_TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}

SKIP_ANNOTATION_PREFIX = "checkov.io/skip"
# checkov's CKV_K8S_40 wants uid >= 10000 so a container uid never collides with a host user.
HIGH_UID = 10000


def pod_template(doc: dict) -> dict | None:
    """The pod template (`metadata` + `spec`) of a workload, a bare Pod itself, else None."""
    if doc.get("kind") == "Pod":
        return doc
    path = POD_TEMPLATE_PATHS.get(doc.get("kind", ""))
    if path is None:
        return None
    node = doc
    for key in path:
        node = node.get(key) or {}
    return node


def all_containers(pod_spec: dict) -> Iterator[dict]:
    for key in ("initContainers", "containers", "ephemeralContainers"):
        yield from pod_spec.get(key) or []


def selector_matches(selector: dict | None, labels: dict[str, str]) -> bool:
    """Kubernetes LabelSelector semantics: every matchLabels pair and every
    matchExpressions requirement holds. An empty selector matches everything;
    a missing (None) selector matches nothing."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def _uids(pod_spec: dict) -> list[int | None]:
    """The uid each container runs as (container setting over pod setting)."""
    pod_uid = (pod_spec.get("securityContext") or {}).get("runAsUser")
    return [(c.get("securityContext") or {}).get("runAsUser", pod_uid) for c in pod_spec.get("containers") or []]


def _isolated(doc: dict, template: dict, policies: list[dict]) -> bool:
    labels = (template.get("metadata") or {}).get("labels") or {}
    namespace = doc["metadata"].get("namespace")
    return any(
        p["metadata"].get("namespace") == namespace and selector_matches(p["spec"].get("podSelector"), labels)
        for p in policies
    )


# What the image-pinning reasons name for a pod, by its component label: the
# values field of its image and what restarts while the registry is away.
# Every other workload runs the database's image.
_IMAGE_OWNERS: dict[str, tuple[str, str]] = {
    POOLER_COMPONENT: ("postgres.pooler.image.digest", "the pooler"),
    POOLER_RO_COMPONENT: ("postgres.pooler.image.digest", "the read-only pooler")}
_DATABASE_IMAGE = ("postgres.image.digest", "the database")


def _image_owner(template: dict) -> tuple[str, str]:
    component = ((template.get("metadata") or {}).get("labels") or {}).get("app.kubernetes.io/component", "")
    return _IMAGE_OWNERS.get(component, _DATABASE_IMAGE)


# (check id, does the workload break it?, why that is right for this project:
# {field} and {workload} name the pod's image field and its kind of pod).
SkipRule = tuple[str, Callable[[dict, dict, list[dict]], bool], str]
SKIP_RULES: list[SkipRule] = [
    (
        "CKV_K8S_43",
        lambda doc, t, p: any("@" not in c.get("image", "") for c in all_containers(t["spec"])),
        "the image is pinned to a full version tag; set {field} to pin it by digest",
    ),
    (
        "CKV_K8S_15",
        lambda doc, t, p: any(
            "@" not in c.get("image", "") and c.get("imagePullPolicy") != "Always" for c in all_containers(t["spec"])
        ),
        "the image is pinned to a full version tag; IfNotPresent lets {workload} restart while the "
        "registry is unreachable (set {field}, or global.imagePullPolicy: Always, to pass)",
    ),
    (
        "CKV_K8S_40",
        lambda doc, t, p: any(uid is None or uid < HIGH_UID for uid in _uids(t["spec"])),
        "the official postgres image owns its files and data directory as uid/gid 999; "
        "runAsNonRoot and a non-zero uid are enforced",
    ),
    (
        "CKV_K8S_38",
        lambda doc, t, p: t["spec"].get("automountServiceAccountToken") is not False,
        "Patroni keeps its leader lock in the Kubernetes API: the HA pods need their token, bound to a "
        "Role limited to pods and configmaps in this namespace",
    ),
    (
        "CKV2_K8S_6",
        lambda doc, t, p: not _isolated(doc, t, p),
        "postgres.networkPolicy.enabled is false in these values (the cluster's default network "
        "rules apply); production enables it",
    ),
]


def checkov_skips(doc: dict, policies: list[dict]) -> dict[str, str]:
    """Skip annotations for one object, given every NetworkPolicy synthesized with it."""
    template = pod_template(doc)
    if template is None:
        return {}
    field, workload = _image_owner(template)
    found = [f"{check}={reason.format(field=field, workload=workload)}"
             for check, breaks, reason in SKIP_RULES if breaks(doc, template, policies)]
    return {f"{SKIP_ANNOTATION_PREFIX}{n}": text for n, text in enumerate(found, start=1)}


def apply_policy_annotations(app: cdk8s.App) -> None:
    """Add the checkov skips to every workload of every chart in `app`."""
    # Only workloads get skips and only NetworkPolicies decide them: render just
    # those (each to_json is a round trip to the jsii runtime).
    wanted = {*POD_TEMPLATE_PATHS, "Pod", "NetworkPolicy"}
    rendered = [(obj, obj.to_json()) for obj in api_objects(app) if obj.kind in wanted]
    policies = [doc for _, doc in rendered if doc["kind"] == "NetworkPolicy"]
    for obj, doc in rendered:
        for key, value in checkov_skips(doc, policies).items():
            obj.metadata.add_annotation(key, value)
