"""The schema-migration Job that `python main.py migrate-manifest` prints.

It runs the application's own image and command (Alembic, a SQL tool, ...) as
the migration role: libpq settings and a `DATABASE_URL` in the environment, the
password from the passwords Secret through `secretKeyRef` (never in the
manifest), TLS checked against the CA (`verify-full`), and a pod that meets
the restricted Pod Security Standard whatever the image's own user is.
"""

from __future__ import annotations

from constructs import Construct
from pydantic import BaseModel, ConfigDict

from imports import k8s
from constructs.podsecurity import restricted_container, restricted_pod

CONTAINER = "migrate"
# Pods labelled selector_labels(COMPONENT) pass the database's NetworkPolicy.
COMPONENT = "migrate"
# Set on the Job: Argo CD runs it before every sync and replaces the previous one.
ARGO_HOOK_ANNOTATIONS = {
    "argocd.argoproj.io/hook": "PreSync",
    "argocd.argoproj.io/hook-delete-policy": "BeforeHookCreation",
}
PASSWORD_ENV = "PGPASSWORD"  # libpq (psql, psycopg, psycopg2) and asyncpg read it
CA_FILE_MODE = 0o444  # a CA certificate is public; any uid the image runs as must read it
CLIENT_KEY_FILE_MODE = 0o440  # root-owned, group fsGroup: libpq accepts it for a client key
TTL_SECONDS_AFTER_FINISHED = 7 * 24 * 3600  # the log stays readable for a week


class SecretFiles(BaseModel):
    """A Secret mounted read-only: which keys, under which file names, where."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    secret_name: str
    """Name of the Secret (required)."""
    items: dict[str, str]
    """Secret key -> file name in `mount_path` (required)."""
    mount_path: str
    """Folder the files appear in (required)."""
    mode: int = CA_FILE_MODE
    """File mode. Left out: 0444."""


class MigrationJobProps(BaseModel):
    """What the MigrationJob construct needs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    namespace: str
    """Namespace of the Job: the database's, where the passwords Secret is (required)."""
    name: str
    """Name of the Job (required)."""
    image: str
    """The application image that holds the migrations (required)."""
    command: list[str]
    """The command that runs them, e.g. ["alembic", "upgrade", "head"] (required)."""
    environment: dict[str, str]
    """Connection settings: PGHOST, PGUSER, DATABASE_URL, ... (required)."""
    password_secret: str
    """Secret holding the migration role's password (required)."""
    password_key: str
    """Key of that password in the Secret (required)."""
    labels: dict[str, str]
    """Labels of the Job and its pod (required)."""
    files: list[SecretFiles] = []
    """Secrets mounted as files: the CA, a client certificate. Left out: none (TLS off)."""
    uid: int = 10001
    """uid and gid the container runs as (fsGroup too, so it reads the mounted
    files). Left out: 10001, above the range of host users."""
    image_pull_policy: str = "Always"
    """Left out: Always, so a moved tag is pulled again."""
    argo_presync: bool = False
    """Mark the Job as an Argo CD PreSync hook. Left out: a plain Job."""
    backoff_limit: int = 0
    """Retries after a failed run. Left out: 0 (read the log, then decide)."""
    active_deadline_seconds: int = 3600
    """A run still going after this long is stopped and fails. Left out: one hour."""
    requests: dict[str, str] = {"cpu": "100m", "memory": "256Mi"}
    """Resource requests. Left out: 100m CPU, 256Mi memory."""
    limits: dict[str, str] = {"cpu": "1", "memory": "1Gi"}
    """Resource limits. Left out: 1 CPU, 1Gi memory."""
    annotations: dict[str, str] = {}
    """Further annotations of the Job (policy skips). Left out: none."""


class MigrationJob(Construct):
    """One Job running the application's migrations as the migration role."""

    def __init__(self, scope: Construct, id: str, *, props: MigrationJobProps) -> None:
        super().__init__(scope, id)
        annotations = {**props.annotations, **(ARGO_HOOK_ANNOTATIONS if props.argo_presync else {})}
        env = [k8s.EnvVar(name=k, value=v) for k, v in props.environment.items()]
        env.append(k8s.EnvVar(name=PASSWORD_ENV, value_from=k8s.EnvVarSource(
            secret_key_ref=k8s.SecretKeySelector(name=props.password_secret, key=props.password_key))))
        volumes = [k8s.Volume(name="tmp", empty_dir=k8s.EmptyDirVolumeSource(
            size_limit=k8s.Quantity.from_string("256Mi")))]
        mounts = [k8s.VolumeMount(name="tmp", mount_path="/tmp")]
        for number, files in enumerate(props.files):
            name = f"secret-{number}"
            volumes.append(k8s.Volume(name=name, secret=k8s.SecretVolumeSource(
                secret_name=files.secret_name, default_mode=files.mode,
                items=[k8s.KeyToPath(key=key, path=path) for key, path in files.items.items()])))
            mounts.append(k8s.VolumeMount(name=name, mount_path=files.mount_path, read_only=True))

        def quantities(amounts: dict[str, str]) -> dict[str, k8s.Quantity]:
            return {resource: k8s.Quantity.from_string(amount) for resource, amount in amounts.items()}

        k8s.KubeJob(
            self,
            "job",
            metadata=k8s.ObjectMeta(name=props.name, namespace=props.namespace, labels=props.labels,
                                    annotations=annotations or None),
            spec=k8s.JobSpec(
                backoff_limit=props.backoff_limit,
                active_deadline_seconds=props.active_deadline_seconds,
                ttl_seconds_after_finished=TTL_SECONDS_AFTER_FINISHED,
                template=k8s.PodTemplateSpec(
                    metadata=k8s.ObjectMeta(labels=props.labels),
                    spec=k8s.PodSpec(
                        automount_service_account_token=False,
                        enable_service_links=False,
                        restart_policy="Never",
                        security_context=restricted_pod(props.uid),
                        containers=[k8s.Container(
                            name=CONTAINER,
                            image=props.image,
                            image_pull_policy=props.image_pull_policy,
                            command=props.command,
                            env=env,
                            resources=k8s.ResourceRequirements(
                                requests=quantities(props.requests), limits=quantities(props.limits)),
                            volume_mounts=mounts,
                            security_context=restricted_container(props.uid),
                        )],
                        volumes=volumes,
                    ),
                ),
            ),
        )
