"""The Database construct built alone from narrow props, without a values file."""

from __future__ import annotations

import cdk8s

from constructs.database import Database, DatabaseProps, VolumeClaimProps
from constructs.exporter import ExporterSidecarProps
from pgbundle.k8s.objects import SecretFiles
from pgbundle.k8s.podsecurity import Resources
from conftest import construct_chart

RESOURCES = Resources(cpu_request="100m", memory_request="256Mi", cpu_limit="1", memory_limit="1Gi")


def props(**overrides) -> DatabaseProps:
    return DatabaseProps(**{
        "namespace": "shop",
        "image": "postgres:16.4",
        "version": "16.4",
        "resources": RESOURCES,
        "config_files": {"postgresql.conf": "max_connections = 10\n", "pg_hba.conf": "local all all peer\n"},
        "environment": {"PGDATA": "/var/lib/postgresql/data/pgdata"},
        "shm_size_bytes": 67108864,
        "data": VolumeClaimProps(size="5Gi", storage_class="fast"),
        "secrets": SecretFiles(secret_name="pw"),
        "ca": SecretFiles(secret_name="trust", items={"ca.crt": "ca.crt"}, optional=True),
        **overrides,
    })


def build(**overrides) -> list[dict]:
    chart = construct_chart()
    Database(chart, "database", props=props(**overrides))
    return cdk8s.Testing.synth(chart)


def one(docs: list[dict], kind: str, name: str) -> dict:
    (found,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def pod(docs: list[dict]) -> dict:
    return one(docs, "StatefulSet", "postgres")["spec"]["template"]["spec"]


def test_minimal_props_make_the_database_without_optional_parts():
    docs = build()
    assert {(d["kind"], d["metadata"]["name"]) for d in docs} == {
        ("ServiceAccount", "postgres"), ("ConfigMap", "postgres-config"), ("ConfigMap", "postgres-scripts"),
        ("Service", "postgres"), ("Service", "postgres-headless"), ("StatefulSet", "postgres")}
    assert all(d["metadata"]["namespace"] == "shop" for d in docs)
    spec = pod(docs)
    assert [c["name"] for c in spec["containers"]] == ["postgres"]
    assert {v["name"] for v in spec["volumes"]} == {"config", "scripts", "secrets", "ca", "run", "tmp", "shm"}


def test_props_reach_the_objects():
    docs = build(replicas=1, image_pull_policy="Always")
    statefulset = one(docs, "StatefulSet", "postgres")
    (claim,) = statefulset["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"
    assert claim["spec"]["storageClassName"] == "fast"
    (main,) = pod(docs)["containers"]
    assert (main["image"], main["imagePullPolicy"]) == ("postgres:16.4", "Always")
    assert main["env"] == [{"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"}]
    assert main["resources"]["limits"] == {"cpu": "1", "memory": "1Gi"}
    assert one(docs, "ConfigMap", "postgres-config")["data"]["postgresql.conf"] == "max_connections = 10\n"
    ca = next(v for v in pod(docs)["volumes"] if v["name"] == "ca")["secret"]
    assert ca == {"secretName": "trust", "defaultMode": 0o440, "items": [{"key": "ca.crt", "path": "ca.crt"}],
                  "optional": True}
    assert statefulset["metadata"]["labels"]["app.kubernetes.io/version"] == "16.4"


def test_a_changed_config_rolls_the_pod():
    def checksum(config: str) -> str:
        docs = build(config_files={"postgresql.conf": config, "pg_hba.conf": ""})
        return one(docs, "StatefulSet", "postgres")["spec"]["template"]["metadata"]["annotations"]["checksum/config"]

    assert checksum("max_connections = 10\n") != checksum("max_connections = 20\n")


def test_optional_parts_appear_when_asked_for():
    docs = build(
        tls=SecretFiles(secret_name="cert", items={"tls.crt": "server.crt", "tls.key": "server.key"}),
        backups=VolumeClaimProps(size="9Gi", access_mode="ReadWriteMany"),
        pdb_min_available=1,
        exporter=ExporterSidecarProps(image="exporter:1", database="shop", secret_name="pw", resources=RESOURCES),
    )
    assert one(docs, "PersistentVolumeClaim", "postgres-backups")["spec"]["accessModes"] == ["ReadWriteMany"]
    assert one(docs, "PodDisruptionBudget", "postgres")["spec"]["minAvailable"] == 1
    spec = pod(docs)
    assert [c["name"] for c in spec["containers"]] == ["postgres", "postgres-exporter"]
    tls = next(v for v in spec["volumes"] if v["name"] == "tls")["secret"]
    assert tls["items"] == [{"key": "tls.crt", "path": "server.crt"}, {"key": "tls.key", "path": "server.key"}]
    exporter = next(v for v in spec["volumes"] if v["name"] == "monitoring-secret")["secret"]
    assert exporter["items"] == [{"key": "postgres_monitoring_pw", "path": "postgres_monitoring_pw"}]
