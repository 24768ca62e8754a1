"""Metrics: the exporter sidecar, its Service, the Prometheus Operator objects, the
alerts and the dashboard, checked as synthesized (selected by kind and name)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import promql_parser
import pytest
import yaml
from conftest import container
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models import prometheus as prometheus_model
from grafana_foundation_sdk.models.dashboard import Dashboard
from psycopg.conninfo import conninfo_to_dict
from variants import VARIANTS

from pgbundle.monitoring import alerts
from pgbundle.monitoring import dashboard
from pgbundle import contract
from pgbundle.contract import EXPORTER_VERSION
from pgbundle.monitoring.metric_catalog import METRICS
from pgbundle.values.load import ValuesError, parse_values

TOP = Path(__file__).resolve().parent.parent
CRDS = TOP / "crds"
ON = VARIANTS["metrics-objects"]


def pod_spec(m) -> dict:
    return m.get("StatefulSet", contract.STATEFULSET)["spec"]["template"]["spec"]


# --- the exporter sidecar -----------------------------------------------------


def test_exporter_runs_pinned_and_restricted(synth):
    exporter = container(pod_spec(synth()), contract.EXPORTER_CONTAINER)
    assert exporter["image"] == f"quay.io/prometheuscommunity/postgres-exporter:{EXPORTER_VERSION}"
    assert exporter["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": 65534,
        "runAsGroup": 65534,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert exporter["resources"] == {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"cpu": "250m", "memory": "128Mi"}}
    assert exporter["ports"] == [{"name": "metrics", "containerPort": 9187, "protocol": "TCP"}]


def test_exporter_connects_over_the_socket_as_monitoring_with_a_password_file(synth):
    spec = pod_spec(synth())
    exporter = container(spec, contract.EXPORTER_CONTAINER)
    env = {e["name"]: e["value"] for e in exporter["env"]}
    assert env["DATA_SOURCE_USER"] == "monitoring"
    # The exporter prefixes the URI with postgresql://USER:PASS@; what libpq makes of it:
    dsn = conninfo_to_dict(f"postgresql://monitoring:x@{env['DATA_SOURCE_URI']}")
    assert dsn == {"user": "monitoring", "password": "x", "host": contract.RUN_DIR, "dbname": "appdb", "sslmode": "disable"}
    # The password only ever travels as a file.
    assert not {"DATA_SOURCE_PASS", "DATA_SOURCE_NAME"} & env.keys()
    mounts = {v["name"]: v for v in exporter["volumeMounts"]}
    assert mounts["run"] == {"name": "run", "mountPath": contract.RUN_DIR, "readOnly": True}
    secret_dir = mounts["monitoring-secret"]["mountPath"]
    assert env["DATA_SOURCE_PASS_FILE"] == f"{secret_dir}/postgres_monitoring_pw"
    # The same emptyDir the server puts its socket in.
    server_mounts = {v["name"]: v["mountPath"] for v in container(spec, contract.CONTAINER)["volumeMounts"]}
    assert server_mounts["run"] == contract.RUN_DIR


def test_exporter_sees_only_the_monitoring_password(synth):
    volumes = {v["name"]: v for v in pod_spec(synth())["volumes"]}
    secret = volumes["monitoring-secret"]["secret"]
    assert secret["secretName"] == "postgres-secrets"
    assert secret["items"] == [{"key": "postgres_monitoring_pw", "path": "postgres_monitoring_pw"}]
    # Readable by uid 65534 only through the pod's fsGroup.
    assert secret["defaultMode"] == 0o440
    assert pod_spec(synth())["securityContext"]["fsGroup"] == contract.POSTGRES_UID
    exporter = container(pod_spec(synth()), contract.EXPORTER_CONTAINER)
    assert "secrets" not in {v["name"] for v in exporter["volumeMounts"]}


def test_exporter_collects_statements_without_their_text(synth):
    args = container(pod_spec(synth()), contract.EXPORTER_CONTAINER)["args"]
    assert "--collector.stat_statements" in args
    assert "--collector.database_wraparound" in args
    assert "--no-collector.stat_statements.include_query" in args


def test_metrics_off_removes_the_sidecar_and_every_metrics_object(synth):
    m = synth(VARIANTS["metrics-off"])
    assert [c["name"] for c in pod_spec(m)["containers"]] == [contract.CONTAINER]
    assert "monitoring-secret" not in {v["name"] for v in pod_spec(m)["volumes"]}
    assert m.find("Service", contract.METRICS_SERVICE) is None


# --- Service, NetworkPolicy, ServiceMonitor ------------------------------------


def test_metrics_service_targets_the_database_pods_and_is_found_by_the_service_monitor(synth):
    m = synth(ON)
    service = m.get("Service", contract.METRICS_SERVICE)
    statefulset = m.get("StatefulSet", contract.STATEFULSET)
    assert service["spec"]["selector"] == statefulset["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 9187, "targetPort": "metrics"}]
    monitor = m.get("ServiceMonitor", contract.SERVICE_MONITOR)
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    # ...and not the database Services, which would be scraped on 5432.
    for name in (contract.SERVICE, contract.HEADLESS_SERVICE):
        assert not selector.items() <= m.get("Service", name)["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"}]


def test_operator_objects_are_off_by_default(synth):
    kinds = {kind for kind, _ in synth().kinds()}
    assert not {"ServiceMonitor", "PrometheusRule"} & kinds
    assert synth().find("ConfigMap", contract.DASHBOARD_CONFIG_MAP) is None


def test_extra_labels_reach_the_operator_objects(synth):
    m = synth({"postgres": {"metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "kps"}},
                                        "prometheusRule": {"enabled": True, "labels": {"release": "kps"}}}}})
    assert m.get("ServiceMonitor", contract.SERVICE_MONITOR)["metadata"]["labels"]["release"] == "kps"
    assert m.get("PrometheusRule", contract.PROMETHEUS_RULE)["metadata"]["labels"]["release"] == "kps"


def test_network_policy_admits_scrapers_on_9187_only(synth):
    m = synth({"postgres": {"networkPolicy": {"enabled": True}}})
    rules = m.get("NetworkPolicy", contract.NETWORK_POLICY)["spec"]["ingress"]
    scraper_rules = [r for r in rules if any(p["port"] == contract.METRICS_PORT for p in r["ports"])]
    assert scraper_rules == [{
        "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
                  "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}],
        "ports": [{"protocol": "TCP", "port": 9187}],
    }]
    # Every other rule opens the database port only.
    assert {p["port"] for r in rules if r not in scraper_rules for p in r["ports"]} == {5432}


# --- custom resources against their CRDs ---------------------------------------


def _strict(schema):
    """Forbid unknown fields wherever the CRD lists properties and allows nothing else."""
    if isinstance(schema, dict):
        schema = {k: _strict(v) for k, v in schema.items()}
        if "properties" in schema and "additionalProperties" not in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


def _crd_validator(kind: str) -> jsonschema.Draft7Validator:
    file = {"ServiceMonitor": "servicemonitors", "PrometheusRule": "prometheusrules"}[kind]
    crd = yaml.safe_load((CRDS / f"monitoring.coreos.com_{file}.yaml").read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    return jsonschema.Draft7Validator(_strict(version["schema"]["openAPIV3Schema"]))


CUSTOM_KINDS = ("ServiceMonitor", "PrometheusRule")


@pytest.mark.parametrize("variant", ["metrics-objects", "production"])
def test_custom_resources_validate_against_their_crds(synth, variant):
    m = synth(VARIANTS[variant])
    found = [d for d in m.docs if d["kind"] in CUSTOM_KINDS]
    assert {d["kind"] for d in found} == set(CUSTOM_KINDS)
    for doc in found:
        assert doc["apiVersion"] == "monitoring.coreos.com/v1"
        _crd_validator(doc["kind"]).validate(doc)


def test_crd_validation_rejects_an_unknown_field(synth):
    """The gate above can fail: a misspelt field in a rule is refused."""
    rule = synth(ON).get("PrometheusRule", contract.PROMETHEUS_RULE)
    rule["spec"]["groups"][0]["rules"][0]["annotation"] = {}
    with pytest.raises(jsonschema.ValidationError, match="annotation"):
        _crd_validator("PrometheusRule").validate(rule)


# --- values validation: one rule each ------------------------------------------


def test_operator_objects_need_the_exporter():
    with pytest.raises(ValuesError, match=r"postgres\.metrics\.serviceMonitor\.enabled: true needs enabled: true"):
        parse_values({"postgres": {"metrics": {"enabled": False, "serviceMonitor": {"enabled": True}}}})


def test_scrape_timeout_may_not_exceed_the_interval():
    with pytest.raises(ValuesError, match=r"postgres\.metrics\.serviceMonitor\.scrapeTimeout: 1m is longer than interval 30s"):
        parse_values({"postgres": {"metrics": {"serviceMonitor": {"enabled": True, "scrapeTimeout": "1m"}}}})


def test_scrape_interval_is_a_prometheus_duration():
    with pytest.raises(ValuesError, match=r"postgres\.metrics\.serviceMonitor\.interval"):
        parse_values({"postgres": {"metrics": {"serviceMonitor": {"interval": "30 seconds"}}}})


def test_monitoring_role_name_is_reserved():
    with pytest.raises(ValuesError, match=r"postgres\.username: 'monitoring' is the metrics exporter's role"):
        parse_values({"postgres": {"username": "monitoring"}})


def test_exporter_image_is_pinned():
    with pytest.raises(ValuesError, match=r"postgres\.metrics\.image\.tag: 'latest' is not reproducible"):
        parse_values({"postgres": {"metrics": {"image": {"tag": "latest"}}}})


# --- PromQL: parses, and uses only catalogued metric names ---------------------

# Grafana's interval macros, as Grafana substitutes them before the query runs.
GRAFANA_MACROS = {"$__rate_interval": "1m", "$__range": "6h", "$__interval": "30s"}


def metric_names(expr: str) -> set[str]:
    for macro, value in GRAFANA_MACROS.items():
        expr = expr.replace(macro, value)
    names: set[str] = set()

    def visit(node):
        if isinstance(node, promql_parser.VectorSelector):
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def all_alerts(replicas: int = 2, pooler: bool = True, pooler_read_only: bool = True) -> list[alerts.Alert]:
    return alerts.alerts(alerts.AlertScope(namespace="ns", replicas=replicas, backups_volume=True,
                                           synchronous_mode=replicas > 1, wal_archiving=True, pooler=pooler,
                                           pooler_read_only=pooler_read_only,
                                           pitr_drill_interval_seconds=7 * 24 * 3600))


def full_dashboard() -> dict:
    """Every row: Patroni's, both poolers' and point-in-time recovery's too."""
    return json.loads(dashboard.dashboard_json("ns", ha=True, pooler=True, pitr=True, drill=True,
                                               pooler_read_only=True))


def dashboard_queries(model: dict) -> list[str]:
    return [t["expr"] for p in model["panels"] for t in p.get("targets", [])]


def test_metric_name_extraction_can_fail():
    """The catalogue gate below can fail: an unknown name is found, a bad query raises."""
    assert metric_names('rate(pg_made_up_total{a="b"}[5m]) / on () pg_up') == {"pg_made_up_total", "pg_up"}
    with pytest.raises(ValueError):
        metric_names("sum(rate(pg_up[5m])")


def test_every_alert_expression_uses_catalogued_metrics():
    for alert in all_alerts():
        assert metric_names(alert.expr) <= METRICS.keys(), alert.name


def test_every_dashboard_query_uses_catalogued_metrics():
    queries = dashboard_queries(full_dashboard())
    assert len(queries) >= 15
    for query in queries:
        assert metric_names(query) <= METRICS.keys(), query


def test_catalogue_has_no_unused_names():
    """Every listed name is used somewhere, so the list stays the truth about our queries."""
    used = set().union(*(metric_names(a.expr) for a in all_alerts()),
                       *(metric_names(q) for q in dashboard_queries(full_dashboard())))
    assert used == METRICS.keys()


# --- alerts ---------------------------------------------------------------------

REQUIRED_ALERTS = {
    "PostgresDown", "PostgresTooManyConnections", "PostgresReplicationLag", "PostgresTransactionIdWraparound",
    "PostgresLongRunningTransaction", "PostgresDeadlocks", "PostgresDataVolumeFull", "PostgresBackupVolumeFull",
    "PostgresBackupTooOld", "PostgresBackupJobFailed", "PostgresHighRollbackRate",
}


def runbook_text() -> str:
    return (TOP / contract.RUNBOOK_PAGE).read_text()


def test_prometheus_rule_carries_every_alert_with_annotations_and_runbook(synth):
    rules = synth(ON).get("PrometheusRule", contract.PROMETHEUS_RULE)["spec"]["groups"][0]["rules"]
    # replicas is 1: no replication alert.
    assert {r["alert"] for r in rules} == REQUIRED_ALERTS - {"PostgresReplicationLag"}
    headings = {m.lower() for m in re.findall(r"^#+ (Postgres\w+)\s*$", runbook_text(), flags=re.M)}
    for rule in rules:
        annotations = rule["annotations"]
        assert annotations["summary"], rule["alert"]
        assert "{{ $value" in annotations["description"], rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert annotations["runbook_url"] == f"{contract.RUNBOOK_PAGE}#{rule['alert'].lower()}"
        assert rule["alert"].lower() in headings, f"no runbook section for {rule['alert']}"


# Patroni's alerts (replicas >= 2).
HA_ALERTS = {"PostgresNoPrimary", "PostgresMemberNotStreaming", "PostgresFailover", "PostgresNoSynchronousStandby"}


# PgBouncer's alerts (postgres.pooler).
POOLER_ALERTS = {"PostgresPoolerDown", "PostgresPoolerClientsWaiting", "PostgresPoolerSaturated"}


def test_replication_lag_alert_only_with_replicas():
    assert {a.name for a in all_alerts(replicas=2)} == (REQUIRED_ALERTS | HA_ALERTS | POOLER_ALERTS
                                                         | {"PostgresWalArchivingFailing", "PostgresWalArchivingStale",
                                                            "PostgresPitrDrillFailing",
                                                            "PostgresPitrDrillTooOld"})
    assert "PostgresReplicationLag" not in {a.name for a in all_alerts(replicas=1)}


def test_backup_volume_alert_only_with_a_backup_volume(synth):
    m = synth({"postgres": {"persistence": {"backups": {"enabled": False}}, "backup": {"enabled": False},
                            "metrics": {"prometheusRule": {"enabled": True}}}})
    names = {r["alert"] for r in m.get("PrometheusRule", contract.PROMETHEUS_RULE)["spec"]["groups"][0]["rules"]}
    assert "PostgresBackupVolumeFull" not in names


def test_backup_is_stale_after_one_and_a_half_daily_intervals():
    stale = next(a for a in all_alerts() if a.name == "PostgresBackupTooOld")
    assert "> 129600" in stale.expr
    assert f'cronjob="{contract.BACKUP_CRONJOB}"' in stale.expr


BOTH_POOLERS = {contract.POOLER_METRICS_SERVICE, contract.POOLER_RO_METRICS_SERVICE}
# Every Service the ServiceMonitor may scrape: a selector must pick the poolers' only.
SCRAPED = BOTH_POOLERS | {contract.METRICS_SERVICE}


def selected_services(expr: str) -> list[set[str]]:
    """For each vector selector in `expr`, which scraped Services its `service` matcher admits."""
    found: list[set[str]] = []

    def admits(matcher, service: str) -> bool:
        op = str(matcher.op).rsplit(".", 1)[-1]
        hit = re.fullmatch(matcher.value, service) is not None if op in ("Re", "NotRe") else matcher.value == service
        return hit if op in ("Equal", "Re") else not hit

    def visit(node):
        if isinstance(node, promql_parser.VectorSelector):
            matchers = [m for m in node.matchers.matchers if m.name == "service"]
            found.append({s for s in SCRAPED if all(admits(m, s) for m in matchers)})

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def test_selected_services_can_fail():
    assert selected_services('up{service=~"a|postgres-pooler-metrics"} or x{service="postgres-metrics"}') == [
        {contract.POOLER_METRICS_SERVICE}, {contract.METRICS_SERVICE}]
    assert selected_services("up") == [SCRAPED]


@pytest.mark.parametrize(("read_only", "services"), [(False, {contract.POOLER_METRICS_SERVICE}),
                                                     (True, BOTH_POOLERS)])
def test_pooler_alerts_cover_each_running_pooler(read_only, services):
    found = {a.name: a for a in all_alerts(pooler_read_only=read_only) if a.name in POOLER_ALERTS}
    assert found.keys() == POOLER_ALERTS
    for alert in found.values():
        selectors = selected_services(alert.expr)
        assert all(selector and selector <= services for selector in selectors), (alert.name, selectors)
        assert set().union(*selectors) == services, alert.name
    if read_only:
        # absent() per pooler: one pooler gone entirely fires while the other still runs.
        down = selected_services(found["PostgresPoolerDown"].expr)
        assert [s for s in down if len(s) == 1] == [{contract.POOLER_METRICS_SERVICE},
                                                    {contract.POOLER_RO_METRICS_SERVICE}]
    mentions_read_only = any(contract.POOLER_RO in a.summary + a.description for a in found.values())
    assert mentions_read_only == read_only


def test_pooler_alert_text_names_the_pooler_by_its_service_label():
    found = [a for a in all_alerts() if a.name in POOLER_ALERTS]
    for alert in found:
        # The summary tells the poolers apart; the expression keeps the label it reads.
        assert '$labels.service "' + contract.POOLER_RO_METRICS_SERVICE + '"' in alert.summary, alert.name
        if " by (" in alert.expr:
            assert all("service" in by for by in re.findall(r"by \(([^)]*)\)", alert.expr)), alert.name


def test_synthesized_pooler_alerts_select_the_synthesized_metrics_services(synth):
    m = synth(VARIANTS["ha-pooler-ro"])
    services = {name for name in BOTH_POOLERS if m.find("Service", name) is not None}
    assert services == BOTH_POOLERS
    rules = m.get("PrometheusRule", contract.PROMETHEUS_RULE)["spec"]["groups"][0]["rules"]
    pooler_rules = [r for r in rules if r["alert"] in POOLER_ALERTS]
    assert {r["alert"] for r in pooler_rules} == POOLER_ALERTS
    for rule in pooler_rules:
        assert set().union(*selected_services(rule["expr"])) == services, rule["alert"]


def test_alerts_select_only_this_namespace():
    for alert in all_alerts():
        for selector in re.findall(r"\{([^}]*)\}", alert.expr.replace("{{", "").replace("}}", "")):
            assert 'namespace="ns"' in selector, (alert.name, selector)


# --- dashboard --------------------------------------------------------------------


def test_dashboard_config_map_is_labelled_for_the_grafana_sidecar(synth):
    config_map = synth(ON).get("ConfigMap", contract.DASHBOARD_CONFIG_MAP)
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["namespace"] == "api-forge-prod"
    assert json.loads(config_map["data"]["postgres.json"])["uid"] == dashboard.UID


def test_dashboard_namespace_can_differ_from_the_database(synth):
    m = synth({"postgres": {"metrics": {"dashboard": {"enabled": True, "namespace": "grafana"}}}})
    config_map = m.get("ConfigMap", contract.DASHBOARD_CONFIG_MAP)
    assert config_map["metadata"]["namespace"] == "grafana"
    # The queries still select the database's namespace.
    assert 'namespace=\\"api-forge-prod\\"' in config_map["data"]["postgres.json"]


def test_dashboard_round_trips_through_the_sdk_model(synth):
    text = synth(ON).get("ConfigMap", contract.DASHBOARD_CONFIG_MAP)["data"]["postgres.json"]
    register_default_plugins()  # so Prometheus targets decode as the Prometheus query model

    def round_trip(document: dict) -> dict:
        return json.loads(json.dumps(Dashboard.from_json(document), cls=JSONEncoder))

    once = round_trip(json.loads(text))
    # Decoding keeps everything we wrote (the model only adds its empty defaults,
    # such as fieldConfig.defaults.custom), and is then a fixed point.
    assert contains(once, json.loads(text))
    assert round_trip(once) == once
    model = Dashboard.from_json(json.loads(text))
    targets = [t for p in model.panels if getattr(p, "targets", None) for t in p.targets]
    assert targets and all(isinstance(t, prometheus_model.Dataquery) for t in targets)
    ids = [p.id_val for p in model.panels]
    assert None not in ids and len(ids) == len(set(ids))


def contains(big, small) -> bool:
    """`small` is `big` with some mapping keys left out."""
    if isinstance(small, dict):
        return isinstance(big, dict) and all(k in big and contains(big[k], v) for k, v in small.items())
    if isinstance(small, list):
        return isinstance(big, list) and len(big) == len(small) and all(map(contains, big, small))
    return big == small


def test_dashboard_covers_what_on_call_looks_at():
    titles = {p["title"] for p in json.loads(dashboard.dashboard_json("ns"))["panels"]}
    assert {
        "Database up", "Connections by state", "Transactions and rollbacks per second", "Cache hit ratio",
        "Locks by mode", "Replication lag", "Top statements by total time", "Database sizes", "Volume usage",
        "Time since last successful backup",
    } <= titles


def pooler_rows(model: dict) -> dict[str, set[str]]:
    """Each pooler row's title -> the scraped Services its panels' queries select."""
    rows: dict[str, set[str]] = {}
    current = None
    for panel in model["panels"]:
        if panel["type"] == "row":
            current = panel["title"] if "pooler" in panel["title"] else None
            if current:
                rows[current] = set()
        elif current:
            for target in panel.get("targets", []):
                rows[current] |= set().union(*selected_services(target["expr"].replace("$__rate_interval", "5m")))
    return rows


def test_dashboard_has_a_row_per_running_pooler():
    main_row = "Connection pooler (PgBouncer)"
    read_only_row = f"Read-only connection pooler (PgBouncer, {contract.POOLER_RO})"
    assert pooler_rows(json.loads(dashboard.dashboard_json("ns", ha=True, pooler=True))) == {
        main_row: {contract.POOLER_METRICS_SERVICE}}
    both = json.loads(dashboard.dashboard_json("ns", ha=True, pooler=True, pooler_read_only=True))
    assert pooler_rows(both) == {main_row: {contract.POOLER_METRICS_SERVICE},
                                 read_only_row: {contract.POOLER_RO_METRICS_SERVICE}}
    # The same panels in both rows.
    titles = [p["title"] for p in both["panels"] if p["type"] != "row" and "pgbouncer" in json.dumps(p)]
    assert len(titles) == 10 and titles[:5] == titles[5:]
