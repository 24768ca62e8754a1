"""The manifests for postgres.replicas >= 2 (examples/ha.yaml and variations):
Patroni's StatefulSet, its configuration, RBAC, Services, budget and network rules."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from chart.compose import patroni_spec
from conftest import container
from pgbundle import contract
from pgbundle.patroni import config as patroni_config
from pgbundle.values.load import parse_values

TOP = Path(__file__).resolve().parent.parent
HA = yaml.safe_load((TOP / "examples" / "ha.yaml").read_text())


def variant(**ha) -> dict:
    values = copy.deepcopy(HA)
    values["postgres"]["ha"].update(ha)
    return values


@pytest.fixture(scope="module")
def manifests(tmp_path_factory):
    import main
    from conftest import Manifests

    out = tmp_path_factory.mktemp("dist")
    main.synthesize(parse_values(HA), out)
    return Manifests(out)


def pod_spec(manifests) -> dict:
    return manifests.get("StatefulSet", contract.STATEFULSET)["spec"]["template"]["spec"]


def test_the_configmap_holds_the_rendered_patroni_configuration(manifests):
    data = manifests.get("ConfigMap", contract.PATRONI_CONFIG_MAP)["data"]
    assert set(data) == {contract.PATRONI_CONFIG_FILE, contract.PATRONI_BOOTSTRAP_FILE}
    every, first = (yaml.safe_load(data[f]) for f in (contract.PATRONI_CONFIG_FILE, contract.PATRONI_BOOTSTRAP_FILE))
    assert "bootstrap" not in every and set(first) == {"bootstrap"}  # only the first member may initialize
    assert {**every, **first} == patroni_config.render(patroni_spec(parse_values(HA)))
    assert manifests.find("ConfigMap", contract.CONFIG_MAP) is None  # Patroni writes postgresql.conf itself


def test_members_run_patroni_from_the_ha_image(manifests):
    statefulset = manifests.get("StatefulSet", contract.STATEFULSET)
    assert statefulset["spec"]["replicas"] == 3
    assert statefulset["spec"]["podManagementPolicy"] == "Parallel"  # members start together after a full stop
    main = container(pod_spec(manifests), contract.CONTAINER)
    assert main["image"] == "ghcr.io/example/api-forge-postgres/postgres-patroni:v1.0.0"
    assert main["command"] == ["bash", f"{contract.SCRIPTS_DIR}/patroni.sh"]
    scripts = manifests.get("ConfigMap", contract.SCRIPTS_CONFIG_MAP)["data"]
    assert {"patroni.sh", "patroni-hook.sh", "patroni-roles.sql", "init.sql"} <= set(scripts)
    labels = statefulset["spec"]["template"]["metadata"]["labels"]
    assert labels["cluster-name"] == contract.PATRONI_SCOPE


def test_members_know_their_name_and_address_from_the_pod(manifests):
    env = {e["name"]: e for e in container(pod_spec(manifests), contract.CONTAINER)["env"]}
    assert env["PATRONI_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["PATRONI_KUBERNETES_POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    assert env["PATRONI_POSTGRESQL_CONNECT_ADDRESS"]["value"] == \
        "$(PATRONI_NAME).postgres-headless.api-forge-prod.svc:5432"
    assert not [name for name in env if "PASSWORD" in name]  # patroni.sh reads them from the Secret files


def test_probes_ask_patronis_rest_api(manifests):
    main = container(pod_spec(manifests), contract.CONTAINER)
    assert main["readinessProbe"]["httpGet"] == {"path": "/readiness", "port": "patroni", "scheme": "HTTPS"}
    assert main["livenessProbe"]["httpGet"]["path"] == "/liveness"
    assert {"name": "patroni", "containerPort": 8008, "protocol": "TCP"} in main["ports"]


def test_service_postgres_reaches_the_primary_and_postgres_replicas_the_replicas(manifests):
    primary = manifests.get("Service", contract.SERVICE)["spec"]["selector"]
    replicas = manifests.get("Service", contract.REPLICAS_SERVICE)["spec"]["selector"]
    assert primary == {**contract.selector_labels("database"), "role": patroni_config.PRIMARY_ROLE}
    assert replicas == {**contract.selector_labels("database"), "role": patroni_config.REPLICA_ROLE}
    headless = manifests.get("Service", contract.HEADLESS_SERVICE)["spec"]
    assert headless["clusterIP"] == "None" and headless["selector"] == contract.selector_labels("database")


def test_rbac_is_least_privilege(manifests):
    role = manifests.get("Role", contract.PATRONI_ROLE)
    rules = {tuple(r["resources"]): set(r["verbs"]) for r in role["rules"]}
    assert rules == {("configmaps",): {"create", "get", "list", "patch", "update", "watch", "delete"},
                     ("pods",): {"get", "list", "patch", "update", "watch"}}
    assert all(r["apiGroups"] == [""] for r in role["rules"])
    assert "*" not in str(role["rules"])
    binding = manifests.get("RoleBinding", contract.PATRONI_ROLE)
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": contract.PATRONI_ROLE}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": contract.SERVICE_ACCOUNT,
                                    "namespace": "api-forge-prod"}]
    assert pod_spec(manifests)["automountServiceAccountToken"] is True


def test_one_member_at_a_time_may_be_disrupted(manifests):
    spec = manifests.get("PodDisruptionBudget", contract.PDB)["spec"]
    assert spec["maxUnavailable"] == 1 and "minAvailable" not in spec


def test_members_spread_across_nodes_and_zones(manifests, synth):
    required = pod_spec(manifests)["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert required[0]["topologyKey"] == "kubernetes.io/hostname"
    preferred = pod_spec(synth(variant(antiAffinity="preferred")))["affinity"]["podAntiAffinity"]
    assert "requiredDuringSchedulingIgnoredDuringExecution" not in preferred
    assert preferred["preferredDuringSchedulingIgnoredDuringExecution"][0]["weight"] == 100
    (spread,) = pod_spec(manifests)["topologySpreadConstraints"]
    assert (spread["topologyKey"], spread["whenUnsatisfiable"]) == ("topology.kubernetes.io/zone", "ScheduleAnyway")


def test_network_policy_admits_members_to_each_other_and_reaches_the_api_server(manifests):
    policy = manifests.get("NetworkPolicy", contract.NETWORK_POLICY)["spec"]
    members = {"podSelector": {"matchLabels": contract.selector_labels("database")}}
    member_ports = [{"port": 5432, "protocol": "TCP"}, {"port": 8008, "protocol": "TCP"}]
    assert {"from": [members], "ports": member_ports} in policy["ingress"]
    assert {"to": [members], "ports": member_ports} in policy["egress"]
    assert {"to": [{"ipBlock": {"cidr": "10.0.0.1/32"}}], "ports": [{"port": 6443, "protocol": "TCP"}]} in policy["egress"]
    # The REST API is open to the members and to the metrics scrapers (/metrics), not to the application.
    scrapers = [peer.model_dump(by_alias=True, exclude_defaults=True)
                for peer in parse_values(HA).postgres.metrics.scrapers]
    opened = [r["from"] for r in policy["ingress"] if {"port": 8008, "protocol": "TCP"} in r["ports"]]
    canonical = lambda peers: json.dumps(peers, sort_keys=True)  # noqa: E731
    assert sorted(map(canonical, opened)) == sorted(map(canonical, [[members], scrapers]))


def test_prometheus_scrapes_patroni_over_tls_by_a_certificate_name(manifests):
    service = manifests.get("Service", contract.METRICS_SERVICE)["spec"]
    assert {"name": "patroni", "port": 8008, "targetPort": "patroni"} in service["ports"]
    endpoints = manifests.get("ServiceMonitor", contract.SERVICE_MONITOR)["spec"]["endpoints"]
    (patroni,) = [e for e in endpoints if e["port"] == "patroni"]
    assert patroni["scheme"] == "https" and patroni["path"] == "/metrics"
    assert patroni["tlsConfig"] == {"ca": {"secret": {"name": "postgres-ca", "key": "ca.crt"}},
                                    "serverName": "postgres-headless.api-forge-prod.svc"}
    assert "postgres-headless.api-forge-prod.svc" in contract.server_dns_names("api-forge-prod", 3)
    rules = manifests.get("PrometheusRule", contract.PROMETHEUS_RULE)["spec"]["groups"][0]["rules"]
    assert {"PostgresNoPrimary", "PostgresNoSynchronousStandby", "PostgresMemberNotStreaming",
            "PostgresFailover"} <= {r["alert"] for r in rules}


def test_the_certificate_names_every_member(manifests):
    env = {e["name"]: e.get("value") for e in container(pod_spec(manifests), contract.CONTAINER)["env"]}
    host = env["PATRONI_RESTAPI_CONNECT_ADDRESS"].rsplit(":", 1)[0]
    names = contract.server_dns_names("api-forge-prod", 3)
    assert [host.replace("$(PATRONI_NAME)", f"postgres-{n}") in names for n in range(3)] == [True] * 3


def test_the_dashboard_shows_role_synchronous_standby_and_timeline(manifests):
    from pgbundle.monitoring.metric_catalog import METRICS
    from test_metrics import dashboard_queries, metric_names

    (config_map,) = [d for d in manifests.docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == contract.DASHBOARD_CONFIG_MAP]
    model = json.loads(next(iter(config_map["data"].values())))
    titles = {p["title"] for p in model["panels"]}
    assert {"Member role (1 = primary)", "Synchronous standby (1 = yes)", "Timeline (grows at every failover)",
            "Replication lag"} <= titles
    for query in dashboard_queries(model):
        assert metric_names(query) <= METRICS.keys(), query
