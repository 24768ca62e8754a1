"""The schema-migration Job that `python main.py migrate-manifest` prints.

It runs the application's own image and command (Alembic, a SQL tool, ...) as
the migration role: libpq settings and a `DATABASE_URL` in the environment, the
password from the passwords Secret through `secretKeyRef` (never in the
manifest), TLS checked against the CA, and a pod that meets the restricted Pod
Security Standard whatever the image's own user is.
"""

from __future__ import annotations

from constructs import Construct
from pydantic import BaseModel, ConfigDict

from constructs.backup import TTL_SECONDS_AFTER_FINISHED
from imports import k8s
from pgbundle import contract
from pgbundle.k8s.objects import SecretFiles, secret_volume
from pgbundle.k8s.podsecurity import Resources, resource_requirements, restricted_container, restricted_pod
from pgbundle.k8s.quantity import quantity

# Set on the Job: Argo CD runs it before every sync and replaces the previous one.
ARGO_HOOK_ANNOTATIONS = {
    "argocd.argoproj.io/hook": "PreSync",
    "argocd.argoproj.io/hook-delete-policy": "BeforeHookCreation",
}
PASSWORD_ENV = "PGPASSWORD"  # libpq (psql, psycopg, psycopg2) and asyncpg read it
DEFAULT_RESOURCES = Resources(cpu_request="100m", memory_request="256Mi", cpu_limit="1", memory_limit="1Gi")


class MigrationJobProps(BaseModel):
    """What the MigrationJob construct needs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    namespace: str
    """Namespace of the Job: the database's, where the passwords Secret is (required)."""
    name: str
    """Name of the Job (required)."""
    version: str
    """The app.kubernetes.io/version label: the database image's tag (required)."""
    image: str
    """The application image that holds the migrations (required)."""
    command: list[str]
    """The command that runs them, e.g. ["alembic", "upgrade", "head"] (required)."""
    environment: dict[str, str]
    """Connection settings: PGHOST, PGUSER, DATABASE_URL, ... (required)."""
    password_secret: str
    """Secret holding the migration role's password (required)."""
    password_key: str
    """Key of that password in the Secret; the container sees it as PGPASSWORD (required)."""
    ca: SecretFiles | None = None
    """The CA as ca.crt in contract.CA_DIR, to check the server's certificate. Left out: no TLS."""
    client_tls: SecretFiles | None = None
    """A client certificate as tls.crt/tls.key in contract.CLIENT_TLS_DIR. Left out:
    none (clients are not verified)."""
    uid: int = contract.MIGRATE_UID
    """uid and gid the container runs as (fsGroup too, so it reads the mounted
    files). Left out: 10001, above the range of host users."""
    image_pull_policy: str = "Always"
    """Left out: Always, so a moved tag is pulled again."""
    argo_presync: bool = False
    """Mark the Job as an Argo CD PreSync hook. Left out: a plain Job."""
    resources: Resources = DEFAULT_RESOURCES
    """Left out: requests 100m CPU, 256Mi memory; limits 1 CPU, 1Gi."""
    active_deadline_seconds: int = 3600
    """A run still going after this long is stopped and fails. Left out: one hour."""
    annotations: dict[str, str] = {}
    """Further annotations of the Job (policy skips). Left out: none."""


class MigrationJob(Construct):
    """One Job running the application's migrations as the migration role, never retried."""

    def __init__(self, scope: Construct, id: str, *, props: MigrationJobProps) -> None:
        super().__init__(scope, id)
        # The component's selector labels are what the database's NetworkPolicy admits.
        labels = contract.object_labels(contract.MIGRATE_COMPONENT, props.version)
        annotations = {**props.annotations, **(ARGO_HOOK_ANNOTATIONS if props.argo_presync else {})}
        env = [k8s.EnvVar(name=k, value=v) for k, v in props.environment.items()]
        env.append(k8s.EnvVar(name=PASSWORD_ENV, value_from=k8s.EnvVarSource(
            secret_key_ref=k8s.SecretKeySelector(name=props.password_secret, key=props.password_key))))
        volumes = [k8s.Volume(name="tmp", empty_dir=k8s.EmptyDirVolumeSource(size_limit=quantity("256Mi")))]
        mounts = [k8s.VolumeMount(name="tmp", mount_path=contract.TMP_DIR)]
        for name, files, path in (("ca", props.ca, contract.CA_DIR),
                                  (contract.CLIENT_TLS_VOLUME, props.client_tls, contract.CLIENT_TLS_DIR)):
            if files is not None:
                volumes.append(secret_volume(name, files))
                mounts.append(k8s.VolumeMount(name=name, mount_path=path, read_only=True))
        k8s.KubeJob(
            self,
            "job",
            metadata=k8s.ObjectMeta(name=props.name, namespace=props.namespace, labels=labels,
                                    annotations=annotations or None),
            spec=k8s.JobSpec(
                # A failed migration is not retried blindly: read the log, then decide.
                backoff_limit=0,
                active_deadline_seconds=props.active_deadline_seconds,
                ttl_seconds_after_finished=TTL_SECONDS_AFTER_FINISHED,
                template=k8s.PodTemplateSpec(
                    metadata=k8s.ObjectMeta(labels=labels),
                    spec=k8s.PodSpec(
                        automount_service_account_token=False,
                        enable_service_links=False,
                        restart_policy="Never",
                        security_context=restricted_pod(props.uid),
                        containers=[k8s.Container(
                            name=contract.MIGRATE_CONTAINER,
                            image=props.image,
                            image_pull_policy=props.image_pull_policy,
                            command=props.command,
                            env=env,
                            resources=resource_requirements(props.resources),
                            volume_mounts=mounts,
                            security_context=restricted_container(props.uid),
                        )],
                        volumes=volumes,
                    ),
                ),
            ),
        )
