"""The NetworkIsolation construct built alone from narrow props."""

from __future__ import annotations

import cdk8s

from constructs.network import NetworkIsolation, NetworkIsolationProps
from conftest import construct_chart

DATABASE = {"app.kubernetes.io/component": "database"}
DNS = {"namespace_selector": {"match_labels": {"kubernetes.io/metadata.name": "kube-system"}}}
APP = {"pod_selector": {"match_labels": {"app": "shop"}}}
PROMETHEUS = {"namespace_selector": {"match_labels": {"kubernetes.io/metadata.name": "monitoring"}}}


def build(**overrides) -> dict[str, dict]:
    chart = construct_chart()
    NetworkIsolation(chart, "network", props=NetworkIsolationProps(**{
        "namespace": "shop", "labels": {"team": "data"}, "database_selector": DATABASE, "replicas": 1,
        "clients": [[APP]], "dns": DNS, **overrides}))
    return {d["metadata"]["name"]: d for d in cdk8s.Testing.synth(chart)}


def test_two_default_deny_policies():
    policies = build()
    assert set(policies) == {"postgres", "postgres-backup"}
    for policy in policies.values():
        assert policy["kind"] == "NetworkPolicy"
        assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
        assert policy["metadata"]["namespace"] == "shop"
    assert "ingress" not in policies["postgres-backup"]["spec"]
    assert policies["postgres-backup"]["metadata"]["labels"] == {"team": "data", "app.kubernetes.io/component": "backup"}


def test_clients_reach_only_the_database_port():
    spec = build()["postgres"]["spec"]
    assert spec["podSelector"] == {"matchLabels": DATABASE}
    (client, own_jobs) = spec["ingress"]
    assert client == {"from": [{"podSelector": {"matchLabels": {"app": "shop"}}}], "ports": [{"port": 5432, "protocol": "TCP"}]}
    # This project's jobs: backups and restores, and the schema-migration Job.
    assert own_jobs["from"] == [{"podSelector": {"matchLabels": {
        "app.kubernetes.io/name": "postgres", "app.kubernetes.io/instance": "postgres", "app.kubernetes.io/component": job}}}
        for job in ("backup", "migrate")]


def test_scrapers_get_the_metrics_port_and_replicas_each_other():
    spec = build(scrapers=[PROMETHEUS], replicas=2)["postgres"]["spec"]
    ports = [rule["ports"] for rule in spec["ingress"]]
    assert [{"port": 9187, "protocol": "TCP"}] in ports
    assert {"from": [{"podSelector": {"matchLabels": DATABASE}}], "ports": [{"port": 5432, "protocol": "TCP"}]} in spec["ingress"]


def test_egress_is_dns_and_the_database():
    for policy in build().values():
        dns, database = policy["spec"]["egress"]
        assert dns["to"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}]
        assert {p["protocol"] for p in dns["ports"]} == {"UDP", "TCP"}
        assert database == {"to": [{"podSelector": {"matchLabels": DATABASE}}], "ports": [{"port": 5432, "protocol": "TCP"}]}


def test_each_pooler_gets_its_policy_and_the_database_admits_both():
    policies = build(pooler=True, pooler_read_only=True)
    assert set(policies) == {"postgres", "postgres-backup", "postgres-pooler", "postgres-pooler-ro"}
    for name, component in (("postgres-pooler", "pooler"), ("postgres-pooler-ro", "pooler-ro")):
        spec = policies[name]["spec"]
        assert spec["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == component
        assert spec["ingress"] == [{"from": [{"podSelector": {"matchLabels": {"app": "shop"}}}],
                                    "ports": [{"port": 5432, "protocol": "TCP"}]}]
    own = policies["postgres"]["spec"]["ingress"][1]["from"]
    assert [p["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for p in own] == [
        "backup", "migrate", "pooler", "pooler-ro"]
