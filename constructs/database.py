"""The database: StatefulSet, Services, configuration, storage and disruption budget."""

from __future__ import annotations

import hashlib
from pathlib import Path

from constructs import Construct
from pydantic import BaseModel, ConfigDict

from constructs.exporter import ExporterSidecar, ExporterSidecarProps
from imports import k8s
from pgbundle import contract as layout
from pgbundle.contract import CONFIG_FILE_MODE, SCRIPT_FILE_MODE
from pgbundle.k8s.objects import SecretFiles, secret_volume
from pgbundle.k8s.podsecurity import Resources, resource_requirements, restricted_container, restricted_pod
from pgbundle.k8s.quantity import quantity

COMPONENT = layout.DATABASE_COMPONENT
SCRIPTS = Path(__file__).parent / "scripts"


class VolumeClaimProps(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    size: str
    """Requested storage, such as 20Gi (required)."""
    storage_class: str = ""
    """StorageClass name. Left out: "" (the cluster's default class)."""
    access_mode: str = "ReadWriteOnce"
    """Access mode. Left out: ReadWriteOnce."""


class DatabaseProps(BaseModel):
    """What the Database construct needs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    namespace: str
    """Namespace of every object the construct creates (required)."""
    image: str
    """Image reference of the database container (required)."""
    version: str
    """The app.kubernetes.io/version label: the image tag (required)."""
    resources: Resources
    """Requests and limits of the database container (required)."""
    config_files: dict[str, str]
    """ConfigMap postgres-config: postgresql.conf and pg_hba.conf (required)."""
    environment: dict[str, str]
    """The start script's environment, pod paths (required)."""
    shm_size_bytes: int
    """Size of /dev/shm, the memory parallel query needs (required)."""
    data: VolumeClaimProps
    """Each replica's data volume (required)."""
    secrets: SecretFiles
    """The passwords Secret, mounted whole (required)."""
    ca: SecretFiles
    """The CA certificate as ca.crt (required; mark it optional when clients are not verified)."""
    tls: SecretFiles | None = None
    """The server certificate and key as server.crt/server.key. Left out: no TLS."""
    backups: VolumeClaimProps | None = None
    """The backup volume postgres-backups, also mounted here. Left out: none."""
    pdb_min_available: int | None = None
    """minAvailable of the PodDisruptionBudget. Left out: no budget."""
    exporter: ExporterSidecarProps | None = None
    """The metrics exporter sidecar. Left out: none."""
    replicas: int = 1
    """Database pods. Left out: 1."""
    image_pull_policy: str = "IfNotPresent"
    """Pull policy of the database container. Left out: IfNotPresent."""


# The scripts the database container runs. Only these roll the database pod when
# they change; the backup and restore scripts share the ConfigMap but not the pod.
DATABASE_SCRIPTS = ("start.sh", "probe.sh", "init.sql", "init-temporal.sql", "cert-watch.sh")


def pod_scripts() -> dict[str, str]:
    """The pod's scripts, keyed by file name, as shipped in the scripts ConfigMap."""
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(SCRIPTS.iterdir()) if p.is_file()}


def _digest(*documents: dict[str, str]) -> str:
    sha = hashlib.sha256()
    for document in documents:
        for key in sorted(document):
            sha.update(key.encode() + b"\0" + document[key].encode() + b"\0")
    return sha.hexdigest()


def _claim_spec(volume: VolumeClaimProps) -> k8s.PersistentVolumeClaimSpec:
    return k8s.PersistentVolumeClaimSpec(
        access_modes=[volume.access_mode],
        resources=k8s.ResourceRequirements(requests={"storage": quantity(volume.size)}),
        # Left empty, the cluster's default StorageClass applies.
        storage_class_name=volume.storage_class or None,
    )


class Database(Construct):
    """StatefulSet `postgres` with its Services, ConfigMaps, backup PVC and PDB."""

    def __init__(self, scope: Construct, id: str, *, props: DatabaseProps) -> None:
        super().__init__(scope, id)
        self.labels = layout.object_labels(COMPONENT, props.version)
        self.selector = layout.selector_labels(COMPONENT)
        config_files = props.config_files
        scripts = pod_scripts()

        k8s.KubeServiceAccount(
            self,
            "service-account",
            metadata=self._meta(props, layout.SERVICE_ACCOUNT),
            automount_service_account_token=False,
        )
        k8s.KubeConfigMap(self, "config", metadata=self._meta(props, layout.CONFIG_MAP), data=config_files)
        k8s.KubeConfigMap(self, "scripts", metadata=self._meta(props, layout.SCRIPTS_CONFIG_MAP), data=scripts)

        if props.backups is not None:
            k8s.KubePersistentVolumeClaim(
                self,
                "backups",
                metadata=self._meta(props, layout.BACKUP_CLAIM),
                spec=_claim_spec(props.backups),
            )

        ports = [k8s.ServicePort(name=layout.PORT_NAME, port=layout.PORT, target_port=k8s.IntOrString.from_string(layout.PORT_NAME))]
        k8s.KubeService(
            self,
            "service",
            metadata=self._meta(props, layout.SERVICE),
            spec=k8s.ServiceSpec(type="ClusterIP", selector=self.selector, ports=ports),
        )
        k8s.KubeService(
            self,
            "headless-service",
            metadata=self._meta(props, layout.HEADLESS_SERVICE),
            # Pod DNS names (postgres-0.postgres-headless) must resolve before the pod is ready.
            spec=k8s.ServiceSpec(cluster_ip="None", publish_not_ready_addresses=True, selector=self.selector, ports=ports),
        )

        k8s.KubeStatefulSet(
            self,
            "statefulset",
            metadata=self._meta(props, layout.STATEFULSET),
            spec=k8s.StatefulSetSpec(
                service_name=layout.HEADLESS_SERVICE,
                replicas=props.replicas,
                selector=k8s.LabelSelector(match_labels=self.selector),
                pod_management_policy="OrderedReady",
                update_strategy=k8s.StatefulSetUpdateStrategy(
                    type="RollingUpdate", rolling_update=k8s.RollingUpdateStatefulSetStrategy(partition=0)
                ),
                persistent_volume_claim_retention_policy=k8s.StatefulSetPersistentVolumeClaimRetentionPolicy(
                    when_deleted="Retain", when_scaled="Retain"
                ),
                template=k8s.PodTemplateSpec(
                    metadata=k8s.ObjectMeta(
                        labels=self.labels,
                        # A changed config or script rolls the pod, so what runs is what dist/ says.
                        annotations={"checksum/config": _digest(
                            config_files, {name: scripts[name] for name in DATABASE_SCRIPTS})},
                    ),
                    spec=self._pod_spec(props),
                ),
                volume_claim_templates=[
                    k8s.KubePersistentVolumeClaimProps(
                        metadata=k8s.ObjectMeta(name=layout.DATA_CLAIM, labels=self.labels),
                        spec=_claim_spec(props.data),
                    )
                ],
            ),
        )

        if props.pdb_min_available is not None:
            k8s.KubePodDisruptionBudget(
                self,
                "pdb",
                metadata=self._meta(props, layout.PDB),
                spec=k8s.PodDisruptionBudgetSpec(
                    min_available=k8s.IntOrString.from_number(props.pdb_min_available),
                    selector=k8s.LabelSelector(match_labels=self.selector),
                ),
            )

    def _meta(self, props: DatabaseProps, name: str) -> k8s.ObjectMeta:
        return k8s.ObjectMeta(name=name, namespace=props.namespace, labels=self.labels)

    def _pod_spec(self, props: DatabaseProps) -> k8s.PodSpec:
        uid = layout.POSTGRES_UID
        mounts = [
            k8s.VolumeMount(name=layout.DATA_CLAIM, mount_path=layout.DATA_MOUNT),
            k8s.VolumeMount(name="config", mount_path=layout.CONFIG_DIR, read_only=True),
            k8s.VolumeMount(name="scripts", mount_path=layout.SCRIPTS_DIR, read_only=True),
            k8s.VolumeMount(name="secrets", mount_path=layout.SECRETS_DIR, read_only=True),
            k8s.VolumeMount(name="ca", mount_path=layout.CA_DIR, read_only=True),
            k8s.VolumeMount(name="run", mount_path=layout.RUN_DIR),
            k8s.VolumeMount(name="tmp", mount_path=layout.TMP_DIR),
            k8s.VolumeMount(name="shm", mount_path=layout.SHM_DIR),
        ]
        volumes = [
            k8s.Volume(name="config", config_map=k8s.ConfigMapVolumeSource(name=layout.CONFIG_MAP, default_mode=CONFIG_FILE_MODE)),
            k8s.Volume(name="scripts", config_map=k8s.ConfigMapVolumeSource(name=layout.SCRIPTS_CONFIG_MAP, default_mode=SCRIPT_FILE_MODE)),
            secret_volume("secrets", props.secrets),
            secret_volume("ca", props.ca),
            k8s.Volume(name="run", empty_dir=k8s.EmptyDirVolumeSource(size_limit=quantity("64Mi"))),
            k8s.Volume(name="tmp", empty_dir=k8s.EmptyDirVolumeSource(size_limit=quantity("1Gi"))),
            k8s.Volume(
                name="shm",
                empty_dir=k8s.EmptyDirVolumeSource(medium="Memory", size_limit=quantity(str(props.shm_size_bytes))),
            ),
        ]
        if props.tls is not None:
            mounts.append(k8s.VolumeMount(name="tls", mount_path=layout.TLS_DIR, read_only=True))
            volumes.append(secret_volume("tls", props.tls))
        if props.backups is not None:
            mounts.append(k8s.VolumeMount(name="backups", mount_path=layout.BACKUP_DIR))
            volumes.append(
                k8s.Volume(name="backups", persistent_volume_claim=k8s.PersistentVolumeClaimVolumeSource(claim_name=layout.BACKUP_CLAIM))
            )

        def probe(kind: str, period: int, failures: int) -> k8s.Probe:
            return k8s.Probe(
                exec=k8s.ExecAction(command=["bash", f"{layout.SCRIPTS_DIR}/probe.sh", kind]),
                period_seconds=period,
                timeout_seconds=5,
                failure_threshold=failures,
            )

        container = k8s.Container(
            name=layout.CONTAINER,
            image=props.image,
            image_pull_policy=props.image_pull_policy,
            command=["bash", f"{layout.SCRIPTS_DIR}/start.sh"],
            env=[k8s.EnvVar(name=k, value=v) for k, v in props.environment.items()],
            ports=[k8s.ContainerPort(name=layout.PORT_NAME, container_port=layout.PORT, protocol="TCP")],
            resources=resource_requirements(props.resources),
            # initdb or crash recovery of a large database may take a while: allow 30 minutes.
            startup_probe=probe("startup", 10, 180),
            readiness_probe=probe("ready", 10, 3),
            liveness_probe=probe("live", 10, 6),
            volume_mounts=mounts,
            security_context=restricted_container(uid),
        )
        sidecar = ExporterSidecar(self, "exporter", props=props.exporter) if props.exporter else None
        return k8s.PodSpec(
            service_account_name=layout.SERVICE_ACCOUNT,
            automount_service_account_token=False,
            enable_service_links=False,
            # A fast shutdown writes a checkpoint; give it time before the kubelet kills the server.
            termination_grace_period_seconds=120,
            security_context=restricted_pod(uid),
            # The metrics sidecar (when enabled) shares the pod for the Unix socket.
            containers=[container, *(sidecar.containers if sidecar else [])],
            volumes=[*volumes, *(sidecar.volumes if sidecar else [])],
        )
