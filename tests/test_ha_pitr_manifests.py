"""Point-in-time recovery with Patroni as synthesized (examples/ha-pitr.yaml):
Patroni's archiving and replica creation, pgbackrest.conf beside Patroni's
configuration, a pgBackRest server on every member, and the backup jobs reaching
each member by its stable name from a standby. Objects by kind and name."""

from __future__ import annotations

import copy

import pytest
import yaml

import main
from conftest import Manifests, container
from pgbundle import contract
from pgbundle.values.load import parse_values
from pitr_helpers import TOP

EXAMPLE = yaml.safe_load((TOP / "examples" / "ha-pitr.yaml").read_text())
NAMESPACE = parse_values(EXAMPLE).global_.namespace


@pytest.fixture(scope="module")
def manifests(tmp_path_factory) -> Manifests:
    out = tmp_path_factory.mktemp("ha-pitr")
    main.synthesize(parse_values(EXAMPLE, "test"), out)
    return Manifests(out)


def patroni(m: Manifests) -> dict:
    return yaml.safe_load(m.get("ConfigMap", contract.PATRONI_CONFIG_MAP)["data"][contract.PATRONI_CONFIG_FILE])


def test_patroni_archives_from_the_primary_and_creates_replicas_from_the_repository(manifests):
    postgresql = patroni(manifests)["postgresql"]
    parameters = postgresql["parameters"]
    # on, not always: a standby hands no WAL to archive_command; a promoted one starts to.
    assert (parameters["archive_mode"], parameters["archive_command"]) == ("on", "pgbackrest archive-push %p")
    assert postgresql["recovery_conf"] == {"restore_command": 'pgbackrest archive-get %f "%p"'}
    assert postgresql["create_replica_methods"] == ["pgbackrest", "basebackup"]
    assert postgresql["pgbackrest"] == {"command": f"{contract.SCRIPTS_DIR}/pitr-replica.sh", "no_params": True}
    scripts = manifests.get("ConfigMap", contract.SCRIPTS_CONFIG_MAP)["data"]
    assert {"pitr-replica.sh", "pitr-env.sh", "patroni.sh"} <= set(scripts)


def test_without_pitr_patroni_neither_archives_nor_restores(tmp_path):
    main.synthesize(parse_values(yaml.safe_load((TOP / "examples" / "ha.yaml").read_text()), "test"), tmp_path)
    m = Manifests(tmp_path)
    postgresql = patroni(m)["postgresql"]
    assert not {"recovery_conf", "create_replica_methods", "pgbackrest"} & set(postgresql)
    assert "archive_mode" not in postgresql["parameters"]
    assert m.find("ConfigMap", contract.CONFIG_MAP) is None


def test_pgbackrest_conf_keeps_its_configmap_mounted_in_every_container_that_runs_pgbackrest(manifests):
    assert set(manifests.get("ConfigMap", contract.CONFIG_MAP)["data"]) == {contract.PGBACKREST_CONF}
    pod = manifests.get("StatefulSet", contract.STATEFULSET)["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    for name in (contract.CONTAINER, contract.PGBACKREST_SERVER_CONTAINER):
        mounts = {v["mountPath"]: v["name"] for v in container(pod, name)["volumeMounts"]}
        assert volumes[mounts[contract.CONFIG_DIR]]["configMap"]["name"] == contract.CONFIG_MAP
        assert volumes[mounts[contract.PATRONI_CONFIG_DIR]]["configMap"]["name"] == contract.PATRONI_CONFIG_MAP
    assert manifests.get("PersistentVolumeClaim", contract.BACKUP_CLAIM)["spec"]["accessModes"] == ["ReadWriteMany"]


def test_the_backup_jobs_reach_every_member_and_read_a_standby(manifests):
    for name in (contract.PITR_FULL_CRONJOB, contract.PITR_DIFF_CRONJOB):
        spec = manifests.get("CronJob", name)["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        env = {e["name"]: e["value"] for e in container(spec, contract.PITR_BACKUP_CONTAINER)["env"]}
        assert env["PGBACKREST_BACKUP_STANDBY"] == "y"
        for n in range(3):
            assert env[f"PGBACKREST_PG{n + 1}_HOST"] == f"postgres-{n}.postgres-headless.{NAMESPACE}.svc"
            assert env[f"PGBACKREST_PG{n + 1}_HOST_TYPE"] == "tls"
            assert env[f"PGBACKREST_PG{n + 1}_HOST_PORT"] == str(contract.PGBACKREST_PORT)
        assert "PGBACKREST_PG4_HOST" not in env
        assert env["PGBACKREST_PG3_PATH"] == contract.PGDATA


def test_every_member_names_its_stable_dns_name_in_the_server_certificate():
    names = contract.server_dns_names(NAMESPACE, 3)
    assert all(contract.member_dns_name(n, NAMESPACE) in names for n in range(3))


def test_network_policy_admits_the_backup_jobs_to_every_member(tmp_path):
    document = copy.deepcopy(EXAMPLE)
    document["postgres"].update({"networkPolicy": {"enabled": True}, "ha": {**document["postgres"]["ha"],
                                                                              "apiServerCidrs": ["10.0.0.1/32"]}})
    main.synthesize(parse_values(document, "test"), tmp_path)
    m = Manifests(tmp_path)
    database = m.get("NetworkPolicy", contract.NETWORK_POLICY)
    selector = database["spec"]["podSelector"]["matchLabels"]
    assert "statefulset.kubernetes.io/pod-name" not in selector  # every member, not one pod
    ingress = [rule for rule in database["spec"]["ingress"]
               if rule.get("ports") == [{"port": contract.PGBACKREST_PORT, "protocol": "TCP"}]]
    assert [peer["podSelector"]["matchLabels"] for rule in ingress for peer in rule["from"]] == [
        contract.selector_labels(contract.PITR_BACKUP_COMPONENT)]
    job = m.get("NetworkPolicy", contract.PITR_BACKUP_NETWORK_POLICY)
    to_members = [rule for rule in job["spec"]["egress"]
                  if rule.get("ports") == [{"port": contract.PGBACKREST_PORT, "protocol": "TCP"}]]
    assert [peer["podSelector"]["matchLabels"] for rule in to_members for peer in rule["to"]] == [selector]
