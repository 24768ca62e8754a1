"""What Prometheus and Grafana need around the exporter sidecar: the Service
`postgres-metrics`, a ServiceMonitor, a PrometheusRule and the dashboard ConfigMap.

The sidecar itself lives in the database pod (constructs/exporter.py); the
scrapers' NetworkPolicy rule in constructs/network.py. The CRD bindings and the
Grafana SDK are imported only when their object is enabled: loading them costs
a tenth of a second on every synth.
"""

from __future__ import annotations

import cdk8s
from constructs import Construct
from pydantic import BaseModel, ConfigDict

from imports import k8s
from pgbundle.monitoring import alerts
from pgbundle import contract as layout
from pgbundle.labels import object_labels, selector_labels
from pgbundle.values.cron import longest_interval_seconds
from pgbundle.values.models import PostgresValues

COMPONENT = "metrics"
# The Grafana sidecar's convention: it loads every ConfigMap with this label.
GRAFANA_DASHBOARD_LABEL = {"grafana_dashboard": "1"}


class MetricsProps(BaseModel):
    """What the Metrics construct needs; every field is required."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    namespace: str
    """Namespace of the database and of these objects."""
    database_selector: dict[str, str]
    """Labels that select the database pods (where the exporter runs)."""
    postgres: PostgresValues
    """The `postgres` section of the values (`metrics.enabled` must be true)."""


class Metrics(Construct):
    def __init__(self, scope: Construct, id: str, *, props: MetricsProps) -> None:
        super().__init__(scope, id)
        pg = props.postgres
        metrics = pg.metrics
        self.labels = object_labels(COMPONENT, metrics.image.tag)
        # The ServiceMonitor finds the Service by these; they never change.
        service_selector = selector_labels(COMPONENT)

        k8s.KubeService(
            self,
            "service",
            metadata=self._meta(props, layout.METRICS_SERVICE),
            spec=k8s.ServiceSpec(
                type="ClusterIP",
                selector=props.database_selector,
                ports=[
                    k8s.ServicePort(
                        name=layout.METRICS_PORT_NAME,
                        port=layout.METRICS_PORT,
                        target_port=k8s.IntOrString.from_string(layout.METRICS_PORT_NAME),
                    )
                ],
            ),
        )

        sm = metrics.service_monitor
        if sm.enabled:
            from imports.servicemonitors.com.coreos.monitoring import (
                ServiceMonitor,
                ServiceMonitorSpec,
                ServiceMonitorSpecEndpoints,
                ServiceMonitorSpecSelector,
            )

            ServiceMonitor(
                self,
                "service-monitor",
                metadata=self._cr_meta(props, layout.SERVICE_MONITOR, sm.labels),
                spec=ServiceMonitorSpec(
                    selector=ServiceMonitorSpecSelector(match_labels=service_selector),
                    endpoints=[
                        ServiceMonitorSpecEndpoints(
                            port=layout.METRICS_PORT_NAME,
                            path="/metrics",
                            interval=sm.interval,
                            scrape_timeout=sm.scrape_timeout,
                        )
                    ],
                ),
            )

        rule = metrics.prometheus_rule
        if rule.enabled:
            from imports.prometheusrules.com.coreos.monitoring import (
                PrometheusRule,
                PrometheusRuleSpec,
                PrometheusRuleSpecGroups,
                PrometheusRuleSpecGroupsRules,
                PrometheusRuleSpecGroupsRulesExpr,
            )

            scope_ = alerts.AlertScope(
                namespace=props.namespace, replicas=pg.replicas, backups_volume=pg.persistence.backups.enabled,
                backup_interval_seconds=longest_interval_seconds(pg.backup.schedule),
            )
            PrometheusRule(
                self,
                "prometheus-rule",
                metadata=self._cr_meta(props, layout.PROMETHEUS_RULE, rule.labels),
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
                        for group in alerts.rule_groups(scope_, rule.runbook_base_url)
                    ]
                ),
            )

        board = metrics.dashboard
        if board.enabled:
            from pgbundle.monitoring import dashboard

            k8s.KubeConfigMap(
                self,
                "dashboard",
                metadata=k8s.ObjectMeta(
                    name=layout.DASHBOARD_CONFIG_MAP,
                    namespace=board.namespace or props.namespace,
                    labels={**self.labels, **board.labels, **GRAFANA_DASHBOARD_LABEL},
                ),
                data={"postgres.json": dashboard.dashboard_json(props.namespace)},
            )

    def _meta(self, props: MetricsProps, name: str) -> k8s.ObjectMeta:
        return k8s.ObjectMeta(name=name, namespace=props.namespace, labels=self.labels)

    def _cr_meta(self, props: MetricsProps, name: str, extra: dict[str, str]) -> cdk8s.ApiObjectMetadata:
        """Custom resources take cdk8s metadata; `extra` carries the labels a
        Prometheus selects its ServiceMonitors and rules by."""
        return cdk8s.ApiObjectMetadata(name=name, namespace=props.namespace, labels={**self.labels, **extra})
