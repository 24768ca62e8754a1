"""dist/ layout: `kubectl apply -f dist/` walks the files in name order and the
objects in file order, so the Namespace must come before everything in it and
the database before its clients; every object says who manages it, what it is
part of and which namespace it lives in."""

from __future__ import annotations

import pytest
import yaml

from conftest import Manifests
from pgbundle.contract import MANAGED_BY, PART_OF
from variants import POLICY_VARIANTS, synth_variant

CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "StorageClass", "PriorityClass"}


def apply_order(folder) -> list[tuple[str, dict]]:
    """(file name, document) in the order kubectl applies them."""
    return [
        (f.name, doc)
        for f in sorted(folder.glob("*.yaml"))
        for doc in yaml.safe_load_all(f.read_text())
        if doc
    ]


def order_problems(folder) -> list[str]:
    order = apply_order(folder)
    problems = []
    namespaces = {d["metadata"]["name"]: i for i, (_, d) in enumerate(order) if d["kind"] == "Namespace"}
    statefulsets = [i for i, (_, d) in enumerate(order) if d["kind"] == "StatefulSet"]
    if namespaces and order[0][1]["kind"] != "Namespace":
        problems.append(f"{order[0][0]} sorts before the Namespace's file")
    for i, (file, doc) in enumerate(order):
        ns = doc["metadata"].get("namespace")
        if ns in namespaces and i < namespaces[ns]:
            problems.append(f"{file}: {doc['kind']}/{doc['metadata']['name']} comes before its Namespace")
        if doc["kind"] in ("CronJob", "Job") and any(i < s for s in statefulsets):
            problems.append(f"{file}: {doc['kind']}/{doc['metadata']['name']} comes before the StatefulSet")
    return problems


@pytest.fixture(params=["dist", *POLICY_VARIANTS])
def output(request, tmp_path):
    if request.param == "dist":
        return request.getfixturevalue("source_dist").folder
    return synth_variant(request.param, tmp_path).folder


def test_namespace_first_and_database_before_its_clients(output):
    assert order_problems(output) == []


def test_namespace_file_sorts_first(source_dist):
    files = sorted(p.name for p in source_dist.folder.glob("*.yaml"))
    assert files[0] == "00-namespace.k8s.yaml"
    assert [d["kind"] for d in yaml.safe_load_all((source_dist.folder / files[0]).read_text()) if d] == ["Namespace"]


def test_order_check_can_fail(tmp_path):
    # Files named so that the database's file sorts before the namespace's.
    (tmp_path / "00-postgres.yaml").write_text(
        yaml.safe_dump_all([
            {"kind": "CronJob", "metadata": {"name": "backup", "namespace": "ns"}},
            {"kind": "StatefulSet", "metadata": {"name": "postgres", "namespace": "ns"}},
        ])
    )
    (tmp_path / "10-namespace.yaml").write_text(yaml.safe_dump({"kind": "Namespace", "metadata": {"name": "ns"}}))
    assert order_problems(tmp_path) == [
        "00-postgres.yaml sorts before the Namespace's file",
        "00-postgres.yaml: CronJob/backup comes before its Namespace",
        "00-postgres.yaml: CronJob/backup comes before the StatefulSet",
        "00-postgres.yaml: StatefulSet/postgres comes before its Namespace",
    ]


def test_every_object_is_labelled_and_namespaced(output):
    for doc in Manifests(output).docs:
        what = f"{doc['kind']}/{doc['metadata']['name']}"
        labels = doc["metadata"].get("labels") or {}
        assert labels.get("app.kubernetes.io/managed-by") == MANAGED_BY, what
        assert labels.get("app.kubernetes.io/part-of") == PART_OF, what
        if doc["kind"] not in CLUSTER_SCOPED:
            assert doc["metadata"].get("namespace") == "api-forge-prod", what


def test_objects_stay_namespaced_without_the_namespace_object(synth):
    manifests = synth({"global": {"createNamespace": False}})
    assert not [d for d in manifests.docs if d["kind"] == "Namespace"]
    assert all(d["metadata"]["namespace"] == "api-forge-prod" for d in manifests.docs)
