"""The database objects: names, storage, pod security, probes and the fields the old chart got wrong."""

from __future__ import annotations

import re

from conftest import container
from constructs.database import DATABASE_SCRIPTS, PITR_DATABASE_SCRIPTS, PITR_SCRIPTS, SCRIPTS

NS = "api-forge-prod"


def statefulset(m):
    return m.get("StatefulSet", "postgres")


def pod(m):
    return statefulset(m)["spec"]["template"]["spec"]


def volume(m, name):
    return next(v for v in pod(m)["volumes"] if v["name"] == name)


def mount(m, path):
    return next(v for v in container(pod(m), "postgres")["volumeMounts"] if v["mountPath"] == path)


def test_fixed_object_names(synth):
    assert synth().kinds() >= {
        ("Namespace", NS),
        ("ServiceAccount", "postgres"),
        ("ConfigMap", "postgres-config"),
        ("ConfigMap", "postgres-scripts"),
        ("PersistentVolumeClaim", "postgres-backups"),
        ("Service", "postgres"),
        ("Service", "postgres-headless"),
        ("StatefulSet", "postgres"),
        ("PodDisruptionBudget", "postgres"),
    }


def test_every_object_is_labelled_and_namespaced(synth):
    for doc in synth().docs:
        labels = doc["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "cdk8s"
        assert labels["app.kubernetes.io/part-of"] == "api-forge"
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == NS
            for key in ("name", "instance", "component", "version"):
                assert f"app.kubernetes.io/{key}" in labels


def test_namespace_enforces_restricted(synth):
    labels = synth().get("Namespace", NS)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_namespace_can_be_left_to_someone_else(synth):
    m = synth({"global": {"createNamespace": False, "namespace": "db"}})
    assert m.find("Namespace", "db") is None
    assert statefulset(m)["metadata"]["namespace"] == "db"


def test_statefulset_identity_and_updates(synth):
    spec = statefulset(synth())["spec"]
    assert spec["serviceName"] == "postgres-headless"
    assert spec["replicas"] == 1
    assert spec["podManagementPolicy"] == "OrderedReady"
    assert spec["updateStrategy"]["type"] == "RollingUpdate"
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    assert "app.kubernetes.io/version" not in spec["selector"]["matchLabels"]


def test_data_volume_claim_template(synth):
    m = synth({"postgres": {"persistence": {"data": {"size": "50Gi", "storageClass": "fast"}}}})
    (claim,) = statefulset(m)["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "postgres-data"
    assert claim["spec"]["resources"]["requests"]["storage"] == "50Gi"
    assert claim["spec"]["storageClassName"] == "fast"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert mount(m, "/var/lib/postgresql/data")["name"] == "postgres-data"


def test_default_storage_class_is_left_to_the_cluster(synth):
    m = synth()
    (claim,) = statefulset(m)["spec"]["volumeClaimTemplates"]
    assert "storageClassName" not in claim["spec"]
    assert "storageClassName" not in m.get("PersistentVolumeClaim", "postgres-backups")["spec"]


def test_backup_claim(synth):
    m = synth({"postgres": {"persistence": {"backups": {"size": "80Gi", "storageClass": "nfs", "accessMode": "ReadWriteMany"}}}})
    spec = m.get("PersistentVolumeClaim", "postgres-backups")["spec"]
    assert spec == {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "80Gi"}}, "storageClassName": "nfs"}
    assert volume(m, "backups")["persistentVolumeClaim"]["claimName"] == "postgres-backups"


def test_backup_claim_can_be_switched_off(synth):
    m = synth({"postgres": {"persistence": {"backups": {"enabled": False}}, "backup": {"enabled": False}}})
    assert m.find("PersistentVolumeClaim", "postgres-backups") is None
    assert all(v["name"] != "backups" for v in pod(m)["volumes"])


def test_services(synth):
    m = synth()
    service = m.get("Service", "postgres")["spec"]
    headless = m.get("Service", "postgres-headless")["spec"]
    assert service["type"] == "ClusterIP"
    assert service["ports"] == [{"name": "postgresql", "port": 5432, "targetPort": "postgresql"}]
    assert headless["clusterIP"] == "None" and headless["publishNotReadyAddresses"] is True
    selector = statefulset(m)["spec"]["selector"]["matchLabels"]
    assert service["selector"] == headless["selector"] == selector


def test_resources_come_from_values(synth):
    m = synth({"postgres": {"resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "3", "memory": "6Gi"}}}})
    assert container(pod(m), "postgres")["resources"] == {
        "requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "3", "memory": "6Gi"}}


def test_image_and_pull_policy(synth):
    m = synth({"global": {"imagePullPolicy": "Always"}, "postgres": {"image": {"repository": "registry.example/pg", "tag": "17.6-trixie"}}})
    c = container(pod(m), "postgres")
    assert (c["image"], c["imagePullPolicy"]) == ("registry.example/pg:17.6-trixie", "Always")
    assert statefulset(m)["metadata"]["labels"]["app.kubernetes.io/version"] == "17.6-trixie"


def test_pod_meets_restricted_security(synth):
    spec = pod(synth())
    ctx = spec["securityContext"]
    assert ctx["runAsNonRoot"] is True and ctx["runAsUser"] == 999 and ctx["fsGroup"] == 999
    assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
    c = container(spec, "postgres")["securityContext"]
    assert c["allowPrivilegeEscalation"] is False
    assert c["capabilities"] == {"drop": ["ALL"]}
    assert c["readOnlyRootFilesystem"] is True
    assert spec["automountServiceAccountToken"] is False
    assert spec["serviceAccountName"] == "postgres"


def test_service_account_has_no_token(synth):
    assert synth().get("ServiceAccount", "postgres")["automountServiceAccountToken"] is False


def test_secrets_are_readable_by_the_server_through_fs_group(synth):
    m = synth()
    # 0400 (the old chart) makes the key unreadable to uid 999; PostgreSQL accepts 0440 root:999.
    for name in ("secrets", "tls", "ca"):
        assert volume(m, name)["secret"]["defaultMode"] == 0o440
    assert volume(m, "secrets")["secret"]["secretName"] == "postgres-secrets"
    assert volume(m, "tls")["secret"]["secretName"] == "postgres-tls"


def test_ca_is_optional_unless_clients_are_verified(synth):
    assert volume(synth(), "ca")["secret"]["optional"] is True
    verified = synth({"postgres": {"ca": {"verifyClients": True}}})
    assert volume(verified, "ca")["secret"]["optional"] is False


def test_tls_off_mounts_no_certificate(synth):
    m = synth({"postgres": {"tls": {"enabled": False}}})
    assert all(v["name"] != "tls" for v in pod(m)["volumes"])


def test_writable_paths_are_empty_dirs(synth):
    m = synth()
    for path, name in (("/var/run/postgresql", "run"), ("/tmp", "tmp"), ("/dev/shm", "shm")):
        assert mount(m, path)["name"] == name
        assert "emptyDir" in volume(m, name)
    assert volume(m, "shm")["emptyDir"]["medium"] == "Memory"
    assert volume(m, "shm")["emptyDir"]["sizeLimit"]


def test_probes_and_clean_shutdown(synth):
    spec = pod(synth())
    c = container(spec, "postgres")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert c[probe]["exec"]["command"][:2] == ["bash", "/opt/postgres/scripts/probe.sh"]
    assert c["startupProbe"]["failureThreshold"] * c["startupProbe"]["periodSeconds"] >= 600
    assert spec["terminationGracePeriodSeconds"] >= 60


def test_config_change_rolls_the_pod(synth):
    a = statefulset(synth())["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    b = statefulset(synth({"postgres": {"config": {"maxConnections": 100}}}))["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    assert a != b


def test_scripts_are_shipped_as_files(synth):
    data = synth().get("ConfigMap", "postgres-scripts")["data"]
    assert "start.sh" in data and "probe.sh" in data
    assert volume(synth(), "scripts")["configMap"]["defaultMode"] == 0o555


def test_pod_disruption_budget(synth):
    m = synth({"postgres": {"podDisruptionBudget": {"minAvailable": 0}}})
    pdb = m.get("PodDisruptionBudget", "postgres")["spec"]
    assert pdb["minAvailable"] == 0
    assert pdb["selector"]["matchLabels"] == statefulset(m)["spec"]["selector"]["matchLabels"]
    assert synth({"postgres": {"podDisruptionBudget": {"enabled": False}}}).find("PodDisruptionBudget", "postgres") is None


def test_network_policy_is_off_by_default(synth):
    assert synth().find("NetworkPolicy", "postgres") is None


def test_network_policy_admits_the_configured_peers(synth):
    m = synth({"postgres": {"networkPolicy": {"enabled": True}}})
    spec = m.get("NetworkPolicy", "postgres")["spec"]
    assert spec["podSelector"]["matchLabels"] == statefulset(m)["spec"]["selector"]["matchLabels"]
    app = {"podSelector": {"matchLabels": {"app.kubernetes.io/component": "application"}}}
    (rule,) = [rule for rule in spec["ingress"] if app in rule["from"]]
    assert rule["ports"] == [{"port": 5432, "protocol": "TCP"}]


def test_rolling_checksum_covers_what_the_database_container_runs():
    """Every script start.sh, probe.sh and the PITR sidecar call, and what those call in turn (and
    every file init.sql includes), is in the checksum; the backup scripts are
    not, so editing them does not restart the database. The PITR scripts (shipped
    only with PITR on) are covered when they are shipped."""
    # The containers' entry points: the database's start and probe scripts, the
    # pgbackrest sidecar's server and Patroni's replica method (with PITR on).
    called, pending = set(), ["start.sh", "probe.sh", "pitr-server.sh", "pitr-replica.sh"]
    while pending:
        name = pending.pop()
        called.add(name)
        if name.endswith(".sh"):
            folder = PITR_SCRIPTS if name in PITR_DATABASE_SCRIPTS else SCRIPTS
            pending += [n for n in re.findall(r"\$PG_SCRIPTS_DIR/([\w.-]+)", (folder / name).read_text())
                        if n not in called]
    called |= set(re.findall(r"^\\ir ([\w.-]+)$", (SCRIPTS / "init.sql").read_text(), flags=re.M))
    assert set(PITR_DATABASE_SCRIPTS) <= called
    assert set(DATABASE_SCRIPTS) == called - set(PITR_DATABASE_SCRIPTS)
    assert not {"backup.sh", "restore.sh"} & set(DATABASE_SCRIPTS)
