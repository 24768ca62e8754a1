"""What Prometheus and Grafana need around the exporter sidecar: the Service
`postgres-metrics`, a ServiceMonitor, a PrometheusRule and the dashboard ConfigMap.

The sidecar itself lives in the database pod (constructs/exporter.py); the
scrapers' NetworkPolicy rule in constructs/network.py; the alert rules and the
dashboard are data from pgbundle/monitoring. The CRD bindings are imported only
when their object is enabled: loading them costs a tenth of a second on every synth.
"""

from __future__ import annotations

import cdk8s
from constructs import Construct
from pydantic import BaseModel, ConfigDict

from imports import k8s
from pgbundle import contract

COMPONENT = contract.METRICS_COMPONENT
# The Grafana sidecar's convention: it loads every ConfigMap with this label.
GRAFANA_DASHBOARD_LABEL = {"grafana_dashboard": "1"}


class ServiceMonitorProps(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    interval: str
    """Scrape interval, such as 30s (required)."""
    scrape_timeout: str
    """Scrape timeout, at most the interval (required)."""
    labels: dict[str, str] = {}
    """Labels a Prometheus selects ServiceMonitors by. Left out: none."""


class PrometheusRuleProps(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    groups: list[dict]
    """Rule groups: {"name", "rules": [{"alert", "expr", "for", "labels", "annotations"}]} (required)."""
    labels: dict[str, str] = {}
    """Labels a Prometheus selects rules by. Left out: none."""


class DashboardProps(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    json_model: str
    """The Grafana dashboard JSON (required)."""
    namespace: str | None = None
    """Namespace of the ConfigMap (where Grafana's sidecar looks). Left out: the database's."""
    labels: dict[str, str] = {}
    """Extra labels of the ConfigMap. Left out: none (the grafana_dashboard label is always set)."""


class PatroniScrapeProps(BaseModel):
    """Patroni's REST API /metrics on every member (replicas >= 2)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ca_secret: str
    """Secret holding the CA that signed the members' certificate (required)."""
    ca_key: str
    """Its key (required)."""
    server_name: str
    """A name the members' certificate holds: Prometheus scrapes pod addresses (required)."""


class MetricsProps(BaseModel):
    """What the Metrics construct needs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    namespace: str
    """Namespace of the database and of these objects (required)."""
    database_selector: dict[str, str]
    """Labels that select the database pods, where the exporter runs (required)."""
    version: str
    """The app.kubernetes.io/version label: the exporter's image tag (required)."""
    service_monitor: ServiceMonitorProps | None = None
    """A Prometheus Operator ServiceMonitor. Left out: none."""
    prometheus_rule: PrometheusRuleProps | None = None
    """A Prometheus Operator PrometheusRule. Left out: none."""
    dashboard: DashboardProps | None = None
    """The Grafana dashboard ConfigMap. Left out: none."""
    patroni: PatroniScrapeProps | None = None
    """Scrape Patroni's metrics too. Left out: no Patroni."""
    pooler_selector: dict[str, str] | None = None
    """Labels that select the pooler pods, whose exporter sidecar the Service
    postgres-pooler-metrics reaches. Left out: no pooler."""
    pooler_ro_selector: dict[str, str] | None = None
    """Labels that select the read-only pooler pods, for the Service
    postgres-pooler-ro-metrics. Left out: no read-only pooler."""


class Metrics(Construct):
    def __init__(self, scope: Construct, id: str, *, props: MetricsProps) -> None:
        super().__init__(scope, id)
        self.labels = contract.object_labels(COMPONENT, props.version)
        # The ServiceMonitor finds the Service by these; they never change.
        service_selector = contract.selector_labels(COMPONENT)

        k8s.KubeService(
            self,
            "service",
            metadata=self._meta(props, contract.METRICS_SERVICE),
            spec=k8s.ServiceSpec(
                type="ClusterIP",
                selector=props.database_selector,
                ports=[
                    k8s.ServicePort(
                        name=contract.METRICS_PORT_NAME,
                        port=contract.METRICS_PORT,
                        target_port=k8s.IntOrString.from_string(contract.METRICS_PORT_NAME),
                    ),
                    *([k8s.ServicePort(
                        name=contract.PATRONI_API_PORT_NAME,
                        port=contract.PATRONI_API_PORT,
                        target_port=k8s.IntOrString.from_string(contract.PATRONI_API_PORT_NAME),
                    )] if props.patroni is not None else []),
                ],
            ),
        )

        # Same labels and port name as postgres-metrics: the ServiceMonitor's one
        # endpoint scrapes them all, and the `service` label tells them apart.
        for id, name, selector in (("pooler-service", contract.POOLER_METRICS_SERVICE, props.pooler_selector),
                                   ("pooler-ro-service", contract.POOLER_RO_METRICS_SERVICE, props.pooler_ro_selector)):
            if selector is not None:
                k8s.KubeService(
                    self,
                    id,
                    metadata=self._meta(props, name),
                    spec=k8s.ServiceSpec(type="ClusterIP", selector=selector, ports=[k8s.ServicePort(
                        name=contract.METRICS_PORT_NAME, port=contract.POOLER_METRICS_PORT,
                        target_port=k8s.IntOrString.from_string(contract.METRICS_PORT_NAME))]),
                )

        sm = props.service_monitor
        if sm is not None:
            from imports.servicemonitors.com.coreos.monitoring import (
                ServiceMonitor,
                ServiceMonitorSpec,
                ServiceMonitorSpecEndpoints,
                ServiceMonitorSpecEndpointsScheme,
                ServiceMonitorSpecEndpointsTlsConfig,
                ServiceMonitorSpecEndpointsTlsConfigCa,
                ServiceMonitorSpecEndpointsTlsConfigCaSecret,
                ServiceMonitorSpecSelector,
            )

            patroni = []
            if props.patroni is not None:
                patroni = [ServiceMonitorSpecEndpoints(
                    port=contract.PATRONI_API_PORT_NAME,
                    path="/metrics",
                    scheme=ServiceMonitorSpecEndpointsScheme.HTTPS,
                    tls_config=ServiceMonitorSpecEndpointsTlsConfig(
                        ca=ServiceMonitorSpecEndpointsTlsConfigCa(secret=ServiceMonitorSpecEndpointsTlsConfigCaSecret(
                            name=props.patroni.ca_secret, key=props.patroni.ca_key)),
                        server_name=props.patroni.server_name),
                    interval=sm.interval,
                    scrape_timeout=sm.scrape_timeout,
                )]

            ServiceMonitor(
                self,
                "service-monitor",
                metadata=self._cr_meta(props, contract.SERVICE_MONITOR, sm.labels),
                spec=ServiceMonitorSpec(
                    selector=ServiceMonitorSpecSelector(match_labels=service_selector),
                    endpoints=[
                        ServiceMonitorSpecEndpoints(
                            port=contract.METRICS_PORT_NAME,
                            path="/metrics",
                            interval=sm.interval,
                            scrape_timeout=sm.scrape_timeout,
                        ),
                        *patroni,
                    ],
                ),
            )

        rule = props.prometheus_rule
        if rule is not None:
            from imports.prometheusrules.com.coreos.monitoring import (
                PrometheusRule,
                PrometheusRuleSpec,
                PrometheusRuleSpecGroups,
                PrometheusRuleSpecGroupsRules,
                PrometheusRuleSpecGroupsRulesExpr,
            )

            PrometheusRule(
                self,
                "prometheus-rule",
                metadata=self._cr_meta(props, contract.PROMETHEUS_RULE, rule.labels),
                spec=PrometheusRuleSpec(
                    groups=[
                        PrometheusRuleSpecGroups(
                            name=group["name"],
                            rules=[
                                PrometheusRuleSpecGroupsRules(
                                    alert=r["alert"],
                                    expr=PrometheusRuleSpecGroupsRulesExpr.from_string(r["expr"]),
                                    for_=r.get("for"),
                                    labels=r["labels"],
                                    annotations=r["annotations"],
                                )
                                for r in group["rules"]
                            ],
                        )
                        for group in rule.groups
                    ]
                ),
            )

        board = props.dashboard
        if board is not None:
            k8s.KubeConfigMap(
                self,
                "dashboard",
                metadata=k8s.ObjectMeta(
                    name=contract.DASHBOARD_CONFIG_MAP,
                    namespace=board.namespace or props.namespace,
                    labels={**self.labels, **board.labels, **GRAFANA_DASHBOARD_LABEL},
                ),
                data={"postgres.json": board.json_model},
            )

    def _meta(self, props: MetricsProps, name: str) -> k8s.ObjectMeta:
        return k8s.ObjectMeta(name=name, namespace=props.namespace, labels=self.labels)

    def _cr_meta(self, props: MetricsProps, name: str, extra: dict[str, str]) -> cdk8s.ApiObjectMetadata:
        """Custom resources take cdk8s metadata; `extra` carries the labels a
        Prometheus selects its ServiceMonitors and rules by."""
        return cdk8s.ApiObjectMetadata(name=name, namespace=props.namespace, labels={**self.labels, **extra})
