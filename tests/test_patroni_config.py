"""Patroni's configuration as rendered from the values (pgbundle/patroni/config.py),
checked by its own rules and by Patroni's validator (`patroni --validate-config`)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from chart.compose import patroni_spec
from pgbundle import contract
from pgbundle.patroni import config as patroni_config
from pgbundle.pgconf import conf
from pgbundle.values.load import parse_values
from workstation import patroni_venv
from workstation.pod_state import postgres_bindir


def rendered(values: dict | None = None, **ha) -> dict:
    values = values or {}
    return patroni_config.render(patroni_spec(parse_values({**values, "postgres": {**values.get("postgres", {}), "ha": ha}})))


def validate(config: dict, tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    # The image's PostgreSQL binaries are not on this machine; this one's are.
    config = {**config, "postgresql": {**config["postgresql"], "bin_dir": postgres_bindir()}}
    path = tmp_path / "patroni.yaml"
    path.write_text(yaml.safe_dump(config))
    return subprocess.run([str(patroni_venv.PATRONI), "--validate-config", str(path)],
                          env={"PATH": "/usr/bin:/bin", **env}, capture_output=True, text=True, timeout=60)


# What the pod's environment adds (pod name, addresses by DNS name, passwords from the Secret files).
POD_ENV = {
    "PATRONI_NAME": "postgres-0",
    "PATRONI_KUBERNETES_POD_IP": "10.1.2.3",
    "PATRONI_RESTAPI_CONNECT_ADDRESS": "postgres-0.postgres-headless.database.svc:8008",
    "PATRONI_POSTGRESQL_CONNECT_ADDRESS": "postgres-0.postgres-headless.database.svc:5432",
    **{env: "from-the-secret" for env in patroni_config.PASSWORD_ENV.values()},
}


def test_patroni_accepts_the_kubernetes_configuration_with_the_pods_environment(tmp_path):
    result = validate(rendered(), tmp_path, POD_ENV)
    assert result.returncode == 0, result.stdout + result.stderr


def test_patroni_validator_would_catch_a_missing_password(tmp_path):
    env = {k: v for k, v in POD_ENV.items() if k != patroni_config.PASSWORD_ENV["restapi"]}
    result = validate(rendered(), tmp_path, env)
    assert result.returncode != 0
    assert "restapi.authentication.password" in result.stdout + result.stderr


def keys(node) -> set[str]:
    if isinstance(node, dict):
        return set(node).union(*(keys(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(keys(v) for v in node))
    return set()


def test_no_password_is_in_the_configuration():
    config = rendered()
    assert not {key for key in keys(config) if "password" in key.lower() and key != "password_encryption"}
    for credentials in config["postgresql"]["authentication"].values():
        assert set(credentials) <= {"username", "sslmode", "sslrootcert"}
    assert config["restapi"]["authentication"] == {"username": "patroni"}


def test_cluster_wide_settings_are_in_the_dcs_and_the_rest_local():
    config = rendered()
    derived = conf.postgresql_settings(parse_values({}).postgres)
    dcs = config["bootstrap"]["dcs"]["postgresql"]["parameters"]
    local = config["postgresql"]["parameters"]
    assert dcs["max_connections"] == derived["max_connections"]
    assert dcs["wal_level"] == "replica"
    assert set(dcs) <= patroni_config.CLUSTER_WIDE_PARAMETERS
    assert not set(local) & patroni_config.CLUSTER_WIDE_PARAMETERS
    assert local["shared_buffers"] == derived["shared_buffers"]
    assert local["ssl"] == "on" and local["ssl_min_protocol_version"] == "TLSv1.2"
    assert local["ssl_cert_file"] == f"{contract.TLS_DIR}/{contract.TLS_CERT_FILE}"
    assert local["unix_socket_directories"] == contract.RUN_DIR
    assert local["shared_preload_libraries"] == "pg_stat_statements"


def test_user_parameters_win_over_derived_ones():
    config = rendered({"postgres": {"config": {"parameters": {"random_page_cost": 2.5}}}})
    assert config["postgresql"]["parameters"]["random_page_cost"] == 2.5


def test_settings_patroni_owns_are_refused():
    spec = patroni_spec(parse_values({}))
    bad = patroni_config.PatroniSpec(**{**spec.__dict__, "parameters": {**spec.parameters, "port": 6543}})
    with pytest.raises(ValueError, match="port are set by Patroni itself"):
        patroni_config.render(bad)


def test_replication_is_tls_and_scram_only_and_members_verify_each_other():
    config = rendered()
    hba = config["postgresql"]["pg_hba"]
    assert "hostnossl  replication all      0.0.0.0/0 reject" in hba
    assert "hostnossl  replication all      ::/0 reject" in hba
    assert [line for line in hba if line.startswith("hostssl    replication")] == [
        "hostssl    replication replicator 0.0.0.0/0 scram-sha-256", "hostssl    replication replicator ::/0 scram-sha-256"]
    for user in ("replication", "rewind"):
        assert config["postgresql"]["authentication"][user]["sslmode"] == "verify-full"
    assert config["postgresql"]["authentication"]["rewind"]["username"] == "rewinder"
    assert config["ctl"]["cacert"] == f"{contract.CA_DIR}/{contract.CA_CERT_FILE}"
    assert config["restapi"]["certfile"] == f"{contract.TLS_DIR}/{contract.TLS_CERT_FILE}"


def test_bootstrap_checksums_rewind_and_hooks():
    config = rendered()
    bootstrap = config["bootstrap"]
    assert "data-checksums" in bootstrap["initdb"]
    assert {"auth-host": "scram-sha-256"} in bootstrap["initdb"]
    assert bootstrap["dcs"]["postgresql"]["use_pg_rewind"] is True
    hook = f"{contract.SCRIPTS_DIR}/patroni-hook.sh"
    assert bootstrap["post_bootstrap"] == hook
    assert config["postgresql"]["callbacks"] == {"on_start": hook, "on_restart": hook, "on_role_change": hook}
    assert (Path(__file__).parent.parent / "constructs" / "scripts" / "ha" / "patroni-hook.sh").exists()


def test_dcs_settings_are_rendered():
    dcs = rendered(ttl=30, loopWait=10, retryTimeout=10, maximumLagOnFailover=0, primaryStartTimeout=300,
                   synchronousMode=False, synchronousModeStrict=False)["bootstrap"]["dcs"]
    assert (dcs["ttl"], dcs["loop_wait"], dcs["retry_timeout"]) == (30, 10, 10)
    assert (dcs["maximum_lag_on_failover"], dcs["primary_start_timeout"]) == (0, 300)
    assert dcs["synchronous_mode"] is False
    defaults = rendered()["bootstrap"]["dcs"]
    assert (defaults["synchronous_mode"], defaults["synchronous_mode_strict"]) == (True, False)


def test_defaults_are_the_values_defaults():
    dcs = rendered()["bootstrap"]["dcs"]
    assert (dcs["ttl"], dcs["loop_wait"], dcs["retry_timeout"], dcs["primary_start_timeout"]) == (20, 4, 5, 0)


def test_kubernetes_dcs_uses_configmaps():
    kubernetes = rendered()["kubernetes"]
    assert kubernetes["use_endpoints"] is False
    assert kubernetes["namespace"] == parse_values({}).global_.namespace
    assert kubernetes["role_label"] == "role"


def test_etcd_swap_changes_only_the_dcs_section():
    config = rendered()
    local = patroni_config.with_etcd3(config, ["127.0.0.1:2379"])
    assert local["etcd3"] == {"hosts": ["127.0.0.1:2379"], "protocol": "http"}
    assert "kubernetes" not in local
    assert {k: v for k, v in local.items() if k != "etcd3"} == {k: v for k, v in config.items() if k != "kubernetes"}
    assert "etcd3" not in config  # the input is left alone


def test_member_fills_in_name_and_addresses_only():
    config = rendered()
    member = patroni_config.Member(name="postgres-1", host="127.0.0.1", listen="127.0.0.1", port=6001, api_port=7001)
    mine = patroni_config.with_member(config, member)
    assert mine["name"] == "postgres-1"
    assert mine["postgresql"]["connect_address"] == "127.0.0.1:6001"
    assert mine["restapi"]["connect_address"] == "127.0.0.1:7001"
    assert mine["bootstrap"] == config["bootstrap"]
    assert mine["postgresql"]["parameters"] == config["postgresql"]["parameters"]


def test_venv_lives_outside_the_checkout_where_the_postgres_user_can_run_it():
    top = Path(__file__).resolve().parent.parent
    assert top not in patroni_venv.VENV.parents
    assert "4.1.5" in patroni_venv.VENV.name  # named after the pin
    assert patroni_venv.installed(), "make test installs it"
    for folder in [patroni_venv.VENV, *patroni_venv.VENV.parents]:
        assert folder.stat().st_mode & 0o005 == 0o005, folder  # readable and searchable by others
    python = os.path.realpath(patroni_venv.VENV / "bin" / "python")
    assert not python.startswith("/root"), python


def test_patronis_own_configmaps_do_not_collide_with_ours():
    scope = rendered()["scope"]
    patroni_objects = {f"{scope}-{suffix}" for suffix in ("leader", "config", "sync", "failover")}
    ours = {value for name, value in vars(contract).items() if name.isupper() and isinstance(value, str)}
    assert not patroni_objects & ours
