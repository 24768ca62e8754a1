"""The database: StatefulSet, Services, configuration, storage and disruption budget."""

from __future__ import annotations

import hashlib
from pathlib import Path

from constructs import Construct
from pydantic import BaseModel, ConfigDict

from imports import k8s
from constructs import exporter, layout, pgconf, tls
from constructs.labels import object_labels, selector_labels
from constructs.podsecurity import resource_requirements, restricted_container, restricted_pod
from constructs.values import PostgresValues, VolumeValues

COMPONENT = "database"
SCRIPTS = Path(__file__).parent / "scripts"
SECRET_FILE_MODE = 0o440  # readable by uid 999 through fsGroup; PostgreSQL accepts it for a root-owned key
CONFIG_FILE_MODE = 0o444
SCRIPT_FILE_MODE = 0o555


class DatabaseProps(BaseModel):
    """What the Database construct needs; every field is required."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    namespace: str
    """Namespace of every object the construct creates."""
    image_pull_policy: str
    """Pull policy of the database container."""
    postgres: PostgresValues
    """The `postgres` section of the values."""


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


def _quantity(text: str) -> k8s.Quantity:
    return k8s.Quantity.from_string(text)


def _claim_spec(volume: VolumeValues, access_mode: str) -> k8s.PersistentVolumeClaimSpec:
    return k8s.PersistentVolumeClaimSpec(
        access_modes=[access_mode],
        resources=k8s.ResourceRequirements(requests={"storage": _quantity(volume.size)}),
        # Left empty, the cluster's default StorageClass applies.
        storage_class_name=volume.storage_class or None,
    )


class Database(Construct):
    """StatefulSet `postgres` with its Services, ConfigMaps, backup PVC and PDB."""

    def __init__(self, scope: Construct, id: str, *, props: DatabaseProps) -> None:
        super().__init__(scope, id)
        pg = props.postgres
        self.labels = object_labels(COMPONENT, pg.image.tag)
        self.selector = selector_labels(COMPONENT)

        config_files = {
            "postgresql.conf": pgconf.render_postgresql_conf(pg),
            "pg_hba.conf": pgconf.render_pg_hba(pg),
        }
        scripts = pod_scripts()

        k8s.KubeServiceAccount(
            self,
            "service-account",
            metadata=self._meta(props, layout.SERVICE_ACCOUNT),
            automount_service_account_token=False,
        )
        k8s.KubeConfigMap(self, "config", metadata=self._meta(props, layout.CONFIG_MAP), data=config_files)
        k8s.KubeConfigMap(self, "scripts", metadata=self._meta(props, layout.SCRIPTS_CONFIG_MAP), data=scripts)

        backups = pg.persistence.backups
        if backups.enabled:
            k8s.KubePersistentVolumeClaim(
                self,
                "backups",
                metadata=self._meta(props, layout.BACKUP_CLAIM),
                spec=_claim_spec(backups, backups.access_mode),
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
                replicas=pg.replicas,
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
                        spec=_claim_spec(pg.persistence.data, "ReadWriteOnce"),
                    )
                ],
            ),
        )

        pdb = pg.pod_disruption_budget
        if pdb.enabled:
            k8s.KubePodDisruptionBudget(
                self,
                "pdb",
                metadata=self._meta(props, layout.PDB),
                spec=k8s.PodDisruptionBudgetSpec(
                    min_available=k8s.IntOrString.from_number(pdb.min_available),
                    selector=k8s.LabelSelector(match_labels=self.selector),
                ),
            )

    def _meta(self, props: DatabaseProps, name: str) -> k8s.ObjectMeta:
        return k8s.ObjectMeta(name=name, namespace=props.namespace, labels=self.labels)

    def _pod_spec(self, props: DatabaseProps) -> k8s.PodSpec:
        pg = props.postgres
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
            k8s.Volume(name="secrets", secret=k8s.SecretVolumeSource(secret_name=pg.secrets.existing_secret, default_mode=SECRET_FILE_MODE)),
            # The CA is only required when client certificates are verified; with
            # cert-manager it comes from the TLS Secret (constructs/tls.py).
            tls.ca_volume(pg),
            k8s.Volume(name="run", empty_dir=k8s.EmptyDirVolumeSource(size_limit=_quantity("64Mi"))),
            k8s.Volume(name="tmp", empty_dir=k8s.EmptyDirVolumeSource(size_limit=_quantity("1Gi"))),
            k8s.Volume(
                name="shm",
                empty_dir=k8s.EmptyDirVolumeSource(medium="Memory", size_limit=_quantity(str(pgconf.shm_size_bytes(pg)))),
            ),
        ]
        if pg.tls.enabled:
            mounts.append(k8s.VolumeMount(name="tls", mount_path=layout.TLS_DIR, read_only=True))
            volumes.append(tls.tls_volume(pg))  # server.crt/server.key whatever the source
        if pg.persistence.backups.enabled:
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
            image=pg.image.reference,
            image_pull_policy=props.image_pull_policy,
            command=["bash", f"{layout.SCRIPTS_DIR}/start.sh"],
            env=[k8s.EnvVar(name=k, value=v) for k, v in pgconf.pod_environment(pg).items()],
            ports=[k8s.ContainerPort(name=layout.PORT_NAME, container_port=layout.PORT, protocol="TCP")],
            resources=resource_requirements(pg.resources),
            # initdb or crash recovery of a large database may take a while: allow 30 minutes.
            startup_probe=probe("startup", 10, 180),
            readiness_probe=probe("ready", 10, 3),
            liveness_probe=probe("live", 10, 6),
            volume_mounts=mounts,
            security_context=restricted_container(uid),
        )
        sidecar = exporter.sidecar(pg, props.image_pull_policy, run_volume="run")
        return k8s.PodSpec(
            service_account_name=layout.SERVICE_ACCOUNT,
            automount_service_account_token=False,
            enable_service_links=False,
            # A fast shutdown writes a checkpoint; give it time before the kubelet kills the server.
            termination_grace_period_seconds=120,
            security_context=restricted_pod(uid),
            # The metrics sidecar (when enabled) shares the pod for the Unix socket.
            containers=[container, *sidecar.containers],
            volumes=[*volumes, *sidecar.volumes],
        )
