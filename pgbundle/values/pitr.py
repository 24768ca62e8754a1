"""`postgres.pitr`: continuous WAL archiving and physical backups with pgBackRest,
for point-in-time recovery beside the logical `postgres.backup` dumps.

Off by default. When on, the database container archives every WAL segment to
each enabled repository (a volume and/or an S3-compatible bucket) and the
pgBackRest stanza is created at start. Secrets never appear here: the S3
credentials come from an existing Secret, the encryption passphrase from the
passwords Secret (key `pgbackrest_cipher_pass`, written by `secrets generate`).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from pgbundle.values.cron import CronSchedule
from pgbundle.values.fields import Cidr, DnsLabel, StorageSize, TimeZone, Values
from pgbundle.values.names import StorageClass

# S3's bucket naming rules (the strict, virtual-host-safe ones every provider accepts).
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_HOST_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_REGION = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
_PREFIX = re.compile(r"(/[A-Za-z0-9._-]+)+")


def _bucket(value: str) -> str:
    reason = None
    if not _BUCKET.fullmatch(value):
        reason = "3 to 63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit"
    elif ".." in value or ".-" in value or "-." in value:
        reason = "no two dots in a row and no hyphen beside a dot"
    elif re.fullmatch(r"\d+\.\d+\.\d+\.\d+", value):
        reason = "not an IP address"
    if reason:
        raise ValueError(f"{value!r} is not a valid S3 bucket name: use {reason}")
    return value


def _endpoint(value: str) -> str:
    host, _, port = value.partition(":")
    problem = None
    if "://" in value or "/" in value:
        problem = "give only the host name (and :port), no scheme or path: TLS is always used"
    elif port and not (port.isdigit() and 1 <= int(port) <= 65535):
        problem = "the port must be 1 to 65535"
    else:
        try:
            ipaddress.ip_address(host)
            problem = "use a host name, not an IP address: pgBackRest checks the certificate by name"
        except ValueError:
            if len(host) > 253 or not all(_HOST_LABEL.fullmatch(part) for part in host.split(".")):
                problem = "not a DNS host name"
    if problem:
        raise ValueError(f"{value!r} is not an S3 endpoint: {problem} (e.g. s3.eu-west-1.amazonaws.com or minio.storage:9000)")
    return value


def _region(value: str) -> str:
    if not _REGION.fullmatch(value) or len(value) > 64:
        raise ValueError(f"{value!r} is not a region name: lowercase letters, digits and hyphens, such as eu-west-1")
    return value


def _prefix(value: str) -> str:
    if not _PREFIX.fullmatch(value) or "/../" in value + "/" or "/./" in value + "/":
        raise ValueError(f"{value!r} is not a repository path: an absolute path such as /pgbackrest "
                         "(letters, digits, '.', '_', '-'; no '..')")
    return value


# postgresql.conf settings PITR writes: config.parameters may not override them while it is on.
PITR_OWNED_PARAMETERS = frozenset({"archive_mode", "archive_command", "archive_library", "archive_timeout",
                                   "restore_command"})

Bucket = Annotated[str, AfterValidator(_bucket)]
Endpoint = Annotated[str, AfterValidator(_endpoint)]
Region = Annotated[str, AfterValidator(_region)]
RepoPath = Annotated[str, AfterValidator(_prefix)]

# Levels each compression type takes in pgBackRest (a narrower, safe subset for zst and lz4).
COMPRESSION_LEVELS = {"zst": (1, 19), "lz4": (1, 12), "gz": (0, 9), "bz2": (1, 9)}
DEFAULT_COMPRESSION_LEVEL = {"zst": 3, "lz4": 1, "gz": 6, "bz2": 9}


class VolumeRepoValues(Values):
    """A pgBackRest repository on a volume in the namespace."""

    enabled: bool = True
    """Keep a repository on a volume in the namespace (fast restores; lost with the
    namespace's storage: add an S3 repository for off-site copies). Left out: true."""
    claim: Literal["backups", "own"] = "backups"
    """`backups`: a `pgbackrest` folder on the `postgres-backups` volume (needs
    `persistence.backups.enabled`). `own`: a PVC `postgres-pitr` of its own. With
    `replicas` >= 2 every member mounts it: `backups` with `persistence.backups.accessMode:
    ReadWriteMany`, or turn this repository off and use `s3`. Left out: backups."""
    size: StorageSize = "40Gi"
    """Size of `postgres-pitr` when `claim: own`. Left out: 40Gi."""
    storage_class: StorageClass = ""
    """StorageClass of `postgres-pitr` when `claim: own`; "" is the cluster's default."""


class S3RepoValues(Values):
    """A pgBackRest repository in an S3-compatible bucket."""

    enabled: bool = False
    """Keep a repository in an S3-compatible bucket (off-site copies, disaster
    recovery). Left out: false."""
    bucket: Bucket | None = None
    """The bucket (it must exist). Required when enabled."""
    endpoint: Endpoint | None = None
    """Host name (and :port) of the S3 API, always over TLS. Required when enabled."""
    region: Region = "us-east-1"
    """The bucket's region (signatures name it). Left out: us-east-1."""
    path: RepoPath = "/pgbackrest"
    """Prefix of the repository in the bucket: one per database cluster. Left out: /pgbackrest."""
    uri_style: Literal["host", "path"] = "host"
    """`host`: bucket.endpoint (AWS); `path`: endpoint/bucket (most self-hosted stores). Left out: host."""
    ca_secret: DnsLabel | None = None
    """Secret with `ca.crt`, the CA of a self-hosted endpoint's certificate. Left
    out: the image's system CAs."""
    egress_cidrs: list[Cidr] = []
    """Addresses of the endpoint the database pods may reach on its port when
    `networkPolicy.enabled` (a NetworkPolicy cannot name a host). Required then."""
    existing_secret: DnsLabel = "postgres-pitr-s3"
    """Secret with the keys `access-key-id` and `secret-access-key` (created by you;
    never in dist/). Left out: postgres-pitr-s3."""

    @model_validator(mode="after")
    def _check(self) -> S3RepoValues:
        if self.enabled:
            for key, value in (("bucket", self.bucket), ("endpoint", self.endpoint)):
                if value is None:
                    raise ValueError(f"{key}: required with s3.enabled: true")
        return self

    @property
    def port(self) -> int:
        """The endpoint's TCP port (HTTPS unless it names another)."""
        _, _, port = (self.endpoint or "").partition(":")
        return int(port) if port else 443


class ReposValues(Values):
    """Where pgBackRest keeps backups and archived WAL: a volume, an S3 bucket or both."""

    volume: VolumeRepoValues = Field(default_factory=VolumeRepoValues)
    s3: S3RepoValues = Field(default_factory=S3RepoValues)


class EncryptionValues(Values):
    """Client-side encryption of the repositories."""

    enabled: bool = True
    """Encrypt every repository client-side (aes-256-cbc) with the passphrase in
    the passwords Secret's key `pgbackrest_cipher_pass`. Keep a copy of it outside
    the cluster: without it no backup can be read. Left out: true."""


class CompressionValues(Values):
    """Compression of backups and archived WAL."""

    type: Literal["zst", "lz4", "gz", "bz2", "none"] = "zst"
    """Compression of backups and archived WAL. Left out: zst (fast, and about as
    small as gz)."""
    level: int | None = None
    """Level: zst 1-19, lz4 1-12, gz 0-9, bz2 1-9. Left out: zst 3, lz4 1, gz 6, bz2 9."""

    @model_validator(mode="after")
    def _check(self) -> CompressionValues:
        if self.level is not None:
            if self.type == "none":
                raise ValueError("level: type none takes no level; remove it")
            low, high = COMPRESSION_LEVELS[self.type]
            if not low <= self.level <= high:
                raise ValueError(f"level: {self.level} is out of range for {self.type}: use {low} to {high}")
        return self

    @property
    def effective_level(self) -> int | None:
        if self.type == "none":
            return None
        return self.level if self.level is not None else DEFAULT_COMPRESSION_LEVEL[self.type]


class PitrRetentionValues(Values):
    """How many pgBackRest backups each repository keeps."""

    full: int = 2
    """Full backups kept in each repository, with the WAL that restores any point
    since the oldest of them; an older full backup, the differential and
    incremental backups on it and its WAL are expired after each backup. 1 to 100.
    Left out: 2."""
    differential: int | None = None
    """Differential backups kept (the newest ones; incremental backups on an expired
    differential go with it). 1 to 1000. Left out: all of those on a kept full backup."""

    @model_validator(mode="after")
    def _check(self) -> PitrRetentionValues:
        if not 1 <= self.full <= 100:
            raise ValueError(f"full: {self.full} is not allowed: keep 1 to 100 full backups (0 would expire "
                             "every backup and the WAL with them)")
        if self.differential is not None and not 1 <= self.differential <= 1000:
            raise ValueError(f"differential: {self.differential} is not allowed: keep 1 to 1000, or leave it out")
        return self


class PitrSchedulesValues(Values):
    """When the pgBackRest backup CronJobs run."""

    full: CronSchedule = "15 1 * * 0"
    """Full backups, in `timeZone`. Left out: Sundays at 01:15."""
    differential: CronSchedule | None = "15 1 * * 1-6"
    """Backups of what changed since an earlier one (`differentialType`). Left out:
    Monday to Saturday at 01:15; null: none (full backups only)."""
    differential_type: Literal["diff", "incr"] = "diff"
    """`diff`: changes since the last full backup (a restore reads two backups);
    `incr`: since the last backup of any type (smaller, a restore reads the chain).
    Left out: diff."""
    time_zone: TimeZone = "Etc/UTC"
    """IANA time zone of the schedules. Left out: Etc/UTC."""


class PitrDrillValues(Values):
    """The scheduled restore drill: CronJob `postgres-pitr-drill`."""

    enabled: bool = True
    """Restore the newest backup and all archived WAL of every repository into a
    scratch volume on `schedule`, start it with no network and check it (every
    database opens, the application's tables are counted, pg_amcheck). Left out:
    true (with pitr.enabled)."""
    schedule: CronSchedule = "15 4 * * 6"
    """When, in `schedules.timeZone`. Left out: Saturdays at 04:15 (after that day's
    differential backup: the full, the differential and the WAL since, the longest
    chain a restore reads)."""
    size: StorageSize | None = None
    """Size of the scratch volume (an ephemeral PVC, created with the run's pod and
    deleted with it): the restored data must fit. Left out: `persistence.data.size`."""
    storage_class: StorageClass = ""
    """StorageClass of the scratch volume; "" is the cluster's default."""


class PitrValues(Values):
    enabled: bool = False
    """Archive WAL continuously and take physical backups with pgBackRest. Needs the
    project's image (`ha.image`: image/Dockerfile carries pgBackRest). Left out: false."""
    repos: ReposValues = Field(default_factory=ReposValues)
    encryption: EncryptionValues = Field(default_factory=EncryptionValues)
    compression: CompressionValues = Field(default_factory=CompressionValues)
    retention: PitrRetentionValues = Field(default_factory=PitrRetentionValues)
    schedules: PitrSchedulesValues = Field(default_factory=PitrSchedulesValues)
    drill: PitrDrillValues = Field(default_factory=PitrDrillValues)
    archive_timeout_seconds: int = 60
    """PostgreSQL's archive_timeout: on a quiet database a WAL segment is switched
    and archived at least this often, so it bounds the writes a lost volume can
    take with it (the RPO) when little is written. 30 to 3600. Left out: 60."""
    archive_async: bool = False
    """archive_command hands each WAL segment to pgBackRest's asynchronous archiver,
    which pushes ready segments in parallel (2 processes) over kept connections,
    with its acknowledgements in a spool folder on the data volume
    (`pgbackrest-spool`, beside PGDATA). Off: archive_command pushes one
    segment per run itself. Either way a segment leaves pg_wal only once a
    repository holds it. Left out: false."""

    @property
    def cipher(self) -> bool:
        """The repositories are encrypted: the passwords Secret holds the passphrase."""
        return self.enabled and self.encryption.enabled

    @model_validator(mode="after")
    def _check(self) -> PitrValues:
        if not 30 <= self.archive_timeout_seconds <= 3600:
            raise ValueError(f"archiveTimeoutSeconds: {self.archive_timeout_seconds} is not allowed: use 30 to 3600 "
                             "(below 30 every quiet minute fills the repository with 16 MB segments)")
        if self.enabled and not (self.repos.volume.enabled or self.repos.s3.enabled):
            raise ValueError("repos: enable repos.volume or repos.s3 (or both): WAL must be archived somewhere")
        return self
