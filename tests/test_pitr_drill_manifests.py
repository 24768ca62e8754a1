"""The restore drill as synthesized: CronJob postgres-pitr-drill (on by default with
PITR), its pod (repositories read-only, a scratch ephemeral PVC, no database
credentials or TLS), its NetworkPolicy (never the database), its alerts and
dashboard panels, and none of it without PITR. Objects selected by kind and name."""

from __future__ import annotations

import copy
import json

import promql_parser
import yaml

from conftest import container
from netpol import Pod, allowed
from pgbundle import contract
from pitr_helpers import TOP

PITR = yaml.safe_load((TOP / "examples" / "pitr.yaml").read_text())
S3 = {"enabled": True, "bucket": "pg-backups", "endpoint": "s3.example.com", "egressCidrs": ["203.0.113.0/24"]}
MONITORING = {"prometheusRule": {"enabled": True}, "dashboard": {"enabled": True}}
DRILL_ALERTS = {"PostgresPitrDrillFailing", "PostgresPitrDrillTooOld"}


def values(**postgres) -> dict:
    merged = copy.deepcopy(PITR)
    for key, value in postgres.items():
        merged["postgres"][key] = value
    return merged


def drill_pod(m) -> dict:
    return m.get("CronJob", contract.PITR_DRILL_CRONJOB)["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def alert_names(m) -> set[str]:
    return {r["alert"] for r in m.get("PrometheusRule", contract.PROMETHEUS_RULE)["spec"]["groups"][0]["rules"]}


def panel_titles(m) -> set[str]:
    model = json.loads(m.get("ConfigMap", contract.DASHBOARD_CONFIG_MAP)["data"]["postgres.json"])
    return {p["title"] for p in model["panels"]}


def test_on_by_default_with_pitr_weekly_after_saturdays_backup(synth):
    cronjob = synth(values()).get("CronJob", contract.PITR_DRILL_CRONJOB)
    assert (cronjob["spec"]["schedule"], cronjob["spec"]["timeZone"]) == ("15 4 * * 6", "Etc/UTC")
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"


def test_no_drill_without_pitr_or_when_turned_off(synth):
    for m in (synth({}), synth(values(pitr={**PITR["postgres"]["pitr"], "drill": {"enabled": False}}))):
        assert m.find("CronJob", contract.PITR_DRILL_CRONJOB) is None
        assert m.find("ServiceAccount", contract.PITR_DRILL_SERVICE_ACCOUNT) is None


def test_the_pod_reads_the_repository_and_restores_into_a_scratch_claim_as_large_as_the_data(synth):
    m = synth(values(persistence={"data": {"size": "33Gi"}}))
    spec = drill_pod(m)
    job = container(spec, contract.PITR_DRILL_CONTAINER)
    assert job["command"] == ["bash", f"{contract.SCRIPTS_DIR}/{contract.PITR_DRILL_SCRIPT}"]
    env = {e["name"]: e["value"] for e in job["env"]}
    assert (env["PG_DRILL_DIR"], env["PG_DRILL_DATABASE"]) == (contract.PITR_DRILL_DIR, "appdb")
    # The database pod's: the same repositories, the same stanza.
    database = container(m.get("StatefulSet", contract.STATEFULSET)["spec"]["template"]["spec"], contract.CONTAINER)
    db_env = {e["name"]: e.get("value") for e in database["env"]}
    for name in ("PGBACKREST_STANZA", "PG_PITR_REPOS", "PGBACKREST_REPO1_PATH", "PGBACKREST_CONFIG"):
        assert env[name] == db_env[name], name
    mounts = {v["name"]: v for v in job["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert mounts["backups"]["readOnly"] is True and volumes["backups"]["persistentVolumeClaim"]["readOnly"] is True
    assert mounts["scratch"]["mountPath"] == contract.PITR_DRILL_DIR
    claim = volumes["scratch"]["ephemeral"]["volumeClaimTemplate"]["spec"]
    assert claim["resources"]["requests"]["storage"] == "33Gi"
    # Only the passphrase; no CA or client certificate: it never connects to the database.
    assert volumes["secrets"]["secret"]["items"] == [{"key": contract.CIPHER_PASS_KEY, "path": contract.CIPHER_PASS_KEY}]
    assert not {"ca", contract.CLIENT_TLS_VOLUME} & volumes.keys()
    assert spec["serviceAccountName"] == contract.PITR_DRILL_SERVICE_ACCOUNT


def test_its_own_repository_claim_read_only_a_set_size_and_storage_class(synth):
    pitr = {**PITR["postgres"]["pitr"], "repos": {"volume": {"claim": "own"}},
            "drill": {"size": "80Gi", "storageClass": "scratch-ssd"}}
    spec = drill_pod(synth(values(pitr=pitr)))
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert "backups" not in volumes
    assert volumes[f"claim-{contract.PITR_CLAIM}"]["persistentVolumeClaim"] == {
        "claimName": contract.PITR_CLAIM, "readOnly": True}
    claim = volumes["scratch"]["ephemeral"]["volumeClaimTemplate"]["spec"]
    assert (claim["resources"]["requests"]["storage"], claim["storageClassName"]) == ("80Gi", "scratch-ssd")


def test_the_network_policy_never_lets_it_reach_the_database(synth):
    def policies(m) -> list[dict]:
        return [d for kind, name in m.kinds() if kind == "NetworkPolicy" for d in [m.get(kind, name)]]

    volume_only = synth(values(networkPolicy={"enabled": True}))
    drill_policy = volume_only.get("NetworkPolicy", contract.PITR_DRILL_NETWORK_POLICY)
    assert drill_policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert not drill_policy["spec"].get("egress")  # a volume repository only: no egress at all
    template = volume_only.get("CronJob", contract.PITR_DRILL_CRONJOB)["spec"]["jobTemplate"]["spec"]["template"]
    pod = Pod("api-forge-prod", template["metadata"]["labels"])
    database = Pod("api-forge-prod", volume_only.get("StatefulSet", contract.STATEFULSET)["spec"]["template"]["metadata"]["labels"])
    for port in (contract.PORT, contract.PGBACKREST_PORT):
        assert not allowed(policies(volume_only), pod, database, port)
    assert not allowed(policies(volume_only), pod, Pod("kube-system", {"k8s-app": "kube-dns"}), 53, "UDP")

    with_s3 = synth(values(networkPolicy={"enabled": True}, pitr={**PITR["postgres"]["pitr"], "repos": {"s3": S3}}))
    egress = with_s3.get("NetworkPolicy", contract.PITR_DRILL_NETWORK_POLICY)["spec"]["egress"]
    assert [r["to"] for r in egress if any(p["port"] == 443 for p in r["ports"])] == [[{"ipBlock": {"cidr": "203.0.113.0/24"}}]]
    assert {p["port"] for r in egress for p in r["ports"]} == {53, 443}
    for port in (contract.PORT, contract.PGBACKREST_PORT):
        assert not allowed(policies(with_s3), pod, database, port)


def test_alerts_and_dashboard_panels_only_with_the_drill(synth):
    on = synth(values(metrics=MONITORING))
    assert DRILL_ALERTS <= alert_names(on)
    rules = {r["alert"]: r for r in on.get("PrometheusRule", contract.PROMETHEUS_RULE)["spec"]["groups"][0]["rules"]}
    for name in DRILL_ALERTS:
        promql_parser.parse(rules[name]["expr"])
        assert f'cronjob="{contract.PITR_DRILL_CRONJOB}"' in rules[name]["expr"]
    # Weekly: 1.5 weeks without a success.
    assert "> 907200" in rules["PostgresPitrDrillTooOld"]["expr"]
    titles = panel_titles(on)
    pitr_panels = {"WAL segments archived and failed", "Time since the last archived WAL segment",
                   "Time since the last successful full and differential backup"}
    drill_panels = {"Time since the last successful restore drill", "Newest restore drill failed"}
    assert pitr_panels | drill_panels <= titles

    no_drill = synth(values(metrics=MONITORING, pitr={**PITR["postgres"]["pitr"], "drill": {"enabled": False}}))
    assert not DRILL_ALERTS & alert_names(no_drill)
    assert pitr_panels <= panel_titles(no_drill) and not drill_panels & panel_titles(no_drill)

    off = synth({"postgres": {"metrics": MONITORING}})
    assert not DRILL_ALERTS & alert_names(off)
    assert not (pitr_panels | drill_panels) & panel_titles(off)
