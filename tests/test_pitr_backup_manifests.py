"""The PITR backup CronJobs and the pgbackrest sidecar as synthesized: schedules,
the client certificate shared with the pg_dump job (one Secret, issued once, by
`secrets generate` or cert-manager), and the values that cannot work refused."""

from __future__ import annotations

import base64
import copy

import promql_parser
import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import NameOID

import main
from conftest import Manifests, container
from pgbundle import contract
from pgbundle.values.load import ValuesError, parse_values
from workstation import secretgen
from pitr_helpers import TOP

PITR = yaml.safe_load((TOP / "examples" / "pitr.yaml").read_text())
SECRET = "postgres-backup-tls"
CERT_MANAGER = {"enabled": True, "issuerRef": {"name": "internal-ca", "kind": "ClusterIssuer"}}


def values(**postgres) -> dict:
    merged = copy.deepcopy(PITR)
    for key, value in postgres.items():
        merged["postgres"][key] = value
    return merged


def synth(tmp_path, document: dict) -> Manifests:
    main.synthesize(parse_values(document, "test"), tmp_path)
    return Manifests(tmp_path)


def job(m: Manifests, name: str) -> tuple[dict, dict]:
    cronjob = m.get("CronJob", name)
    return cronjob, container(cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"], contract.PITR_BACKUP_CONTAINER)


def test_full_and_differential_schedules(tmp_path):
    m = synth(tmp_path, PITR)
    full, full_container = job(m, contract.PITR_FULL_CRONJOB)
    diff, diff_container = job(m, contract.PITR_DIFF_CRONJOB)
    assert (full["spec"]["schedule"], diff["spec"]["schedule"]) == ("15 1 * * 0", "15 1 * * 1-6")
    assert full["spec"]["concurrencyPolicy"] == diff["spec"]["concurrencyPolicy"] == "Forbid"
    assert full_container["command"][-1] == "full" and diff_container["command"][-1] == "diff"
    sidecar = container(m.get("StatefulSet", "postgres")["spec"]["template"]["spec"], contract.PGBACKREST_SERVER_CONTAINER)
    env = {e["name"]: e["value"] for e in sidecar["env"]}
    # Only the jobs' certificate (CN the read-only role) may use the stanza.
    assert env["PGBACKREST_TLS_SERVER_AUTH"] == "backupuser=postgres"
    assert sidecar["ports"] == [{"name": "pgbackrest", "containerPort": contract.PGBACKREST_PORT, "protocol": "TCP"}]


def test_incremental_type(tmp_path):
    pitr = copy.deepcopy(PITR["postgres"]["pitr"])
    pitr["schedules"] = {"full": "0 3 * * *", "differential": "0 * * * *", "differentialType": "incr"}
    m = synth(tmp_path / "incr", values(pitr=pitr))
    assert job(m, contract.PITR_DIFF_CRONJOB)[1]["command"][-1] == "incr"
    assert job(m, contract.PITR_DIFF_CRONJOB)[0]["spec"]["schedule"] == "0 * * * *"


def test_secrets_generate_writes_the_client_certificate_for_pitr(tmp_path):
    secretgen.generate(parse_values(PITR), tmp_path)
    document = yaml.safe_load((tmp_path / f"{SECRET}.yaml").read_text())
    cert = x509.load_pem_x509_certificate(base64.b64decode(document["data"][contract.CLIENT_CERT_FILE]))
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "backupuser"


@pytest.mark.parametrize("verify_clients", [False, True])
def test_cert_manager_issues_the_client_certificate_once(tmp_path, verify_clients):
    m = synth(tmp_path, values(tls={"certManager": CERT_MANAGER}, ca={"verifyClients": verify_clients}))
    issued = [d for d in m.docs if d["kind"] == "Certificate" and d["spec"]["secretName"] == SECRET]
    assert len(issued) == 1 and issued[0]["spec"]["commonName"] == "backupuser"
    volumes = job(m, contract.PITR_FULL_CRONJOB)[0]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["volumes"]
    assert SECRET in {v.get("secret", {}).get("secretName") for v in volumes}


def test_pitr_without_tls_is_refused():
    with pytest.raises(ValuesError, match=r"pitr.enabled: true needs tls.enabled: true"):
        parse_values(values(tls={"enabled": False}))


def test_backup_age_alert_per_cronjob_with_its_own_interval(tmp_path):
    import re

    document = values(metrics={"prometheusRule": {"enabled": True}})
    rules = synth(tmp_path, document).get("PrometheusRule", contract.PROMETHEUS_RULE)["spec"]["groups"][0]["rules"]
    (rule,) = [r for r in rules if r["alert"] == "PostgresPitrBackupTooOld"]
    promql_parser.parse(rule["expr"])  # valid PromQL
    # Weekly full backups: 1.5 weeks; Monday-Saturday differentials: 1.5 x the 2 days from Saturday to Monday.
    assert f'cronjob="{contract.PITR_FULL_CRONJOB}"}} > 907200' in rule["expr"]
    assert f'cronjob="{contract.PITR_DIFF_CRONJOB}"}} > 259200' in rule["expr"]
    headings = re.findall(r"^## (Postgres\w+)\s*$", (TOP / contract.RUNBOOK_PAGE).read_text(), flags=re.M)
    assert "PostgresPitrBackupTooOld" in headings
    off = synth(tmp_path / "off", {"postgres": {"metrics": {"prometheusRule": {"enabled": True}}}})
    assert "PostgresPitrBackupTooOld" not in {
        r["alert"] for r in off.get("PrometheusRule", contract.PROMETHEUS_RULE)["spec"]["groups"][0]["rules"]}
