"""`python main.py migrate-manifest --image IMAGE -- COMMAND...`: the schema-migration Job, as YAML.

The Job runs the application's image and command as the migration role (see
README.md, "Schema migrations"). Like the restore Job it is printed, never
written to dist/: it belongs to the application's deploy (with `--argo-presync`,
a hook Argo CD runs before each sync of the application).

Clients find everything in the environment: libpq's PG* variables for psql,
psycopg and psycopg2, and `DATABASE_URL` for SQLAlchemy-style tools. The URL
names user, host, database and TLS settings but no password: libpq (and asyncpg)
take a password the connection string lacks from PGPASSWORD, which comes from
the passwords Secret through `secretKeyRef`.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, urlencode

import cdk8s
import yaml

from constructs import layout, tls
from constructs.backup import CLIENT_TLS_DIR, connection_environment, uses_client_certificate
from constructs.labels import object_labels
from constructs.localpod import HOST, LocalPod, LocalPodError
from constructs.migrate import CLIENT_KEY_FILE_MODE, COMPONENT, CONTAINER, MigrationJob, MigrationJobProps, SecretFiles
from constructs.values import ChartValues, PostgresValues, ValuesError, load_values

DEFAULT_NAME = "postgres-migrate"
APPLICATION_NAME = "migrate"  # pg_stat_activity.application_name of the Job's sessions
# libpq variable -> URL query parameter (libpq's own names, which SQLAlchemy passes on).
URL_QUERY = {"PGSSLMODE": "sslmode", "PGSSLROOTCERT": "sslrootcert", "PGSSLCERT": "sslcert", "PGSSLKEY": "sslkey"}
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
# Checks the Job breaks on purpose, with the reason (checkov reads these annotations).
SECRET_ENV_SKIP = ("CKV_K8S_35=the password reaches the tool as PGPASSWORD, which libpq and "
                   "SQLAlchemy-style tools read; a password file would need a mode and owner "
                   "that depend on the image")
NETWORK_POLICY_SKIP = ("CKV2_K8S_6=the database's NetworkPolicy (postgres.networkPolicy) admits "
                       "this Job's pods; the application's own policies are its deploy's")
TAG_SKIP = "CKV_K8S_43=the image is the caller's; pass IMAGE@sha256:... to pin it by digest"


class MigrateError(Exception):
    """The request cannot be turned into a Job; the message says why."""


def database_url(env: dict[str, str]) -> str:
    """A libpq/SQLAlchemy URL from libpq variables, without a password."""
    query = {name: env[var] for var, name in URL_QUERY.items() if var in env}
    return (f"postgresql://{quote(env['PGUSER'], safe='')}@{env['PGHOST']}:{env['PGPORT']}/"
            f"{quote(env['PGDATABASE'], safe='')}?{urlencode(query, safe='/')}")


def session_options(pg: PostgresValues) -> str:
    """PGOPTIONS: act as the owner with the schema first on the search path. The
    migration role's own settings do the same at connect; this repeats them for
    every libpq client, visibly in the manifest."""
    return f"-c role={pg.owner_username} -c search_path={pg.schema_},public"


def migration_environment(pg: PostgresValues) -> dict[str, str]:
    """Everything but the password: libpq variables and DATABASE_URL (pod paths)."""
    env = connection_environment(pg, user=pg.migrator_username, password_key=layout.MIGRATOR_PASSWORD_KEY)
    env.pop("PG_PASSWORD_FILE")  # the password comes as PGPASSWORD
    env.update({"PGDATABASE": pg.database, "PGAPPNAME": APPLICATION_NAME, "PGOPTIONS": session_options(pg)})
    env["DATABASE_URL"] = database_url(env)
    return env


def _files(pg: PostgresValues, client_secret: str | None) -> list[SecretFiles]:
    files = []
    if pg.tls.enabled:
        files.append(SecretFiles(secret_name=tls.ca_secret_name(pg), items=tls.ca_secret_items(pg),
                                 mount_path=layout.CA_DIR))
    if uses_client_certificate(pg):
        if client_secret is None:
            raise MigrateError(
                "--client-secret: missing; postgres.ca.verifyClients is true, so the Job needs a Secret "
                "(type kubernetes.io/tls, tls.crt and tls.key) with a client certificate signed by the CA")
        files.append(SecretFiles(
            secret_name=client_secret, mount_path=CLIENT_TLS_DIR, mode=CLIENT_KEY_FILE_MODE,
            items={layout.CLIENT_CERT_FILE: layout.CLIENT_CERT_FILE, layout.CLIENT_KEY_FILE: layout.CLIENT_KEY_FILE}))
    return files


def check_request(image: str, command: list[str], name: str, uid: int) -> None:
    """Refuse what would not make a usable Job, before any YAML is made."""
    if not image or any(c.isspace() for c in image):
        raise MigrateError(f"--image: {image!r} is not an image reference such as registry/app:1.2.3")
    if not command:
        raise MigrateError("COMMAND: missing; put the migration command after `--`, e.g. -- alembic upgrade head")
    if not _DNS_LABEL.match(name):
        raise MigrateError(f"--name: {name!r} is not a DNS-1123 label (lower-case letters, digits, '-')")
    if not 1 <= uid <= 2**31 - 1:
        raise MigrateError(f"--uid: {uid} is not allowed: use a non-root uid, 1 to 2147483647")


def migrate_manifest(values: ChartValues, *, image: str, command: list[str], name: str = DEFAULT_NAME,
                     argo_presync: bool = False, uid: int = 10001, client_secret: str | None = None) -> str:
    """YAML of the Job that runs `command` in `image` as the migration role."""
    check_request(image, command, name, uid)
    pg = values.postgres
    skips = [SECRET_ENV_SKIP, NETWORK_POLICY_SKIP] + ([] if "@" in image else [TAG_SKIP])
    app = cdk8s.App()
    chart = cdk8s.Chart(app, "migrate", disable_resource_name_hashes=True)
    MigrationJob(chart, "migrate", props=MigrationJobProps(
        namespace=values.global_.namespace, name=name, image=image, command=command,
        environment=migration_environment(pg), password_secret=pg.secrets.existing_secret,
        password_key=layout.MIGRATOR_PASSWORD_KEY, labels=object_labels(COMPONENT, pg.image.tag),
        files=_files(pg, client_secret), uid=uid, argo_presync=argo_presync,
        annotations={f"checkov.io/skip{n}": text for n, text in enumerate(skips, start=1)}))
    text = app.synth_yaml()
    return text if text.endswith("\n") else text + "\n"


# --- the same Job against the local pod (`local migrate`) ----------------------------------


def local_environment(pod: LocalPod, job: dict) -> dict[str, str]:
    """The Job container's environment for a client on this machine: pod paths
    mapped into the state folder, each secretKeyRef read from the pod's passwords
    Secret, the Service replaced by the local pod (the certificate names
    localhost), and DATABASE_URL rebuilt from the result."""
    port = pod.status().get("port")
    if pod.pid() is None or not port:
        raise LocalPodError(f"the local database is not running: run `python main.py local up --state {pod.state}`")
    [container] = [c for c in job["spec"]["template"]["spec"]["containers"] if c["name"] == CONTAINER]
    secrets = pod.host_path(layout.SECRETS_DIR)
    env = {}
    for item in container["env"]:
        if "valueFrom" in item:
            env[item["name"]] = (secrets / item["valueFrom"]["secretKeyRef"]["key"]).read_text().strip()
        else:
            value = item["value"]
            env[item["name"]] = str(pod.host_path(value)) if value.startswith("/") else value
    env.update({"PGHOST": "localhost", "PGHOSTADDR": HOST, "PGPORT": str(port)})
    env["DATABASE_URL"] = database_url(env)
    return env


def run_local(pod: LocalPod, values: ChartValues, command: list[str]) -> int:
    """Run `command` here with the environment the Job would give it; its exit status."""
    job = yaml.safe_load(migrate_manifest(values, image="local", command=command))
    env = {**os.environ, **local_environment(pod, job)}
    return subprocess.run(command, env=env, cwd=pod.state).returncode


def cli(argv: list[str], *, values_path: Callable[[str | None], Path]) -> int:
    """`migrate-manifest --image IMAGE [options] -- COMMAND...`: print the migration Job."""
    parser = argparse.ArgumentParser(
        prog="main.py migrate-manifest", usage="%(prog)s --image IMAGE [options] -- COMMAND...",
        description="Print the Job that runs the application's migrations as the migration role "
                    "(see README.md, 'Schema migrations').")
    parser.add_argument("--values", help="values file (default: $VALUES, else values.yaml)")
    parser.add_argument("--image", required=True, help="the application image holding the migrations")
    parser.add_argument("--name", default=DEFAULT_NAME, help=f"Job name (default {DEFAULT_NAME})")
    parser.add_argument("--argo-presync", action="store_true",
                        help="mark the Job as an Argo CD PreSync hook (replaced at every sync)")
    parser.add_argument("--uid", type=int, default=10001, help="uid/gid the container runs as (default 10001)")
    parser.add_argument("--client-secret", help="Secret with the client certificate (tls.crt, tls.key); "
                                                "required when postgres.ca.verifyClients is true")
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split])
    try:
        values = load_values(values_path(args.values))
        sys.stdout.write(migrate_manifest(values, image=args.image, command=argv[split + 1:], name=args.name,
                                          argo_presync=args.argo_presync, uid=args.uid,
                                          client_secret=args.client_secret))
    except (ValuesError, MigrateError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def local_cli(argv: list[str], *, values_path: Callable[[str | None], Path]) -> int:
    """`local migrate --state DIR -- COMMAND...`: run migrations against the local pod as the Job would."""
    parser = argparse.ArgumentParser(
        prog="main.py local migrate", usage="%(prog)s --state DIR [--values FILE] -- COMMAND...",
        description="Run COMMAND on this machine with the migration Job's environment, against the local pod.")
    parser.add_argument("--state", required=True, type=Path, help="state folder of `local up`")
    parser.add_argument("--values", help="the values `local up` used (default: $VALUES, else values.yaml)")
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split])
    try:
        return run_local(LocalPod(args.state), load_values(values_path(args.values)), argv[split + 1:])
    except (ValuesError, MigrateError, LocalPodError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
