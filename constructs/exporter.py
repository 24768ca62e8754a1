"""The postgres-exporter sidecar that the Database construct adds to its pod.

A function, not a construct: the container must live in the StatefulSet's pod
template (to reach the pod-local Unix socket), so the Database construct asks
for it and appends it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from imports import k8s
from pgbundle import contract as layout
from pgbundle.monitoring.metric_catalog import EXTRA_COLLECTORS
from pgbundle.k8s.podsecurity import resource_requirements, restricted_container
from pgbundle.values.models import PostgresValues

SECRET_VOLUME = "monitoring-secret"
SECRET_FILE_MODE = 0o440  # the exporter (uid 65534) reads it through the pod's fsGroup

# Collectors switched off: per-table statistics add a series per table (and name
# every table) without serving any alert or panel.
DISABLED_COLLECTORS = ("stat_user_tables", "statio_user_tables")


@dataclass(frozen=True)
class Sidecar:
    containers: list[k8s.Container] = field(default_factory=list)
    volumes: list[k8s.Volume] = field(default_factory=list)


def exporter_args() -> list[str]:
    return [
        f"--web.listen-address=:{layout.METRICS_PORT}",
        "--log.format=json",
        *(f"--collector.{name}" for name in EXTRA_COLLECTORS),
        # Statement texts stay out of Prometheus: pg_stat_statements keeps utility
        # statements verbatim, such as the start script's ALTER ROLE ... PASSWORD.
        "--no-collector.stat_statements.include_query",
        *(f"--no-collector.{name}" for name in DISABLED_COLLECTORS),
    ]


def exporter_environment(pg: PostgresValues) -> dict[str, str]:
    """The exporter's connection: the pod-local socket, role `monitoring`, the
    password from a file (never an environment value)."""
    return {
        # The exporter connects to postgresql://USER:PASS@<this>. No host before the
        # path: lib/pq sorts the parameters, so a host there could beat `host=` below.
        "DATA_SOURCE_URI": f"/{pg.database}?host={layout.RUN_DIR}&sslmode=disable",
        "DATA_SOURCE_USER": layout.MONITORING_ROLE,
        "DATA_SOURCE_PASS_FILE": f"{layout.EXPORTER_SECRET_DIR}/{layout.MONITORING_PASSWORD_KEY}",
    }


def sidecar(pg: PostgresValues, image_pull_policy: str, run_volume: str) -> Sidecar:
    """The exporter container and its own volume; nothing when metrics are off.

    `run_volume` is the database's emptyDir holding the Unix socket."""
    metrics = pg.metrics
    if not metrics.enabled:
        return Sidecar()
    uid = layout.EXPORTER_UID
    resources = metrics.resources

    def probe(failures: int) -> k8s.Probe:
        # The landing page, not /metrics: a probe must not query the database.
        return k8s.Probe(
            http_get=k8s.HttpGetAction(path="/", port=k8s.IntOrString.from_string(layout.METRICS_PORT_NAME)),
            period_seconds=10,
            timeout_seconds=5,
            failure_threshold=failures,
        )

    container = k8s.Container(
        name=layout.EXPORTER_CONTAINER,
        image=metrics.image.reference,
        image_pull_policy=image_pull_policy,
        args=exporter_args(),
        env=[k8s.EnvVar(name=k, value=v) for k, v in exporter_environment(pg).items()],
        ports=[k8s.ContainerPort(name=layout.METRICS_PORT_NAME, container_port=layout.METRICS_PORT, protocol="TCP")],
        resources=resource_requirements(resources),
        readiness_probe=probe(3),
        liveness_probe=probe(6),
        volume_mounts=[
            # Read-only is enough to connect to a socket and keeps the exporter from
            # touching the server's pid and lock files.
            k8s.VolumeMount(name=run_volume, mount_path=layout.RUN_DIR, read_only=True),
            k8s.VolumeMount(name=SECRET_VOLUME, mount_path=layout.EXPORTER_SECRET_DIR, read_only=True),
        ],
        security_context=restricted_container(uid),
    )
    # Only the monitoring password, not the whole Secret: the exporter never sees
    # the superuser's or the application's passwords.
    volume = k8s.Volume(
        name=SECRET_VOLUME,
        secret=k8s.SecretVolumeSource(
            secret_name=pg.secrets.existing_secret,
            default_mode=SECRET_FILE_MODE,
            items=[k8s.KeyToPath(key=layout.MONITORING_PASSWORD_KEY, path=layout.MONITORING_PASSWORD_KEY)],
        ),
    )
    return Sidecar(containers=[container], volumes=[volume])
