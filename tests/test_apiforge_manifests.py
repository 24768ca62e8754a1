"""What api-forge's own Kubernetes manifests (piewared/api-forge, infra/helm/api-forge)
reference in the database's namespace exists in what this project synthesizes or
`secrets generate` writes, so they run unchanged (docs/api-forge.md)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml

from pgbundle import contract
from pgbundle.values.load import parse_values
from workstation import secretgen

TOP = Path(__file__).resolve().parent.parent
TEMPORAL_ON = {"postgres": {"temporal": {"enabled": True}}}


def generated(tmp_path: Path, name: str, values: dict = TEMPORAL_ON, **options) -> dict[str, bytes]:
    out = tmp_path / "secrets"
    secretgen.generate(parse_values(values), out, **options)
    document = yaml.safe_load((out / f"{name}.yaml").read_text())
    return {key: base64.b64decode(value) for key, value in document["data"].items()}


# Secret keys the Deployments app, worker and temporal and the Job temporal-schema-setup mount.
@pytest.mark.parametrize(("secret", "key"), [
    ("postgres-secrets", "postgres_app_user_pw"),   # app, worker
    ("postgres-secrets", "postgres_temporal_pw"),   # temporal, temporal-schema-setup
    ("postgres-secrets", "postgres_password"),      # postgres-verifier (disabled there)
    ("postgres-ca", "ca-bundle.crt"),               # temporal (SQL_CA), temporal-schema-setup
    ("postgres-ca", "root-ca.crt"),                 # temporal, temporal-schema-setup (TLS_CA_FILE)
    ("postgres-tls", "server.crt"),                 # postgres-verifier (disabled there)
    ("postgres-tls", "server.key"),
])
def test_secrets_generate_writes_every_key_api_forge_mounts(tmp_path, secret, key):
    assert key in generated(tmp_path, secret)


@pytest.mark.parametrize("alias", contract.CA_CERT_ALIASES)
def test_every_ca_key_holds_the_trust_bundle_through_a_rotation(tmp_path, alias):
    out = tmp_path / "secrets"
    values = parse_values(TEMPORAL_ON)
    for step in ({}, {"rotate": "ca"}, {"rotate": "tls"}, {"prune_ca": True}):
        secretgen.generate(values, out, **step)
        document = yaml.safe_load((out / "postgres-ca.yaml").read_text())
        ca = document["data"]
        assert ca[alias] == ca[contract.CA_CERT_FILE], step
    assert ca[contract.CA_CERT_FILE] == base64.b64encode((out / "ca.crt").read_bytes()).decode()


def test_the_service_api_forge_connects_to(synth):
    # POSTGRES_SEEDS, EP, SQL_HOST_NAME: postgres; DB_PORT 5432; PRODUCTION_DATABASE_URL postgresql://postgres:5432
    service = synth(TEMPORAL_ON).get("Service", "postgres")
    assert [p["port"] for p in service["spec"]["ports"]] == [5432]


@pytest.mark.parametrize(("variable", "name"), [
    ("PG_DATABASE", "appdb"),                  # APP_DB
    ("PG_OWNER_USER", "appowner"),             # APP_DB_OWNER
    ("PG_APP_USER", "appuser"),                # APP_DB_USER
    ("PG_READ_ONLY_USER", "backupuser"),       # APP_DB_RO_USER
    ("PG_TEMPORAL_USER", "temporaluser"),      # TEMPORAL_DB_USER
    ("PG_TEMPORAL_OWNER", "temporalowner"),    # TEMPORAL_DB_OWNER
])
def test_the_pod_creates_the_roles_and_database_api_forge_names(synth, variable, name):
    pod = synth(TEMPORAL_ON).get("StatefulSet", "postgres")["spec"]["template"]["spec"]
    database = next(c for c in pod["containers"] if c["name"] == contract.CONTAINER)
    assert {e["name"]: e.get("value") for e in database["env"]}[variable] == name


def test_temporal_databases_are_the_ones_api_forge_names():
    assert contract.TEMPORAL_DATABASES == ("temporal", "temporal_visibility")  # TEMPORAL_DB, TEMPORAL_VIS_DB


def admits(rule: dict, labels: dict[str, str]) -> bool:
    return any(set(peer["podSelector"]["matchLabels"].items()) <= set(labels.items())
               for peer in rule["from"] if "podSelector" in peer and "namespaceSelector" not in peer)


# The pod labels of api-forge's workloads that connect to the database.
@pytest.mark.parametrize("labels", [
    {"app.kubernetes.io/name": "app", "app.kubernetes.io/component": "application"},
    {"app.kubernetes.io/name": "worker", "app.kubernetes.io/component": "temporal-worker"},
    {"app.kubernetes.io/name": "temporal", "app.kubernetes.io/component": "workflow-engine"},
    {"app.kubernetes.io/name": "temporal-schema-setup", "app.kubernetes.io/component": "workflow-engine-setup"},
], ids=["app", "worker", "temporal", "temporal-schema-setup"])
def test_the_production_example_admits_every_api_forge_workload(synth_file, labels):
    policy = synth_file(TOP / "examples" / "production.yaml").get("NetworkPolicy", contract.NETWORK_POLICY)
    assert any(admits(rule, labels) and {"port": contract.PORT, "protocol": "TCP"} in rule["ports"]
               for rule in policy["spec"]["ingress"])
