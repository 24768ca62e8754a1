"""NetworkPolicy: evaluated against the labels of the pods the project ships,
the database admits its applications, its backup jobs and (when configured)
the metrics scraper, each on its own port only, and nothing else."""

from __future__ import annotations

import cdk8s
import pytest

from chart.policy import pod_template
from conftest import Manifests
from constructs.network import NetworkIsolation, NetworkIsolationProps
from pgbundle.contract import BACKUP_CRONJOB, BACKUP_NETWORK_POLICY, METRICS_PORT, selector_labels
from pgbundle.values.load import ValuesError, parse_values
from netpol import Pod, allowed, pod_from_template
from variants import synth_variant

NAMESPACE = "api-forge-prod"
APP = Pod(NAMESPACE, {"app.kubernetes.io/component": "application", "app.kubernetes.io/name": "api"})
UNRELATED = Pod(NAMESPACE, {"app.kubernetes.io/name": "something-else"})
# Same labels as the application, but in another namespace: a podSelector alone means "this namespace".
APP_ELSEWHERE = Pod("other", APP.labels)
# Labelled like the backup CronJob's pods (issue 4 uses exactly these labels).
BACKUP = Pod(NAMESPACE, selector_labels("backup"))
KUBE_DNS = Pod("kube-system", {"k8s-app": "kube-dns"})
SCRAPER = Pod("monitoring", {"app.kubernetes.io/name": "prometheus"})
PORT = 5432


@pytest.fixture(scope="module")
def production(tmp_path_factory) -> Manifests:
    return synth_variant("production", tmp_path_factory.mktemp("production"))


@pytest.fixture(scope="module")
def network_policy(tmp_path_factory) -> Manifests:
    return synth_variant("network-policy", tmp_path_factory.mktemp("network-policy"))


def policies(manifests: Manifests) -> list[dict]:
    return [d for d in manifests.docs if d["kind"] == "NetworkPolicy"]


def database(manifests: Manifests) -> Pod:
    return pod_from_template(NAMESPACE, pod_template(manifests.get("StatefulSet", "postgres")))


def test_policies_select_database_and_backup_pods(network_policy):
    assert network_policy.get("NetworkPolicy", "postgres")["spec"]["policyTypes"] == ["Ingress", "Egress"]
    backup_policy = network_policy.get("NetworkPolicy", BACKUP_NETWORK_POLICY)
    assert backup_policy["spec"]["podSelector"]["matchLabels"] == selector_labels("backup")


def test_no_policy_without_the_switch(synth):
    assert not [d for d in synth().docs if d["kind"] == "NetworkPolicy"]


@pytest.mark.parametrize("variant", ["network-policy", "production"])
def test_database_admits_application_and_backup_only(request, variant):
    manifests = request.getfixturevalue(variant.replace("-", "_"))
    db, rules = database(manifests), policies(manifests)
    assert allowed(rules, APP, db, PORT)
    assert allowed(rules, BACKUP, db, PORT)
    assert not allowed(rules, UNRELATED, db, PORT)
    assert not allowed(rules, APP_ELSEWHERE, db, PORT)
    # 5432 only: the application cannot reach any other port of the database pod.
    assert not allowed(rules, APP, db, METRICS_PORT)
    assert not allowed(rules, BACKUP, db, 22)


def test_every_backup_pod_in_the_output_reaches_the_database(network_policy, production):
    for manifests in (network_policy, production):
        db, rules = database(manifests), policies(manifests)
        jobs = [doc for doc in manifests.docs if doc["kind"] in ("CronJob", "Job")]
        assert [(doc["kind"], doc["metadata"]["name"]) for doc in jobs] == [("CronJob", BACKUP_CRONJOB)]
        for doc in jobs:
            pod = pod_from_template(doc["metadata"]["namespace"], pod_template(doc))
            assert allowed(rules, pod, db, PORT), f"{doc['kind']}/{doc['metadata']['name']}"


def test_egress_is_dns_and_database_only(network_policy):
    db, rules = database(network_policy), policies(network_policy)
    for source in (db, BACKUP):
        assert allowed(rules, source, KUBE_DNS, 53, "UDP")
        assert allowed(rules, source, KUBE_DNS, 53, "TCP")
        assert not allowed(rules, source, KUBE_DNS, 443)
        assert not allowed(rules, source, UNRELATED, 443)
        assert not allowed(rules, source, APP, 8080)
    assert allowed(rules, BACKUP, db, PORT)
    # The backup pods accept no connections at all.
    assert not allowed(rules, APP, BACKUP, 8080)


def test_metrics_scraper_reaches_the_exporter_port_only(production, network_policy):
    for manifests in (production, network_policy):
        db, rules = database(manifests), policies(manifests)
        assert allowed(rules, SCRAPER, db, METRICS_PORT)
        assert not allowed(rules, SCRAPER, db, PORT)
        assert not allowed(rules, Pod("monitoring", {"app.kubernetes.io/name": "grafana"}), db, METRICS_PORT)
        assert not allowed(rules, APP, db, METRICS_PORT)


def test_scrapers_are_configurable(synth):
    scraper = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "observability"}}}
    m = synth({"postgres": {"networkPolicy": {"enabled": True}, "metrics": {"scrapers": [scraper]}}})
    db, rules = database(m), policies(m)
    assert allowed(rules, Pod("observability", {"app": "vmagent"}), db, METRICS_PORT)
    assert not allowed(rules, SCRAPER, db, METRICS_PORT)


def test_no_metrics_port_rule_without_metrics(synth):
    m = synth({"postgres": {"networkPolicy": {"enabled": True}, "metrics": {"enabled": False}}})
    assert not allowed(policies(m), SCRAPER, database(m), METRICS_PORT)


def _isolation(replicas: int) -> list[dict]:
    """The policies alone, for replica counts the values do not accept yet."""
    chart = cdk8s.Chart(cdk8s.App(), "test")
    NetworkIsolation(chart, "network", props=NetworkIsolationProps(
        namespace=NAMESPACE, labels={}, database_selector=selector_labels("database"), replicas=replicas,
        clients=[], dns={"namespace_selector": {"match_labels": {"kubernetes.io/metadata.name": "kube-system"}}}))
    return [d for d in chart.to_json() if d["kind"] == "NetworkPolicy"]


def test_replicas_reach_each_other_only_when_there_are_several():
    replica = Pod(NAMESPACE, selector_labels("database"))
    assert allowed(_isolation(2), replica, replica, PORT)
    assert not allowed(_isolation(1), replica, replica, PORT)


def test_evaluator_denies_what_no_rule_admits():
    # Proves the evaluator can fail: a policy that admits only the application.
    target = Pod(NAMESPACE, {"role": "db"})
    only_app = {
        "metadata": {"name": "p", "namespace": NAMESPACE},
        "spec": {
            "podSelector": {"matchLabels": {"role": "db"}},
            "ingress": [{"from": [{"podSelector": {"matchLabels": APP.labels}}], "ports": [{"port": PORT}]}],
        },
    }
    assert allowed([only_app], APP, target, PORT)
    assert not allowed([only_app], BACKUP, target, PORT)
    assert allowed([], BACKUP, target, PORT)  # no policy: everything is allowed


def test_empty_peer_is_refused():
    with pytest.raises(ValuesError, match=r"metrics\.scrapers\[0\].*a peer needs podSelector, namespaceSelector or ipBlock"):
        parse_values({"postgres": {"metrics": {"scrapers": [{}]}}})


def test_ip_block_mixed_with_selectors_is_refused():
    peer = {"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {"matchLabels": {"a": "b"}}}
    with pytest.raises(ValuesError, match=r"ipBlock cannot be combined with podSelector or namespaceSelector"):
        parse_values({"postgres": {"metrics": {"scrapers": [peer]}}})


@pytest.fixture(scope="module")
def pitr_policy(tmp_path_factory) -> Manifests:
    """PITR with both repositories and the NetworkPolicy on."""
    import copy

    import main
    from variants import VARIANTS

    values = copy.deepcopy(VARIANTS["pitr"])
    values["postgres"]["networkPolicy"] = {"enabled": True}
    values["postgres"]["pitr"]["repos"]["s3"]["egressCidrs"] = ["10.20.0.0/16"]
    out = tmp_path_factory.mktemp("pitr-policy")
    main.synthesize(parse_values(values, "pitr+networkPolicy"), out)
    return Manifests(out)


def test_only_the_pitr_backup_jobs_reach_the_pgbackrest_port(pitr_policy):
    from pgbundle.contract import PGBACKREST_PORT, PITR_DIFF_CRONJOB, PITR_DRILL_CRONJOB, PITR_FULL_CRONJOB

    db, rules = database(pitr_policy), policies(pitr_policy)
    jobs = {doc["metadata"]["name"]: pod_from_template(NAMESPACE, pod_template(doc))
            for doc in pitr_policy.docs if doc["kind"] == "CronJob"}
    assert set(jobs) == {BACKUP_CRONJOB, PITR_FULL_CRONJOB, PITR_DIFF_CRONJOB, PITR_DRILL_CRONJOB}
    # The restore drill reads the repositories only: no database port at all.
    for port in (PGBACKREST_PORT, PORT):
        assert not allowed(rules, jobs[PITR_DRILL_CRONJOB], db, port)
    assert allowed(rules, jobs[PITR_DRILL_CRONJOB], KUBE_DNS, 53, "UDP")  # the S3 endpoint's name
    for name in (PITR_FULL_CRONJOB, PITR_DIFF_CRONJOB):
        assert allowed(rules, jobs[name], db, PGBACKREST_PORT)
        assert allowed(rules, jobs[name], KUBE_DNS, 53, "UDP")
        # Nothing else: not PostgreSQL's port, not other pods.
        assert not allowed(rules, jobs[name], db, PORT)
        assert not allowed(rules, jobs[name], APP, 8080)
        assert not allowed(rules, APP, jobs[name], 8080)
    for other in (APP, BACKUP, UNRELATED, APP_ELSEWHERE, SCRAPER, db):
        assert not allowed(rules, other, db, PGBACKREST_PORT)
    # The S3 repository's addresses: an egress rule to them on the endpoint's port.
    pitr_egress = pitr_policy.get("NetworkPolicy", "postgres-pitr-backup")["spec"]["egress"]
    assert {"to": [{"ipBlock": {"cidr": "10.20.0.0/16"}}], "ports": [{"protocol": "TCP", "port": 9000}]} in pitr_egress
