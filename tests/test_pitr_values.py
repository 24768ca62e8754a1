"""postgres.pitr: defaults, one clean error per bad input, and what it renders
(pgbackrest.conf without secrets, postgresql.conf's archiving, the pod's mounts)."""

from __future__ import annotations

import pytest
import yaml

from chart.compose import config_files
from pgbundle import contract
from pgbundle.pgconf.conf import postgresql_settings
from pgbundle.pgconf.env import pod_environment
from pgbundle.pgconf.pgbackrest import render_pgbackrest_conf
from pgbundle.values.load import ValuesError, parse_values
from workstation import secretgen

IMAGE = {"repository": "ghcr.io/example/postgres-patroni", "tag": "17.6-bookworm-1"}
S3 = {"enabled": True, "bucket": "pg-backups", "endpoint": "s3.example.com:9000", "uriStyle": "path",
      "caSecret": "s3-ca"}


def pitr(**settings) -> dict:
    return {"postgres": {"ha": {"image": IMAGE}, "pitr": {"enabled": True, **settings}}}


def error(data: dict) -> str:
    with pytest.raises(ValuesError) as caught:
        parse_values(data)
    lines = str(caught.value).splitlines()[1:]
    assert len(lines) == 1, lines  # one clean error
    return lines[0].removeprefix("  - ")


def test_off_by_default_and_documented_defaults():
    p = parse_values({}).postgres.pitr
    assert not p.enabled and not p.cipher
    assert (p.repos.volume.enabled, p.repos.volume.claim, p.repos.s3.enabled) == (True, "backups", False)
    assert (p.retention.full, p.retention.differential, p.archive_timeout_seconds, p.archive_async) == (
        2, None, 60, False)
    assert (p.schedules.full, p.schedules.differential, p.schedules.differential_type) == (
        "15 1 * * 0", "15 1 * * 1-6", "diff")
    assert (p.compression.type, p.compression.effective_level, p.encryption.enabled) == ("zst", 3, True)
    assert "pgbackrest.conf" not in config_files(parse_values({}).postgres)
    assert "archive_mode" not in postgresql_settings(parse_values({}).postgres)


@pytest.mark.parametrize("settings, expected", [
    ({"repos": {"s3": {**S3, "bucket": "Pg_Backups"}}}, "repos.s3.bucket: 'Pg_Backups' is not a valid S3 bucket name"),
    ({"repos": {"s3": {**S3, "bucket": "ab"}}}, "repos.s3.bucket: 'ab' is not a valid S3 bucket name"),
    ({"repos": {"s3": {**S3, "bucket": "pg..backups"}}}, "no two dots in a row"),
    ({"repos": {"s3": {**S3, "bucket": "10.0.0.1"}}}, "not an IP address"),
    ({"repos": {"s3": {**S3, "endpoint": "https://s3.example.com"}}}, "no scheme or path"),
    ({"repos": {"s3": {**S3, "endpoint": "127.0.0.1"}}}, "use a host name, not an IP address"),
    ({"repos": {"s3": {**S3, "endpoint": "s3.example.com:99999"}}}, "the port must be 1 to 65535"),
    ({"repos": {"s3": {**S3, "endpoint": "bad_host"}}}, "not a DNS host name"),
    ({"repos": {"s3": {**S3, "region": "EU West"}}}, "repos.s3.region: 'EU West' is not a region name"),
    ({"repos": {"s3": {**S3, "path": "pgbackrest"}}}, "repos.s3.path: 'pgbackrest' is not a repository path"),
    ({"repos": {"s3": {**S3, "path": "/a/../b"}}}, "no '..'"),
    ({"repos": {"s3": {**S3, "uriStyle": "virtual"}}}, "repos.s3.uriStyle"),
    ({"repos": {"s3": {"enabled": True, "endpoint": "s3.example.com"}}}, "repos.s3.bucket: required with s3.enabled"),
    ({"repos": {"s3": {**S3, "existingSecret": "Bad_Name"}}}, "repos.s3.existingSecret"),
    ({"repos": {"volume": {"enabled": False}}}, "pitr.repos: enable repos.volume or repos.s3"),
    ({"repos": {"volume": {"claim": "shared"}}}, "repos.volume.claim"),
    ({"retention": {"full": 0}}, "retention.full: 0 is not allowed: keep 1 to 100 full backups (0 would expire every backup"),
    ({"retention": {"differential": 0}}, "retention.differential: 0 is not allowed"),
    ({"schedules": {"full": "61 1 * * *"}}, "schedules.full"),
    ({"schedules": {"differential": "0 0 31 2 *"}}, "schedules.differential"),
    ({"schedules": {"differentialType": "delta"}}, "schedules.differentialType"),
    ({"schedules": {"timeZone": "Mars/Olympus"}}, "schedules.timeZone: 'Mars/Olympus' is not a time zone"),
    ({"compression": {"type": "zst", "level": 20}}, "compression.level: 20 is out of range for zst: use 1 to 19"),
    ({"compression": {"type": "none", "level": 1}}, "compression.level: type none takes no level"),
    ({"archiveTimeoutSeconds": 5}, "archiveTimeoutSeconds: 5 is not allowed: use 30 to 3600"),
    ({"retension": {"full": 2}}, "pitr.retension: unknown key"),
    ({"drill": {"schedule": "0 0 30 2 *"}}, "pitr.drill.schedule: '0 0 30 2 *' never runs"),
    ({"drill": {"size": "lots"}}, "pitr.drill.size"),
    ({"drill": {"storageClass": "Fast_SSD"}}, "pitr.drill.storageClass"),
    ({"drill": {"everyday": True}}, "pitr.drill.everyday: unknown key"),
])
def test_bad_input_is_one_clean_error(settings, expected):
    assert expected in error(pitr(**settings))


def test_needs_the_project_image_and_says_how_to_build_it():
    line = error({"postgres": {"pitr": {"enabled": True}}})
    assert line.startswith("postgres.ha.image: required with pitr.enabled: true")
    assert "image/Dockerfile" in line


def test_refuses_what_it_cannot_do_or_would_be_overridden():
    assert "persistence.backups.enabled" in error(
        {"postgres": {**pitr()["postgres"], "persistence": {"backups": {"enabled": False}}, "backup": {"enabled": False}}})
    assert "config.parameters: archive_command is set by pitr.enabled" in error(
        {"postgres": {**pitr()["postgres"], "config": {"parameters": {"archive_command": "true"}}}})
    # With Patroni every member archives to and restores from the repository.
    line = error({"postgres": {**pitr()["postgres"], "replicas": 3}})
    assert line.startswith("postgres: pitr.repos.volume with replicas: 3 needs a volume every member mounts")
    assert "persistence.backups.accessMode: ReadWriteMany" in line
    assert "pitr.repos.volume with replicas: 2" in error(
        {"postgres": {**pitr(repos={"volume": {"claim": "own"}})["postgres"], "replicas": 2,
                      "persistence": {"backups": {"accessMode": "ReadWriteMany"}}}})
    assert parse_values({"postgres": {**pitr(repos={"volume": {"enabled": False}, "s3": S3})["postgres"],
                                      "replicas": 3}}).postgres.pitr.enabled


def test_pgbackrest_conf_has_the_repositories_and_no_secret_or_path():
    pg = parse_values(pitr(repos={"s3": S3}, retention={"full": 3, "differential": 4},
                           compression={"type": "lz4", "level": 2})).postgres
    conf = render_pgbackrest_conf(pg)
    lines = {line.partition("=")[0]: line.partition("=")[2] for line in conf.splitlines() if "=" in line}
    assert lines["repo1-type"] == "posix" and lines["repo2-type"] == "s3"
    assert (lines["repo2-s3-bucket"], lines["repo2-s3-endpoint"], lines["repo2-storage-port"]) == (
        "pg-backups", "s3.example.com", "9000")
    assert (lines["repo2-s3-uri-style"], lines["repo2-path"], lines["repo2-s3-region"]) == ("path", "/pgbackrest", "us-east-1")
    assert lines["repo1-retention-full"] == lines["repo2-retention-full"] == "3"
    assert lines["repo1-retention-diff"] == "4"
    assert lines["repo1-cipher-type"] == lines["repo2-cipher-type"] == "aes-256-cbc"
    # Block incrementals on both repositories (they need bundling).
    assert lines["repo1-bundle"] == lines["repo1-block"] == lines["repo2-bundle"] == lines["repo2-block"] == "y"
    assert (lines["compress-type"], lines["compress-level"]) == ("lz4", "2")
    assert not [key for key in lines if "pass" in key or "key" in key or key.endswith("-path") and key != "repo2-path"]
    settings = postgresql_settings(pg)
    assert (settings["archive_mode"], settings["archive_command"], settings["archive_timeout"]) == (
        True, "pgbackrest archive-push %p", 60)
    env = pod_environment(pg)
    assert env["PGBACKREST_REPO1_PATH"] == "/var/lib/postgresql/backups/pgbackrest"
    assert env["PGBACKREST_REPO2_STORAGE_CA_FILE"] == "/etc/postgres/pitr-s3-ca/ca.crt"
    assert env["PG_REQUIRED_KEYS"].split()[-1] == "pgbackrest_cipher_pass"


def test_async_archiving_spools_on_the_data_volume_beside_pgdata():
    pg = parse_values(pitr(archiveAsync=True)).postgres
    conf = render_pgbackrest_conf(pg)
    assert "archive-async=y" in conf.split("[global:archive-push]")[0]
    assert conf.endswith("\n[global:archive-push]\nprocess-max=2\n")
    assert "queue-max" not in conf  # past it pgBackRest would drop WAL
    spool = pod_environment(pg)["PGBACKREST_SPOOL_PATH"]
    assert spool.startswith(contract.DATA_MOUNT + "/") and not spool.startswith(contract.PGDATA + "/")
    sync = parse_values(pitr()).postgres
    assert "archive-async" not in render_pgbackrest_conf(sync)
    assert "PGBACKREST_SPOOL_PATH" not in pod_environment(sync)
    assert error(pitr(archiveAsync="sometimes")).startswith("postgres.pitr.archiveAsync: Input should be a valid boolean")


def test_s3_only_without_encryption_numbers_it_repo1():
    pg = parse_values(pitr(repos={"volume": {"enabled": False}, "s3": S3}, encryption={"enabled": False})).postgres
    conf = render_pgbackrest_conf(pg)
    assert "repo1-type=s3" in conf and "repo2" not in conf and "cipher" not in conf
    assert "pgbackrest_cipher_pass" not in pod_environment(pg)["PG_REQUIRED_KEYS"]
    assert "pgbackrest_cipher_pass" not in secretgen.password_keys(pg)


def test_network_policy_lets_the_database_reach_s3_only_where_told(synth):
    assert "pitr.repos.s3.egressCidrs: required with networkPolicy.enabled" in error(
        {"postgres": {**pitr(repos={"s3": S3})["postgres"], "networkPolicy": {"enabled": True}}})
    values = pitr(repos={"s3": {**S3, "egressCidrs": ["10.20.0.0/16"]}})
    values["postgres"]["networkPolicy"] = {"enabled": True}
    egress = synth(values).get("NetworkPolicy", "postgres")["spec"]["egress"]
    assert {"to": [{"ipBlock": {"cidr": "10.20.0.0/16"}}], "ports": [{"port": 9000, "protocol": "TCP"}]} in egress
    assert "repos.s3.egressCidrs[0]: 'x' is not a network" in error(pitr(repos={"s3": {**S3, "egressCidrs": ["x"]}}))


def test_the_pod_mounts_its_repository_and_s3_secrets(synth):
    m = synth(pitr(repos={"volume": {"claim": "own", "size": "5Gi"}, "s3": S3}))
    pod = m.get("StatefulSet", "postgres")["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == "ghcr.io/example/postgres-patroni:17.6-bookworm-1"
    mounts = {v["mountPath"]: v["name"] for v in pod["containers"][0]["volumeMounts"]}
    assert mounts["/var/lib/postgresql/pitr"] == "pitr-repo"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["pitr-s3"]["secret"]["secretName"] == "postgres-pitr-s3"
    assert volumes["pitr-s3-ca"]["secret"]["secretName"] == "s3-ca"
    assert m.get("PersistentVolumeClaim", "postgres-pitr")["spec"]["resources"]["requests"]["storage"] == "5Gi"
    scripts = m.get("ConfigMap", "postgres-scripts")["data"]
    assert {"pitr.sh", "pitr-env.sh"} <= set(scripts)
    assert "pitr.sh" not in synth().get("ConfigMap", "postgres-scripts")["data"]


def test_secrets_generate_writes_the_passphrase_and_never_rotates_it(tmp_path):
    values = parse_values(pitr(repos={"s3": S3}))
    _, notes = secretgen.generate(values, tmp_path)
    assert any("create the Secret postgres-pitr-s3 with the keys access-key-id and secret-access-key" in n
               for n in notes)
    assert any(n.startswith("keep a copy of pgbackrest_cipher_pass outside the cluster") for n in notes)
    (passwords,) = [p for p in tmp_path.glob("*.yaml") if "pgbackrest_cipher_pass" in p.read_text()]
    assert yaml.safe_load(passwords.read_text())["kind"] == "Secret"
    with pytest.raises(secretgen.SecretsError, match="not something these values use"):
        secretgen.generate(values, tmp_path, rotate="pgbackrest_cipher_pass")


def test_failing_and_stale_wal_archiving_are_alerted_only_with_pitr(synth):
    def rules(values: dict) -> dict[str, dict]:
        values = {"postgres": {**values.get("postgres", {}), "metrics": {"prometheusRule": {"enabled": True}}}}
        rule = synth(values).get("PrometheusRule", "postgres")
        return {r["alert"]: r for group in rule["spec"]["groups"] for r in group["rules"]}

    archiving = {"PostgresWalArchivingFailing", "PostgresWalArchivingStale"}
    assert archiving <= rules(pitr()).keys()
    assert not archiving & rules({}).keys()
    # Stale: archive_timeout plus the grace, both in the expression and as its `for`.
    stale = rules(pitr(archiveTimeoutSeconds=300))["PostgresWalArchivingStale"]
    assert "pg_stat_archiver_last_archive_age{" in stale["expr"] and "> 420)" in stale["expr"]
    assert "increase(pg_stat_database_tup_inserted{" in stale["expr"] and "[420s]" in stale["expr"]
    assert stale["for"] == "420s"
