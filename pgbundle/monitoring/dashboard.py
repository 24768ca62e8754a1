"""The Grafana dashboard for the bundled PostgreSQL, built with grafana-foundation-sdk.

Built in code (not pasted JSON) so that every query is an expression the tests can
parse and check against pgbundle/monitoring/metric_catalog.py, and so that the selectors
follow the values (namespace). Every metric name used must be listed there.
"""

from __future__ import annotations

import json

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import prometheus, stat, table, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef

from pgbundle import contract
from pgbundle.monitoring.alerts import newest_run_failed, pooler_selector

UID = "api-forge-postgres"
TITLE = "PostgreSQL (api-forge bundled)"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")


def _query(expr: str, legend: str = "", ref: str = "A", instant: bool = False) -> prometheus.Dataquery:
    query = prometheus.Dataquery().expr(expr).ref_id(ref).legend_format(legend or "__auto")
    return query.instant() if instant else query.range()


def _timeseries(title: str, unit: str, *queries: prometheus.Dataquery, width: int = 12) -> timeseries.Panel:
    panel = timeseries.Panel().title(title).unit(unit).datasource(DATASOURCE).height(8).span(width)
    for query in queries:
        panel = panel.with_target(query)
    return panel


def _cache_hit_ratio(ex: str, rate: str, grouping: str = "") -> str:
    """Share of block reads served from shared buffers; `grouping` such as
    " by (datname) " splits it per database."""

    def total(metric: str) -> str:
        return f"sum{grouping}(rate(pg_stat_database_{metric}{{{ex}}}[{rate}]))"

    return f"{total('blks_hit')} / ({total('blks_hit')} + {total('blks_read')})"


def _stat(title: str, unit: str, query: prometheus.Dataquery, width: int = 6) -> stat.Panel:
    return stat.Panel().title(title).unit(unit).datasource(DATASOURCE).height(4).span(width).with_target(query)


def _patroni_row(board: dash.Dashboard, ex: str) -> dash.Dashboard:
    """Panels from Patroni's metrics: who is primary, who is the synchronous standby, timelines."""
    return (
        board.with_row(dash.Row("High availability (Patroni)"))
        .with_panel(_timeseries("Member role (1 = primary)", "short",
                                _query(f"max by (pod) (patroni_primary{{{ex}}})", "{{pod}}"), width=8))
        .with_panel(_timeseries("Synchronous standby (1 = yes)", "short",
                                _query(f"max by (pod) (patroni_sync_standby{{{ex}}})", "{{pod}}"), width=8))
        .with_panel(_timeseries("Timeline (grows at every failover)", "short",
                                _query(f"max by (pod) (patroni_postgres_timeline{{{ex}}})", "{{pod}}"), width=8))
    )


def _pooler_row(board: dash.Dashboard, namespace: str, read_only: bool = False) -> dash.Dashboard:
    """Panels from the pooler pods' exporter: clients served and waiting, server connections, throughput;
    with `read_only`, the read-only pooler's (its own row, the same panels)."""
    service = contract.POOLER_RO_METRICS_SERVICE if read_only else contract.POOLER_METRICS_SERVICE
    px = pooler_selector(namespace, (service,))
    rate = "$__rate_interval"
    title = f"Read-only connection pooler (PgBouncer, {contract.POOLER_RO})" if read_only else "Connection pooler (PgBouncer)"
    return (
        board.with_row(dash.Row(title))
        .with_panel(_timeseries("Pooler up (per pod)", "short",
                                _query(f"max by (pod) (pgbouncer_up{{{px}}})", "{{pod}}"), width=8))
        .with_panel(_timeseries(
            "Client connections", "short",
            _query(f"sum by (database) (pgbouncer_pools_client_active_connections{{{px}}})", "active {{database}}"),
            _query(f"sum by (database) (pgbouncer_pools_client_waiting_connections{{{px}}})", "waiting {{database}}",
                   "B"), width=8))
        .with_panel(_timeseries(
            "Longest client wait", "s",
            _query(f"max by (database, user) (pgbouncer_pools_client_maxwait_seconds{{{px}}})", "{{database}}/{{user}}"),
            width=8))
        .with_panel(_timeseries(
            "Server connections (per pod) and the pod's limit", "short",
            _query(f"sum by (pod, database) (pgbouncer_pools_server_active_connections{{{px}}})", "active {{pod}} {{database}}"),
            _query(f"sum by (pod, database) (pgbouncer_pools_server_idle_connections{{{px}}})", "idle {{pod}} {{database}}", "B"),
            _query(f"max by (database) (pgbouncer_databases_max_connections{{{px}}})", "max_db_connections {{database}}",
                   "C"),
            _query(f"max by (database) (pgbouncer_databases_current_connections{{{px}}})", "busiest pod {{database}}",
                   "D")))
        .with_panel(_timeseries(
            "Transactions through the pooler, and client wait per transaction", "short",
            _query(f"sum by (database) (rate(pgbouncer_stats_totals_sql_transactions_pooled_total{{{px}}}[{rate}]))",
                   "transactions/s {{database}}"),
            _query(f"sum by (database) (rate(pgbouncer_stats_totals_client_wait_seconds_total{{{px}}}[{rate}])) "
                   f"/ sum by (database) (rate(pgbouncer_stats_totals_sql_transactions_pooled_total{{{px}}}[{rate}]))",
                   "wait s/transaction {{database}}", "B")))
    )


def _pitr_row(board: dash.Dashboard, namespace: str, ex: str, drill: bool) -> dash.Dashboard:
    """Point-in-time recovery: WAL archiving (pg_stat_archiver through the exporter),
    the pgBackRest backup CronJobs' last successes and the restore drill's."""
    backups = (f'namespace="{namespace}", '
               f'cronjob=~"{contract.PITR_FULL_CRONJOB}|{contract.PITR_DIFF_CRONJOB}"')
    board = (
        board.with_row(dash.Row("Point-in-time recovery (pgBackRest)"))
        .with_panel(_timeseries(
            "WAL segments archived and failed", "short",
            _query(f"sum by (pod) (increase(pg_stat_archiver_archived_count{{{ex}}}[$__rate_interval]))",
                   "archived {{pod}}"),
            _query(f"sum by (pod) (increase(pg_stat_archiver_failed_count{{{ex}}}[$__rate_interval]))",
                   "failed {{pod}}", "B"), width=8))
        .with_panel(_timeseries(
            "Time since the last archived WAL segment", "s",
            _query(f"max by (pod) (pg_stat_archiver_last_archive_age{{{ex}}})", "{{pod}}"), width=8))
        .with_panel(_timeseries(
            "Time since the last successful full and differential backup", "s",
            _query(f"time() - max by (cronjob) (kube_cronjob_status_last_successful_time{{{backups}}})",
                   "{{cronjob}}"), width=8))
    )
    if not drill:
        return board
    selector = f'namespace="{namespace}", cronjob="{contract.PITR_DRILL_CRONJOB}"'
    return (
        board.with_panel(_stat(
            "Time since the last successful restore drill", "s",
            _query(f"time() - max(kube_cronjob_status_last_successful_time{{{selector}}})", instant=True), width=12))
        .with_panel(_stat(
            "Newest restore drill failed", "bool_yes_no",
            # 1 when the newest run failed, else 0 (the alert's condition).
            _query(f"count({newest_run_failed(selector)}) or vector(0)", instant=True), width=12))
    )


def build(namespace: str, ha: bool = False, pooler: bool = False, pitr: bool = False,
          drill: bool = False, pooler_read_only: bool = False) -> dash.Dashboard:
    ex = f'namespace="{namespace}", service="{contract.METRICS_SERVICE}"'
    board = _build(namespace, ex)
    board = _patroni_row(board, ex) if ha else board
    board = _pooler_row(board, namespace) if pooler else board
    board = _pooler_row(board, namespace, read_only=True) if pooler and pooler_read_only else board
    return _pitr_row(board, namespace, ex, drill) if pitr else board


def _build(namespace: str, ex: str) -> dash.Dashboard:
    claims = f'namespace="{namespace}", persistentvolumeclaim=~"{contract.DATA_CLAIM}-{contract.STATEFULSET}-[0-9]+|{contract.BACKUP_CLAIM}"'
    cronjob = f'namespace="{namespace}", cronjob="{contract.BACKUP_CRONJOB}"'
    rate = "$__rate_interval"
    return (
        dash.Dashboard(TITLE)
        .uid(UID)
        .tags(["postgresql", "api-forge"])
        .refresh("30s")
        .time("now-6h", "now")
        .timezone("browser")
        .with_variable(dash.DatasourceVariable("datasource").label("Data source").type("prometheus"))
        .with_row(dash.Row("Availability"))
        .with_panel(_stat("Database up", "bool_yes_no", _query(f"min(pg_up{{{ex}}})", instant=True)))
        .with_panel(
            _stat(
                "Time since last successful backup",
                "s",
                _query(f"time() - max(kube_cronjob_status_last_successful_time{{{cronjob}}})", instant=True),
            )
        )
        .with_panel(
            _stat(
                "Connections used",
                "percentunit",
                _query(
                    f"sum(pg_stat_activity_count{{{ex}}}) / max(pg_settings_max_connections{{{ex}}})", instant=True
                ),
            )
        )
        .with_panel(
            _stat(
                "Cache hit ratio",
                "percentunit",
                _query(_cache_hit_ratio(ex, rate), instant=True),
            )
        )
        .with_row(dash.Row("Activity"))
        .with_panel(
            _timeseries(
                "Connections by state",
                "short",
                _query(f"sum by (state) (pg_stat_activity_count{{{ex}}})", "{{state}}"),
                _query(f"max(pg_settings_max_connections{{{ex}}})", "max_connections", "B"),
            )
        )
        .with_panel(
            _timeseries(
                "Transactions and rollbacks per second",
                "ops",
                _query(f"sum by (datname) (rate(pg_stat_database_xact_commit{{{ex}}}[{rate}]))", "commits {{datname}}"),
                _query(f"sum by (datname) (rate(pg_stat_database_xact_rollback{{{ex}}}[{rate}]))", "rollbacks {{datname}}", "B"),
            )
        )
        .with_panel(
            _timeseries(
                "Cache hit ratio",
                "percentunit",
                _query(_cache_hit_ratio(ex, rate, " by (datname) "), "{{datname}}"),
            )
        )
        .with_panel(
            _timeseries(
                "Locks by mode",
                "short",
                _query(f"sum by (mode) (pg_locks_count{{{ex}}})", "{{mode}}"),
                _query(f"sum by (datname) (increase(pg_stat_database_deadlocks{{{ex}}}[{rate}]))", "deadlocks {{datname}}", "B"),
            )
        )
        .with_panel(
            _timeseries(
                "Oldest open transaction",
                "s",
                _query(f"max by (datname) (pg_stat_activity_max_tx_duration{{{ex}}})", "{{datname}}"),
            )
        )
        .with_panel(
            _timeseries(
                "Replication lag",
                "s",
                _query(f"max by (pod) (pg_replication_lag_seconds{{{ex}}})", "{{pod}}"),
            )
        )
        .with_row(dash.Row("Statements"))
        .with_panel(
            table.Panel()
            .title("Top statements by total time")
            .description("queryid as in pg_stat_statements; look the text up there (the exporter does not export it)")
            .datasource(DATASOURCE)
            .unit("s")
            .height(10)
            .span(24)
            .with_target(
                _query(
                    f"topk(20, sum by (datname, user, queryid) (increase(pg_stat_statements_seconds_total{{{ex}}}[$__range])))",
                    instant=True,
                )
            )
            .with_target(
                _query(
                    f"topk(20, sum by (datname, user, queryid) (increase(pg_stat_statements_calls_total{{{ex}}}[$__range])))",
                    ref="B",
                    instant=True,
                )
            )
        )
        .with_row(dash.Row("Storage"))
        .with_panel(
            _timeseries("Database sizes", "bytes", _query(f"max by (datname) (pg_database_size_bytes{{{ex}}})", "{{datname}}"))
        )
        .with_panel(
            _timeseries(
                "Volume usage",
                "percentunit",
                _query(
                    f"1 - kubelet_volume_stats_available_bytes{{{claims}}} / kubelet_volume_stats_capacity_bytes{{{claims}}}",
                    "{{persistentvolumeclaim}}",
                ),
            )
        )
        .with_panel(
            _timeseries(
                "Transaction ID age (share of the wraparound limit)",
                "percentunit",
                _query(f"max by (datname) (pg_database_wraparound_age_datfrozenxid_seconds{{{ex}}}) / {2**31}", "{{datname}}"),
            )
        )
    )


def dashboard_json(namespace: str, ha: bool = False, pooler: bool = False, pitr: bool = False,
                   drill: bool = False, pooler_read_only: bool = False) -> str:
    """The dashboard as the JSON Grafana's sidecar loads (stable key order); with
    `ha`, Patroni's panels too; with `pooler`, PgBouncer's (with `pooler_read_only`,
    a row for the read-only pooler too); with `pitr`, WAL archiving's and
    pgBackRest's (with `drill`, the restore drill's)."""
    model = build(namespace, ha, pooler, pitr, drill, pooler_read_only).build()
    # Grafana keys panel state by id: give each panel (rows too) its own.
    for number, panel in enumerate(model.panels, start=1):
        panel.id_val = number
    return json.dumps(json.loads(json.dumps(model, cls=JSONEncoder)), indent=2, sort_keys=True) + "\n"
