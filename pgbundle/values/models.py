"""The values file, as a typed model.

Keys follow the old Helm chart's `values.yaml` (camelCase, same nesting) so a
user can carry their file over; keys the chart never had are documented here.
Every model forbids unknown keys: a typo such as `replica` is an error, not a
silently ignored setting. Every field's default is what happens when the key
is left out. Field types are in fields.py; the larger sections (tls, network,
backup, metrics) in modules of their own beside this one.
"""

from __future__ import annotations

from functools import cached_property
from typing import Annotated, Literal

from pydantic import Field, PlainValidator, model_validator

from pgbundle.contract import (
    MONITORING_ROLE,
    POOLER_AUTH_ROLE,
    POOLER_STATS_USER,
    REPLICATION_ROLE,
    REWIND_ROLE,
    TEMPORAL_DATABASES,
)
from pgbundle.values.backup import BackupValues
from pgbundle.values.fields import (
    Cidr,
    DnsLabel,
    PostgresImageValues,
    PgMemory,
    PgName,
    ResourcesValues,
    StorageSize,
    Values,
)
from pgbundle.values.ha import HaValues
from pgbundle.values.metrics import MetricsValues
from pgbundle.values.names import StorageClass
from pgbundle.values.network import NetworkPolicyValues
from pgbundle.values.pitr import PITR_OWNED_PARAMETERS, PitrValues
from pgbundle.values.pooler import PoolerValues, connection_budget_error
from pgbundle.values.tls import CaValues, SecretsValues, TlsValues
from pgbundle.values.tuning import Tuning, derive_tuning


# --- global ---------------------------------------------------------------


class GlobalValues(Values):
    """Settings of every object the app emits."""

    namespace: DnsLabel = "api-forge-prod"
    """Namespace of every object. Left out: api-forge-prod."""
    create_namespace: bool = True
    """Emit the Namespace object (labelled for the restricted Pod Security
    Standard). Left out: emitted; set false when the namespace is managed elsewhere."""
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    """Pull policy of every container. Left out: IfNotPresent (the tag is pinned)."""



# --- postgres -------------------------------------------------------------


class VolumeValues(Values):
    enabled: bool = True
    """Keep this data on a PersistentVolumeClaim. Left out: true."""
    size: StorageSize
    storage_class: StorageClass = ""
    """StorageClass name; "" uses the cluster's default class."""


class DataVolumeValues(VolumeValues):
    """The data volume of each database pod (a PVC per replica)."""

    size: StorageSize = "20Gi"
    """Size of each replica's data volume. Left out: 20Gi."""

    @model_validator(mode="after")
    def _persistent(self) -> DataVolumeValues:
        if not self.enabled:
            raise ValueError(
                "enabled: false would keep the database on an emptyDir and lose it with the "
                "pod; the data volume is always persistent, remove this key"
            )
        return self


class BackupVolumeValues(VolumeValues):
    """The volume `postgres-backups` the backup job writes to."""

    size: StorageSize = "40Gi"
    """Size of the backup volume `postgres-backups`. Left out: 40Gi."""
    access_mode: Literal["ReadWriteOnce", "ReadWriteMany"] = "ReadWriteOnce"
    """Access mode of `postgres-backups`. With ReadWriteOnce the backup job must
    run on the database pod's node. Left out: ReadWriteOnce."""


class PersistenceValues(Values):
    """The PersistentVolumeClaims: the database's data and the backups'."""

    data: DataVolumeValues = Field(default_factory=DataVolumeValues)
    backups: BackupVolumeValues = Field(default_factory=BackupVolumeValues)


class LoggingValues(Values):
    """Where PostgreSQL's log goes."""

    to_file: bool = False
    """Also keep log files on the data volume. Left out: JSON lines on stderr only,
    which the cluster's log pipeline collects."""
    retention_days: int = Field(default=7, ge=1, le=365)
    """Days of log files kept when `toFile` is true. Left out: 7."""


def _parameter_value(value: object) -> str | int | float | bool:
    # One check instead of a union, so that a list or a mapping gets one error line, not one per member.
    if not isinstance(value, (str, int, float, bool)):
        raise ValueError(f"{value!r} is a {type(value).__name__}: a setting takes a string, a number or a boolean")
    return value


ParameterValue = Annotated[str | int | float | bool, PlainValidator(_parameter_value)]


class ConfigValues(Values):
    """postgresql.conf: the memory settings are derived from the memory limit unless set here."""

    max_connections: int = Field(default=200, ge=10, le=10000)
    """`max_connections`. Left out: 200, as in the old chart."""
    shared_buffers: PgMemory | None = None
    """Left out: a quarter of `resources.limits.memory`."""
    effective_cache_size: PgMemory | None = None
    """Left out: three quarters of `resources.limits.memory`."""
    work_mem: PgMemory | None = None
    """Left out: sized so that max_connections x work_mem fits beside shared_buffers."""
    maintenance_work_mem: PgMemory | None = None
    """Left out: derived from the memory limit (at most 1GB)."""
    parameters: dict[str, ParameterValue] = {}
    """Any other postgresql.conf setting, written last so it overrides. Names and
    values are checked against the image's PostgreSQL major, and settings the
    product owns are refused (pgbundle/values/parameters.py). Left out: none."""


class PodDisruptionBudgetValues(Values):
    """The PodDisruptionBudget of the database pods."""

    enabled: bool = True
    """Emit the PodDisruptionBudget `postgres`. Left out: true."""
    min_available: int = Field(default=1, ge=0)
    """Pods kept through voluntary disruptions. Left out: 1."""



class TemporalValues(Values):
    """Databases and roles for Temporal (`temporal`, `temporal_visibility`)."""

    enabled: bool = False
    """Create the `temporal` and `temporal_visibility` databases. Left out: false."""
    username: PgName = "temporaluser"
    """LOGIN role Temporal connects and migrates as (USAGE and CREATE on `public` in
    both databases, nothing in the application database); its password is
    `postgres_temporal_pw`. Left out: temporaluser, as in the old chart and api-forge."""
    owner_username: PgName = "temporalowner"
    """NOLOGIN role that owns both Temporal databases. Left out: temporalowner. Set it
    equal to `username` to keep the earlier single-role model (one LOGIN role owns
    the databases), as examples/temporal-single-role.yaml does."""
    previous_username: PgName | None = None
    """A LOGIN role that owned the Temporal databases and their tables before (the
    single-role model): on every start its objects there are handed to `username`
    and it can no longer log in. Left out: none."""

    @model_validator(mode="after")
    def _check(self) -> TemporalValues:
        if self.previous_username is not None and self.previous_username in (self.username, self.owner_username):
            raise ValueError(
                f"previousUsername: {self.previous_username!r} is a current Temporal role; name the role "
                "that owned the databases before, or leave the key out"
            )
        return self



# PostgreSQL's (and Patroni's) default max_wal_senders and max_replication_slots
# are 10: a primary with 9 standbys, one of them being rebuilt by pg_basebackup
# (two WAL senders), uses all 10. (The TLS Secret's four names per member stay far
# below Kubernetes' 1 MiB Secret limit at this size.)
MAX_REPLICAS = 10
# Databases every PostgreSQL cluster has: the application database cannot be one.
_TEMPLATE_DATABASES = ("template0", "template1")


class PostgresValues(Values):
    """The database: image, roles, resources, storage and every feature around it."""

    image: PostgresImageValues = Field(default_factory=PostgresImageValues)
    replicas: int = Field(default=1, ge=1)
    """Database pods. 1: a single PostgreSQL. 2 to 10: a Patroni cluster with
    streaming replication and automatic failover (3 recommended; needs `ha.image`);
    10 because the primary's default 10 WAL senders must serve every standby and a
    member being rebuilt. Left out: 1."""
    database: PgName = "appdb"
    """Application database. Left out: appdb."""
    schema_: PgName = Field(default="app", alias="schema")
    """Application schema, owned by the owner role. Left out: app."""
    username: PgName = "appuser"
    """Runtime read/write role. Left out: appuser."""
    owner_username: PgName = "appowner"
    """NOLOGIN role that owns the database and schema. Left out: appowner."""
    read_only_username: PgName = "backupuser"
    """Read-only role (backups, reporting). Left out: backupuser."""
    migrator_username: PgName = "appmigrator"
    """LOGIN role for schema migrations: a member of the owner role whose sessions act
    as the owner with the schema first on the search path; its password is
    `postgres_app_migrator_pw`. Left out: appmigrator."""
    resources: ResourcesValues = Field(default_factory=ResourcesValues)
    persistence: PersistenceValues = Field(default_factory=PersistenceValues)
    config: ConfigValues = Field(default_factory=ConfigValues)
    logging: LoggingValues = Field(default_factory=LoggingValues)
    tls: TlsValues = Field(default_factory=TlsValues)
    ca: CaValues = Field(default_factory=CaValues)
    secrets: SecretsValues = Field(default_factory=SecretsValues)
    pod_disruption_budget: PodDisruptionBudgetValues = Field(default_factory=PodDisruptionBudgetValues)
    network_policy: NetworkPolicyValues = Field(default_factory=NetworkPolicyValues)
    temporal: TemporalValues = Field(default_factory=TemporalValues)
    backup: BackupValues = Field(default_factory=BackupValues)
    metrics: MetricsValues = Field(default_factory=MetricsValues)
    ha: HaValues = Field(default_factory=HaValues)
    """High availability with Patroni, used when replicas >= 2."""
    pitr: PitrValues = Field(default_factory=PitrValues)
    """Point-in-time recovery with pgBackRest (pgbundle/values/pitr.py). Left out: off."""
    pooler: PoolerValues = Field(default_factory=PoolerValues)
    """PgBouncer in front of the database. Left out: off."""
    allowed_cidrs: list[Cidr] = Field(
        default=["0.0.0.0/0", "::/0"], min_length=1
    )
    """Client networks pg_hba.conf admits over TCP (TLS and SCRAM still required).
    Left out: every IPv4 and IPv6 address, because the NetworkPolicy is the
    pod-level filter and pod addresses change."""

    @model_validator(mode="after")
    def _check(self) -> PostgresValues:
        if self.replicas > MAX_REPLICAS:
            raise ValueError(
                f"replicas: {self.replicas} is above {MAX_REPLICAS}: the primary serves each standby with one of its "
                f"{MAX_REPLICAS} WAL senders (max_wal_senders, also Patroni's max_replication_slots) and a member "
                "being rebuilt with two; use 3 (recommended) to 10")
        if self.replicas > 1:
            if self.ha.image is None:
                raise ValueError(
                    f"ha.image: required with replicas: {self.replicas}: the official postgres image has no "
                    "Patroni. Build image/Dockerfile and push it (docs/high-availability.md; the "
                    "repository's image workflow does it on tags), then set postgres.ha.image.repository and tag")
            if not self.tls.enabled:
                raise ValueError(f"tls.enabled: false cannot run replicas: {self.replicas}: members replicate over TLS only")
            if self.network_policy.enabled and not self.ha.api_server_cidrs:
                raise ValueError(
                    "ha.apiServerCidrs: required with networkPolicy.enabled and replicas >= 2: Patroni keeps its "
                    "leader lock in the Kubernetes API; list the API server's addresses (kubectl get endpoints "
                    "kubernetes -n default)")
        self._roles_distinct()
        self._databases_distinct()
        pdb = self.pod_disruption_budget
        if pdb.enabled and pdb.min_available > self.replicas:
            raise ValueError(
                f"podDisruptionBudget.minAvailable: {pdb.min_available} is above replicas "
                f"({self.replicas}): the budget could never be met; use at most {self.replicas}"
            )
        if not self.tls.enabled and self.ca.verify_clients:
            raise ValueError("ca.verifyClients: true needs tls.enabled: true (client certificates travel in TLS)")
        if self.backup.enabled and not self.persistence.backups.enabled:
            raise ValueError(
                "backup.enabled: true needs persistence.backups.enabled: true (the backup job writes "
                "to the postgres-backups volume); enable the volume or set backup.enabled: false"
            )
        if not self.tls.enabled and self.tls.cert_manager.enabled:
            raise ValueError("tls.certManager.enabled: true needs tls.enabled: true (cert-manager issues the server certificate)")
        if self.pooler.enabled:
            self._check_pooler()
        self.tuning  # noqa: B018 - raises "config: ..." naming the fields when they do not fit
        return self

    def _check_pooler(self) -> None:
        if not self.tls.enabled:
            raise ValueError("pooler.enabled: true needs tls.enabled: true (the pooler serves TLS and verifies "
                             "the database's certificate)")
        if self.pooler.read_only.enabled and self.replicas < 2:
            raise ValueError(f"pooler.readOnly.enabled: true needs postgres.replicas 2 or more (it is {self.replicas}: "
                             "without standbys there is no Service postgres-replicas to read from)")
        for read_only in (False, True) if self.pooler.read_only.enabled else (False,):
            error = connection_budget_error(
                self.pooler, databases=len(self.pooler_databases), max_connections=self.config.max_connections,
                parameters=dict(self.config.parameters), metrics=self.metrics.enabled, replicas=self.replicas,
                read_only=read_only)
            if error is not None:
                raise ValueError(f"pooler.{error}")

    def _roles_distinct(self) -> None:
        """Every role gets its own name: a shared one would merge two roles' rights
        (an application role that is Patroni's replication role, say)."""
        taken = {"Patroni's replication role": REPLICATION_ROLE, "Patroni's rewind role": REWIND_ROLE}
        configured = {"username": self.username, "ownerUsername": self.owner_username,
                      "readOnlyUsername": self.read_only_username, "migratorUsername": self.migrator_username}
        if self.temporal.enabled:
            configured |= {"temporal.username": self.temporal.username,
                           "temporal.ownerUsername": self.temporal.owner_username,
                           "temporal.previousUsername": self.temporal.previous_username}
        owners = {role: key for key, role in taken.items()}
        for key, role in configured.items():
            if role is None:
                continue
            # One role may both own and use the Temporal databases (the single-role model).
            single_role = {key, owners.get(role)} == {"temporal.username", "temporal.ownerUsername"}
            if role in owners and not single_role:
                raise ValueError(f"{key}: {role!r} is also {owners[role]}: every role needs its own name; "
                                 f"choose another for {key}")
            owners.setdefault(role, key)

    def _databases_distinct(self) -> None:
        if self.database in _TEMPLATE_DATABASES:
            raise ValueError(f"database: {self.database!r} is a PostgreSQL template database; choose another name")
        if self.temporal.enabled and self.database in TEMPORAL_DATABASES:
            raise ValueError(
                f"database: {self.database!r} is a Temporal database (temporal.enabled creates "
                f"{' and '.join(TEMPORAL_DATABASES)}): choose another name for the application database")

    @model_validator(mode="after")
    def _monitoring_role_free(self) -> PostgresValues:
        # The exporter's role is fixed (its grants are the point): no other role may take its name.
        taken = {"username": self.username, "ownerUsername": self.owner_username,
                 "readOnlyUsername": self.read_only_username, "migratorUsername": self.migrator_username,
                 "temporal.username": self.temporal.username,
                 "temporal.ownerUsername": self.temporal.owner_username,
                 "temporal.previousUsername": self.temporal.previous_username}
        for key, role in taken.items():
            if self.metrics.enabled and role == MONITORING_ROLE:
                raise ValueError(f"{key}: {role!r} is the metrics exporter's role; choose another name")
            if role == POOLER_AUTH_ROLE:
                raise ValueError(f"{key}: {role!r} is the pooler's auth role; choose another name")
            # Its line in the pooler's auth file would shadow the database role's password.
            if self.pooler.enabled and self.metrics.enabled and role == POOLER_STATS_USER:
                raise ValueError(f"{key}: {role!r} is the pooler's metrics login; choose another name")
        return self


    @model_validator(mode="after")
    def _pitr_needs(self) -> PostgresValues:
        pitr = self.pitr
        if not pitr.enabled:
            return self
        if self.ha.image is None:
            raise ValueError(
                "ha.image: required with pitr.enabled: true: the official postgres image has no pgBackRest. "
                "Build image/Dockerfile (it carries Patroni and pgBackRest) and push it (docs/high-availability.md), "
                "then set postgres.ha.image.repository and tag")
        if not self.tls.enabled:
            raise ValueError("pitr.enabled: true needs tls.enabled: true: the backup jobs reach pgBackRest in the "
                             "database pod over mutual TLS (its server certificate, their client certificate)")
        volume = pitr.repos.volume
        # Every member archives (as primary) and restores (as a new replica) into the
        # same repository: a volume all of them mount, or S3 alone.
        if self.replicas > 1 and volume.enabled and not (
                volume.claim == "backups" and self.persistence.backups.access_mode == "ReadWriteMany"):
            raise ValueError(
                f"pitr.repos.volume with replicas: {self.replicas} needs a volume every member mounts: set "
                "pitr.repos.volume.claim: backups with persistence.backups.accessMode: ReadWriteMany, or "
                "pitr.repos.volume.enabled: false with pitr.repos.s3.enabled: true")
        if pitr.repos.volume.enabled and pitr.repos.volume.claim == "backups" and not self.persistence.backups.enabled:
            raise ValueError(
                "pitr.repos.volume.claim: backups needs persistence.backups.enabled: true; enable the volume "
                "or use claim: own")
        s3 = pitr.repos.s3
        if s3.enabled and self.network_policy.enabled and not s3.egress_cidrs:
            raise ValueError(
                "pitr.repos.s3.egressCidrs: required with networkPolicy.enabled: the database pods archive WAL "
                f"to {s3.endpoint}; list its addresses (CIDRs)")
        owned = sorted(set(self.config.parameters) & PITR_OWNED_PARAMETERS)
        if owned:
            raise ValueError(f"config.parameters: {owned[0]} is set by pitr.enabled: true; remove it "
                             "(archiveTimeoutSeconds sets archive_timeout)")
        return self

    @cached_property
    def tuning(self) -> Tuning:
        """Memory and worker settings derived from the limits (computed once)."""
        return derive_tuning(self.config, memory_limit=self.resources.limits.memory,
                             cpu_limit=self.resources.limits.cpu, data_size=self.persistence.data.size)

    @property
    def job_client_certificate(self) -> bool:
        """A job presents the read-only role's client certificate: the pg_dump job
        when the server verifies clients, the PITR backup jobs always (mutual TLS
        with pgBackRest's server). One Secret, `backup.clientCertificate.existingSecret`."""
        return self.tls.enabled and ((self.ca.verify_clients and self.backup.enabled) or self.pitr.enabled)

    @property
    def pooler_databases(self) -> list[str]:
        """The databases the pooler serves: the application's, and Temporal's when enabled."""
        return [self.database, *(TEMPORAL_DATABASES if self.temporal.enabled else ())]

    @property
    def pooler_roles(self) -> list[str]:
        """The login roles the pooler's auth function admits: the application's
        runtime and read-only roles, and Temporal's. Never the superuser, the
        replication, rewind or monitoring roles; nor the migration role, whose
        Job connects to the database directly."""
        return [self.username, self.read_only_username, *([self.temporal.username] if self.temporal.enabled else [])]

    @property
    def backup_databases(self) -> list[str]:
        """The databases the backup job dumps (`backup.databases`, else the defaults)."""
        if self.backup.databases is not None:
            return list(self.backup.databases)
        found = [self.database]
        if self.temporal.enabled:
            found += list(TEMPORAL_DATABASES)
        return found


class ChartValues(Values):
    """The whole values file."""

    global_: GlobalValues = Field(default_factory=GlobalValues, alias="global")
    postgres: PostgresValues = Field(default_factory=PostgresValues)
