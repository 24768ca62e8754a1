"""Every metric name the alerts and the dashboard use, and where it comes from.

This is the one place that ties our PromQL to the exporters' real output: a test
parses every expression and fails on a metric name that is not listed here. When
the exporter image is upgraded, re-check each name below against that version's
collectors (and its CHANGELOG's "Metric name changes") and bump EXPORTER_VERSION (pgbundle/contract.py).
"""

from __future__ import annotations

# kube-state-metrics v2.x (CronJob/Job metrics) and the kubelet's volume stats:
# stable names across Kubernetes 1.27-1.35.
KUBE_STATE_METRICS_VERSION = "v2.x (checked against v2.13)"

# Collectors the exporter runs beyond its defaults; names listed below depend on them.
EXTRA_COLLECTORS = ("stat_statements", "database_wraparound")

# pgbouncer_exporter (contract.POOLER_EXPORTER_VERSION, collector.go): each metric is
# a column of an admin-console SHOW command, named pgbouncer_<list>_<its mapping>.
# name -> (SHOW command, column); tests/test_pooler_metrics.py runs each command
# as the exporter's stats user against the real PgBouncer and finds each column.
POOLER_COLUMNS: dict[str, tuple[str, str]] = {
    "pgbouncer_pools_client_active_connections": ("POOLS", "cl_active"),
    "pgbouncer_pools_client_waiting_connections": ("POOLS", "cl_waiting"),
    "pgbouncer_pools_client_maxwait_seconds": ("POOLS", "maxwait"),
    "pgbouncer_pools_server_active_connections": ("POOLS", "sv_active"),
    "pgbouncer_pools_server_idle_connections": ("POOLS", "sv_idle"),
    "pgbouncer_databases_current_connections": ("DATABASES", "current_connections"),
    "pgbouncer_databases_max_connections": ("DATABASES", "max_connections"),
    "pgbouncer_stats_totals_sql_transactions_pooled_total": ("STATS_TOTALS", "xact_count"),
    "pgbouncer_stats_totals_client_wait_seconds_total": ("STATS_TOTALS", "wait_time"),
}

# name -> "source: collector" (the flag that must stay enabled for it to exist)
METRICS: dict[str, str] = {
    # Prometheus itself, for every scrape target.
    "up": "prometheus: scrape health of the exporter target",
    # postgres-exporter, default collectors.
    "pg_up": "postgres-exporter: exporter (1 when the last scrape could connect)",
    "pg_stat_database_xact_commit": "postgres-exporter: stat_database",
    "pg_stat_database_xact_rollback": "postgres-exporter: stat_database",
    "pg_stat_database_blks_hit": "postgres-exporter: stat_database",
    "pg_stat_database_blks_read": "postgres-exporter: stat_database",
    "pg_stat_database_deadlocks": "postgres-exporter: stat_database",
    "pg_stat_activity_count": "postgres-exporter: stat_activity (labels datname, state)",
    "pg_stat_activity_max_tx_duration": "postgres-exporter: stat_activity (seconds)",
    "pg_settings_max_connections": "postgres-exporter: settings",
    "pg_locks_count": "postgres-exporter: locks (labels datname, mode)",
    "pg_database_size_bytes": "postgres-exporter: database",
    "pg_replication_lag_seconds": "postgres-exporter: replication (on standbys)",
    "pg_stat_archiver_failed_count": "postgres-exporter: stat_archiver (failed archive_command runs)",
    "pg_stat_archiver_archived_count": "postgres-exporter: stat_archiver (WAL segments archived)",
    "pg_stat_archiver_last_archive_age": "postgres-exporter: stat_archiver (seconds since last_archived_time; "
    "absent before the first archived segment)",
    "pg_stat_database_tup_inserted": "postgres-exporter: stat_database (rows written by this server's sessions)",
    "pg_stat_database_tup_updated": "postgres-exporter: stat_database",
    "pg_stat_database_tup_deleted": "postgres-exporter: stat_database",
    # Patroni's REST API /metrics (replicas >= 2), checked against Patroni 4.1.5 in
    # tests/test_ha_cluster.py on every member.
    "patroni_primary": "patroni: 1 on the member that runs as the primary",
    "patroni_replica": "patroni: 1 on a replica",
    "patroni_sync_standby": "patroni: 1 on the synchronous standby",
    "patroni_postgres_streaming": "patroni: 1 when a replica streams from the primary",
    "patroni_postgres_timeline": "patroni: the member's timeline (grows with every promotion)",
    # postgres-exporter, collectors enabled by flag (EXTRA_COLLECTORS).
    "pg_stat_statements_calls_total": "postgres-exporter: stat_statements (labels user, datname, queryid)",
    "pg_stat_statements_seconds_total": "postgres-exporter: stat_statements",
    "pg_database_wraparound_age_datfrozenxid_seconds": "postgres-exporter: database_wraparound "
    "(despite the suffix: age(datfrozenxid) in transactions)",
    # pgbouncer_exporter beside PgBouncer (postgres.pooler with metrics on).
    "pgbouncer_up": "pgbouncer-exporter: 1 when the last scrape's SHOW commands succeeded",
    **{name: f"pgbouncer-exporter: SHOW {command} column {column}" for name, (command, column) in POOLER_COLUMNS.items()},
    # kubelet (cAdvisor endpoint scraped by kube-prometheus).
    "kubelet_volume_stats_available_bytes": "kubelet: volume stats (label persistentvolumeclaim)",
    "kubelet_volume_stats_capacity_bytes": "kubelet: volume stats",
    # kube-state-metrics.
    "kube_cronjob_status_last_successful_time": "kube-state-metrics: cronjob (label cronjob)",
    "kube_cronjob_created": "kube-state-metrics: cronjob",
    "kube_cronjob_status_last_schedule_time": "kube-state-metrics: cronjob (when the newest run was scheduled)",
    "kube_cronjob_status_active": "kube-state-metrics: cronjob (runs in progress)",
    "kube_job_status_failed": "kube-state-metrics: job (label job_name)",
    "kube_job_owner": "kube-state-metrics: job (labels owner_kind, owner_name)",
}
