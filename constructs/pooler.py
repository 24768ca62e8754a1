"""The connection pooler: PgBouncer as Deployment `postgres-pooler` behind the
Service `postgres-pooler`, with its configuration, disruption budget and
ServiceAccount. It reaches the database through the Service `postgres`, which
leads to the primary, so it follows a failover without being told. The
read-only pooler is a second one, `postgres-pooler-ro`, whose pgbouncer.ini
names the Service `postgres-replicas` instead."""

from __future__ import annotations

import hashlib
from pathlib import Path

from constructs import Construct
from pydantic import BaseModel, ConfigDict

from imports import k8s
from pgbundle import contract
from pgbundle.contract import CONFIG_FILE_MODE, SCRIPT_FILE_MODE
from pgbundle.k8s.objects import SecretFiles, secret_volume
from pgbundle.k8s.podsecurity import Resources, resource_requirements, restricted_container, restricted_pod
from pgbundle.k8s.quantity import quantity

SCRIPTS = Path(__file__).parent / "scripts" / "pooler"


class PoolerProps(BaseModel):
    """What the Pooler construct needs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    namespace: str
    """Namespace of every object (required)."""
    image: str
    """PgBouncer image reference (required)."""
    version: str
    """The app.kubernetes.io/version label: the image tag (required)."""
    replicas: int
    """Pooler pods (required)."""
    config: str
    """pgbouncer.ini (required)."""
    hba: str
    """The pooler's pg_hba.conf (required)."""
    environment: dict[str, str]
    """What pooler.sh and pooler-probe.sh read, pod paths (required)."""
    resources: Resources
    """Requests and limits of the PgBouncer container (required)."""
    password: SecretFiles
    """The auth role's password, as its key's file (required)."""
    tls: SecretFiles
    """The pooler's certificate and key as tls.crt/tls.key (required)."""
    ca: SecretFiles
    """The CA as ca.crt: the database's certificate is checked against it (required)."""
    exporter: PoolerExporterProps | None = None
    """The metrics exporter sidecar. Left out: none (metrics off)."""
    name: str = contract.POOLER
    """Name of every object of this pooler. Left out: postgres-pooler."""
    component: str = contract.POOLER_COMPONENT
    """The component label that selects its pods. Left out: pooler."""
    pdb_min_available: int | None = None
    """minAvailable of the PodDisruptionBudget. Left out: no budget."""
    required_anti_affinity: bool = False
    """Never two pooler pods on one node. Left out: preferred only."""
    image_pull_policy: str = "IfNotPresent"
    """Pull policy. Left out: IfNotPresent."""


class PoolerExporterProps(BaseModel):
    """The pgbouncer_exporter sidecar: it reads PgBouncer's admin console over the
    Unix socket as the stats user."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    image: str
    """Image reference of the exporter (required)."""
    resources: Resources
    """Requests and limits of the exporter (required)."""


def exporter_connection() -> str:
    """The exporter's connection to the admin console (lib/pq key=value form): the
    socket PgBouncer listens on beside its TCP port; the password from the pgpass
    file pooler.sh writes there."""
    return (f"host={contract.POOLER_SOCKET_DIR} port={contract.PORT} dbname={contract.POOLER_ADMIN_DATABASE} "
            f"user={contract.POOLER_STATS_USER} sslmode=disable")


def pooler_scripts() -> dict[str, str]:
    """The pooler pod's scripts, keyed by file name."""
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(SCRIPTS.iterdir()) if p.is_file()}


def _digest(document: dict[str, str]) -> str:
    sha = hashlib.sha256()
    for key in sorted(document):
        sha.update(key.encode() + b"\0" + document[key].encode() + b"\0")
    return sha.hexdigest()


class Pooler(Construct):
    """Deployment, Service, ConfigMap, ServiceAccount and PDB named `props.name`."""

    def __init__(self, scope: Construct, id: str, *, props: PoolerProps) -> None:
        super().__init__(scope, id)
        self.labels = contract.object_labels(props.component, props.version)
        self.selector = contract.selector_labels(props.component)
        files = {contract.POOLER_CONFIG_FILE: props.config, contract.POOLER_HBA_FILE: props.hba, **pooler_scripts()}

        k8s.KubeServiceAccount(self, "service-account", metadata=self._meta(props),
                               automount_service_account_token=False)
        k8s.KubeConfigMap(self, "config", metadata=self._meta(props), data=files)
        k8s.KubeService(
            self, "service", metadata=self._meta(props),
            spec=k8s.ServiceSpec(type="ClusterIP", selector=self.selector, ports=[k8s.ServicePort(
                name=contract.PORT_NAME, port=contract.PORT,
                target_port=k8s.IntOrString.from_string(contract.PORT_NAME))]))
        k8s.KubeDeployment(
            self, "deployment", metadata=self._meta(props),
            spec=k8s.DeploymentSpec(
                replicas=props.replicas,
                selector=k8s.LabelSelector(match_labels=self.selector),
                # One new pod before an old one goes: capacity never drops (the
                # connection budget counts that extra pod).
                strategy=k8s.DeploymentStrategy(type="RollingUpdate", rolling_update=k8s.RollingUpdateDeployment(
                    max_surge=k8s.IntOrString.from_number(1), max_unavailable=k8s.IntOrString.from_number(0))),
                template=k8s.PodTemplateSpec(
                    # A changed pgbouncer.ini or script rolls the pods.
                    metadata=k8s.ObjectMeta(labels=self.labels, annotations={"checksum/config": _digest(files)}),
                    spec=self._pod_spec(props))))
        if props.pdb_min_available is not None:
            k8s.KubePodDisruptionBudget(
                self, "pdb", metadata=self._meta(props),
                spec=k8s.PodDisruptionBudgetSpec(min_available=k8s.IntOrString.from_number(props.pdb_min_available),
                                                 selector=k8s.LabelSelector(match_labels=self.selector)))

    def _meta(self, props: PoolerProps) -> k8s.ObjectMeta:
        return k8s.ObjectMeta(name=props.name, namespace=props.namespace, labels=self.labels)

    def _affinity(self, props: PoolerProps) -> k8s.Affinity:
        term = k8s.PodAffinityTerm(topology_key="kubernetes.io/hostname",
                                   label_selector=k8s.LabelSelector(match_labels=self.selector))
        if props.required_anti_affinity:
            return k8s.Affinity(pod_anti_affinity=k8s.PodAntiAffinity(
                required_during_scheduling_ignored_during_execution=[term]))
        return k8s.Affinity(pod_anti_affinity=k8s.PodAntiAffinity(
            preferred_during_scheduling_ignored_during_execution=[
                k8s.WeightedPodAffinityTerm(weight=100, pod_affinity_term=term)]))

    def _pod_spec(self, props: PoolerProps) -> k8s.PodSpec:
        uid = contract.POOLER_UID

        def probe(period: int, failures: int) -> k8s.Probe:
            return k8s.Probe(
                exec=k8s.ExecAction(command=["bash", f"{contract.POOLER_SCRIPTS_DIR}/pooler-probe.sh"]),
                period_seconds=period, timeout_seconds=5, failure_threshold=failures)

        config_dir = contract.POOLER_CONFIG_DIR
        container = k8s.Container(
            name=contract.POOLER_CONTAINER,
            image=props.image,
            image_pull_policy=props.image_pull_policy,
            command=["bash", f"{contract.POOLER_SCRIPTS_DIR}/pooler.sh"],
            env=[k8s.EnvVar(name=k, value=v) for k, v in props.environment.items()],
            ports=[k8s.ContainerPort(name=contract.PORT_NAME, container_port=contract.PORT, protocol="TCP")],
            resources=resource_requirements(props.resources),
            startup_probe=probe(2, 30), readiness_probe=probe(10, 3), liveness_probe=probe(10, 6),
            volume_mounts=[
                k8s.VolumeMount(name="config", mount_path=config_dir, read_only=True),
                k8s.VolumeMount(name="scripts", mount_path=contract.POOLER_SCRIPTS_DIR, read_only=True),
                k8s.VolumeMount(name="secrets", mount_path=contract.POOLER_SECRETS_DIR, read_only=True),
                k8s.VolumeMount(name="tls", mount_path=contract.POOLER_TLS_DIR, read_only=True),
                k8s.VolumeMount(name="ca", mount_path=contract.POOLER_CA_DIR, read_only=True),
                k8s.VolumeMount(name="run", mount_path=contract.POOLER_RUN_DIR),
                *([k8s.VolumeMount(name="socket", mount_path=contract.POOLER_SOCKET_DIR)] if props.exporter else []),
            ],
            security_context=restricted_container(uid),
        )
        config_items = [k8s.KeyToPath(key=name, path=name)
                        for name in (contract.POOLER_CONFIG_FILE, contract.POOLER_HBA_FILE)]
        script_items = [k8s.KeyToPath(key=name, path=name) for name in pooler_scripts()]
        containers = [container]
        volumes = [
            k8s.Volume(name="config", config_map=k8s.ConfigMapVolumeSource(
                name=props.name, items=config_items, default_mode=CONFIG_FILE_MODE)),
            k8s.Volume(name="scripts", config_map=k8s.ConfigMapVolumeSource(
                name=props.name, items=script_items, default_mode=SCRIPT_FILE_MODE)),
            secret_volume("secrets", props.password),
            secret_volume("tls", props.tls),
            secret_volume("ca", props.ca),
            # The auth file (a password): in memory, never on the node's disk.
            k8s.Volume(name="run", empty_dir=k8s.EmptyDirVolumeSource(medium="Memory", size_limit=quantity("1Mi"))),
        ]
        if props.exporter is not None:
            containers.append(self._exporter(props.exporter, props.image_pull_policy))
            # The Unix socket: a folder of its own, so the exporter never sees the auth file.
            volumes.append(k8s.Volume(name="socket", empty_dir=k8s.EmptyDirVolumeSource(
                medium="Memory", size_limit=quantity("1Mi"))))
        return k8s.PodSpec(
            service_account_name=props.name,
            automount_service_account_token=False,
            affinity=self._affinity(props),
            topology_spread_constraints=[k8s.TopologySpreadConstraint(
                max_skew=1, topology_key="topology.kubernetes.io/zone", when_unsatisfiable="ScheduleAnyway",
                label_selector=k8s.LabelSelector(match_labels=self.selector))],
            enable_service_links=False,
            # PgBouncer's SIGTERM waits for its clients to leave; after this the kubelet ends it.
            termination_grace_period_seconds=30,
            security_context=restricted_pod(uid),
            containers=containers,
            volumes=volumes,
        )

    @staticmethod
    def _exporter(props: PoolerExporterProps, image_pull_policy: str) -> k8s.Container:
        def probe(failures: int) -> k8s.Probe:
            # The landing page, not /metrics: a probe must not query PgBouncer.
            return k8s.Probe(
                http_get=k8s.HttpGetAction(path="/", port=k8s.IntOrString.from_string(contract.METRICS_PORT_NAME)),
                period_seconds=10, timeout_seconds=5, failure_threshold=failures)

        return k8s.Container(
            name=contract.POOLER_EXPORTER_CONTAINER,
            image=props.image,
            image_pull_policy=image_pull_policy,
            args=[f"--web.listen-address=:{contract.POOLER_METRICS_PORT}", "--log.format=json"],
            env=[
                k8s.EnvVar(name="PGBOUNCER_EXPORTER_CONNECTION_STRING", value=exporter_connection()),
                k8s.EnvVar(name="PGPASSFILE", value=contract.POOLER_STATS_PASSFILE),
            ],
            ports=[k8s.ContainerPort(name=contract.METRICS_PORT_NAME, container_port=contract.POOLER_METRICS_PORT,
                                     protocol="TCP")],
            resources=resource_requirements(props.resources),
            readiness_probe=probe(3), liveness_probe=probe(6),
            # Read-only is enough to connect to a socket.
            volume_mounts=[k8s.VolumeMount(name="socket", mount_path=contract.POOLER_SOCKET_DIR, read_only=True)],
            # PgBouncer's uid: the pgpass file is its, mode 0600 (contract.POOLER_STATS_PASSFILE).
            security_context=restricted_container(contract.POOLER_UID),
        )
