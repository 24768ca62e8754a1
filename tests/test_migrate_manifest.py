"""The schema-migration Job `main.py migrate-manifest` prints: environment,
Secret references, volumes, the Argo CD hook, schema validity, checkov, and the
construct on its own. What it does against a database is in
test_migrations_postgres.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import cdk8s
import kubernetes_validate
import pytest
import yaml
from sqlalchemy.engine import make_url

from chart.policy import selector_matches
from conftest import construct_chart, container
from constructs.migrate import MigrationJob, MigrationJobProps
from pgbundle.k8s.objects import SecretFiles
from pgbundle.values.load import parse_values
from workstation.migrate_manifest import MigrateError, migrate_manifest
from test_schema import KUBERNETES_VERSIONS
from variants import run_checkov

TOP = Path(__file__).resolve().parent.parent
IMAGE = "ghcr.io/example/api:1.2.3"
COMMAND = ["alembic", "upgrade", "head"]
VERIFY_CLIENTS = {"postgres": {"ca": {"verifyClients": True}}}


def job(values: dict | None = None, **options) -> dict:
    options = {"image": IMAGE, "command": COMMAND, **options}
    [doc] = [d for d in yaml.safe_load_all(migrate_manifest(parse_values(values or {}), **options)) if d]
    return doc


def pod_spec(doc: dict) -> dict:
    return doc["spec"]["template"]["spec"]


def env(doc: dict) -> dict[str, dict | str]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(pod_spec(doc), "migrate")["env"]}


def mounts(doc: dict) -> dict[str, dict]:
    """mountPath -> the volume mounted there."""
    volumes = {v["name"]: v for v in pod_spec(doc)["volumes"]}
    return {m["mountPath"]: volumes[m["name"]] for m in container(pod_spec(doc), "migrate")["volumeMounts"]}


def test_runs_the_image_and_command_as_the_migrator_over_verified_tls():
    doc = job()
    assert (doc["kind"], doc["metadata"]["name"], doc["metadata"]["namespace"]) == ("Job", "postgres-migrate",
                                                                                     "api-forge-prod")
    c = container(pod_spec(doc), "migrate")
    assert (c["image"], c["command"]) == (IMAGE, COMMAND)
    e = env(doc)
    assert {k: e[k] for k in ("PGHOST", "PGPORT", "PGDATABASE", "PGUSER", "PGSSLMODE", "PGSSLROOTCERT")} == {
        "PGHOST": "postgres", "PGPORT": "5432", "PGDATABASE": "appdb", "PGUSER": "appmigrator",
        "PGSSLMODE": "verify-full", "PGSSLROOTCERT": "/etc/postgres/ca/ca.crt"}
    assert e["PGOPTIONS"] == "-c role=appowner -c search_path=app,public"
    assert e["PGPASSWORD"] == {"secretKeyRef": {"name": "postgres-secrets", "key": "postgres_app_migrator_pw"}}


def test_database_url_names_everything_but_the_password():
    url = urlsplit(env(job())["DATABASE_URL"])
    assert (url.scheme, url.username, url.password, url.hostname, url.port, url.path) == (
        "postgresql", "appmigrator", None, "postgres", 5432, "/appdb")
    assert parse_qs(url.query) == {"sslmode": ["verify-full"], "sslrootcert": ["/etc/postgres/ca/ca.crt"]}


@pytest.mark.parametrize(("driver", "scheme", "sqlalchemy_driver"), [
    ("libpq", "postgresql", "psycopg2"),  # SQLAlchemy 2.0's default for postgresql:// (2.1's: psycopg)
    ("psycopg2", "postgresql+psycopg2", "psycopg2"),
    ("psycopg", "postgresql+psycopg", "psycopg"),
])
def test_database_url_names_the_driver_asked_for(driver, scheme, sqlalchemy_driver):
    url = env(job(driver=driver))["DATABASE_URL"]
    assert urlsplit(url).scheme == scheme
    # the query is libpq's whatever the driver: both drivers hand it to libpq
    assert parse_qs(urlsplit(url).query) == {"sslmode": ["verify-full"], "sslrootcert": ["/etc/postgres/ca/ca.crt"]}
    assert make_url(url).get_dialect().driver == sqlalchemy_driver


def test_cli_refuses_a_driver_it_does_not_know():
    result = subprocess.run([sys.executable, "main.py", "migrate-manifest", "--image", IMAGE, "--driver", "asyncpg",
                             "--", "alembic", "upgrade", "head"], capture_output=True, text=True, cwd=TOP)
    assert result.returncode == 2 and result.stdout == ""
    # Python 3.12+ lists the choices unquoted.
    assert "argument --driver: invalid choice: 'asyncpg' (choose from " in result.stderr
    assert all(choice in result.stderr for choice in ("libpq", "psycopg2", "psycopg"))


def test_only_the_ca_is_mounted_where_libpq_looks_for_it():
    found = mounts(job())
    assert found["/etc/postgres/ca"]["secret"] == {
        "secretName": "postgres-ca", "defaultMode": 0o440, "items": [{"key": "ca.crt", "path": "ca.crt"}]}
    assert set(found) == {"/etc/postgres/ca", "/tmp"}


def test_with_cert_manager_the_ca_comes_from_the_tls_secret():
    doc = job({"postgres": {"tls": {"certManager": {"enabled": True, "issuerRef": {"name": "ca"}}}}})
    assert mounts(doc)["/etc/postgres/ca"]["secret"]["secretName"] == "postgres-tls"


def test_tls_off_does_not_ask_for_tls():
    doc = job({"postgres": {"tls": {"enabled": False}}})
    assert env(doc)["PGSSLMODE"] == "disable"
    assert "PGSSLROOTCERT" not in env(doc) and "/etc/postgres/ca" not in mounts(doc)
    assert parse_qs(urlsplit(env(doc)["DATABASE_URL"]).query) == {"sslmode": ["disable"]}


def test_verified_clients_need_a_client_certificate_secret():
    with pytest.raises(MigrateError, match="--client-secret: missing; postgres.ca.verifyClients is true"):
        job(VERIFY_CLIENTS)
    doc = job(VERIFY_CLIENTS, client_secret="api-migrate-tls")
    client = mounts(doc)["/etc/postgres/client-tls"]["secret"]
    assert client["secretName"] == "api-migrate-tls" and client["defaultMode"] == 0o440
    e = env(doc)
    assert (e["PGSSLCERT"], e["PGSSLKEY"]) == ("/etc/postgres/client-tls/tls.crt", "/etc/postgres/client-tls/tls.key")
    assert parse_qs(urlsplit(e["DATABASE_URL"]).query)["sslkey"] == ["/etc/postgres/client-tls/tls.key"]


def test_argo_presync_hook_only_when_asked():
    assert not any(k.startswith("argocd.argoproj.io/") for k in job()["metadata"].get("annotations", {}))
    annotations = job(argo_presync=True)["metadata"]["annotations"]
    assert annotations["argocd.argoproj.io/hook"] == "PreSync"
    assert annotations["argocd.argoproj.io/hook-delete-policy"] == "BeforeHookCreation"


def test_restricted_pod_as_a_high_uid_that_reads_its_files():
    spec = pod_spec(job(uid=20000))
    assert spec["securityContext"]["runAsUser"] == spec["securityContext"]["fsGroup"] == 20000
    assert spec["automountServiceAccountToken"] is False
    assert container(spec, "migrate")["securityContext"]["readOnlyRootFilesystem"] is True


def test_pods_pass_the_database_network_policy(synth):
    policy = synth({"postgres": {"networkPolicy": {"enabled": True}}}).get("NetworkPolicy", "postgres")
    labels = job()["spec"]["template"]["metadata"]["labels"]
    admitted = [peer["podSelector"] for rule in policy["spec"]["ingress"] for peer in rule["from"]
                if "podSelector" in peer and 5432 in [p["port"] for p in rule["ports"]]]
    assert any(selector_matches(selector, labels) for selector in admitted)


VARIANTS = {
    "defaults": ({}, {}),
    "presync": ({}, {"argo_presync": True}),
    "digest": ({}, {"image": "ghcr.io/example/api@sha256:" + "0" * 64}),
    "verify-clients": (VERIFY_CLIENTS, {"client_secret": "api-migrate-tls"}),
    "tls-off": ({"postgres": {"tls": {"enabled": False}}}, {}),
}


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("version", ["1.27.0", KUBERNETES_VERSIONS[-1]])
def test_schema_valid(variant, version):
    values, options = VARIANTS[variant]
    kubernetes_validate.validate(job(values, **options), version, strict=True)


def test_checkov_finds_nothing_to_fail(tmp_path):
    for variant, (values, options) in VARIANTS.items():
        (tmp_path / f"{variant}.yaml").write_text(yaml.safe_dump(job(values, **options)))
    report = run_checkov(tmp_path)
    assert report.passed and not report.failed, report.summary()
    # Each skip carries its reason in the manifest; the digest variant needs no CKV_K8S_43 skip.
    assert {s["check_id"] for s in report.skipped} == {"CKV_K8S_35", "CKV_K8S_43", "CKV2_K8S_6"}
    assert sum(1 for s in report.skipped if s["check_id"] == "CKV_K8S_43") == len(VARIANTS) - 1


def test_construct_alone_with_narrow_props():
    chart = construct_chart()
    MigrationJob(chart, "migrate", props=MigrationJobProps(
        namespace="apps", name="m", version="1", image="img:1", command=["true"], environment={"PGUSER": "u"},
        password_secret="s", password_key="k", ca=SecretFiles(secret_name="the-ca", items={"ca.crt": "ca.crt"})))
    [doc] = cdk8s.Testing.synth(chart)
    spec = pod_spec(doc)
    assert spec["securityContext"]["runAsUser"] == 10001
    assert container(spec, "migrate")["imagePullPolicy"] == "Always"
    assert doc["spec"]["backoffLimit"] == 0 and "annotations" not in doc["metadata"]
    assert mounts(doc)["/etc/postgres/ca"]["secret"]["secretName"] == "the-ca"
    assert "/etc/postgres/client-tls" not in mounts(doc)


@pytest.mark.parametrize(("options", "error"), [
    ({"command": []}, "COMMAND: missing; put the migration command after `--`"),
    ({"image": "has space:1"}, "--image: 'has space:1' is not an image reference"),
    ({"name": "Bad_Name"}, "--name: 'Bad_Name' is not a DNS-1123 label"),
    ({"uid": 0}, "--uid: 0 is not allowed: use a non-root uid"),
])
def test_bad_requests_are_refused(options, error):
    with pytest.raises(MigrateError, match=error):
        job(**options)


def test_command_prints_the_job_and_it_is_not_in_dist():
    result = subprocess.run([sys.executable, str(TOP / "main.py"), "migrate-manifest", "--image", IMAGE,
                             "--argo-presync", "--", "alembic", "-c", "alembic.ini", "upgrade", "head"],
                            capture_output=True, text=True, cwd=TOP, timeout=120)
    assert result.returncode == 0, result.stderr
    doc = yaml.safe_load(result.stdout)
    assert container(pod_spec(doc), "migrate")["command"] == ["alembic", "-c", "alembic.ini", "upgrade", "head"]
    assert doc["metadata"]["annotations"]["argocd.argoproj.io/hook"] == "PreSync"
    assert "postgres-migrate" not in "".join(p.read_text() for p in (TOP / "dist").glob("*.yaml"))


def test_command_rejects_a_missing_command():
    result = subprocess.run([sys.executable, str(TOP / "main.py"), "migrate-manifest", "--image", IMAGE],
                            capture_output=True, text=True, cwd=TOP, timeout=120)
    assert result.returncode == 2
    assert result.stderr.startswith("error: COMMAND: missing")
