"""`python main.py migrate-manifest --image IMAGE -- COMMAND...`: the schema-migration Job, as YAML;
`python main.py local migrate --state DIR -- COMMAND...`: the same command here, against the local pod.

The Job runs the application's image and command as the migration role (see
docs/migrations.md). Like the restore Job it is printed, never
written to dist/: it belongs to the application's deploy (with `--argo-presync`,
a hook Argo CD runs before each sync of the application).

Clients find everything in the environment: libpq's PG* variables for psql,
psycopg and psycopg2, and `DATABASE_URL` for SQLAlchemy-style tools, its scheme
naming the driver (`--driver`). The URL names user, host, database and TLS
settings but no password: libpq takes a password the connection string lacks
from PGPASSWORD, which comes from the passwords Secret through `secretKeyRef`.
"""

from __future__ import annotations

import os
import shlex
import subprocess

import cdk8s
import yaml
from pydantic import TypeAdapter, ValidationError

from chart.compose import migration_job_props
from constructs.migrate import MigrationJob
from pgbundle import contract
from pgbundle.manifests import container
from pgbundle.pgconf.env import DEFAULT_DRIVER, database_url
from pgbundle.values.fields import DnsLabel, image_reference
from pgbundle.values.models import ChartValues
from workstation.localpod import LocalPod
from workstation.pod_state import HOST, LocalPodError

# Checks the Job breaks on purpose, with the reason (checkov reads these annotations).

# Checks the Job breaks on purpose, with the reason (checkov reads these annotations).
SECRET_ENV_SKIP = ("CKV_K8S_35=the password reaches the tool as PGPASSWORD, which libpq and "
                   "SQLAlchemy-style tools read; a password file would need a mode and owner "
                   "that depend on the image")
NETWORK_POLICY_SKIP = ("CKV2_K8S_6=the database's NetworkPolicy (postgres.networkPolicy) admits "
                       "this Job's pods; the application's own policies are its deploy's")
TAG_SKIP = "CKV_K8S_43=the image is the caller's; pass IMAGE@sha256:... to pin it by digest"


class MigrateError(Exception):
    """The request cannot be turned into a Job; the message says why."""


def check_request(values: ChartValues, *, image: str, command: list[str], name: str, uid: int,
                  client_secret: str | None) -> None:
    """Refuse what would not make a usable Job, before any YAML is made."""
    try:
        image_reference(image)
    except ValueError as err:
        raise MigrateError(f"--image: {image!r} is not an image reference: {err}") from None
    if not command:
        raise MigrateError("COMMAND: missing; put the migration command after `--`, e.g. -- alembic upgrade head")
    for option, value in (("--name", name), ("--client-secret", client_secret)):
        if value is not None:
            try:
                TypeAdapter(DnsLabel).validate_python(value)
            except ValidationError as err:
                raise MigrateError(f"{option}: {err.errors()[0]['msg'].removeprefix('Value error, ')}") from None
    if not 1 <= uid <= 2**31 - 1:
        raise MigrateError(f"--uid: {uid} is not allowed: use a non-root uid, 1 to 2147483647")
    pg = values.postgres
    if pg.tls.enabled and pg.ca.verify_clients and client_secret is None:
        raise MigrateError(
            "--client-secret: missing; postgres.ca.verifyClients is true, so the Job needs a Secret "
            "(type kubernetes.io/tls, tls.crt and tls.key) with a client certificate signed by the CA")


def migrate_manifest(values: ChartValues, *, image: str, command: list[str], name: str = contract.MIGRATE_JOB,
                     argo_presync: bool = False, uid: int = contract.MIGRATE_UID, client_secret: str | None = None,
                     driver: str = DEFAULT_DRIVER) -> str:
    """YAML of the Job that runs `command` in `image` as the migration role."""
    check_request(values, image=image, command=command, name=name, uid=uid, client_secret=client_secret)
    skips = [SECRET_ENV_SKIP, NETWORK_POLICY_SKIP] + ([] if "@" in image else [TAG_SKIP])
    app = cdk8s.App()
    chart = cdk8s.Chart(app, "migrate", disable_resource_name_hashes=True)
    MigrationJob(chart, "migrate", props=migration_job_props(
        values, name=name, image=image, command=command, uid=uid, argo_presync=argo_presync,
        client_secret=client_secret, driver=driver,
        annotations={f"checkov.io/skip{n}": text for n, text in enumerate(skips, start=1)}))
    text = app.synth_yaml()
    return text if text.endswith("\n") else text + "\n"


# --- the same Job against the local pod (`local migrate`) ----------------------------------


def local_environment(pod: LocalPod, job: dict, driver: str = DEFAULT_DRIVER) -> dict[str, str]:
    """The Job container's environment for a client on this machine: pod paths
    mapped into the state folder, each secretKeyRef read from the pod's passwords
    Secret, the Service replaced by the local pod (the certificate names
    localhost), a client certificate from the pod's CA when clients are
    verified, and DATABASE_URL rebuilt from the result."""
    port = pod.status().get("port")
    if pod.pid() is None or not port:
        raise LocalPodError(f"the local database is not running: run `python main.py local up --state {shlex.quote(str(pod.state))}`")
    secrets = pod.host_path(contract.SECRETS_DIR)
    env = {}
    for item in container(job["spec"]["template"]["spec"], contract.MIGRATE_CONTAINER)["env"]:
        if "valueFrom" in item:
            env[item["name"]] = (secrets / item["valueFrom"]["secretKeyRef"]["key"]).read_text().strip()
        else:
            value = item["value"]
            env[item["name"]] = str(pod.host_path(value)) if value.startswith("/") else value
    env.update({"PGHOST": "localhost", "PGHOSTADDR": HOST, "PGPORT": str(port)})
    if "PGSSLCERT" in env:
        # Clients are verified: a client certificate from the local pod's CA.
        cert, key = pod.client_certificate(env["PGUSER"])
        env.update({"PGSSLCERT": str(cert), "PGSSLKEY": str(key)})
    env["DATABASE_URL"] = database_url(env, driver)
    return env


def run_local(pod: LocalPod, values: ChartValues, command: list[str], driver: str = DEFAULT_DRIVER) -> int:
    """Run `command` in the caller's folder (where the project's migration settings
    are, e.g. alembic.ini) with the environment the Job would give it; its exit status."""
    if not command:
        raise MigrateError("COMMAND: missing; put the migration command after `--`, e.g. -- alembic upgrade head")
    job = yaml.safe_load(migrate_manifest(values, image="local:local", command=command, client_secret="local"))
    env = {**os.environ, **local_environment(pod, job, driver)}
    try:
        return subprocess.run(command, env=env).returncode
    except FileNotFoundError:
        raise MigrateError(f"COMMAND: {command[0]!r} was not found: give a program on PATH or its path") from None
    except PermissionError:
        raise MigrateError(f"COMMAND: {command[0]!r} cannot be run (not executable, or a folder)") from None
