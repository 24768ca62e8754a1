"""The alerts an on-call engineer needs for the bundled PostgreSQL, as data.

Each alert names its runbook section: the runbook page (contract.RUNBOOK_PAGE)
has a heading per alert, and `runbook_url` points at its anchor (the alert name
in lower case, GitHub's anchor of that heading). Every
metric name used here must be listed in pgbundle/monitoring/metric_catalog.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from pgbundle import contract

# The backup CronJob's longest gap between runs when the scope does not say
# (pgbundle/values/cron.py longest_interval_seconds derives it from the schedule).
BACKUP_INTERVAL_SECONDS = 24 * 3600
BACKUP_STALE_FACTOR = 1.5

CONNECTIONS_RATIO = 0.8
VOLUME_FREE_RATIO = 0.15
# Transaction IDs wrap around at 2^31; PostgreSQL stops accepting writes shortly before.
XID_WRAPAROUND_LIMIT = 2**31
XID_WRAPAROUND_RATIO = 0.5
LONG_TRANSACTION_SECONDS = 1800
REPLICATION_LAG_SECONDS = 60
ROLLBACK_RATIO = 0.1
ROLLBACKS_PER_SECOND_FLOOR = 1  # below this a high ratio is noise (a few scripted rollbacks)
# The pooler's clients: the oldest waiting one (PgBouncer's query_wait_timeout, 120 s
# by default, disconnects it eventually; long before that the application is slow).
POOLER_WAIT_SECONDS = 5
# Stale WAL archiving: a working archiver ships a written segment within archive_timeout
# (the switch of a quiet database's segment) plus the push itself, which is seconds but
# with pgBackRest's retries of a slow S3 request, a scrape interval and an evaluation
# can take this much longer.
ARCHIVE_GRACE_SECONDS = 120


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    for_: str | None
    severity: str  # critical pages; warning goes to a ticket queue
    summary: str
    description: str  # a Prometheus template; always shows {{ $value }}

    def anchor(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class AlertScope:
    """What the expressions select: this deployment's series only."""

    namespace: str
    replicas: int
    backups_volume: bool
    backup_interval_seconds: int = BACKUP_INTERVAL_SECONDS
    """Longest time between two scheduled backup runs."""
    synchronous_mode: bool = False
    """Patroni keeps a synchronous standby (replicas >= 2): its absence is alerted."""
    wal_archiving: bool = False
    """WAL is archived (postgres.pitr): failing and stale archiving are alerted."""
    archive_timeout_seconds: int = 60
    """PostgreSQL's archive_timeout (postgres.pitr.archiveTimeoutSeconds): the
    longest a written WAL record waits for its segment to be switched and archived."""
    pitr_backups: tuple[tuple[str, int], ...] = ()
    """The PITR backup CronJobs and the longest time between two of their runs:
    a run that has not succeeded for 1.5 of those is alerted."""
    pooler: bool = False
    """PgBouncer runs (postgres.pooler) with its exporter: its alerts too."""
    pooler_read_only: bool = False
    """The read-only pooler runs too (postgres.pooler.readOnly): the pooler alerts
    cover its exporter's Service as well, and name which pooler fired."""
    pitr_drill_interval_seconds: int | None = None
    """The restore drill's longest time between two runs: its newest run failing, or
    no success for 1.5 of those, is alerted (None: no drill)."""

    @property
    def exporter(self) -> str:
        # The Prometheus Operator labels every series with the Service it scraped.
        return f'namespace="{self.namespace}", service="{contract.METRICS_SERVICE}"'

    @property
    def pooler_services(self) -> tuple[str, ...]:
        """The metrics Services of the poolers that run."""
        return (contract.POOLER_METRICS_SERVICE, *((contract.POOLER_RO_METRICS_SERVICE,) if self.pooler_read_only else ()))

    @property
    def pooler_exporter(self) -> str:
        return pooler_selector(self.namespace, self.pooler_services)

    @property
    def data_claims(self) -> str:
        return f'namespace="{self.namespace}", persistentvolumeclaim=~"{contract.DATA_CLAIM}-{contract.STATEFULSET}-[0-9]+"'

    @property
    def backup_claim(self) -> str:
        return f'namespace="{self.namespace}", persistentvolumeclaim="{contract.BACKUP_CLAIM}"'

    def cronjob(self, name: str = contract.BACKUP_CRONJOB) -> str:
        return f'namespace="{self.namespace}", cronjob="{name}"'


def pooler_selector(namespace: str, services: tuple[str, ...]) -> str:
    """The series of the poolers' exporters behind `services` (one: an exact match)."""
    service = f'service="{services[0]}"' if len(services) == 1 else f'service=~"{"|".join(services)}"'
    return f'namespace="{namespace}", {service}'


def _not_succeeded_for(selector: str, seconds: int) -> str:
    """A CronJob's last success is older than `seconds`; the second clause: one that
    never succeeded has no last-success time, so its age counts from its creation."""
    return (f"(time() - kube_cronjob_status_last_successful_time{{{selector}}} > {seconds}) "
            f"or ((time() - kube_cronjob_created{{{selector}}} > {seconds}) "
            f"unless on (namespace, cronjob) kube_cronjob_status_last_successful_time{{{selector}}})")


def newest_run_failed(selector: str) -> str:
    """A CronJob's newest run did not succeed: it was scheduled after the last success
    (or there never was one) and none is running any more. Its value is the newest
    run's schedule time. Each series is reduced to (namespace, cronjob) first: the
    comparison then matches one to one even when two kube-state-metrics replicas
    export the same CronJob."""

    def per_cronjob(metric: str) -> str:
        return f"max by (namespace, cronjob) ({metric}{{{selector}}})"

    scheduled = per_cronjob("kube_cronjob_status_last_schedule_time")
    succeeded = per_cronjob("kube_cronjob_status_last_successful_time")
    return (f"((({scheduled} > {succeeded}) or ({scheduled} unless {succeeded})) "
            f"and ({per_cronjob('kube_cronjob_status_active')} == 0))")


def archive_stale_seconds(archive_timeout_seconds: int) -> int:
    """How old the last archived segment may be while rows are written: each write's
    segment is switched within archive_timeout and pushed within the grace."""
    return archive_timeout_seconds + ARCHIVE_GRACE_SECONDS


def _archiving_stale(ex: str, stale: int) -> str:
    """Nothing archived for `stale` seconds although rows were inserted, updated or
    deleted in that time. The writes tell a stuck archiver from a quiet database,
    whose last archive rightly ages without bound (nothing is switched, nothing to
    ship); a standby's replay does not count as its writes. Every counter is summed
    first: a database without writes has no rate, not a zero one."""
    written = " + ".join(f"sum by (namespace, pod) (increase(pg_stat_database_tup_{kind}{{{ex}}}[{stale}s]))"
                         for kind in ("inserted", "updated", "deleted"))
    return f"(pg_stat_archiver_last_archive_age{{{ex}}} > {stale}) and on (namespace, pod) ({written} > 0)"


def alerts(scope: AlertScope) -> list[Alert]:
    ex = scope.exporter
    stale_after = int(scope.backup_interval_seconds * BACKUP_STALE_FACTOR)
    found = [
        Alert(
            "PostgresDown",
            # pg_up: the exporter cannot connect; up: the exporter itself is not
            # scraped; absent: the pod (or the whole target) is gone.
            f"(pg_up{{{ex}}} == 0) or (up{{{ex}}} == 0) or absent(up{{{ex}}})",
            "1m",
            "critical",
            "PostgreSQL {{ $labels.namespace }}/{{ $labels.pod }} is down",
            "No successful connection to the database (value {{ $value }}) for 1 minute: "
            "the application cannot read or write.",
        ),
        Alert(
            "PostgresTooManyConnections",
            f"sum by (namespace, pod) (pg_stat_activity_count{{{ex}}}) "
            f"/ on (namespace, pod) max by (namespace, pod) (pg_settings_max_connections{{{ex}}}) > {CONNECTIONS_RATIO}",
            "5m",
            "warning",
            "PostgreSQL {{ $labels.pod }} uses more than 80% of max_connections",
            "{{ $value | humanizePercentage }} of max_connections are in use; new connections "
            "will be refused when it reaches 100%.",
        ),
        Alert(
            "PostgresTransactionIdWraparound",
            f"max by (namespace, pod, datname) (pg_database_wraparound_age_datfrozenxid_seconds{{{ex}}}) "
            f"/ {XID_WRAPAROUND_LIMIT} > {XID_WRAPAROUND_RATIO}",
            "15m",
            "warning",
            "Database {{ $labels.datname }} is approaching transaction ID wraparound",
            "The oldest unfrozen transaction ID of {{ $labels.datname }} has used "
            "{{ $value | humanizePercentage }} of the 2^31 limit; PostgreSQL stops writes near it.",
        ),
        Alert(
            "PostgresLongRunningTransaction",
            f"max by (namespace, pod, datname) (pg_stat_activity_max_tx_duration{{{ex}}}) > {LONG_TRANSACTION_SECONDS}",
            "5m",
            "warning",
            "A transaction in {{ $labels.datname }} has been open for more than 30 minutes",
            "The oldest open transaction in {{ $labels.datname }} is {{ $value | humanizeDuration }} old; "
            "it holds back vacuum and may hold locks.",
        ),
        Alert(
            "PostgresDeadlocks",
            f"increase(pg_stat_database_deadlocks{{{ex}}}[10m]) > 0",
            None,
            "warning",
            "Deadlocks in {{ $labels.datname }}",
            "{{ $value | printf \"%.0f\" }} deadlocks in {{ $labels.datname }} over the last 10 minutes: "
            "transactions were aborted.",
        ),
        Alert(
            "PostgresHighRollbackRate",
            f"(sum by (namespace, pod, datname) (rate(pg_stat_database_xact_rollback{{{ex}}}[10m])) "
            f"/ (sum by (namespace, pod, datname) (rate(pg_stat_database_xact_rollback{{{ex}}}[10m])) "
            f"+ sum by (namespace, pod, datname) (rate(pg_stat_database_xact_commit{{{ex}}}[10m]))) > {ROLLBACK_RATIO}) "
            f"and sum by (namespace, pod, datname) (rate(pg_stat_database_xact_rollback{{{ex}}}[10m])) > {ROLLBACKS_PER_SECOND_FLOOR}",
            "10m",
            "warning",
            "Too many rollbacks in {{ $labels.datname }}",
            "{{ $value | humanizePercentage }} of the transactions in {{ $labels.datname }} roll back.",
        ),
        Alert(
            "PostgresDataVolumeFull",
            f"kubelet_volume_stats_available_bytes{{{scope.data_claims}}} "
            f"/ kubelet_volume_stats_capacity_bytes{{{scope.data_claims}}} < {VOLUME_FREE_RATIO}",
            "5m",
            "critical",
            "Data volume {{ $labels.persistentvolumeclaim }} has less than 15% free",
            "Only {{ $value | humanizePercentage }} of {{ $labels.persistentvolumeclaim }} is free; "
            "PostgreSQL shuts down when the volume is full.",
        ),
        Alert(
            "PostgresBackupTooOld",
            _not_succeeded_for(scope.cronjob(), stale_after),
            None,
            "critical",
            "No successful PostgreSQL backup for 1.5 schedule intervals",
            "The last successful run of CronJob " + contract.BACKUP_CRONJOB
            + " was {{ $value | humanizeDuration }} ago (its schedule allows "
            + f"{scope.backup_interval_seconds / 3600:g} h between runs).",
        ),
        Alert(
            "PostgresBackupJobFailed",
            f"kube_job_status_failed{{namespace=\"{scope.namespace}\"}} "
            f"* on (namespace, job_name) group_left (owner_name) "
            f"kube_job_owner{{namespace=\"{scope.namespace}\", owner_kind=\"CronJob\", owner_name=\"{contract.BACKUP_CRONJOB}\"}} > 0",
            None,
            "warning",
            "Backup job {{ $labels.job_name }} failed",
            "Job {{ $labels.job_name }} of CronJob " + contract.BACKUP_CRONJOB
            + " has {{ $value }} failed pods.",
        ),
    ]
    if scope.backups_volume:
        found.append(
            Alert(
                "PostgresBackupVolumeFull",
                f"kubelet_volume_stats_available_bytes{{{scope.backup_claim}}} "
                f"/ kubelet_volume_stats_capacity_bytes{{{scope.backup_claim}}} < {VOLUME_FREE_RATIO}",
                "5m",
                "warning",
                "Backup volume " + contract.BACKUP_CLAIM + " has less than 15% free",
                "Only {{ $value | humanizePercentage }} of " + contract.BACKUP_CLAIM
                + " is free; the next backups may fail.",
            )
        )
    if scope.wal_archiving:
        found.append(
            Alert(
                "PostgresWalArchivingFailing",
                f"increase(pg_stat_archiver_failed_count{{{ex}}}[10m]) > 0",
                "10m",
                "critical",
                "WAL archiving to the pgBackRest repositories is failing",
                "archive_command failed {{ $value }} times in 10 minutes: WAL piles up in pg_wal "
                "(the data volume) and nothing after the last archived segment can be restored.",
            )
        )
        stale = archive_stale_seconds(scope.archive_timeout_seconds)
        found.append(
            Alert(
                "PostgresWalArchivingStale",
                _archiving_stale(ex, stale),
                # Longer than a working archiver needs for the first write after a quiet
                # spell (the last archive is old then, until that write's segment is shipped).
                f"{stale}s",
                "critical",
                "No WAL archived for longer than archive_timeout while the database is written",
                "The last WAL segment reached the pgBackRest repositories {{ $value | humanizeDuration }} ago "
                f"although rows are being written (archive_timeout is {scope.archive_timeout_seconds} s): "
                "the newest restorable point falls behind and WAL piles up in pg_wal.",
            )
        )
    if scope.pitr_backups:
        found.append(
            Alert(
                "PostgresPitrBackupTooOld",
                " or ".join(f"({_not_succeeded_for(scope.cronjob(name), int(interval * BACKUP_STALE_FACTOR))})"
                            for name, interval in scope.pitr_backups),
                None,
                "critical",
                "No successful pgBackRest backup ({{ $labels.cronjob }}) for 1.5 schedule intervals",
                "The last successful run of CronJob {{ $labels.cronjob }} was {{ $value | humanizeDuration }} "
                "ago: restores need ever longer WAL replay, and a failed verify (a damaged repository) "
                "also stops the runs from succeeding.",
            )
        )
    if scope.pitr_drill_interval_seconds is not None:
        drill = scope.cronjob(contract.PITR_DRILL_CRONJOB)
        found += [
            Alert(
                "PostgresPitrDrillFailing",
                newest_run_failed(drill),
                "10m",
                "critical",
                "The restore drill failed: the pgBackRest backups may not restore",
                "The run of CronJob " + contract.PITR_DRILL_CRONJOB + " scheduled at {{ $value | humanizeTimestamp }} "
                "failed: restoring the newest backup and the archived WAL, or checking the restored copy, did not work.",
            ),
            Alert(
                "PostgresPitrDrillTooOld",
                _not_succeeded_for(drill, int(scope.pitr_drill_interval_seconds * BACKUP_STALE_FACTOR)),
                None,
                "warning",
                "No successful restore drill for 1.5 schedule intervals",
                "The last successful run of CronJob " + contract.PITR_DRILL_CRONJOB
                + " was {{ $value | humanizeDuration }} ago: nothing has shown lately that the backups restore.",
            ),
        ]
    if scope.pooler:
        found += _pooler_alerts(scope)
    if scope.replicas > 1:
        found.append(
            Alert(
                "PostgresReplicationLag",
                f"max by (namespace, pod) (pg_replication_lag_seconds{{{ex}}}) > {REPLICATION_LAG_SECONDS}",
                "5m",
                "warning",
                "Replica {{ $labels.pod }} lags behind the primary",
                "Replica {{ $labels.pod }} replays WAL {{ $value | humanizeDuration }} behind the primary.",
            )
        )
        # Patroni's own metrics (its REST API's /metrics, scraped through the same Service).
        found += [
            Alert(
                "PostgresNoPrimary",
                f"max by (namespace) (patroni_primary{{{ex}}}) < 1",
                "1m",
                "critical",
                "No member of the PostgreSQL cluster runs as the primary",
                "{{ $value }} members report being the primary: writes fail until Patroni elects one.",
            ),
            Alert(
                "PostgresMemberNotStreaming",
                f"(patroni_replica{{{ex}}} == 1) and on (namespace, pod) (patroni_postgres_streaming{{{ex}}} == 0)",
                "2m",
                "warning",
                "Replica {{ $labels.pod }} does not stream from the primary",
                "Replica {{ $labels.pod }} runs but does not stream WAL (value {{ $value }}): it falls behind "
                "and cannot take over without losing data.",
            ),
            Alert(
                "PostgresFailover",
                f"max by (namespace) (changes(patroni_postgres_timeline{{{ex}}}[15m])) > 0",
                None,
                "warning",
                "The PostgreSQL primary changed",
                "The cluster's timeline changed {{ $value }} times in 15 minutes: a failover or switchover "
                "happened; check why the old primary left.",
            ),
        ]
        if scope.synchronous_mode:
            found.append(
                Alert(
                    "PostgresNoSynchronousStandby",
                    f"max by (namespace) (patroni_sync_standby{{{ex}}}) < 1",
                    "2m",
                    "warning",
                    "No synchronous standby",
                    "{{ $value }} members are synchronous standbys: commits are acknowledged by the primary "
                    "alone, and losing it now loses the latest of them.",
                )
            )
    return found


def _pooler_name(read_only: bool) -> str:
    """The pooler's Service, in an alert's text: with the read-only pooler, told
    apart by the metrics Service its series were scraped through."""
    if not read_only:
        return contract.POOLER
    return ('{{ if eq $labels.service "' + contract.POOLER_RO_METRICS_SERVICE + '" }}' + contract.POOLER_RO
            + "{{ else }}" + contract.POOLER + "{{ end }}")


def _pooler_alerts(scope: AlertScope) -> list[Alert]:
    """PgBouncer's, from its exporter sidecar (one series per pooler pod); with the
    read-only pooler, each pooler's series (the `service` label tells them apart)."""
    px, read_only = scope.pooler_exporter, scope.pooler_read_only
    pool = "namespace, pod, database, user" + (", service" if read_only else "")
    name = _pooler_name(read_only)
    # absent() of each pooler on its own: one left without pods while the other runs.
    absent = " or ".join(f"absent(up{{{pooler_selector(scope.namespace, (service,))}}})"
                         for service in scope.pooler_services)
    which = f" ({name})" if read_only else ""
    return [
        Alert(
            "PostgresPoolerDown",
            # pgbouncer_up: the exporter cannot read PgBouncer's admin console; up: the
            # exporter is not scraped; absent: no pooler pod is left at all.
            f"(pgbouncer_up{{{px}}} == 0) or (up{{{px}}} == 0) or {absent}",
            "1m",
            "critical",
            "Connection pooler" + which + " {{ $labels.namespace }}/{{ $labels.pod }} is down",
            "PgBouncer does not answer its exporter (value {{ $value }}) for 1 minute: clients of the "
            "Service " + name + " lose this pod's share of connections, or all of them.",
        ),
        Alert(
            "PostgresPoolerClientsWaiting",
            f"max by ({pool}) (pgbouncer_pools_client_maxwait_seconds{{{px}}}) > {POOLER_WAIT_SECONDS}",
            "2m",
            "warning",
            "Clients of pool {{ $labels.database }}/{{ $labels.user }}" + which + " wait for a server connection",
            "The oldest waiting client of {{ $labels.database }}/{{ $labels.user }} on {{ $labels.pod }} has waited "
            "{{ $value }} s for a server connection; at query_wait_timeout PgBouncer disconnects it.",
        ),
        Alert(
            "PostgresPoolerSaturated",
            # Clients queue while the pool has no idle server connection: every one it may
            # open (default_pool_size, max_db_connections) is busy.
            f"(sum by ({pool}) (pgbouncer_pools_client_waiting_connections{{{px}}}) > 0) "
            f"and on ({pool}) (sum by ({pool}) (pgbouncer_pools_server_idle_connections{{{px}}}) == 0)",
            "5m",
            "warning",
            "Pool {{ $labels.database }}/{{ $labels.user }}" + which + " is saturated",
            "{{ $value }} clients of {{ $labels.database }}/{{ $labels.user }} on {{ $labels.pod }} wait while "
            "every server connection of the pool is busy, for 5 minutes.",
        ),
    ]


def rule_groups(scope: AlertScope, runbook_base_url: str) -> list[dict]:
    """The PrometheusRule `spec.groups`."""
    rules = []
    for alert in alerts(scope):
        rule: dict = {"alert": alert.name, "expr": alert.expr}
        if alert.for_:
            rule["for"] = alert.for_
        rule["labels"] = {"severity": alert.severity}
        rule["annotations"] = {
            "summary": alert.summary,
            "description": alert.description,
            "runbook_url": f"{runbook_base_url}#{alert.anchor()}",
        }
        rules.append(rule)
    return [{"name": "postgres", "rules": rules}]
