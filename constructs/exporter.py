"""The postgres-exporter sidecar of the database pod.

A construct without API objects of its own: the container must live in the
StatefulSet's pod template (to reach the pod-local Unix socket), so the
Database construct creates it as a child and puts `containers` and `volumes`
into its pod.
"""

from __future__ import annotations

from constructs import Construct
from pydantic import BaseModel, ConfigDict

from imports import k8s
from pgbundle import contract
from pgbundle.k8s.objects import SecretFiles, secret_volume
from pgbundle.k8s.podsecurity import Resources, resource_requirements, restricted_container
from pgbundle.monitoring.metric_catalog import EXTRA_COLLECTORS

SECRET_VOLUME = "monitoring-secret"

# Collectors switched off: per-table statistics add a series per table (and name
# every table) without serving any alert or panel.
DISABLED_COLLECTORS = ("stat_user_tables", "statio_user_tables")


class ExporterSidecarProps(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    image: str
    """Image reference of the exporter (required)."""
    database: str
    """Database the exporter connects to (required)."""
    secret_name: str
    """The passwords Secret; only the monitoring role's key is mounted (required)."""
    resources: Resources
    """Requests and limits of the exporter (required)."""
    image_pull_policy: str = "IfNotPresent"
    """Pull policy of the exporter container. Left out: IfNotPresent."""
    run_volume: str = "run"
    """The database pod's volume holding the Unix socket. Left out: run."""


def exporter_args() -> list[str]:
    return [
        f"--web.listen-address=:{contract.METRICS_PORT}",
        "--log.format=json",
        *(f"--collector.{name}" for name in EXTRA_COLLECTORS),
        # Statement texts stay out of Prometheus: pg_stat_statements keeps utility
        # statements verbatim, such as the start script's ALTER ROLE ... PASSWORD.
        "--no-collector.stat_statements.include_query",
        *(f"--no-collector.{name}" for name in DISABLED_COLLECTORS),
    ]


def exporter_environment(database: str) -> dict[str, str]:
    """The exporter's connection: the pod-local socket, role `monitoring`, the
    password from a file (never an environment value)."""
    return {
        # The exporter connects to postgresql://USER:PASS@<this>. No host before the
        # path: lib/pq sorts the parameters, so a host there could beat `host=` below.
        "DATA_SOURCE_URI": f"/{database}?host={contract.RUN_DIR}&sslmode=disable",
        "DATA_SOURCE_USER": contract.MONITORING_ROLE,
        "DATA_SOURCE_PASS_FILE": f"{contract.EXPORTER_SECRET_DIR}/{contract.MONITORING_PASSWORD_KEY}",
    }


class ExporterSidecar(Construct):
    """The exporter container and its own Secret volume, for the database pod."""

    def __init__(self, scope: Construct, id: str, *, props: ExporterSidecarProps) -> None:
        super().__init__(scope, id)

        def probe(failures: int) -> k8s.Probe:
            # The landing page, not /metrics: a probe must not query the database.
            return k8s.Probe(
                http_get=k8s.HttpGetAction(path="/", port=k8s.IntOrString.from_string(contract.METRICS_PORT_NAME)),
                period_seconds=10,
                timeout_seconds=5,
                failure_threshold=failures,
            )

        self.containers = [k8s.Container(
            name=contract.EXPORTER_CONTAINER,
            image=props.image,
            image_pull_policy=props.image_pull_policy,
            args=exporter_args(),
            env=[k8s.EnvVar(name=k, value=v) for k, v in exporter_environment(props.database).items()],
            ports=[k8s.ContainerPort(name=contract.METRICS_PORT_NAME, container_port=contract.METRICS_PORT, protocol="TCP")],
            resources=resource_requirements(props.resources),
            readiness_probe=probe(3),
            liveness_probe=probe(6),
            volume_mounts=[
                # Read-only is enough to connect to a socket and keeps the exporter from
                # touching the server's pid and lock files.
                k8s.VolumeMount(name=props.run_volume, mount_path=contract.RUN_DIR, read_only=True),
                k8s.VolumeMount(name=SECRET_VOLUME, mount_path=contract.EXPORTER_SECRET_DIR, read_only=True),
            ],
            security_context=restricted_container(contract.EXPORTER_UID),
        )]
        # Only the monitoring password, not the whole Secret: the exporter never sees
        # the superuser's or the application's passwords.
        key = contract.MONITORING_PASSWORD_KEY
        self.volumes = [secret_volume(SECRET_VOLUME, SecretFiles(secret_name=props.secret_name, items={key: key}))]
