"""Monitoring data: the exporter metric catalog, alert rules, the Grafana dashboard."""
