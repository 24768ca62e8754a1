"""The pod of the backup and restore jobs: one script from the scripts ConfigMap
in the database's image, with only the one password it needs, the CA, the
scripts and the backup volume."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from imports import k8s
from pgbundle import contract
from pgbundle.k8s.objects import SecretFiles, secret_volume
from pgbundle.k8s.podsecurity import Resources, resource_requirements, restricted_container, restricted_pod
from pgbundle.k8s.quantity import quantity


class SecretMount(BaseModel):
    """A further Secret volume of a job pod."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    """Volume name (required)."""
    path: str
    """Mount path (required)."""
    files: SecretFiles
    """The Secret and its items (required)."""


class ScratchVolume(BaseModel):
    """A job's scratch space as an ephemeral PVC: created with the pod, deleted with it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    """Mount path (required)."""
    size: str
    """Requested storage, such as 20Gi (required)."""
    storage_class: str = ""
    """StorageClass name. Left out: "" (the cluster's default class)."""


class JobPodProps(BaseModel):
    """One job pod running a script against the database."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    image: str
    """Image reference (the database's: it has the client tools) (required)."""
    container: str
    """Container name (required)."""
    script: str
    """File name in the scripts ConfigMap (required)."""
    args: list[str] = []
    """The script's arguments. Left out: none."""
    environment: dict[str, str]
    """The script's environment (required)."""
    password: SecretFiles | None
    """The one password key the script reads (required; None: it reads none)."""
    resources: Resources
    """Requests and limits (required)."""
    backups_read_only: bool
    """Mount the backup volume read-only (required)."""
    ca: SecretFiles | None = None
    """The CA as ca.crt, to check the server's certificate. Left out: no TLS."""
    client_tls: SecretFiles | None = None
    """The job's client certificate as tls.crt/tls.key. Left out: none (clients are not verified)."""
    backups: bool = True
    """Mount the backup volume. Left out: true."""
    config: bool = False
    """Mount the database's ConfigMap postgres-config (pgbackrest.conf). Left out: false."""
    claims: dict[str, str] = {}
    """Further PVCs: mount path -> claim name (volume `claim-<claim name>`). Left out: none."""
    read_only_claims: dict[str, str] = {}
    """Further PVCs mounted read-only, as `claims`. Left out: none."""
    secret_mounts: list[SecretMount] = []
    """Further Secret volumes. Left out: none."""
    scratch: ScratchVolume | None = None
    """An ephemeral PVC (volume `scratch`). Left out: none."""
    near_database: bool = False
    """Schedule next to the database pod (a ReadWriteOnce backup volume). Left out: anywhere."""
    image_pull_policy: str = "IfNotPresent"
    """Pull policy. Left out: IfNotPresent."""
    service_account: str = contract.BACKUP_SERVICE_ACCOUNT
    """Service account. Left out: postgres-backup."""


def job_pod_spec(props: JobPodProps) -> k8s.PodSpec:
    """A restricted pod running one script against the database."""
    uid = contract.POSTGRES_UID
    mounts = [k8s.VolumeMount(name="scripts", mount_path=contract.SCRIPTS_DIR, read_only=True)]
    volumes = [k8s.Volume(name="scripts", config_map=k8s.ConfigMapVolumeSource(
        name=contract.SCRIPTS_CONFIG_MAP, default_mode=contract.SCRIPT_FILE_MODE))]
    if props.password is not None:
        mounts.append(k8s.VolumeMount(name="secrets", mount_path=contract.SECRETS_DIR, read_only=True))
        volumes.append(secret_volume("secrets", props.password))
    if props.backups:
        mounts.append(k8s.VolumeMount(name="backups", mount_path=contract.BACKUP_DIR, read_only=props.backups_read_only))
        volumes.append(k8s.Volume(name="backups", persistent_volume_claim=k8s.PersistentVolumeClaimVolumeSource(
            claim_name=contract.BACKUP_CLAIM, read_only=props.backups_read_only)))
    mounts.append(k8s.VolumeMount(name="tmp", mount_path=contract.TMP_DIR))
    volumes.append(k8s.Volume(name="tmp", empty_dir=k8s.EmptyDirVolumeSource(size_limit=quantity("256Mi"))))
    if props.config:
        mounts.append(k8s.VolumeMount(name="config", mount_path=contract.CONFIG_DIR, read_only=True))
        volumes.append(k8s.Volume(name="config", config_map=k8s.ConfigMapVolumeSource(
            name=contract.CONFIG_MAP, default_mode=contract.CONFIG_FILE_MODE)))
    for claims, read_only in ((props.claims, None), (props.read_only_claims, True)):
        for path, claim in claims.items():
            mounts.append(k8s.VolumeMount(name=f"claim-{claim}", mount_path=path, read_only=read_only))
            volumes.append(k8s.Volume(name=f"claim-{claim}", persistent_volume_claim=(
                k8s.PersistentVolumeClaimVolumeSource(claim_name=claim, read_only=read_only))))
    if props.scratch is not None:
        mounts.append(k8s.VolumeMount(name="scratch", mount_path=props.scratch.path))
        volumes.append(k8s.Volume(name="scratch", ephemeral=k8s.EphemeralVolumeSource(
            volume_claim_template=k8s.PersistentVolumeClaimTemplate(spec=k8s.PersistentVolumeClaimSpec(
                access_modes=["ReadWriteOnce"],
                resources=k8s.ResourceRequirements(requests={"storage": quantity(props.scratch.size)}),
                storage_class_name=props.scratch.storage_class or None)))))
    for secret in props.secret_mounts:
        mounts.append(k8s.VolumeMount(name=secret.name, mount_path=secret.path, read_only=True))
        volumes.append(secret_volume(secret.name, secret.files))
    if props.ca is not None:
        # Required: without the CA the server's certificate cannot be checked.
        mounts.append(k8s.VolumeMount(name="ca", mount_path=contract.CA_DIR, read_only=True))
        volumes.append(secret_volume("ca", props.ca))
    if props.client_tls is not None:
        mounts.append(k8s.VolumeMount(name=contract.CLIENT_TLS_VOLUME, mount_path=contract.CLIENT_TLS_DIR, read_only=True))
        volumes.append(secret_volume(contract.CLIENT_TLS_VOLUME, props.client_tls))

    affinity = None
    if props.near_database:
        # The database pod mounts the ReadWriteOnce volume too: only a pod on its
        # node can attach it.
        affinity = k8s.Affinity(pod_affinity=k8s.PodAffinity(
            required_during_scheduling_ignored_during_execution=[k8s.PodAffinityTerm(
                label_selector=k8s.LabelSelector(match_labels=contract.selector_labels(contract.DATABASE_COMPONENT)),
                topology_key="kubernetes.io/hostname",
            )]))

    return k8s.PodSpec(
        service_account_name=props.service_account,
        automount_service_account_token=False,
        enable_service_links=False,
        restart_policy="Never",
        affinity=affinity,
        security_context=restricted_pod(uid),
        containers=[k8s.Container(
            name=props.container,
            image=props.image,
            image_pull_policy=props.image_pull_policy,
            command=["bash", f"{contract.SCRIPTS_DIR}/{props.script}", *props.args],
            env=[k8s.EnvVar(name=k, value=v) for k, v in props.environment.items()],
            resources=resource_requirements(props.resources),
            volume_mounts=mounts,
            security_context=restricted_container(uid),
        )],
        volumes=volumes,
    )
