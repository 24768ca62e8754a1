"""`secrets generate` for an HA cluster: the credentials Patroni needs, and exactly the keys its pods require."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest
import yaml

from pgbundle import contract
from pgbundle.pgconf import env as pgenv
from pgbundle.values.load import parse_values
from workstation import secretgen

HA = {"postgres": {"replicas": 3, "ha": {"image": {"repository": "ghcr.io/example/postgres-patroni", "tag": "v1"}}}}
HA_KEYS = {contract.REPLICATION_PASSWORD_KEY, contract.REWIND_PASSWORD_KEY, contract.PATRONI_API_PASSWORD_KEY}
PATRONI_SH = Path(__file__).resolve().parent.parent / "constructs" / "scripts" / "ha" / "patroni.sh"


def generated_keys(tmp_path: Path, values: dict) -> set[str]:
    out = tmp_path / "secrets"
    secretgen.generate(parse_values(values), out)
    document = yaml.safe_load((out / "postgres-secrets.yaml").read_text())
    assert all(len(base64.b64decode(v)) >= 32 for v in document["data"].values())
    return set(document["data"])


def test_ha_adds_the_replication_rewind_and_rest_api_passwords(tmp_path):
    assert HA_KEYS <= generated_keys(tmp_path, HA)


def test_a_single_instance_gets_none_of_them(tmp_path):
    assert not HA_KEYS & generated_keys(tmp_path, {})


def run_patroni_sh(tmp_path: Path, values, keys: list[str], member: str = "postgres-1") -> subprocess.CompletedProcess:
    """patroni.sh up to its exec, with a Secret folder holding `keys` (a stub stands in for
    Patroni and prints what it was given)."""
    secrets, run, bin_dir = tmp_path / "secrets", tmp_path / "run", tmp_path / "bin"
    for folder in (secrets, run, bin_dir):
        folder.mkdir(exist_ok=True)
    for key in keys:
        (secrets / key).write_text("secret")
    (bin_dir / "patroni").write_text('#!/bin/sh\necho "$@"\n')
    (bin_dir / "patroni").chmod(0o755)
    env = {**pgenv.pod_environment(values.postgres), "PG_SECRETS_DIR": str(secrets), "PG_RUN_DIR": str(run),
           "PG_PATRONI_CONFIG": str(tmp_path / "patroni.yaml"), "PATH": f"{bin_dir}:/usr/bin:/bin",
           "PATRONI_NAME": member, "PG_BOOTSTRAP_MEMBER": contract.BOOTSTRAP_MEMBER,
           # The scripts it sources (check-major.sh) from the checkout, an empty data folder (no
           # major to check), and no certificate watcher left running behind the stub.
           "PG_SCRIPTS_DIR": str(PATRONI_SH.parent.parent), "PGDATA": str(tmp_path / "data"), "PG_TLS_DIR": ""}
    return subprocess.run(["bash", str(PATRONI_SH)], env=env, capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("temporal, metrics", [(True, True), (False, False)])
def test_patroni_sh_requires_exactly_the_generated_keys(tmp_path, temporal, metrics):
    values = parse_values({"postgres": {**HA["postgres"], "metrics": {"enabled": metrics},
                                        "temporal": {"enabled": temporal}}})
    keys = secretgen.password_keys(values.postgres)
    assert run_patroni_sh(tmp_path, values, keys).returncode == 0
    for missing in keys:
        (tmp_path / "secrets" / missing).unlink()
        result = run_patroni_sh(tmp_path, values, [k for k in keys if k != missing])
        assert result.returncode == 1 and f"secret key {missing} is missing" in result.stderr
        (tmp_path / "secrets" / missing).write_text("secret")


def test_rotate_adds_each_ha_key_to_a_single_instances_secrets(tmp_path):
    out = tmp_path / "secrets"
    secretgen.generate(parse_values({}), out)
    before = yaml.safe_load((out / "postgres-secrets.yaml").read_text())["data"]
    for key in sorted(HA_KEYS):
        secretgen.generate(parse_values(HA), out, rotate=key)
    after = yaml.safe_load((out / "postgres-secrets.yaml").read_text())["data"]
    assert set(after) == set(before) | HA_KEYS
    assert {k: v for k, v in after.items() if k in before} == before  # nothing else changed


def test_only_the_first_member_reads_the_bootstrap_section(tmp_path):
    # Patroni merges the files of a folder: patroni.yaml and bootstrap.yaml for postgres-0 only.
    values = parse_values(HA)
    keys = secretgen.password_keys(values.postgres)
    first = run_patroni_sh(tmp_path, values, keys, member=contract.BOOTSTRAP_MEMBER)
    other = run_patroni_sh(tmp_path, values, keys, member="postgres-1")
    assert (first.returncode, first.stdout) == (0, f"{tmp_path}\n")
    assert (other.returncode, other.stdout) == (0, f"{tmp_path / 'patroni.yaml'}\n")
