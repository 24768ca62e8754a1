"""The PitrDrill construct built alone from narrow props."""

from __future__ import annotations

import cdk8s

from constructs.pitr_drill import PitrDrill, PitrDrillProps
from pgbundle import contract
from pgbundle.k8s.jobs import JobPodProps, ScratchVolume
from pgbundle.k8s.objects import SecretFiles
from pgbundle.k8s.podsecurity import Resources
from conftest import construct_chart
from pss import violations

RESOURCES = Resources(cpu_request="50m", memory_request="64Mi", cpu_limit="1", memory_limit="512Mi")


def build(**pod_overrides) -> dict[tuple[str, str], dict]:
    chart = construct_chart()
    pod = JobPodProps(**{
        "image": "registry.example/pg:v1", "container": "pitr-drill", "script": "pitr-drill.sh",
        "environment": {"PG_DRILL_DIR": "/scratch"}, "password": SecretFiles(secret_name="pw", items={"k": "k"}),
        "resources": RESOURCES, "backups_read_only": True, "backups": False,
        "read_only_claims": {"/repo": "postgres-pitr"}, "scratch": ScratchVolume(path="/scratch", size="30Gi"),
        "service_account": contract.PITR_DRILL_SERVICE_ACCOUNT, **pod_overrides})
    PitrDrill(chart, "drill", props=PitrDrillProps(namespace="shop", version="v1", schedule="0 4 * * 6",
                                                   time_zone="Europe/Berlin", timeout_minutes=60, pod=pod))
    return {(d["kind"], d["metadata"]["name"]): d for d in cdk8s.Testing.synth(chart)}


def pod_spec(objects: dict) -> dict:
    return objects["CronJob", contract.PITR_DRILL_CRONJOB]["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def test_a_service_account_and_a_cronjob_on_the_schedule():
    objects = build()
    assert set(objects) == {("ServiceAccount", contract.PITR_DRILL_SERVICE_ACCOUNT),
                            ("CronJob", contract.PITR_DRILL_CRONJOB)}
    cronjob = objects["CronJob", contract.PITR_DRILL_CRONJOB]
    spec = cronjob["spec"]
    assert (spec["schedule"], spec["timeZone"], spec["concurrencyPolicy"]) == ("0 4 * * 6", "Europe/Berlin", "Forbid")
    assert spec["jobTemplate"]["spec"]["activeDeadlineSeconds"] == 3600
    labels = spec["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/component"] == contract.PITR_DRILL_COMPONENT
    assert pod_spec(objects)["serviceAccountName"] == contract.PITR_DRILL_SERVICE_ACCOUNT


def test_the_repository_is_read_only_and_the_scratch_volume_an_ephemeral_claim():
    spec = pod_spec(build())
    (container,) = spec["containers"]
    assert container["command"] == ["bash", f"{contract.SCRIPTS_DIR}/pitr-drill.sh"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert mounts["claim-postgres-pitr"]["readOnly"] is True
    assert volumes["claim-postgres-pitr"]["persistentVolumeClaim"] == {"claimName": "postgres-pitr", "readOnly": True}
    assert mounts["scratch"] == {"name": "scratch", "mountPath": "/scratch"}
    claim = volumes["scratch"]["ephemeral"]["volumeClaimTemplate"]["spec"]
    assert claim == {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "30Gi"}}}
    assert violations(spec) == []


def test_a_storage_class_is_passed_on():
    spec = pod_spec(build(scratch=ScratchVolume(path="/scratch", size="5Gi", storage_class="fast")))
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["scratch"]["ephemeral"]["volumeClaimTemplate"]["spec"]["storageClassName"] == "fast"
