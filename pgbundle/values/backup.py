"""`postgres.backup`: the schedule, retention and resources of the backup job."""

from __future__ import annotations

from pydantic import Field, model_validator

from pgbundle.values.cron import CronSchedule
from pgbundle.values.fields import DnsLabel, PgName, ResourceAmounts, ResourcesValues, TimeZone, Values

class RetentionValues(Values):
    """How many dumps the backup job keeps."""

    count: int = 7
    """Backup sets kept: after a verified run, all but the newest `count` are
    deleted. 1 to 1000. Left out: 7."""
    days: int | None = None
    """Also delete sets older than this many days, 1 to 3650 (the newest verified
    set is always kept). Left out: no age limit, only `count` applies."""

    @model_validator(mode="after")
    def _check(self) -> RetentionValues:
        if not 1 <= self.count <= 1000:
            raise ValueError(
                f"count: {self.count} is not allowed: keep 1 to 1000 backup sets (0 would leave "
                "no backup to restore)"
            )
        if self.days is not None and not 1 <= self.days <= 3650:
            raise ValueError(
                f"days: {self.days} is not allowed: use 1 to 3650 days, or leave it out for no age limit"
            )
        return self


class BackupResourcesValues(ResourcesValues):
    """Requests and limits of the backup job's container."""

    requests: ResourceAmounts = ResourceAmounts(cpu="250m", memory="256Mi")
    """Scheduling requests of the backup pod. Left out: 250m CPU, 256Mi memory."""
    limits: ResourceAmounts = ResourceAmounts(cpu="2000m", memory="1Gi")
    """Limits of the backup pod (pg_dump compresses on one core and verifies on
    another). Left out: 2000m CPU, 1Gi memory."""


class ClientCertificateValues(Values):
    """The backup job's client certificate, used when the server verifies clients."""

    existing_secret: DnsLabel = "postgres-backup-tls"
    """Secret (type kubernetes.io/tls: `tls.crt`, `tls.key`) with the backup job's
    client certificate, signed by the CA in `ca.existingSecret`. Mounted only when
    `ca.verifyClients` is true. Left out: postgres-backup-tls."""


class BackupValues(Values):
    """Logical backups: a CronJob dumping each database to the volume `postgres-backups`."""

    enabled: bool = True
    """Emit the CronJob `postgres-backup` (needs `persistence.backups.enabled`).
    Left out: true."""
    schedule: CronSchedule = "0 2 * * *"
    """When backups run, in `timeZone`. Left out: daily at 02:00."""
    time_zone: TimeZone = "Etc/UTC"
    """IANA time zone of `schedule` (the CronJob's timeZone field). Left out: Etc/UTC."""
    retention: RetentionValues = Field(default_factory=RetentionValues)
    compression: int = Field(default=1, ge=1, le=9)
    """pg_dump compression level (gzip, which every pg_dump version writes). Level 1 is
    several times faster than the default 6 on data that does not compress well and
    loses little on data that does (see bench/backup.py). 0 is not allowed: the
    verification detects corrupt data blocks through the compressed stream's checksum.
    Left out: 1."""
    databases: list[PgName] | None = Field(default=None, min_length=1)
    """Databases dumped, each into its own file. Left out: `database`, plus
    `temporal` and `temporal_visibility` when `temporal.enabled`."""
    resources: BackupResourcesValues = Field(default_factory=BackupResourcesValues)
    suspend: bool = False
    """Stop scheduling new runs (a running one finishes). Left out: false."""
    timeout_minutes: int = Field(default=240, ge=5, le=24 * 60)
    """A run still going after this long is stopped (the Job's activeDeadlineSeconds)
    and counts as failed. Left out: 240 (4 hours)."""
    client_certificate: ClientCertificateValues = Field(default_factory=ClientCertificateValues)

    @model_validator(mode="after")
    def _unique_databases(self) -> BackupValues:
        if self.databases is not None and len(set(self.databases)) != len(self.databases):
            raise ValueError(f"databases: {self.databases} lists a database twice; list each once")
        return self

