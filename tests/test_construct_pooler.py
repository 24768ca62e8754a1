"""The Pooler construct built alone from narrow props: the main pooler's names by
default, and a second pooler (the read-only one) under its own name and component."""

from __future__ import annotations

import cdk8s

from conftest import construct_chart
from constructs.pooler import Pooler, PoolerProps
from pgbundle import contract
from pgbundle.k8s.objects import SecretFiles
from pgbundle.k8s.podsecurity import Resources


def build(**overrides) -> list[dict]:
    chart = construct_chart()
    Pooler(chart, "pooler", props=PoolerProps(**{
        "namespace": "shop", "image": "example/pgbouncer:1.24.1", "version": "1.24.1", "replicas": 2,
        "config": "[databases]\n", "hba": "hostssl all all all scram-sha-256\n", "environment": {"PGB_CONFIG": "x"},
        "resources": Resources(cpu_request="50m", memory_request="64Mi", cpu_limit="1", memory_limit="256Mi"),
        "password": SecretFiles(secret_name="pw"), "tls": SecretFiles(secret_name="tls"),
        "ca": SecretFiles(secret_name="ca"), "pdb_min_available": 1, **overrides}))
    return cdk8s.Testing.synth(chart)


def by_kind(docs: list[dict]) -> dict[str, dict]:
    return {d["kind"]: d for d in docs}


def test_default_names_are_the_main_poolers():
    docs = build()
    assert {(d["kind"], d["metadata"]["name"]) for d in docs} == {
        (kind, contract.POOLER) for kind in ("ServiceAccount", "ConfigMap", "Service", "Deployment", "PodDisruptionBudget")}
    assert by_kind(docs)["Deployment"]["spec"]["selector"]["matchLabels"] == contract.selector_labels(
        contract.POOLER_COMPONENT)


def test_a_second_pooler_has_its_own_names_selector_config_and_account():
    docs = build(name=contract.POOLER_RO, component=contract.POOLER_RO_COMPONENT, replicas=3)
    objects = by_kind(docs)
    assert {d["metadata"]["name"] for d in docs} == {contract.POOLER_RO}
    selector = contract.selector_labels(contract.POOLER_RO_COMPONENT)
    deployment = objects["Deployment"]
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["selector"]["matchLabels"] == selector
    assert objects["Service"]["spec"]["selector"] == selector
    assert objects["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"] == selector
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == contract.POOLER_RO
    assert {v["configMap"]["name"] for v in pod["volumes"] if "configMap" in v} == {contract.POOLER_RO}
    term = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]
    assert term["podAffinityTerm"]["labelSelector"]["matchLabels"] == selector
