"""`postgres.pooler`: PgBouncer in front of the database (Deployment and Service
`postgres-pooler`), and the connection budget it must fit in."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from pgbundle.contract import POOLER_EXPORTER_VERSION, POOLER_VERSION
from pgbundle.values.fields import DnsLabel, ImageValues, ResourceAmounts, ResourcesValues, Values
from pgbundle.values.names import ImageRepository, ImageTag


class PoolerImageValues(ImageValues):
    """The PgBouncer image."""

    repository: ImageRepository = "ghcr.io/cloudnative-pg/pgbouncer"
    """PgBouncer image. Left out: the CloudNativePG project's image (Debian's
    pgbouncer package on debian-slim, maintained for their Pooler resource; the
    command line is set here, so only /usr/bin/pgbouncer and bash are used)."""
    tag: ImageTag = POOLER_VERSION
    """Image tag. Left out: the PgBouncer version the local tests run
    (contract.POOLER_VERSION); at least 1.21 is needed (prepared statements in
    transaction mode, auth_dbname)."""


class PoolerResourcesValues(ResourcesValues):
    """Requests and limits of each pooler pod."""

    requests: ResourceAmounts = ResourceAmounts(cpu="50m", memory="64Mi")
    """Scheduling requests of each pooler pod. Left out: 50m CPU, 64Mi memory."""
    limits: ResourceAmounts = ResourceAmounts(cpu="1000m", memory="256Mi")
    """Limits of each pooler pod (PgBouncer is single-threaded: one CPU is its
    ceiling). Left out: 1000m CPU, 256Mi memory."""


class PoolerExporterImageValues(ImageValues):
    repository: ImageRepository = "quay.io/prometheuscommunity/pgbouncer-exporter"
    """The pooler's metrics exporter (prometheus-community's pgbouncer_exporter).
    Left out: the Prometheus community image."""
    tag: ImageTag = POOLER_EXPORTER_VERSION
    """Exporter image tag. Left out: the version every pgbouncer_* name in
    pgbundle/monitoring/metric_catalog.py was checked against; another tag may rename metrics."""


class PoolerExporterResourcesValues(ResourcesValues):
    requests: ResourceAmounts = ResourceAmounts(cpu="10m", memory="16Mi")
    """Scheduling requests of the exporter. Left out: 10m CPU, 16Mi memory."""
    limits: ResourceAmounts = ResourceAmounts(cpu="100m", memory="64Mi")
    """Limits of the exporter. Left out: 100m CPU, 64Mi memory."""


class PoolerExporterValues(Values):
    """The exporter sidecar of each pooler pod; it runs when postgres.metrics.enabled."""

    image: PoolerExporterImageValues = Field(default_factory=PoolerExporterImageValues)
    """The exporter image. Left out: quay.io/prometheuscommunity/pgbouncer-exporter
    at the checked version."""
    resources: PoolerExporterResourcesValues = Field(default_factory=PoolerExporterResourcesValues)
    """The exporter's own requests and limits. Left out: 10m/16Mi, limits 100m/64Mi."""


class PoolerPdbValues(Values):
    """The pooler's PodDisruptionBudget."""

    enabled: bool = True
    """Emit the pooler's PodDisruptionBudget. Left out: true."""
    min_available: int = Field(default=1, ge=0)
    """Pooler pods kept through voluntary disruptions. Left out: 1."""


class PoolerTlsValues(Values):
    """The pooler's server certificate."""

    existing_secret: DnsLabel = "postgres-pooler-tls"
    """Secret with the pooler's certificate and key (keys tls.crt, tls.key; names
    include the Service postgres-pooler). `secrets generate` or cert-manager (with
    tls.certManager.enabled) writes it. Left out: postgres-pooler-tls."""


class PoolerReadOnlyValues(Values):
    """A second PgBouncer in front of the Service `postgres-replicas` (HA only),
    with the main pooler's image, pools, timeouts, resources, budget and TLS."""

    enabled: bool = False
    """Run Deployment and Service `postgres-pooler-ro` on 5432, whose servers are
    the streaming replicas: reads only, behind by the replication lag. Needs
    pooler.enabled and postgres.replicas 2 or more. Left out: false."""
    replicas: int = Field(default=2, ge=1)
    """Read-only pooler pods. Left out: 2 (one may be drained while the other serves)."""


class PoolerValues(Values):
    enabled: bool = False
    """Run PgBouncer (Deployment and Service `postgres-pooler` on 5432) in front of
    the Service `postgres`. Left out: false."""
    replicas: int = Field(default=2, ge=1)
    """Pooler pods. Left out: 2 (one may be drained while the other serves)."""
    image: PoolerImageValues = Field(default_factory=PoolerImageValues)
    pool_mode: Literal["session", "transaction"] = "transaction"
    """`transaction`: a server connection serves one transaction at a time, so
    session state (SET, advisory locks, LISTEN, temporary tables) does not survive
    between transactions (docs/pooling.md). `session`: one server
    connection per client for its whole session. Left out: transaction."""
    default_pool_size: int = Field(default=20, ge=1)
    """Server connections per database and role, in each pooler pod. Left out: 20."""
    min_pool_size: int = Field(default=0, ge=0)
    """Server connections kept open even when idle. Left out: 0."""
    reserve_pool_size: int = Field(default=0, ge=0)
    """Extra server connections a pool may open when clients have waited
    `reserve_pool_timeout` (5 s). Left out: 0."""
    max_db_connections: int = Field(default=30, ge=1)
    """Server connections to one database, all its roles together, in each pooler
    pod: the figure the connection budget counts. Left out: 30."""
    max_client_conn: int = Field(default=1000, ge=1, le=50000)
    """Client connections each pooler pod accepts. Left out: 1000."""
    max_prepared_statements: int = Field(default=200, ge=0)
    """Protocol-level prepared statements PgBouncer tracks per server connection,
    so drivers that prepare (psycopg 3, asyncpg, JDBC) work in transaction mode;
    0 turns the tracking off. Left out: 200."""
    query_wait_timeout: int = Field(default=120, ge=0)
    """Seconds a client may wait for a server connection before it is
    disconnected (0: forever). Left out: 120."""
    client_idle_timeout: int = Field(default=0, ge=0)
    """Seconds an idle client stays connected (0: forever). Left out: 0."""
    idle_transaction_timeout: int = Field(default=0, ge=0)
    """Seconds a client may sit idle inside a transaction (0: forever). Left out: 0."""
    server_idle_timeout: int = Field(default=600, ge=0)
    """Seconds an unused server connection is kept. Left out: 600."""
    server_lifetime: int = Field(default=3600, ge=0)
    """Seconds after which an unused server connection is closed and replaced.
    Left out: 3600."""
    resources: PoolerResourcesValues = Field(default_factory=PoolerResourcesValues)
    pod_disruption_budget: PoolerPdbValues = Field(default_factory=PoolerPdbValues)
    anti_affinity: Literal["preferred", "required"] = "preferred"
    """Spread the pooler pods over nodes: preferred, or required (never two on one
    node). Left out: preferred."""
    tls: PoolerTlsValues = Field(default_factory=PoolerTlsValues)
    exporter: PoolerExporterValues = Field(default_factory=PoolerExporterValues)
    """The pgbouncer_exporter sidecar (port 9127, Service postgres-pooler-metrics),
    with postgres.metrics.enabled. Left out: the pinned image, 10m/16Mi, limits 100m/64Mi."""
    read_only: PoolerReadOnlyValues = Field(default_factory=PoolerReadOnlyValues)
    """The read-only pooler in front of `postgres-replicas` (docs/pooling.md). Left out: off."""

    @model_validator(mode="after")
    def _check(self) -> PoolerValues:
        if self.min_pool_size > self.default_pool_size:
            raise ValueError(f"minPoolSize: {self.min_pool_size} is above defaultPoolSize {self.default_pool_size}")
        pdb = self.pod_disruption_budget
        if self.enabled and pdb.enabled and pdb.min_available > self.replicas:
            raise ValueError(f"podDisruptionBudget.minAvailable: {pdb.min_available} is above replicas "
                             f"({self.replicas}): the budget could never be met; use at most {self.replicas}")
        ro = self.read_only
        if ro.enabled and not self.enabled:
            raise ValueError("readOnly.enabled: true needs enabled: true (the read-only pooler is the pooler's "
                             "second Deployment, with its settings)")
        if self.enabled and ro.enabled and pdb.enabled and pdb.min_available > ro.replicas:
            raise ValueError(f"podDisruptionBudget.minAvailable: {pdb.min_available} is above readOnly.replicas "
                             f"({ro.replicas}): the budget could never be met; use at most {ro.replicas}")
        return self


# Connections this product's own roles may hold beside the pooler's: one each for
# the backup job, the migration Job and the exporter sidecar, and Patroni's
# (its loop and its REST API) on each HA member.
OWN_CONNECTIONS = {"backup job": 1, "migration job": 1}
EXPORTER_CONNECTIONS = 1
PATRONI_CONNECTIONS = 2
# PostgreSQL's defaults for the slots ordinary roles cannot take.
DEFAULT_SUPERUSER_RESERVED = 3
DEFAULT_RESERVED = 0
# A rolling update starts one new pooler pod before an old one stops.
ROLLING_SURGE = 1


def connection_budget_error(pooler: PoolerValues, *, databases: int, max_connections: int,
                            parameters: dict[str, object], metrics: bool, replicas: int,
                            read_only: bool = False) -> str | None:
    """Why the pooler pods could open more server connections than PostgreSQL
    admits, naming the numbers; None when they fit. With `read_only`, the
    read-only pooler's pods against one replica: the Service `postgres-replicas`
    picks a replica per connection, so all of them may land on the same one, and
    a replica admits what the primary does (the same deductions, kept for the
    member that is promoted)."""
    reserved = {"superuser_reserved_connections": int(str(parameters.get("superuser_reserved_connections",
                                                                         DEFAULT_SUPERUSER_RESERVED))),
                "reserved_connections": int(str(parameters.get("reserved_connections", DEFAULT_RESERVED)))}
    own = dict(OWN_CONNECTIONS)
    if metrics:
        own["exporter"] = EXPORTER_CONNECTIONS
    if replicas > 1:
        own["Patroni"] = PATRONI_CONNECTIONS
    admitted = max_connections - sum(reserved.values()) - sum(own.values())
    pod_replicas = pooler.read_only.replicas if read_only else pooler.replicas
    pods = pod_replicas + ROLLING_SURGE
    wanted = pods * databases * pooler.max_db_connections
    if wanted <= admitted:
        return None
    fits = max(admitted // (pods * databases), 0)
    kind, field, target = (("read-only pooler", "readOnly.replicas", "each replica") if read_only
                           else ("pooler", "replicas", "the database"))
    return (
        f"maxDbConnections: {pods} {kind} pods ({field} {pod_replicas} + {ROLLING_SURGE} during a rolling "
        f"update) x {databases} database(s) x {pooler.max_db_connections} server connections = {wanted}, above "
        f"the {admitted} {target} admits (config.maxConnections {max_connections} - "
        + " - ".join(f"{n} {k}" for k, n in reserved.items())
        + " - " + " - ".join(f"{n} {k}" for k, n in own.items())
        + f"); use maxDbConnections {fits} or less, fewer {field}, or raise config.maxConnections"
    )
