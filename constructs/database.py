"""The database: StatefulSet, Services, configuration, storage and disruption budget."""

from __future__ import annotations

import hashlib
from pathlib import Path

from constructs import Construct
from pydantic import BaseModel, ConfigDict

from constructs.exporter import ExporterSidecar, ExporterSidecarProps
from imports import k8s
from pgbundle import contract
from pgbundle.contract import CONFIG_FILE_MODE, SCRIPT_FILE_MODE
from pgbundle.k8s.objects import SecretFiles, secret_volume
from pgbundle.k8s.podsecurity import Resources, resource_requirements, restricted_container, restricted_pod
from pgbundle.k8s.quantity import quantity

COMPONENT = contract.DATABASE_COMPONENT
SCRIPTS = Path(__file__).parent / "scripts"


class VolumeClaimProps(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    size: str
    """Requested storage, such as 20Gi (required)."""
    storage_class: str = ""
    """StorageClass name. Left out: "" (the cluster's default class)."""
    access_mode: str = "ReadWriteOnce"
    """Access mode. Left out: ReadWriteOnce."""


class HaProps(BaseModel):
    """What changes when Patroni runs the database (postgres.replicas >= 2)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    patroni_files: dict[str, str]
    """patroni.yaml, as every member reads it, and bootstrap.yaml, which only the
    first member adds: pod paths, no password (required)."""
    scope: str
    """Patroni's cluster name: the pods carry it in `scope_label` (required)."""
    scope_label: str
    """Pod label Patroni finds its members by (required)."""
    role_label: str
    """Pod label Patroni keeps at `primary_role` or `replica_role` (required)."""
    primary_role: str
    """The Service `postgres` selects this role (required)."""
    replica_role: str
    """The Service `postgres-replicas` selects this role (required)."""
    required_anti_affinity: bool = False
    """Never schedule two members on one node. Left out: preferred only."""


class PitrPodProps(BaseModel):
    """What point-in-time recovery adds to the database pod (its settings travel in
    `config_files` and `environment`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    repo_claim: VolumeClaimProps | None = None
    """The PVC postgres-pitr holding the volume repository. Left out: none (the
    repository is on postgres-backups, or there is only the S3 one)."""
    s3_credentials: SecretFiles | None = None
    """The S3 repository's keys, mounted at contract.PITR_S3_SECRET_DIR. Left out: no S3 repository."""
    s3_ca: SecretFiles | None = None
    """The S3 endpoint's CA as ca.crt, at contract.PITR_S3_CA_DIR. Left out: the system CAs."""
    server_environment: dict[str, str]
    """What the `pgbackrest` sidecar (pgBackRest's TLS server for the backup jobs)
    adds to the database container's environment (required)."""
    server_resources: Resources
    """Requests and limits of the sidecar: it reads and compresses the files of a backup (required)."""


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
    """minAvailable of the PodDisruptionBudget. Left out: no budget (unless pdb_max_unavailable)."""
    pdb_max_unavailable: int | None = None
    """maxUnavailable of the PodDisruptionBudget, instead of minAvailable. Left out: none."""
    exporter: ExporterSidecarProps | None = None
    """The metrics exporter sidecar. Left out: none."""
    pitr: PitrPodProps | None = None
    """Point-in-time recovery: its scripts, volume and Secrets. Left out: off."""
    replicas: int = 1
    """Database pods. Left out: 1."""
    image_pull_policy: str = "IfNotPresent"
    """Pull policy of the database container. Left out: IfNotPresent."""
    ha: HaProps | None = None
    """Patroni runs the members: RBAC, its configuration, primary and replica
    Services, REST API probes. Left out: a single PostgreSQL (start.sh)."""


# The HA scripts live apart so the single instance's ConfigMap stays as it is;
# in the pod they sit beside the others (a ConfigMap key cannot hold a folder).
HA_SCRIPTS = SCRIPTS / "ha"
# Likewise the point-in-time recovery scripts, shipped only when it is on.
PITR_SCRIPTS = SCRIPTS / "pitr"
# Patroni keeps its leader lock, configuration and member state in ConfigMaps
# it creates and labels its pods with their role (Patroni's kubernetes/patroni_k8s.yaml).
PATRONI_RULES = (
    (("configmaps",), ("create", "get", "list", "patch", "update", "watch", "delete")),
    (("pods",), ("get", "list", "patch", "update", "watch")),
)


# The scripts the database container runs. Only these roll the database pod when
# they change; the backup and restore scripts share the ConfigMap but not the pod.
DATABASE_SCRIPTS = ("start.sh", "probe.sh", "run-init.sh", "init.sql", "init-temporal.sql", "cert-watch.sh",
                    "check-major.sh")
# What the HA container runs instead of start.sh and probe.sh (Patroni starts the
# server, its REST API answers the probes).
HA_DATABASE_SCRIPTS = ("patroni.sh", "patroni-hook.sh", "patroni-roles.sql",
                       *(name for name in DATABASE_SCRIPTS if name not in ("start.sh", "probe.sh")))


# What the database pod runs of them (start.sh and patroni.sh source pitr-env.sh; the sidecar
# runs pitr-server.sh; Patroni runs pitr-replica.sh to create a member).
PITR_DATABASE_SCRIPTS = ("pitr-env.sh", "pitr-server.sh", "pitr-replica.sh")


def pod_scripts(ha: bool = False, pitr: bool = False) -> dict[str, str]:
    """The pod's scripts, keyed by file name, as shipped in the scripts ConfigMap
    (with `ha`, Patroni's too; with `pitr`, pgBackRest's)."""
    folders = (SCRIPTS, *((HA_SCRIPTS,) if ha else ()), *((PITR_SCRIPTS,) if pitr else ()))
    files = sorted(p for folder in folders for p in folder.iterdir() if p.is_file())
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(files, key=lambda p: p.name)}


def _digest(*documents: dict[str, str]) -> str:
    sha = hashlib.sha256()
    for document in documents:
        for key in sorted(document):
            sha.update(key.encode() + b"\0" + document[key].encode() + b"\0")
    return sha.hexdigest()


def claim_spec(volume: VolumeClaimProps) -> k8s.PersistentVolumeClaimSpec:
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
        self.labels = contract.object_labels(COMPONENT, props.version)
        self.selector = contract.selector_labels(COMPONENT)
        ha = props.ha
        # Patroni writes its own postgresql.conf and pg_hba.conf from its configuration.
        config_files = props.config_files if ha is None else ha.patroni_files
        scripts = pod_scripts(ha=ha is not None, pitr=props.pitr is not None)
        run_scripts = DATABASE_SCRIPTS if ha is None else HA_DATABASE_SCRIPTS
        if props.pitr is not None:
            run_scripts += PITR_DATABASE_SCRIPTS

        k8s.KubeServiceAccount(
            self,
            "service-account",
            metadata=self._meta(props, contract.SERVICE_ACCOUNT),
            automount_service_account_token=False,
        )
        if ha is None:
            k8s.KubeConfigMap(self, "config", metadata=self._meta(props, contract.CONFIG_MAP), data=config_files)
        else:
            k8s.KubeConfigMap(self, "patroni-config", metadata=self._meta(props, contract.PATRONI_CONFIG_MAP),
                              data=config_files)
            self._rbac(props)
            if props.pitr is not None:
                # Patroni writes postgresql.conf; pgbackrest.conf (the members' and the
                # backup jobs') keeps its ConfigMap and folder.
                config_files = {**config_files, **self._pgbackrest_conf(props)}
                k8s.KubeConfigMap(self, "config", metadata=self._meta(props, contract.CONFIG_MAP),
                                  data=self._pgbackrest_conf(props))
        k8s.KubeConfigMap(self, "scripts", metadata=self._meta(props, contract.SCRIPTS_CONFIG_MAP), data=scripts)

        if props.backups is not None:
            k8s.KubePersistentVolumeClaim(
                self,
                "backups",
                metadata=self._meta(props, contract.BACKUP_CLAIM),
                spec=claim_spec(props.backups),
            )

        if props.pitr is not None and props.pitr.repo_claim is not None:
            k8s.KubePersistentVolumeClaim(
                self, "pitr-repo", metadata=self._meta(props, contract.PITR_CLAIM),
                spec=claim_spec(props.pitr.repo_claim))

        ports = [k8s.ServicePort(name=contract.PORT_NAME, port=contract.PORT, target_port=k8s.IntOrString.from_string(contract.PORT_NAME))]
        # With Patroni, the Service reaches the primary only; read-only clients may use the replicas.
        primary = self.selector if ha is None else {**self.selector, ha.role_label: ha.primary_role}
        k8s.KubeService(
            self,
            "service",
            metadata=self._meta(props, contract.SERVICE),
            spec=k8s.ServiceSpec(type="ClusterIP", selector=primary, ports=ports),
        )
        if ha is not None:
            k8s.KubeService(
                self,
                "replicas-service",
                metadata=self._meta(props, contract.REPLICAS_SERVICE),
                spec=k8s.ServiceSpec(type="ClusterIP", selector={**self.selector, ha.role_label: ha.replica_role},
                                     ports=ports),
            )
        k8s.KubeService(
            self,
            "headless-service",
            metadata=self._meta(props, contract.HEADLESS_SERVICE),
            # Pod DNS names (postgres-0.postgres-headless) must resolve before the pod is ready.
            spec=k8s.ServiceSpec(cluster_ip="None", publish_not_ready_addresses=True, selector=self.selector, ports=ports),
        )

        k8s.KubeStatefulSet(
            self,
            "statefulset",
            metadata=self._meta(props, contract.STATEFULSET),
            spec=k8s.StatefulSetSpec(
                service_name=contract.HEADLESS_SERVICE,
                replicas=props.replicas,
                selector=k8s.LabelSelector(match_labels=self.selector),
                pod_management_policy=contract.POD_MANAGEMENT_POLICY if ha is None else contract.HA_POD_MANAGEMENT_POLICY,
                update_strategy=k8s.StatefulSetUpdateStrategy(
                    type="RollingUpdate", rolling_update=k8s.RollingUpdateStatefulSetStrategy(partition=0)
                ),
                persistent_volume_claim_retention_policy=k8s.StatefulSetPersistentVolumeClaimRetentionPolicy(
                    when_deleted="Retain", when_scaled="Retain"
                ),
                template=k8s.PodTemplateSpec(
                    metadata=k8s.ObjectMeta(
                        # Patroni finds its members by the scope label.
                        labels=self.labels if ha is None else {**self.labels, ha.scope_label: ha.scope},
                        # A changed config or script rolls the pod, so what runs is what dist/ says.
                        # Not Patroni's bootstrap section: read only when a cluster is created (a
                        # printed restore changes it; dist/ applied afterwards rolls nothing).
                        annotations={"checksum/config": _digest(
                            {name: text for name, text in config_files.items()
                             if name != contract.PATRONI_BOOTSTRAP_FILE},
                            {name: scripts[name] for name in run_scripts})},
                    ),
                    spec=self._pod_spec(props),
                ),
                volume_claim_templates=[
                    k8s.KubePersistentVolumeClaimProps(
                        metadata=k8s.ObjectMeta(name=contract.DATA_CLAIM, labels=self.labels),
                        spec=claim_spec(props.data),
                    )
                ],
            ),
        )

        if props.pdb_min_available is not None:
            k8s.KubePodDisruptionBudget(
                self,
                "pdb",
                metadata=self._meta(props, contract.PDB),
                spec=k8s.PodDisruptionBudgetSpec(
                    min_available=k8s.IntOrString.from_number(props.pdb_min_available),
                    selector=k8s.LabelSelector(match_labels=self.selector),
                ),
            )
        elif props.pdb_max_unavailable is not None:
            k8s.KubePodDisruptionBudget(
                self,
                "pdb",
                metadata=self._meta(props, contract.PDB),
                spec=k8s.PodDisruptionBudgetSpec(
                    max_unavailable=k8s.IntOrString.from_number(props.pdb_max_unavailable),
                    selector=k8s.LabelSelector(match_labels=self.selector),
                ),
            )

    @staticmethod
    def _api_probe(path: str, failures: int) -> k8s.Probe:
        """A probe on Patroni's REST API (TLS; the kubelet does not verify the certificate)."""
        return k8s.Probe(
            http_get=k8s.HttpGetAction(path=path, port=k8s.IntOrString.from_string(contract.PATRONI_API_PORT_NAME),
                                       scheme="HTTPS"),
            period_seconds=10, timeout_seconds=5, failure_threshold=failures)

    @staticmethod
    def _patroni_env(props: DatabaseProps) -> list[k8s.EnvVar]:
        """The member's name and addresses: its pod name behind the headless Service,
        a name the server certificate holds, so members verify each other."""
        host = f"$(PATRONI_NAME).{contract.HEADLESS_SERVICE}.{props.namespace}.svc"

        def field(path: str) -> k8s.EnvVarSource:
            return k8s.EnvVarSource(field_ref=k8s.ObjectFieldSelector(field_path=path))

        return [
            k8s.EnvVar(name="PG_PATRONI_CONFIG", value=f"{contract.PATRONI_CONFIG_DIR}/{contract.PATRONI_CONFIG_FILE}"),
            k8s.EnvVar(name="PATRONI_NAME", value_from=field("metadata.name")),
            k8s.EnvVar(name="PG_BOOTSTRAP_MEMBER", value=contract.BOOTSTRAP_MEMBER),
            k8s.EnvVar(name="PATRONI_KUBERNETES_POD_IP", value_from=field("status.podIP")),
            k8s.EnvVar(name="PATRONI_POSTGRESQL_CONNECT_ADDRESS", value=f"{host}:{contract.PORT}"),
            k8s.EnvVar(name="PATRONI_RESTAPI_CONNECT_ADDRESS", value=f"{host}:{contract.PATRONI_API_PORT}"),
        ]

    def _spread(self, ha: HaProps) -> k8s.Affinity:
        """Members on different nodes: preferred, or required."""
        term = k8s.PodAffinityTerm(topology_key="kubernetes.io/hostname",
                                   label_selector=k8s.LabelSelector(match_labels=self.selector))
        if ha.required_anti_affinity:
            return k8s.Affinity(pod_anti_affinity=k8s.PodAntiAffinity(
                required_during_scheduling_ignored_during_execution=[term]))
        return k8s.Affinity(pod_anti_affinity=k8s.PodAntiAffinity(
            preferred_during_scheduling_ignored_during_execution=[
                k8s.WeightedPodAffinityTerm(weight=100, pod_affinity_term=term)]))

    def _rbac(self, props: DatabaseProps) -> None:
        """Patroni's Role (this namespace, named resources kinds, no wildcard) bound to the pods' ServiceAccount."""
        k8s.KubeRole(
            self,
            "patroni-role",
            metadata=self._meta(props, contract.PATRONI_ROLE),
            rules=[k8s.PolicyRule(api_groups=[""], resources=list(resources), verbs=list(verbs))
                   for resources, verbs in PATRONI_RULES],
        )
        k8s.KubeRoleBinding(
            self,
            "patroni-role-binding",
            metadata=self._meta(props, contract.PATRONI_ROLE),
            role_ref=k8s.RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name=contract.PATRONI_ROLE),
            subjects=[k8s.Subject(kind="ServiceAccount", name=contract.SERVICE_ACCOUNT, namespace=props.namespace)],
        )

    @staticmethod
    def _pgbackrest_conf(props: DatabaseProps) -> dict[str, str]:
        return {contract.PGBACKREST_CONF: props.config_files[contract.PGBACKREST_CONF]}

    @staticmethod
    def _pitr_server(props: DatabaseProps, pitr: PitrPodProps, env: list[k8s.EnvVar],
                     mounts: list[k8s.VolumeMount]) -> k8s.Container:
        """The `pgbackrest` sidecar: pgBackRest's TLS server, with the database
        container's environment and volumes (PGDATA, the socket, the certificates)
        but not its Secrets beyond them: the repositories' secrets stay with the jobs."""
        server_mounts = [m for m in mounts if m.mount_path not in (
            contract.SECRETS_DIR, contract.PITR_S3_SECRET_DIR, contract.PITR_S3_CA_DIR, contract.BACKUP_DIR,
            contract.PITR_REPO_DIR)]
        ping = k8s.Probe(exec=k8s.ExecAction(command=["pgbackrest", "server-ping", "localhost"]),
                         period_seconds=10, timeout_seconds=5, failure_threshold=3)
        return k8s.Container(
            name=contract.PGBACKREST_SERVER_CONTAINER,
            image=props.image,
            image_pull_policy=props.image_pull_policy,
            command=["bash", f"{contract.SCRIPTS_DIR}/pitr-server.sh"],
            env=[*env, *(k8s.EnvVar(name=k, value=v) for k, v in pitr.server_environment.items())],
            ports=[k8s.ContainerPort(name=contract.PGBACKREST_PORT_NAME, container_port=contract.PGBACKREST_PORT,
                                     protocol="TCP")],
            resources=resource_requirements(pitr.server_resources),
            readiness_probe=ping,
            liveness_probe=ping,
            volume_mounts=server_mounts,
            security_context=restricted_container(contract.POSTGRES_UID),
        )

    def _meta(self, props: DatabaseProps, name: str) -> k8s.ObjectMeta:
        return k8s.ObjectMeta(name=name, namespace=props.namespace, labels=self.labels)

    def _pod_spec(self, props: DatabaseProps) -> k8s.PodSpec:
        uid = contract.POSTGRES_UID
        ha = props.ha
        config_dir, config_map = (contract.CONFIG_DIR, contract.CONFIG_MAP) if ha is None else (
            contract.PATRONI_CONFIG_DIR, contract.PATRONI_CONFIG_MAP)
        mounts = [
            k8s.VolumeMount(name=contract.DATA_CLAIM, mount_path=contract.DATA_MOUNT),
            k8s.VolumeMount(name="config", mount_path=config_dir, read_only=True),
            k8s.VolumeMount(name="scripts", mount_path=contract.SCRIPTS_DIR, read_only=True),
            k8s.VolumeMount(name="secrets", mount_path=contract.SECRETS_DIR, read_only=True),
            k8s.VolumeMount(name="ca", mount_path=contract.CA_DIR, read_only=True),
            k8s.VolumeMount(name="run", mount_path=contract.RUN_DIR),
            k8s.VolumeMount(name="tmp", mount_path=contract.TMP_DIR),
            k8s.VolumeMount(name="shm", mount_path=contract.SHM_DIR),
        ]
        volumes = [
            k8s.Volume(name="config", config_map=k8s.ConfigMapVolumeSource(name=config_map, default_mode=CONFIG_FILE_MODE)),
            k8s.Volume(name="scripts", config_map=k8s.ConfigMapVolumeSource(name=contract.SCRIPTS_CONFIG_MAP, default_mode=SCRIPT_FILE_MODE)),
            secret_volume("secrets", props.secrets),
            secret_volume("ca", props.ca),
            k8s.Volume(name="run", empty_dir=k8s.EmptyDirVolumeSource(size_limit=quantity("64Mi"))),
            k8s.Volume(name="tmp", empty_dir=k8s.EmptyDirVolumeSource(size_limit=quantity("1Gi"))),
            k8s.Volume(
                name="shm",
                empty_dir=k8s.EmptyDirVolumeSource(medium="Memory", size_limit=quantity(str(props.shm_size_bytes))),
            ),
        ]
        if ha is not None and props.pitr is not None:
            mounts.append(k8s.VolumeMount(name="pgbackrest-config", mount_path=contract.CONFIG_DIR, read_only=True))
            volumes.append(k8s.Volume(name="pgbackrest-config", config_map=k8s.ConfigMapVolumeSource(
                name=contract.CONFIG_MAP, default_mode=CONFIG_FILE_MODE)))
        if props.tls is not None:
            mounts.append(k8s.VolumeMount(name="tls", mount_path=contract.TLS_DIR, read_only=True))
            volumes.append(secret_volume("tls", props.tls))
        if props.backups is not None:
            mounts.append(k8s.VolumeMount(name="backups", mount_path=contract.BACKUP_DIR))
            volumes.append(
                k8s.Volume(name="backups", persistent_volume_claim=k8s.PersistentVolumeClaimVolumeSource(claim_name=contract.BACKUP_CLAIM))
            )

        pitr = props.pitr
        if pitr is not None and pitr.repo_claim is not None:
            mounts.append(k8s.VolumeMount(name="pitr-repo", mount_path=contract.PITR_REPO_DIR))
            volumes.append(k8s.Volume(
                name="pitr-repo", persistent_volume_claim=k8s.PersistentVolumeClaimVolumeSource(claim_name=contract.PITR_CLAIM)))
        for name, path, files in (("pitr-s3", contract.PITR_S3_SECRET_DIR, pitr and pitr.s3_credentials),
                                  ("pitr-s3-ca", contract.PITR_S3_CA_DIR, pitr and pitr.s3_ca)):
            if files:
                mounts.append(k8s.VolumeMount(name=name, mount_path=path, read_only=True))
                volumes.append(secret_volume(name, files))

        def probe(kind: str, period: int, failures: int) -> k8s.Probe:
            return k8s.Probe(
                exec=k8s.ExecAction(command=["bash", f"{contract.SCRIPTS_DIR}/probe.sh", kind]),
                period_seconds=period,
                timeout_seconds=5,
                failure_threshold=failures,
            )

        env = [k8s.EnvVar(name=k, value=v) for k, v in props.environment.items()]
        ports = [k8s.ContainerPort(name=contract.PORT_NAME, container_port=contract.PORT, protocol="TCP")]
        command = ["bash", f"{contract.SCRIPTS_DIR}/start.sh"]
        # initdb or crash recovery of a large database may take a while: allow 30 minutes.
        probes = {"startup_probe": probe("startup", 10, 180), "readiness_probe": probe("ready", 10, 3),
                  "liveness_probe": probe("live", 10, 6)}
        if ha is not None:
            command = ["bash", f"{contract.SCRIPTS_DIR}/patroni.sh"]
            env += self._patroni_env(props)
            ports.append(k8s.ContainerPort(name=contract.PATRONI_API_PORT_NAME, container_port=contract.PATRONI_API_PORT,
                                           protocol="TCP"))
            probes = {"startup_probe": self._api_probe("/liveness", 180), "readiness_probe": self._api_probe("/readiness", 3),
                      "liveness_probe": self._api_probe("/liveness", 6)}
        container = k8s.Container(
            name=contract.CONTAINER,
            image=props.image,
            image_pull_policy=props.image_pull_policy,
            command=command,
            env=env,
            ports=ports,
            resources=resource_requirements(props.resources),
            volume_mounts=mounts,
            security_context=restricted_container(uid),
            **probes,
        )
        sidecar = ExporterSidecar(self, "exporter", props=props.exporter) if props.exporter else None
        pitr_server = [self._pitr_server(props, pitr, env, mounts)] if pitr is not None else []
        return k8s.PodSpec(
            service_account_name=contract.SERVICE_ACCOUNT,
            # Patroni keeps its leader lock in the API server: only the HA pods get a token.
            automount_service_account_token=ha is not None,
            affinity=self._spread(ha) if ha is not None else None,
            topology_spread_constraints=[k8s.TopologySpreadConstraint(
                max_skew=1, topology_key="topology.kubernetes.io/zone", when_unsatisfiable="ScheduleAnyway",
                label_selector=k8s.LabelSelector(match_labels=self.selector))] if ha is not None else None,
            enable_service_links=False,
            # A fast shutdown writes a checkpoint; give it time before the kubelet kills the server.
            termination_grace_period_seconds=120,
            security_context=restricted_pod(uid),
            # The metrics sidecar (when enabled) shares the pod for the Unix socket.
            containers=[container, *pitr_server, *(sidecar.containers if sidecar else [])],
            volumes=[*volumes, *(sidecar.volumes if sidecar else [])],
        )
