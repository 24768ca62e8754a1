"""`postgres.metrics`: the exporter sidecar, ServiceMonitor, PrometheusRule and dashboard."""

from __future__ import annotations

from pydantic import Field, model_validator

from pgbundle.contract import EXPORTER_VERSION, RUNBOOK_PAGE
from pgbundle.values.durations import prometheus_duration_seconds
from pgbundle.values.fields import DnsLabel, ImageValues, ResourceAmounts, ResourcesValues, Values
from pgbundle.values.names import ImageRepository, ImageTag, Labels, Printable
from pgbundle.values.network import NetworkPolicyPeer


class ExporterImageValues(ImageValues):
    """The postgres-exporter image."""

    repository: ImageRepository = "quay.io/prometheuscommunity/postgres-exporter"
    """Exporter image repository. Left out: the Prometheus community image."""
    tag: ImageTag = EXPORTER_VERSION
    """Exporter image tag (also the objects' version label, so never null). Left out: the version every metric name in
    pgbundle/monitoring/metric_catalog.py was checked against; another tag may rename metrics."""


class ExporterResourcesValues(ResourcesValues):
    """Requests and limits of the exporter sidecar."""

    requests: ResourceAmounts = ResourceAmounts(cpu="10m", memory="32Mi")
    """Scheduling requests of the exporter. Left out: 10m CPU, 32Mi memory."""
    limits: ResourceAmounts = ResourceAmounts(cpu="250m", memory="128Mi")
    """Limits of the exporter. Left out: 250m CPU, 128Mi memory."""


class ServiceMonitorValues(Values):
    """A Prometheus Operator ServiceMonitor for the exporter."""

    enabled: bool = False
    """Emit a Prometheus Operator ServiceMonitor for `postgres-metrics`. Left out:
    false, because a cluster without the ServiceMonitor CRD rejects the object."""
    interval: str = Field(default="30s", pattern=r"^[0-9]+(ms|s|m|h)$")
    """Scrape interval. Left out: 30s."""
    scrape_timeout: str = Field(default="10s", pattern=r"^[0-9]+(ms|s|m|h)$")
    """Scrape timeout (below the interval). Left out: 10s."""
    labels: Labels = {}
    """Extra labels, e.g. the `release` label your Prometheus selects
    ServiceMonitors by. Left out: none."""


class PrometheusRuleValues(Values):
    """A Prometheus Operator PrometheusRule with the alerts."""

    enabled: bool = False
    """Emit a PrometheusRule with the alerts the runbook documents.
    Left out: false (needs the PrometheusRule CRD)."""
    labels: Labels = {}
    """Extra labels, e.g. the `release` label your Prometheus selects rules by.
    Left out: none."""
    runbook_base_url: Printable = Field(default=RUNBOOK_PAGE, min_length=1)
    """Where the runbook page is served; each alert's `runbook_url` is this plus
    `#<alert name in lower case>`. Left out: the page's path in the repository
    (relative)."""


class DashboardValues(Values):
    enabled: bool = False
    """Emit the Grafana dashboard as a ConfigMap labelled `grafana_dashboard: "1"`
    for the Grafana sidecar. Left out: false."""
    namespace: DnsLabel | None = None
    """Namespace of the dashboard ConfigMap, when the Grafana sidecar watches only
    its own. Left out: the database's namespace."""
    labels: Labels = {}
    """Extra labels on the ConfigMap. Left out: none."""


def _default_scrapers() -> list[NetworkPolicyPeer]:
    return [
        NetworkPolicyPeer.model_validate(
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
            }
        )
    ]


class MetricsValues(Values):
    """Metrics: the postgres-exporter sidecar, its scrapers and the Prometheus objects."""

    enabled: bool = True
    """Run the postgres-exporter sidecar (role `monitoring`, password key
    `postgres_monitoring_pw`) and the Service `postgres-metrics` on 9187. Left out:
    true; false removes the sidecar, the Service and every object below."""
    image: ExporterImageValues = Field(default_factory=ExporterImageValues)
    """The exporter image. Left out: quay.io/prometheuscommunity/postgres-exporter
    at the checked version."""
    resources: ExporterResourcesValues = Field(default_factory=ExporterResourcesValues)
    """The exporter's own requests and limits. Left out: 10m/32Mi, limits 250m/128Mi."""
    scrapers: list[NetworkPolicyPeer] = Field(default_factory=_default_scrapers, min_length=1)
    """Who may scrape 9187 when `networkPolicy.enabled`. Left out: pods labelled
    app.kubernetes.io/name=prometheus in the namespace `monitoring`."""
    service_monitor: ServiceMonitorValues = Field(default_factory=ServiceMonitorValues)
    """Left out: no ServiceMonitor."""
    prometheus_rule: PrometheusRuleValues = Field(default_factory=PrometheusRuleValues)
    """Left out: no PrometheusRule."""
    dashboard: DashboardValues = Field(default_factory=DashboardValues)
    """Left out: no dashboard ConfigMap."""

    @model_validator(mode="after")
    def _check(self) -> MetricsValues:
        if not self.enabled:
            for name, part in (("serviceMonitor", self.service_monitor), ("prometheusRule", self.prometheus_rule), ("dashboard", self.dashboard)):
                if part.enabled:
                    raise ValueError(
                        f"{name}.enabled: true needs enabled: true (without the exporter there is nothing to "
                        "scrape, alert on or chart)"
                    )
        sm = self.service_monitor
        if sm.enabled and prometheus_duration_seconds(sm.scrape_timeout) > prometheus_duration_seconds(sm.interval):
            raise ValueError(
                f"serviceMonitor.scrapeTimeout: {sm.scrape_timeout} is longer than interval "
                f"{sm.interval}: Prometheus rejects a timeout above the interval"
            )
        return self

