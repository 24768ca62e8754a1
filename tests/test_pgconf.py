"""postgresql.conf, pg_hba.conf and the pod environment, derived from the values."""

from __future__ import annotations

import pytest

from pgbundle.pgconf.conf import postgresql_settings, render_postgresql_conf
from pgbundle.pgconf.env import pod_environment
from pgbundle.pgconf.hba import render_pg_hba
from pgbundle.values.tuning import AUTOVACUUM_WORKERS, GB, MB, SHM_BASE, WORK_MEM_MIN, pg_memory_bytes
from pgbundle.values.quantity import memory_bytes
from pgbundle.values.load import ValuesError, parse_values


def postgres(values: dict | None = None):
    return parse_values({"postgres": values or {}}).postgres


def settings_of(conf: str) -> dict[str, str]:
    found = {}
    for line in conf.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition(" = ")
            found[name] = value.strip("'")
    return found


def limits(memory: str, cpu: str) -> dict:
    return {"resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": cpu, "memory": memory}}}


def test_memory_settings_follow_the_memory_limit():
    for memory, shared, cache in (("4Gi", "1GB", "3GB"), ("16Gi", "4GB", "12GB"), ("1Gi", "256MB", "768MB")):
        settings = settings_of(render_postgresql_conf(postgres(limits(memory, "2"))))
        assert (settings["shared_buffers"], settings["effective_cache_size"]) == (shared, cache), memory


@pytest.mark.parametrize("memory", ["512Mi", "1Gi", "4Gi", "16Gi", "64Gi"])
@pytest.mark.parametrize("connections", [10, 200, 1000])
def test_derived_settings_fit_the_limit(memory, connections):
    tuning = postgres({**limits(memory, "4"), "config": {"maxConnections": connections}}).tuning
    limit = memory_bytes(memory)
    used = (tuning.shared_buffers + tuning.wal_buffers + tuning.shm
            + (AUTOVACUUM_WORKERS + 1) * tuning.maintenance_work_mem + connections * tuning.work_mem)
    assert used <= limit
    assert tuning.work_mem >= WORK_MEM_MIN
    assert tuning.maintenance_work_mem <= GB


def test_workers_follow_the_cpu_limit():
    small = postgres(limits("4Gi", "500m")).tuning
    large = postgres(limits("32Gi", "8")).tuning
    assert (small.max_parallel_workers, small.max_parallel_workers_per_gather, small.max_worker_processes) == (1, 1, 8)
    assert (large.max_parallel_workers, large.max_parallel_workers_per_gather, large.max_worker_processes) == (8, 4, 12)


def test_shm_volume_is_sized_to_the_settings(synth):
    values = {"postgres": limits("8Gi", "4")}
    manifests = synth(values)
    pod = manifests.get("StatefulSet", "postgres")["spec"]["template"]["spec"]
    shm = next(v for v in pod["volumes"] if v["name"] == "shm")["emptyDir"]
    tuning = parse_values(values).postgres.tuning
    assert shm == {"medium": "Memory", "sizeLimit": str(tuning.shm)}
    assert tuning.shm >= SHM_BASE + 4 * 2 * tuning.work_mem


def test_explicit_config_overrides_the_derivation():
    settings = settings_of(render_postgresql_conf(postgres({"config": {
        "maxConnections": 50, "sharedBuffers": "512MB", "effectiveCacheSize": "2GB",
        "workMem": "16MB", "maintenanceWorkMem": "128MB"}})))
    assert settings["max_connections"] == "50"
    assert (settings["shared_buffers"], settings["effective_cache_size"]) == ("512MB", "2GB")
    assert (settings["work_mem"], settings["maintenance_work_mem"]) == ("16MB", "128MB")


def test_parameters_are_written_last_and_win():
    conf = render_postgresql_conf(postgres({"config": {"parameters": {
        "log_min_duration_statement": 250, "jit": False, "random_page_cost": 4, "application_name": "it's"}}}))
    lines = conf.splitlines()
    assert lines[-4:] == [
        "log_min_duration_statement = 250", "jit = off", "random_page_cost = 4", "application_name = 'it''s'"]
    # PostgreSQL takes the last occurrence of a setting.
    assert settings_of(conf)["random_page_cost"] == "4"


def test_settings_that_cannot_fit_are_a_values_error():
    with pytest.raises(ValuesError, match=r"postgres\.config: the memory settings do not fit resources\.limits\.memory "
                                          r"4Gi: .*sharedBuffers 3GB.*maxConnections 200"):
        parse_values({"postgres": {"config": {"sharedBuffers": "3GB"}}})
    with pytest.raises(ValuesError, match=r"maxConnections 1000 .* x workMem 16MB"):
        parse_values({"postgres": {"config": {"maxConnections": 1000, "workMem": "16MB"}}})
    with pytest.raises(ValuesError, match=r"do not fit resources\.limits\.memory 256Mi"):
        parse_values({"postgres": {**limits("256Mi", "1"), "config": {"maxConnections": 2000}}})


def test_security_and_logging_settings():
    settings = settings_of(render_postgresql_conf(postgres()))
    assert settings["ssl"] == "on"
    assert settings["ssl_min_protocol_version"] == "TLSv1.2"
    assert settings["password_encryption"] == "scram-sha-256"
    assert settings["shared_preload_libraries"] == "pg_stat_statements"
    assert (settings["logging_collector"], settings["log_destination"]) == ("on", "jsonlog")
    assert settings["log_filename"] == "postgresql.log"
    assert settings_of(render_postgresql_conf(postgres({"tls": {"enabled": False}})))["ssl"] == "off"


def test_conf_holds_no_locations():
    conf = render_postgresql_conf(postgres({"logging": {"toFile": True}}))
    assert "/" not in conf.replace("# Generated", "").split("\n", 1)[1]


def test_file_logs_rotate_daily_with_retention():
    pg = postgres({"logging": {"toFile": True, "retentionDays": 3}})
    settings = settings_of(render_postgresql_conf(pg))
    assert (settings["log_filename"], settings["log_rotation_age"]) == ("postgresql-%Y-%m-%d.log", "1d")
    env = pod_environment(pg)
    assert (env["PG_LOG_DIR"], env["PG_LOG_RETENTION_DAYS"]) == ("/var/lib/postgresql/data/log", "3")
    assert "PG_LOG_DIR" not in pod_environment(postgres())


def hba_rules(pg) -> list[list[str]]:
    return [line.split() for line in render_pg_hba(pg).splitlines() if line and not line.startswith("#")]


def test_hba_allows_tcp_only_over_tls_with_scram():
    rules = hba_rules(postgres())
    assert rules == [
        ["local", "all", "postgres", "peer"],
        ["local", "all", "all", "scram-sha-256"],
        ["hostnossl", "all", "all", "0.0.0.0/0", "reject"],
        ["hostnossl", "all", "all", "::/0", "reject"],
        ["hostssl", "all", "all", "0.0.0.0/0", "scram-sha-256"],
        ["hostssl", "all", "all", "::/0", "scram-sha-256"],
    ]


def test_hba_requires_client_certificates_when_verifying_clients():
    tcp = [r for r in hba_rules(postgres({"ca": {"verifyClients": True}})) if r[0] == "hostssl"]
    assert tcp and all(r[-2:] == ["scram-sha-256", "clientcert=verify-ca"] for r in tcp)


def test_hba_uses_the_allowed_cidrs_only():
    rules = hba_rules(postgres({"allowedCidrs": ["10.42.0.0/16"]}))
    assert [r for r in rules if r[0] == "hostssl"] == [["hostssl", "all", "all", "10.42.0.0/16", "scram-sha-256"]]
    assert "172.30" not in render_pg_hba(postgres())


def test_hba_without_tls_still_needs_scram():
    rules = hba_rules(postgres({"tls": {"enabled": False}}))
    assert [r for r in rules if r[0].startswith("host")] == [
        ["host", "all", "all", "0.0.0.0/0", "scram-sha-256"], ["host", "all", "all", "::/0", "scram-sha-256"]]


def test_bad_cidr_is_a_values_error():
    with pytest.raises(ValuesError, match=r"postgres\.allowedCidrs\[0\]: .*'10\.0\.0\.1/8' is not a network in CIDR form"):
        parse_values({"postgres": {"allowedCidrs": ["10.0.0.1/8"]}})


def test_statefulset_passes_the_pod_environment(synth):
    manifests = synth({"postgres": {"temporal": {"enabled": True}, "ca": {"verifyClients": True}}})
    pod = manifests.get("StatefulSet", "postgres")["spec"]["template"]["spec"]
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    assert env["PG_TEMPORAL"] == "on"
    assert (env["PG_TLS_DIR"], env["PG_CA_DIR"], env["PGDATA"]) == (
        "/etc/postgres/tls", "/etc/postgres/ca", "/var/lib/postgresql/data/pgdata")
    assert (env["PG_LISTEN_ADDRESSES"], env["PGPORT"]) == ("*", "5432")
    plain = pod_environment(postgres({"tls": {"enabled": False}}))
    assert "PG_TLS_DIR" not in plain and "PG_CA_DIR" not in plain


def test_scripts_config_map_ships_every_pod_script(synth):
    data = synth().get("ConfigMap", "postgres-scripts")["data"]
    assert {"start.sh", "probe.sh", "init.sql"} <= set(data)
    assert "set -euo pipefail" in data["start.sh"] and "set -euo pipefail" in data["probe.sh"]


def test_memory_units_render_whole_numbers():
    assert pg_memory_bytes("256MB") == 256 * MB
    tuning = postgres().tuning
    settings = settings_of(render_postgresql_conf(postgres()))
    assert pg_memory_bytes(settings["work_mem"]) == tuning.work_mem


@pytest.mark.parametrize(("memory", "setting", "share"), [
    ("64Ti", "shared_buffers", "a quarter of it"), ("30Ti", "effective_cache_size", "three quarters of it"),
    ("1000Ei", "shared_buffers", "a quarter of it"),
])
def test_a_memory_limit_that_derives_an_invalid_setting_is_a_values_error(memory, setting, share):
    # PostgreSQL's maxima (from its parameter lists): shared_buffers 8TB less 8kB, effective_cache_size 16TB less 8kB.
    with pytest.raises(ValuesError, match=rf"postgres\.resources\.limits\.memory: {memory} makes {setting} \({share}\) "
                                          r"\d+GB, above PostgreSQL's maximum of \d+kB; lower the limit or set config\."):
        parse_values({"postgres": limits(memory, "2")})


def test_the_largest_limits_below_the_maxima_still_work():
    settings = postgresql_settings(parse_values({"postgres": limits("20Ti", "64")}).postgres)
    assert (settings["shared_buffers"], settings["effective_cache_size"]) == ("5120GB", "15360GB")


@pytest.mark.parametrize(("key", "value", "bound"), [
    ("sharedBuffers", "0MB", "below PostgreSQL's minimum of 128kB"),
    ("effectiveCacheSize", "99999999GB", "above PostgreSQL's maximum of 17179869176kB"),
])
def test_a_chosen_memory_setting_outside_postgresqls_range_is_a_values_error(key, value, bound):
    with pytest.raises(ValuesError, match=rf"postgres\.config\.{key}: {value} is {bound}"):
        parse_values({"postgres": {"config": {key: value}}})
