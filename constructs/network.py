"""Pod-level network isolation for the database and its backup jobs.

Two policies, both default-deny in both directions for the pods they select:
- `postgres` (database pods): ingress on 5432 from the configured application
  peers, from this project's backup and migration pods and (with several replicas) from the
  other database pods; ingress on the metrics port only from the configured
  scraper peers (`postgres.metrics.scrapers`); egress only to DNS and to the other database pods on 5432.
- `postgres-pooler` (PgBouncer pods, when the pooler is on): ingress on 5432
  from the same application peers; egress only to DNS and to the database pods
  on 5432. The database policy admits the pooler pods on 5432. The read-only
  pooler's pods get the same policy, `postgres-pooler-ro`: the replicas are
  database pods, and which ones are replicas changes with every failover.
- `postgres-backup` (backup pods): no ingress; egress only to DNS and to the
  database pods on 5432.
- `postgres-pitr-backup` (PITR backup pods, with PITR): no ingress; egress only to
  DNS, the database pods' pgBackRest port (which admits only them) and the S3 repository. Without it, a namespace-wide default-deny egress rule
  from the platform team would silently break every backup.
- `postgres-pitr-drill` (the restore drill's pods, with PITR and the drill on): no
  ingress; egress only to DNS and the S3 repository when there is one, else none
  at all. It never reaches the database.
"""

from __future__ import annotations

from constructs import Construct
from pydantic import BaseModel, ConfigDict

from imports import k8s
from pgbundle import contract

DNS_PORT = 53
# A NetworkPolicyPeer as a dict of the binding's field names (pod_selector,
# namespace_selector, ip_block).
Peer = dict[str, object]


class NetworkIsolationProps(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    namespace: str
    """Namespace of the policies (required)."""
    labels: dict[str, str]
    """Labels of the database's objects (required)."""
    database_selector: dict[str, str]
    """Labels that select the database pods (required)."""
    replicas: int
    """Database pods; with more than one they may reach each other on 5432 (required)."""
    clients: list[list[Peer]]
    """Ingress rules on 5432: each the peers of one rule (required; may be empty)."""
    dns: Peer
    """Where the cluster DNS runs: the only egress besides the database (required)."""
    scrapers: list[Peer] = []
    """Peers admitted on the exporter port. Left out: none, as when metrics are off."""
    patroni_api_port: int | None = None
    """Patroni's REST API port, open between the members. Left out: no Patroni."""
    api_server_cidrs: list[str] = []
    """Where the Kubernetes API server answers (Patroni's leader lock); egress to them. Left out: none."""
    api_server_port: int = 443
    """The API server's port for that egress. Left out: 443."""
    object_store_cidrs: list[str] = []
    """Where the S3 repository answers (point-in-time recovery); the database pods' egress to it. Left out: none."""
    object_store_port: int = 443
    """The S3 endpoint's port for that egress. Left out: 443."""
    pitr_backup: bool = False
    """The PITR backup jobs reach pgBackRest's TLS server on the database pods
    (only they may), and their own policy lets them reach it, DNS and the S3
    repository. Left out: no PITR."""
    pooler: bool = False
    """PgBouncer runs in front of the database: its own policy, and the database admits it. Left out: no pooler."""
    pooler_read_only: bool = False
    """The read-only pooler runs too: its own policy, and the database admits it. Left out: none."""
    pitr_drill: bool = False
    """The restore drill runs: its own policy (DNS and the S3 repository only). Left out: no drill."""


def _peer(peer: Peer) -> k8s.NetworkPolicyPeer:
    return k8s.NetworkPolicyPeer(**peer)


def _tcp(port: int) -> k8s.NetworkPolicyPort:
    return k8s.NetworkPolicyPort(protocol="TCP", port=k8s.IntOrString.from_number(port))


class NetworkIsolation(Construct):
    """NetworkPolicies `postgres` and `postgres-backup`."""

    def __init__(self, scope: Construct, id: str, *, props: NetworkIsolationProps) -> None:
        super().__init__(scope, id)
        database = k8s.NetworkPolicyPeer(pod_selector=k8s.LabelSelector(match_labels=props.database_selector))
        backup_selector = contract.selector_labels(contract.BACKUP_COMPONENT)
        backup = k8s.NetworkPolicyPeer(pod_selector=k8s.LabelSelector(match_labels=backup_selector))
        dns_egress = k8s.NetworkPolicyEgressRule(
            to=[_peer(props.dns)],
            ports=[
                k8s.NetworkPolicyPort(protocol=protocol, port=k8s.IntOrString.from_number(DNS_PORT))
                for protocol in ("UDP", "TCP")
            ],
        )
        database_egress = k8s.NetworkPolicyEgressRule(to=[database], ports=[_tcp(contract.PORT)])

        # The API server has no pod selector: its addresses.
        api_egress = [k8s.NetworkPolicyEgressRule(
            to=[k8s.NetworkPolicyPeer(ip_block=k8s.IpBlock(cidr=cidr)) for cidr in props.api_server_cidrs],
            ports=[_tcp(props.api_server_port)])] if props.api_server_cidrs else []
        # WAL archiving and backups to the S3 repository.
        object_store_egress = [k8s.NetworkPolicyEgressRule(
            to=[k8s.NetworkPolicyPeer(ip_block=k8s.IpBlock(cidr=cidr)) for cidr in props.object_store_cidrs],
            ports=[_tcp(props.object_store_port)])] if props.object_store_cidrs else []

        ingress = [
            k8s.NetworkPolicyIngressRule(from_=[_peer(peer) for peer in rule], ports=[_tcp(contract.PORT)])
            for rule in props.clients
        ]
        # This project's own jobs: backups, and the schema-migration Job (`migrate-manifest`).
        migrate_selector = contract.selector_labels(contract.MIGRATE_COMPONENT)
        migrate = k8s.NetworkPolicyPeer(pod_selector=k8s.LabelSelector(match_labels=migrate_selector))
        own_clients = [backup, migrate]
        poolers = [(contract.POOLER_COMPONENT, contract.POOLER, "pooler-network-policy")] if props.pooler else []
        if props.pooler_read_only:
            poolers.append((contract.POOLER_RO_COMPONENT, contract.POOLER_RO, "pooler-ro-network-policy"))
        for component, _, _ in poolers:
            own_clients.append(k8s.NetworkPolicyPeer(pod_selector=k8s.LabelSelector(
                match_labels=contract.selector_labels(component))))
        ingress.append(k8s.NetworkPolicyIngressRule(from_=own_clients, ports=[_tcp(contract.PORT)]))
        member_ports = [_tcp(contract.PORT)]
        if props.patroni_api_port is not None:
            # Patroni asks the other members' REST API before a failover.
            member_ports.append(_tcp(props.patroni_api_port))
        if props.replicas > 1:
            # Streaming replication: standbys connect to the primary.
            ingress.append(k8s.NetworkPolicyIngressRule(from_=[database], ports=member_ports))
        pitr_backup_selector = contract.selector_labels(contract.PITR_BACKUP_COMPONENT)
        if props.pitr_backup:
            ingress.append(k8s.NetworkPolicyIngressRule(
                from_=[k8s.NetworkPolicyPeer(pod_selector=k8s.LabelSelector(match_labels=pitr_backup_selector))],
                ports=[_tcp(contract.PGBACKREST_PORT)]))
        if props.scrapers:
            ingress.append(
                # Patroni's REST API serves its metrics; its unsafe endpoints need the password.
                k8s.NetworkPolicyIngressRule(from_=[_peer(peer) for peer in props.scrapers], ports=[
                    _tcp(contract.METRICS_PORT), *([_tcp(props.patroni_api_port)] if props.patroni_api_port else [])])
            )

        k8s.KubeNetworkPolicy(
            self,
            "network-policy",
            metadata=k8s.ObjectMeta(name=contract.NETWORK_POLICY, namespace=props.namespace, labels=props.labels),
            spec=k8s.NetworkPolicySpec(
                pod_selector=k8s.LabelSelector(match_labels=props.database_selector),
                policy_types=["Ingress", "Egress"],
                ingress=ingress,
                egress=[dns_egress, k8s.NetworkPolicyEgressRule(to=[database], ports=member_ports), *api_egress,
                        *object_store_egress],
            ),
        )
        for component, name, id in poolers:
            k8s.KubeNetworkPolicy(
                self,
                id,
                metadata=k8s.ObjectMeta(name=name, namespace=props.namespace,
                                        labels={**props.labels, "app.kubernetes.io/component": component}),
                spec=k8s.NetworkPolicySpec(
                    pod_selector=k8s.LabelSelector(match_labels=contract.selector_labels(component)),
                    policy_types=["Ingress", "Egress"],
                    # The application's peers, as the database admits them; the scrapers to
                    # the exporter sidecar (it runs whenever metrics are on).
                    ingress=[*(k8s.NetworkPolicyIngressRule(from_=[_peer(peer) for peer in rule], ports=[_tcp(contract.PORT)])
                               for rule in props.clients),
                             *([k8s.NetworkPolicyIngressRule(from_=[_peer(peer) for peer in props.scrapers],
                                                             ports=[_tcp(contract.POOLER_METRICS_PORT)])]
                               if props.scrapers else [])],
                    egress=[dns_egress, database_egress],
                ),
            )
        self._job_policy("backup-network-policy", props, name=contract.BACKUP_NETWORK_POLICY,
                         component=contract.BACKUP_COMPONENT, egress=[dns_egress, database_egress])
        if props.pitr_backup:
            self._job_policy("pitr-backup-network-policy", props, name=contract.PITR_BACKUP_NETWORK_POLICY,
                             component=contract.PITR_BACKUP_COMPONENT, egress=[
                                 dns_egress,
                                 k8s.NetworkPolicyEgressRule(to=[database], ports=[_tcp(contract.PGBACKREST_PORT)]),
                                 *object_store_egress])

        if props.pitr_drill:
            # The S3 endpoint is a host name: DNS only with it.
            self._job_policy("pitr-drill-network-policy", props, name=contract.PITR_DRILL_NETWORK_POLICY,
                             component=contract.PITR_DRILL_COMPONENT,
                             egress=[dns_egress, *object_store_egress] if object_store_egress else [])

    def _job_policy(self, id: str, props: NetworkIsolationProps, *, name: str, component: str,
                    egress: list[k8s.NetworkPolicyEgressRule]) -> None:
        """A backup job's policy: its pods (selected by component) reach only `egress`."""
        k8s.KubeNetworkPolicy(
            self,
            id,
            metadata=k8s.ObjectMeta(name=name, namespace=props.namespace,
                                    labels={**props.labels, "app.kubernetes.io/component": component}),
            spec=k8s.NetworkPolicySpec(
                pod_selector=k8s.LabelSelector(match_labels=contract.selector_labels(component)),
                # Nothing connects to a backup job: no ingress rule denies all ingress.
                policy_types=["Ingress", "Egress"],
                egress=egress,
            ),
        )
