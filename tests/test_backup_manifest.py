"""The backup CronJob, its ServiceAccount and the restore Job, selected by kind and name."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import container

from pgbundle.contract import selector_labels
from pgbundle.values.load import parse_values
from workstation.restore_manifest import RestoreError, restore_manifest

TOP = Path(__file__).resolve().parent.parent
NS = "api-forge-prod"


def cronjob(m) -> dict:
    return m.get("CronJob", "postgres-backup")


def job_pod(m) -> dict:
    return cronjob(m)["spec"]["jobTemplate"]["spec"]["template"]


def env(pod_spec: dict, name: str) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container(pod_spec, name)["env"]}


def volume(pod_spec: dict, name: str) -> dict:
    return next(v for v in pod_spec["volumes"] if v["name"] == name)


def test_backup_chart_is_applied_after_the_database(synth):
    m = synth()
    names = [f.name for f in m.files]
    assert "20-backup.k8s.yaml" in names
    assert names.index("10-postgres.k8s.yaml") < names.index("20-backup.k8s.yaml")
    assert ("CronJob", "postgres-backup") in {(d["kind"], d["metadata"]["name"]) for d in
                                             yaml.safe_load_all((m.folder / "20-backup.k8s.yaml").read_text())}


def test_disabled_backup_emits_nothing(synth):
    m = synth({"postgres": {"backup": {"enabled": False}}})
    assert m.find("CronJob", "postgres-backup") is None
    assert m.find("ServiceAccount", "postgres-backup") is None


def test_schedule_and_controller_settings(synth):
    spec = cronjob(synth({"postgres": {"backup": {"schedule": "30 3 * * 0", "timeZone": "Europe/Berlin",
                                                  "suspend": True}}}))["spec"]
    assert (spec["schedule"], spec["timeZone"], spec["suspend"]) == ("30 3 * * 0", "Europe/Berlin", True)
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["startingDeadlineSeconds"] >= 300, "minutes, not cdk8s-plus' 10 s"
    assert spec["successfulJobsHistoryLimit"] >= 1 and spec["failedJobsHistoryLimit"] >= 1
    job = spec["jobTemplate"]["spec"]
    assert job["backoffLimit"] >= 1
    assert job["activeDeadlineSeconds"] == 240 * 60
    assert job["ttlSecondsAfterFinished"] > 0
    assert job["template"]["spec"]["restartPolicy"] == "Never"


def test_own_service_account_without_token(synth):
    m = synth()
    assert m.get("ServiceAccount", "postgres-backup")["automountServiceAccountToken"] is False
    pod = job_pod(m)["spec"]
    assert pod["serviceAccountName"] == "postgres-backup"
    assert pod["automountServiceAccountToken"] is False


def test_pod_labels_are_what_the_network_policy_admits(synth):
    labels = job_pod(synth())["metadata"]["labels"]
    assert labels.items() >= selector_labels("backup").items()
    assert labels["app.kubernetes.io/part-of"] == "api-forge"


def test_restricted_security_context(synth):
    pod = job_pod(synth())["spec"]
    assert pod["securityContext"] == {
        "runAsNonRoot": True, "runAsUser": 999, "runAsGroup": 999, "fsGroup": 999,
        "fsGroupChangePolicy": "OnRootMismatch", "seccompProfile": {"type": "RuntimeDefault"}}
    ctx = container(pod, "backup")["securityContext"]
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"] == {"drop": ["ALL"]}
    assert ctx["runAsNonRoot"] is True and ctx["seccompProfile"] == {"type": "RuntimeDefault"}
    mounts = {m["mountPath"]: m for m in container(pod, "backup")["volumeMounts"]}
    assert volume(pod, mounts["/tmp"]["name"])["emptyDir"]


def test_same_image_runs_the_shipped_script(synth):
    m = synth()
    pod = job_pod(m)["spec"]
    c = container(pod, "backup")
    assert c["image"] == m.get("StatefulSet", "postgres")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert c["command"] == ["bash", "/opt/postgres/scripts/backup.sh"]
    assert volume(pod, "scripts")["configMap"]["name"] == "postgres-scripts"
    scripts = m.get("ConfigMap", "postgres-scripts")["data"]
    assert scripts["backup.sh"] == (TOP / "constructs" / "scripts" / "backup.sh").read_text()
    # Both job scripts source lib.sh from the same mounted folder.
    assert {"restore.sh", "lib.sh"} <= scripts.keys()


def test_connects_as_read_only_role_with_verified_tls(synth):
    pod = job_pod(synth())["spec"]
    e = env(pod, "backup")
    assert (e["PGHOST"], e["PGPORT"], e["PGUSER"]) == ("postgres", "5432", "backupuser")
    assert e["PGSSLMODE"] == "verify-full"
    assert e["PGSSLROOTCERT"] == "/etc/postgres/ca/ca.crt"
    assert e["PG_PASSWORD_FILE"] == "/etc/postgres/secrets/postgres_app_ro_pw"
    # Only the read-only password is mounted, and the CA is required.
    secrets = volume(pod, "secrets")["secret"]
    assert secrets["items"] == [{"key": "postgres_app_ro_pw", "path": "postgres_app_ro_pw"}]
    assert volume(pod, "ca")["secret"]["secretName"] == "postgres-ca"
    assert volume(pod, "ca")["secret"].get("optional") is not True
    assert "PGSSLCERT" not in e


def test_client_certificate_when_clients_are_verified(synth):
    pod = job_pod(synth({"postgres": {"ca": {"verifyClients": True}}}))["spec"]
    e = env(pod, "backup")
    assert e["PGSSLCERT"].endswith("/tls.crt") and e["PGSSLKEY"].endswith("/tls.key")
    assert volume(pod, "client-tls")["secret"]["secretName"] == "postgres-backup-tls"


def test_tls_off_does_not_ask_for_tls(synth):
    pod = job_pod(synth({"postgres": {"tls": {"enabled": False}}}))["spec"]
    assert env(pod, "backup")["PGSSLMODE"] == "disable"
    assert all(v["name"] != "ca" for v in pod["volumes"])


def test_script_settings_from_values(synth):
    e = env(job_pod(synth({"postgres": {"temporal": {"enabled": True}, "backup": {
        "compression": 6, "retention": {"count": 3, "days": 14}}}}))["spec"], "backup")
    assert e["BACKUP_DATABASES"] == "appdb temporal temporal_visibility"
    assert (e["BACKUP_COMPRESSION"], e["BACKUP_RETENTION_COUNT"], e["BACKUP_RETENTION_DAYS"]) == ("6", "3", "14")
    assert e["BACKUP_DIR"] == "/var/lib/postgresql/backups"


def test_writes_to_the_backup_claim(synth):
    pod = job_pod(synth())["spec"]
    assert volume(pod, "backups")["persistentVolumeClaim"]["claimName"] == "postgres-backups"
    mount = next(m for m in container(pod, "backup")["volumeMounts"] if m["name"] == "backups")
    assert mount["mountPath"] == "/var/lib/postgresql/backups" and not mount.get("readOnly")


def test_read_write_once_volume_pins_the_job_to_the_database_node(synth):
    affinity = job_pod(synth())["spec"]["affinity"]["podAffinity"]
    [term] = affinity["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["labelSelector"]["matchLabels"] == selector_labels("database")
    assert term["topologyKey"] == "kubernetes.io/hostname"


def test_read_write_many_volume_needs_no_affinity(synth):
    pod = job_pod(synth({"postgres": {"persistence": {"backups": {"accessMode": "ReadWriteMany"}}}}))["spec"]
    assert "affinity" not in pod


def test_resources_from_values(synth):
    c = container(job_pod(synth({"postgres": {"backup": {"resources": {
        "requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}}}}}))["spec"], "backup")
    assert c["resources"] == {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}}


# --- restore ------------------------------------------------------------------


def restore_job(**kwargs) -> dict:
    [doc] = list(yaml.safe_load_all(restore_manifest(parse_values({}), **kwargs)))
    return doc


def test_restore_job_as_superuser_after_checksum():
    job = restore_job(backup="20260101T020000Z", databases=["appdb"], jobs=3)
    assert (job["kind"], job["metadata"]["name"], job["metadata"]["namespace"]) == (
        "Job", "postgres-restore-20260101t020000z", NS)
    assert job["spec"]["backoffLimit"] == 0
    pod = job["spec"]["template"]["spec"]
    c = container(pod, "restore")
    assert c["command"] == ["bash", "/opt/postgres/scripts/restore.sh"]
    e = env(pod, "restore")
    assert (e["PGUSER"], e["RESTORE_BACKUP"], e["RESTORE_DATABASES"], e["RESTORE_JOBS"]) == (
        "postgres", "20260101T020000Z", "appdb", "3")
    assert e["PGSSLMODE"] == "verify-full"
    assert volume(pod, "secrets")["secret"]["items"] == [{"key": "postgres_password", "path": "postgres_password"}]
    backups = next(m for m in c["volumeMounts"] if m["name"] == "backups")
    assert backups["readOnly"] is True
    assert job["spec"]["template"]["metadata"]["labels"].items() >= selector_labels("backup").items()


def test_restore_job_is_schema_valid():
    import kubernetes_validate

    for version in ("1.27.0", "1.35.0"):
        kubernetes_validate.validate(restore_job(backup="20260101T020000Z", databases=[]), version, strict=True)


def test_restore_refuses_a_name_that_is_not_a_set():
    with pytest.raises(RestoreError, match=r"--backup: '\.\./etc' is not a backup set name"):
        restore_job(backup="../etc", databases=[])


def test_restore_refuses_a_bad_database_name():
    with pytest.raises(RestoreError, match=r"--database: 'app db' is not a database name"):
        restore_job(backup="20260101T020000Z", databases=["app db"])


def test_restore_manifest_command_prints_the_job_and_is_not_in_dist(source_dist):
    result = subprocess.run([sys.executable, str(TOP / "main.py"), "restore-manifest", "--backup", "20260101T020000Z",
                             "--database", "appdb"], capture_output=True, text=True, cwd=TOP, timeout=120)
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout)["metadata"]["name"] == "postgres-restore-20260101t020000z"
    assert "postgres-restore" not in source_dist.text()


def test_restore_manifest_command_rejects_bad_input():
    result = subprocess.run([sys.executable, str(TOP / "main.py"), "restore-manifest", "--backup", "latest"],
                            capture_output=True, text=True, cwd=TOP, timeout=120)
    assert result.returncode == 2
    assert "error: --backup: 'latest' is not a backup set name" in result.stderr


@pytest.mark.parametrize("script", ["backup.sh", "restore.sh", "lib.sh"])
def test_scripts_stop_on_any_error(script):
    text = (TOP / "constructs" / "scripts" / script).read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "\nset -euo pipefail\n" in text
    result = subprocess.run(["bash", "-n", str(TOP / "constructs" / "scripts" / script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_backup_age_alert_follows_the_schedule(synth):
    m = synth({"postgres": {"backup": {"schedule": "0 */6 * * *"},
                            "metrics": {"prometheusRule": {"enabled": True}}}})
    rules = m.get("PrometheusRule", "postgres")["spec"]["groups"][0]["rules"]
    too_old = next(r for r in rules if r["alert"] == "PostgresBackupTooOld")
    assert "> 32400" in too_old["expr"]  # 1.5 x 6 hours
    assert "allows 6 h between runs" in too_old["annotations"]["description"]


def test_ca_from_cert_manager_secret_when_cert_manager_issues_the_certificate(synth):
    m = synth({"postgres": {"tls": {"certManager": {"enabled": True, "issuerRef": {"name": "internal-ca"}}}}})
    ca = volume(job_pod(m)["spec"], "ca")["secret"]
    assert ca["secretName"] == "postgres-tls"
    assert ca["items"] == [{"key": "ca.crt", "path": "ca.crt"}]
    assert ca.get("optional") is not True


@pytest.mark.parametrize(("databases", "jobs", "message"), [
    (["appdb", "appdb"], 1, r"--database: 'appdb' is given twice: name each database once"),
    (["appdb", "temporal", "appdb"], 1, r"--database: 'appdb' is given twice"),
    ([], 0, r"--jobs: 0 is not allowed: use 1 \(the default: each database in one transaction, all or nothing\) to 16"),
    ([], 17, r"--jobs: 17 is not allowed: use 1 .* to 16 \(parallel workers, each a connection and a CPU"),
    ([], 100000, r"--jobs: 100000 is not allowed"),
])
def test_restore_refuses_duplicate_databases_and_unbounded_jobs(databases, jobs, message):
    with pytest.raises(RestoreError, match=message):
        restore_job(backup="20260101T020000Z", databases=databases, jobs=jobs)


def test_restore_runs_in_one_transaction_by_default():
    assert env(restore_job(backup="20260101T020000Z", databases=[])["spec"]["template"]["spec"], "restore")[
        "RESTORE_JOBS"] == "1"
