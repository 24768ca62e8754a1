"""The Backup and RestoreJob constructs built alone from narrow props."""

from __future__ import annotations

import cdk8s

from constructs.backup import Backup, BackupProps
from constructs.certificate import ClientCertificateProps, IssuerRef
from constructs.restore_job import RestoreJob, RestoreJobProps
from pgbundle.k8s.jobs import JobPodProps
from pgbundle.k8s.objects import SecretFiles
from pgbundle.k8s.podsecurity import Resources
from conftest import construct_chart

RESOURCES = Resources(cpu_request="50m", memory_request="64Mi", cpu_limit="1", memory_limit="512Mi")


def job_pod(**overrides) -> JobPodProps:
    return JobPodProps(**{
        "image": "postgres:16.4", "container": "backup", "script": "backup.sh", "environment": {"BACKUP_DIR": "/b"},
        "password": SecretFiles(secret_name="pw", items={"ro": "ro"}), "resources": RESOURCES,
        "backups_read_only": False, **overrides})


def build_backup(**overrides) -> dict[tuple[str, str], dict]:
    chart = construct_chart()
    Backup(chart, "backup", props=BackupProps(**{
        "namespace": "shop", "version": "16.4", "schedule": "30 1 * * *", "timeout_minutes": 90,
        "pod": job_pod(), **overrides}))
    return {(d["kind"], d["metadata"]["name"]): d for d in cdk8s.Testing.synth(chart)}


def test_backup_is_a_service_account_and_a_cronjob():
    objects = build_backup()
    assert set(objects) == {("ServiceAccount", "postgres-backup"), ("CronJob", "postgres-backup")}
    spec = objects["CronJob", "postgres-backup"]["spec"]
    assert (spec["schedule"], spec["timeZone"], spec["suspend"]) == ("30 1 * * *", "Etc/UTC", False)
    assert spec["jobTemplate"]["spec"]["activeDeadlineSeconds"] == 90 * 60


def test_the_job_pod_follows_its_props():
    pod = build_backup()["CronJob", "postgres-backup"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["bash", "/opt/postgres/scripts/backup.sh"]
    assert container["env"] == [{"name": "BACKUP_DIR", "value": "/b"}]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert set(volumes) == {"scripts", "secrets", "backups", "tmp"}
    assert volumes["secrets"]["secret"]["items"] == [{"key": "ro", "path": "ro"}]
    assert "affinity" not in pod


def test_tls_client_certificate_and_affinity_when_asked_for():
    certificate = ClientCertificateProps(
        name="backup-tls", namespace="shop", labels={}, secret_name="backup-tls", user="backupuser",
        issuer_ref=IssuerRef(name="ca", kind="Issuer", group="cert-manager.io"), duration="2160h", renew_before="360h")
    objects = build_backup(client_certificate=certificate, pod=job_pod(
        ca=SecretFiles(secret_name="trust", items={"ca.crt": "ca.crt"}),
        client_tls=SecretFiles(secret_name="backup-tls", items={"tls.crt": "tls.crt", "tls.key": "tls.key"}),
        near_database=True))
    assert objects["Certificate", "backup-tls"]["spec"]["commonName"] == "backupuser"
    pod = objects["CronJob", "postgres-backup"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert {v["name"] for v in pod["volumes"]} == {"scripts", "secrets", "backups", "tmp", "ca", "client-tls"}
    assert pod["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]["topologyKey"] == "kubernetes.io/hostname"


def test_restore_job_runs_once_with_a_read_only_backup_volume():
    chart = construct_chart()
    RestoreJob(chart, "restore", props=RestoreJobProps(
        namespace="shop", version="16.4", backup="20260101T020000Z",
        pod=job_pod(container="restore", script="restore.sh", backups_read_only=True)))
    (job,) = cdk8s.Testing.synth(chart)
    assert (job["kind"], job["metadata"]["name"]) == ("Job", "postgres-restore-20260101t020000z")
    assert job["spec"]["backoffLimit"] == 0
    pod = job["spec"]["template"]["spec"]
    backups = next(v for v in pod["volumes"] if v["name"] == "backups")
    assert backups["persistentVolumeClaim"] == {"claimName": "postgres-backups", "readOnly": True}
