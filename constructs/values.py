"""The values file, as a typed model.

Keys follow the old Helm chart's `values.yaml` (camelCase, same nesting) so a
user can carry their file over; keys the chart never had are documented here.
Every model forbids unknown keys: a typo such as `replica` is an error, not a
silently ignored setting. Every field's default is what happens when the key
is left out.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import zoneinfo
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel

from constructs.layout import MONITORING_ROLE
from constructs.metric_catalog import EXPORTER_VERSION
from constructs.quantity import cpu_cores, memory_bytes
from pgbundle.values.merge import merge
from pgbundle.values.names import (
    DNS1123_LABEL, ImageRepository, ImageTag, LabelKey, Labels, LabelValue, Printable, StorageClass,
)
from pgbundle.values.parameters import problems_in as parameter_problems
from pgbundle.values.source import SourceError, read_values_file

class ValuesError(Exception):
    """The values file cannot be used; the message names the field and the fix."""


# --- reusable field types -------------------------------------------------

_PG_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
_PG_MEMORY = re.compile(r"^[0-9]+(B|kB|MB|GB|TB)$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def _dns1123_label(value: str) -> str:
    if len(value) > 63 or not DNS1123_LABEL.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a DNS-1123 label: use at most 63 lower-case letters, digits "
            "and '-', starting and ending with a letter or digit"
        )
    return value


def _dns1123_subdomain(value: str) -> str:
    if len(value) > 253 or not all(DNS1123_LABEL.fullmatch(part) for part in value.split(".")):
        raise ValueError(
            f"{value!r} is not a DNS-1123 subdomain: use at most 253 lower-case letters, digits, "
            "'-' and '.', each dot-separated part starting and ending with a letter or digit"
        )
    return value


def _pg_identifier(value: str) -> str:
    if len(value) > 63 or not _PG_IDENTIFIER.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a plain PostgreSQL name: use at most 63 lower-case letters, "
            "digits and '_', starting with a letter or '_'"
        )
    if value == "postgres" or value.startswith("pg_"):
        raise ValueError(f"{value!r} is reserved by PostgreSQL: choose another name")
    return value


def _storage(value: str) -> str:
    if memory_bytes(value) <= 0:
        raise ValueError(f"{value!r} must be larger than zero")
    return value


def _memory(value: str) -> str:
    memory_bytes(value)
    return value


def _cpu(value: str) -> str:
    cpu_cores(value)
    return value


def _pg_memory(value: str) -> str:
    if not _PG_MEMORY.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a PostgreSQL memory setting: use a whole number with one of "
            "the units B, kB, MB, GB, TB (for example 256MB)"
        )
    return value


DnsLabel = Annotated[str, AfterValidator(_dns1123_label)]
DnsSubdomain = Annotated[str, AfterValidator(_dns1123_subdomain)]
PgName = Annotated[str, AfterValidator(_pg_identifier)]
StorageSize = Annotated[str, AfterValidator(_storage)]
MemoryQuantity = Annotated[str, AfterValidator(_memory)]
CpuQuantity = Annotated[str, AfterValidator(_cpu)]
PgMemory = Annotated[str, AfterValidator(_pg_memory)]


class Values(BaseModel):
    """Base of every values model: camelCase keys, no unknown keys, immutable."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True
    )


# --- global ---------------------------------------------------------------


class GlobalValues(Values):
    namespace: DnsLabel = "api-forge-prod"
    """Namespace of every object. Left out: api-forge-prod."""
    create_namespace: bool = True
    """Emit the Namespace object (labelled for the restricted Pod Security
    Standard). Left out: emitted; set false when the namespace is managed elsewhere."""
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    """Pull policy of every container. Left out: IfNotPresent (the tag is pinned)."""


# --- postgres -------------------------------------------------------------


class ImageValues(Values):
    repository: ImageRepository = "postgres"
    """Image repository. Left out: the official `postgres` image (Debian, uid 999)."""
    tag: ImageTag = "17.6-bookworm"
    """Image tag, pinned to a full minor version. Left out: 17.6-bookworm."""
    digest: str | None = None
    """`sha256:...` digest; when set it is used instead of the tag. Left out: the tag."""

    @model_validator(mode="after")
    def _check(self) -> ImageValues:
        if self.tag == "latest":
            raise ValueError("tag: 'latest' is not reproducible: pin a full version such as 17.6-bookworm")
        if self.digest is not None and not _DIGEST.fullmatch(self.digest):
            raise ValueError(f"digest: {self.digest!r} must look like sha256:<64 hex digits>")
        return self

    @property
    def reference(self) -> str:
        if self.digest:
            return f"{self.repository}@{self.digest}"
        return f"{self.repository}:{self.tag}"

    @property
    def major_version(self) -> str:
        """The PostgreSQL major version the tag names (`17.6-bookworm` -> `17`)."""
        return re.split(r"[.-]", self.tag, maxsplit=1)[0]


class ResourceAmounts(Values):
    cpu: CpuQuantity
    memory: MemoryQuantity


class ResourcesValues(Values):
    requests: ResourceAmounts = ResourceAmounts(cpu="500m", memory="1Gi")
    """Scheduling requests. Left out: 500m CPU, 1Gi memory."""
    limits: ResourceAmounts = ResourceAmounts(cpu="2000m", memory="4Gi")
    """Limits; PostgreSQL's memory settings are derived from `limits.memory`.
    Left out: 2000m CPU, 4Gi memory."""

    @model_validator(mode="after")
    def _requests_within_limits(self) -> ResourcesValues:
        if cpu_cores(self.requests.cpu) > cpu_cores(self.limits.cpu):
            raise ValueError(
                f"requests.cpu: {self.requests.cpu} is above limits.cpu {self.limits.cpu}: "
                "a request may not exceed its limit"
            )
        if memory_bytes(self.requests.memory) > memory_bytes(self.limits.memory):
            raise ValueError(
                f"requests.memory: {self.requests.memory} is above limits.memory "
                f"{self.limits.memory}: a request may not exceed its limit"
            )
        return self


class VolumeValues(Values):
    enabled: bool = True
    """Keep this data on a PersistentVolumeClaim. Left out: true."""
    size: StorageSize
    storage_class: StorageClass = ""
    """StorageClass name; "" uses the cluster's default class."""


class DataVolumeValues(VolumeValues):
    size: StorageSize = "20Gi"
    """Size of each replica's data volume. Left out: 20Gi."""

    @model_validator(mode="after")
    def _persistent(self) -> DataVolumeValues:
        if not self.enabled:
            raise ValueError(
                "enabled: false would keep the database on an emptyDir and lose it with the "
                "pod; the data volume is always persistent, remove this key"
            )
        return self


class BackupVolumeValues(VolumeValues):
    size: StorageSize = "40Gi"
    """Size of the backup volume `postgres-backups`. Left out: 40Gi."""
    access_mode: Literal["ReadWriteOnce", "ReadWriteMany"] = "ReadWriteOnce"
    """Access mode of `postgres-backups`. With ReadWriteOnce the backup job must
    run on the database pod's node. Left out: ReadWriteOnce."""


class PersistenceValues(Values):
    data: DataVolumeValues = Field(default_factory=DataVolumeValues)
    backups: BackupVolumeValues = Field(default_factory=BackupVolumeValues)


class LoggingValues(Values):
    to_file: bool = False
    """Also keep log files on the data volume. Left out: JSON lines on stderr only,
    which the cluster's log pipeline collects."""
    retention_days: int = Field(default=7, ge=1, le=365)
    """Days of log files kept when `toFile` is true. Left out: 7."""


ParameterValue = str | int | float | bool


class ConfigValues(Values):
    max_connections: int = Field(default=200, ge=10, le=10000)
    """`max_connections`. Left out: 200, as in the old chart."""
    shared_buffers: PgMemory | None = None
    """Left out: a quarter of `resources.limits.memory`."""
    effective_cache_size: PgMemory | None = None
    """Left out: three quarters of `resources.limits.memory`."""
    work_mem: PgMemory | None = None
    """Left out: sized so that max_connections x work_mem fits beside shared_buffers."""
    maintenance_work_mem: PgMemory | None = None
    """Left out: derived from the memory limit (at most 1GB)."""
    parameters: dict[str, ParameterValue] = {}
    """Any other postgresql.conf setting, written last so it overrides. Names and
    values are checked against the image's PostgreSQL major, and settings the
    product owns are refused (pgbundle/values/parameters.py). Left out: none."""


# --- TLS: certificates made by cert-manager or by `secrets generate` --------

# A Go duration as cert-manager reads it (`2160h`, `90m`, `1h30m`).
_GO_DURATION = re.compile(r"^([0-9]+(\.[0-9]+)?(h|m|s))+$")
_GO_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(h|m|s)")


def go_duration_seconds(value: str) -> float:
    """Seconds in a Go duration such as `2160h` or `1h30m` (units h, m, s)."""
    if not _GO_DURATION.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a duration: use whole or decimal numbers with the units h, m, s "
            "(for example 2160h for 90 days)"
        )
    factor = {"h": 3600, "m": 60, "s": 1}
    return sum(float(n) * factor[u] for n, u in _GO_DURATION_PART.findall(value))


def _go_duration(value: str) -> str:
    go_duration_seconds(value)
    return value


GoDuration = Annotated[str, AfterValidator(_go_duration)]

_CERT_MANAGER_GROUP = "cert-manager.io"


class IssuerRefValues(Values):
    name: DnsSubdomain | None = None
    """Name of the Issuer or ClusterIssuer that signs the server certificate.
    Left out: none, which is an error when cert-manager is enabled."""
    kind: str = Field(default="Issuer", min_length=1)
    """`Issuer` (same namespace) or `ClusterIssuer`; any kind for an external
    issuer group. Left out: Issuer."""
    group: str = Field(default=_CERT_MANAGER_GROUP, min_length=1)
    """API group of the issuer. Left out: cert-manager.io."""

    @model_validator(mode="after")
    def _check(self) -> IssuerRefValues:
        if self.group == _CERT_MANAGER_GROUP and self.kind not in ("Issuer", "ClusterIssuer"):
            raise ValueError(
                f"kind: {self.kind!r} is not a cert-manager.io issuer kind: use Issuer or ClusterIssuer "
                "(or set group to your external issuer's API group)"
            )
        return self


class CertManagerValues(Values):
    enabled: bool = False
    """Emit a cert-manager `Certificate` that writes the TLS Secret (`tls.existingSecret`),
    and read the CA from that Secret's `ca.crt` instead of `ca.existingSecret`.
    Left out: false; the TLS and CA Secrets come from `python main.py secrets generate`."""
    issuer_ref: IssuerRefValues = Field(default_factory=IssuerRefValues)
    """The issuer that signs the certificate; `issuerRef.name` is required when enabled.
    The issuer should put its CA into `ca.crt` (CA and self-signed issuers do):
    clients verify the server and, with `ca.verifyClients`, the server verifies clients with it."""
    duration: GoDuration = "2160h"
    """Requested lifetime of the server certificate. Left out: 2160h (90 days),
    cert-manager's own default."""
    renew_before: GoDuration = "360h"
    """Renew this long before expiry; PostgreSQL reloads the renewed files without a
    restart. Left out: 360h (15 days)."""

    @model_validator(mode="after")
    def _check(self) -> CertManagerValues:
        if not self.enabled:
            return self
        if self.issuer_ref.name is None:
            raise ValueError(
                "issuerRef.name: missing; cert-manager needs the name of the Issuer or "
                "ClusterIssuer that signs the server certificate"
            )
        duration, renew = go_duration_seconds(self.duration), go_duration_seconds(self.renew_before)
        if duration < 3600:
            raise ValueError(f"duration: {self.duration!r} is below cert-manager's minimum of 1h")
        if renew < 300:
            raise ValueError(f"renewBefore: {self.renew_before!r} is below cert-manager's minimum of 5m")
        if renew >= duration:
            raise ValueError(
                f"renewBefore: {self.renew_before!r} is not shorter than duration {self.duration!r}: "
                "the certificate would be renewed for ever; use less than the duration"
            )
        return self


class GeneratorValues(Values):
    """Certificates that `python main.py secrets generate` makes when cert-manager is off."""

    server_validity_days: int = Field(default=365, ge=1, le=3650)
    """Lifetime of the generated server certificate, in days. Left out: 365."""
    ca_validity_days: int = Field(default=3650, ge=1, le=36500)
    """Lifetime of the generated CA certificate, in days. Left out: 3650 (10 years)."""
    key_algorithm: Literal["ECDSA-P256", "RSA-3072"] = "ECDSA-P256"
    """Key type of the CA and the server certificate. Left out: ECDSA-P256."""

    @model_validator(mode="after")
    def _check(self) -> GeneratorValues:
        if self.server_validity_days > self.ca_validity_days:
            raise ValueError(
                f"serverValidityDays: {self.server_validity_days} is longer than caValidityDays "
                f"{self.ca_validity_days}: a certificate cannot outlive its CA; use at most "
                f"{self.ca_validity_days}"
            )
        return self
def _cidr(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError as err:
        raise ValueError(f"{value!r} is not a network in CIDR form such as 10.0.0.0/8 or ::/0 ({err})") from None


class TlsValues(Values):
    enabled: bool = True
    """Serve TLS (1.2+) and reject every non-TLS TCP connection. Left out: true."""
    existing_secret: DnsLabel = "postgres-tls"
    """Secret with `server.crt` and `server.key` (with cert-manager: `tls.crt`,
    `tls.key` and `ca.crt`, which the pod sees under the same file names).
    Left out: postgres-tls."""
    cert_manager: CertManagerValues = Field(default_factory=CertManagerValues)
    """Let cert-manager issue and renew the server certificate. Left out: off."""
    generator: GeneratorValues = Field(default_factory=GeneratorValues)
    """Validity and key type for `secrets generate`. Left out: 1 year server,
    10 years CA, ECDSA P-256."""


class CaValues(Values):
    existing_secret: DnsLabel = "postgres-ca"
    """Secret with `ca.crt`, the CA that signed the server and client certificates.
    Left out: postgres-ca."""
    verify_clients: bool = False
    """Require a client certificate signed by this CA on every TCP connection (in
    addition to the password). Left out: false (password over TLS)."""


class SecretsValues(Values):
    existing_secret: DnsLabel = "postgres-secrets"
    """Secret holding the role passwords. Left out: postgres-secrets."""


class PodDisruptionBudgetValues(Values):
    enabled: bool = True
    min_available: int = Field(default=1, ge=0)
    """Pods kept through voluntary disruptions. Left out: 1."""


class LabelSelectorRequirement(Values):
    key: LabelKey
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[LabelValue] = []

    @model_validator(mode="after")
    def _values_fit_the_operator(self) -> LabelSelectorRequirement:
        # The API server's rule: In/NotIn need values, Exists/DoesNotExist take none.
        if self.operator in ("In", "NotIn") and not self.values:
            raise ValueError(f"values: operator {self.operator} needs at least one value")
        if self.operator in ("Exists", "DoesNotExist") and self.values:
            raise ValueError(f"values: operator {self.operator} takes no values; remove them")
        return self


class LabelSelector(Values):
    match_labels: Labels = {}
    match_expressions: list[LabelSelectorRequirement] = []


class IpBlock(Values):
    cidr: Annotated[str, AfterValidator(_cidr)]
    except_: list[Annotated[str, AfterValidator(_cidr)]] = Field(default=[], alias="except")

    @model_validator(mode="after")
    def _exceptions_inside(self) -> IpBlock:
        outer = ipaddress.ip_network(self.cidr)
        for inner in map(ipaddress.ip_network, self.except_):
            if inner.version != outer.version or not inner.subnet_of(outer):
                raise ValueError(f"except: {inner} is not inside cidr {self.cidr}; the API server refuses that")
        return self


class NetworkPolicyPeer(Values):
    pod_selector: LabelSelector | None = None
    namespace_selector: LabelSelector | None = None
    ip_block: IpBlock | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> NetworkPolicyPeer:
        # The API server refuses both an empty peer and an ipBlock mixed with selectors.
        if self.ip_block is None and self.pod_selector is None and self.namespace_selector is None:
            raise ValueError("a peer needs podSelector, namespaceSelector or ipBlock")
        if self.ip_block is not None and (self.pod_selector is not None or self.namespace_selector is not None):
            raise ValueError("ipBlock cannot be combined with podSelector or namespaceSelector in one peer")
        return self


class NetworkPolicyPort(Values):
    protocol: Literal["TCP"] = "TCP"
    port: int | str = 5432


class NetworkPolicyIngressRule(Values):
    from_: list[NetworkPolicyPeer] = Field(alias="from", min_length=1)
    ports: list[NetworkPolicyPort] = [NetworkPolicyPort()]

    @model_validator(mode="after")
    def _database_port_only(self) -> NetworkPolicyIngressRule:
        for port in self.ports:
            if port.port not in (5432, "postgresql"):
                raise ValueError(
                    f"ports: {port.port!r} is not the database port; the policy only opens 5432"
                )
        return self


def _default_ingress() -> list[NetworkPolicyIngressRule]:
    return [
        NetworkPolicyIngressRule.model_validate(
            {"from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/component": "application"}}}]}
        )
    ]


def _default_dns() -> NetworkPolicyPeer:
    return NetworkPolicyPeer.model_validate(
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    )


class NetworkPolicyValues(Values):
    enabled: bool = False
    """Emit a NetworkPolicy that admits only the listed peers (and this project's
    own backup pods, and `metrics.scrapers` on 9187). Left out: false; enable it in production."""
    ingress: list[NetworkPolicyIngressRule] = Field(default_factory=_default_ingress)
    """Who may connect on 5432. Left out: pods labelled
    app.kubernetes.io/component=application in the same namespace."""
    dns: NetworkPolicyPeer = Field(default_factory=_default_dns)
    """Where the cluster DNS runs: the only egress besides the database port.
    Left out: pods labelled k8s-app=kube-dns in namespace kube-system."""


class TemporalValues(Values):
    enabled: bool = False
    """Create the `temporal` and `temporal_visibility` databases. Left out: false."""
    username: PgName = "temporal"
    """Role that owns both Temporal databases; its password is `postgres_temporal_pw`."""


# --- backup -------------------------------------------------------------

# Kubernetes' CronJob parser (robfig/cron, standard 5 fields) also accepts these.
CRON_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
# name, lowest, highest, names allowed in place of numbers
CRON_FIELDS = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, {m: i + 1 for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"])}),
    # Kubernetes' parser counts Sunday as 0 only (7 is refused, unlike Vixie cron).
    ("day of week", 0, 6, {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}),
)
_CRON_HELP = (
    "use five fields 'minute hour day-of-month month day-of-week' (numbers, *, a-b ranges, "
    "/steps and comma lists, e.g. '0 2 * * *') or one of " + ", ".join(sorted(CRON_MACROS))
)


def _cron_number(text: str, low: int, high: int, names: dict[str, int]) -> int:
    if text.lower() in names:
        return names[text.lower()]
    # ASCII only: str.isdigit() and int() also take other scripts' digits ('٢'), which Kubernetes refuses.
    if not re.fullmatch(r"[0-9]+", text) or not low <= int(text) <= high:
        raise ValueError(text)
    return int(text)


def cron_values(field: str, low: int, high: int, names: dict[str, int]) -> set[int]:
    """The values one (validated) field matches."""
    found: set[int] = set()
    for part in field.split(","):
        base, _, step = part.partition("/")
        if base in ("*", "?"):
            first, last = low, high
        else:
            start, _, end = base.partition("-")
            first = _cron_number(start, low, high, names)
            last = _cron_number(end, low, high, names) if end else (high if step else first)
        found.update(range(first, last + 1, int(step) if step else 1))
    return found


# Days in each month in the longest year (29 February happens).
_MONTH_DAYS = {1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30, 12: 31}


def _never_runs(fields: list[str]) -> str | None:
    """Why a schedule matches no day at all, or None. As in Kubernetes' parser, a
    restricted day of week ('*' or '?' without a step is unrestricted) makes the
    days an OR, which always matches some day."""
    weekdays = fields[4].split(",")
    if not any(p.partition("/")[0] in ("*", "?") and p.partition("/")[2] in ("", "1") for p in weekdays):
        return None
    (_, low, high, names), (_, mlow, mhigh, mnames) = CRON_FIELDS[2], CRON_FIELDS[3]
    days, months = cron_values(fields[2], low, high, names), cron_values(fields[3], mlow, mhigh, mnames)
    if any(day <= _MONTH_DAYS[month] for day in days for month in months):
        return None
    return (f"day of month {','.join(map(str, sorted(days)))} never occurs in month "
            f"{','.join(map(str, sorted(months)))}")


def _cron_schedule(value: str) -> str:
    text = value.strip()
    if text in CRON_MACROS:
        return value
    fields = text.split()
    if len(fields) != 5:
        raise ValueError(f"{value!r} is not a cron expression: it has {len(fields)} fields; {_CRON_HELP}")
    for field, (name, low, high, names) in zip(fields, CRON_FIELDS):
        for part in field.split(","):
            try:
                base, _, step = part.partition("/")
                if step and (not re.fullmatch(r"[0-9]+", step) or int(step) == 0):
                    raise ValueError(step)
                if base == "?" and name in ("day of month", "day of week"):
                    continue  # "no specific value", as '*'
                if base != "*":
                    first, _, last = base.partition("-")
                    start = _cron_number(first, low, high, names)
                    if last and _cron_number(last, low, high, names) < start:
                        raise ValueError(base)
            except ValueError:
                raise ValueError(
                    f"{value!r} is not a cron expression: {part!r} is not a valid {name} "
                    f"({low}-{high}); {_CRON_HELP}"
                ) from None
    never = _never_runs(fields)
    if never:
        raise ValueError(f"{value!r} never runs: {never}; choose days that those months have")
    return value


def _time_zone(value: str) -> str:
    if value not in zoneinfo.available_timezones():
        raise ValueError(
            f"{value!r} is not a time zone of the IANA database: use a name such as Etc/UTC or "
            "Europe/Berlin (the CronJob's timeZone field)"
        )
    return value


CronSchedule = Annotated[str, AfterValidator(_cron_schedule)]
TimeZone = Annotated[str, AfterValidator(_time_zone)]


class RetentionValues(Values):
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
    requests: ResourceAmounts = ResourceAmounts(cpu="250m", memory="256Mi")
    """Scheduling requests of the backup pod. Left out: 250m CPU, 256Mi memory."""
    limits: ResourceAmounts = ResourceAmounts(cpu="2000m", memory="1Gi")
    """Limits of the backup pod (pg_dump compresses on one core and verifies on
    another). Left out: 2000m CPU, 1Gi memory."""


class ClientCertificateValues(Values):
    existing_secret: DnsLabel = "postgres-backup-tls"
    """Secret (type kubernetes.io/tls: `tls.crt`, `tls.key`) with the backup job's
    client certificate, signed by the CA in `ca.existingSecret`. Mounted only when
    `ca.verifyClients` is true. Left out: postgres-backup-tls."""


class BackupValues(Values):
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


# --- metrics --------------------------------------------------------------


class ExporterImageValues(ImageValues):
    repository: ImageRepository = "quay.io/prometheuscommunity/postgres-exporter"
    """Exporter image repository. Left out: the Prometheus community image."""
    tag: ImageTag = EXPORTER_VERSION
    """Exporter image tag. Left out: the version every metric name in
    constructs/metric_catalog.py was checked against; another tag may rename metrics."""


class ExporterResourcesValues(ResourcesValues):
    requests: ResourceAmounts = ResourceAmounts(cpu="10m", memory="32Mi")
    """Scheduling requests of the exporter. Left out: 10m CPU, 32Mi memory."""
    limits: ResourceAmounts = ResourceAmounts(cpu="250m", memory="128Mi")
    """Limits of the exporter. Left out: 250m CPU, 128Mi memory."""


class ServiceMonitorValues(Values):
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
    enabled: bool = False
    """Emit a PrometheusRule with the alerts documented in the README runbook.
    Left out: false (needs the PrometheusRule CRD)."""
    labels: Labels = {}
    """Extra labels, e.g. the `release` label your Prometheus selects rules by.
    Left out: none."""
    runbook_base_url: Printable = Field(default="README.md", min_length=1)
    """Where the README is served; each alert's `runbook_url` is this plus
    `#<alert name in lower case>`. Left out: README.md (relative)."""


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
        if sm.enabled and _duration_seconds(sm.scrape_timeout) > _duration_seconds(sm.interval):
            raise ValueError(
                f"serviceMonitor.scrapeTimeout: {sm.scrape_timeout} is longer than interval "
                f"{sm.interval}: Prometheus rejects a timeout above the interval"
            )
        return self


def _duration_seconds(text: str) -> float:
    number, unit = re.match(r"^([0-9]+)(ms|s|m|h)$", text).groups()
    return int(number) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]


class PostgresValues(Values):
    image: ImageValues = Field(default_factory=ImageValues)
    replicas: int = Field(default=1, ge=1)
    """Database pods. Left out: 1. Only 1 is supported until streaming replication exists."""
    database: PgName = "appdb"
    """Application database. Left out: appdb."""
    schema_: PgName = Field(default="app", alias="schema")
    """Application schema, owned by the owner role. Left out: app."""
    username: PgName = "appuser"
    """Runtime read/write role. Left out: appuser."""
    owner_username: PgName = "appowner"
    """NOLOGIN role that owns the database and schema. Left out: appowner."""
    read_only_username: PgName = "backupuser"
    """Read-only role (backups, reporting). Left out: backupuser."""
    resources: ResourcesValues = Field(default_factory=ResourcesValues)
    persistence: PersistenceValues = Field(default_factory=PersistenceValues)
    config: ConfigValues = Field(default_factory=ConfigValues)
    logging: LoggingValues = Field(default_factory=LoggingValues)
    tls: TlsValues = Field(default_factory=TlsValues)
    ca: CaValues = Field(default_factory=CaValues)
    secrets: SecretsValues = Field(default_factory=SecretsValues)
    pod_disruption_budget: PodDisruptionBudgetValues = Field(default_factory=PodDisruptionBudgetValues)
    network_policy: NetworkPolicyValues = Field(default_factory=NetworkPolicyValues)
    temporal: TemporalValues = Field(default_factory=TemporalValues)
    backup: BackupValues = Field(default_factory=BackupValues)
    metrics: MetricsValues = Field(default_factory=MetricsValues)
    allowed_cidrs: list[Annotated[str, AfterValidator(_cidr)]] = Field(
        default=["0.0.0.0/0", "::/0"], min_length=1
    )
    """Client networks pg_hba.conf admits over TCP (TLS and SCRAM still required).
    Left out: every IPv4 and IPv6 address, because the NetworkPolicy is the
    pod-level filter and pod addresses change."""

    @model_validator(mode="after")
    def _check(self) -> PostgresValues:
        if self.replicas > 1:
            raise ValueError(
                f"replicas: {self.replicas} is not supported yet: without streaming replication "
                "every replica would be an independent database behind one Service, splitting "
                "writes between them. Use replicas: 1"
            )
        roles = [self.username, self.owner_username, self.read_only_username]
        if self.temporal.enabled:
            roles.append(self.temporal.username)
        if len(set(roles)) != len(roles):
            raise ValueError(f"username: the role names must all differ, got {roles}")
        pdb = self.pod_disruption_budget
        if pdb.enabled and pdb.min_available > self.replicas:
            raise ValueError(
                f"podDisruptionBudget.minAvailable: {pdb.min_available} is above replicas "
                f"({self.replicas}): the budget could never be met; use at most {self.replicas}"
            )
        if not self.tls.enabled and self.ca.verify_clients:
            raise ValueError("ca.verifyClients: true needs tls.enabled: true (client certificates travel in TLS)")
        if self.backup.enabled and not self.persistence.backups.enabled:
            raise ValueError(
                "backup.enabled: true needs persistence.backups.enabled: true (the backup job writes "
                "to the postgres-backups volume); enable the volume or set backup.enabled: false"
            )
        if not self.tls.enabled and self.tls.cert_manager.enabled:
            raise ValueError("tls.certManager.enabled: true needs tls.enabled: true (cert-manager issues the server certificate)")
        # Imported here: pgconf derives from this model. Raises "config: ..." naming the fields.
        from constructs.pgconf import derive_tuning

        derive_tuning(self)
        return self


    @model_validator(mode="after")
    def _monitoring_role_free(self) -> PostgresValues:
        # The exporter's role is fixed (its grants are the point): no other role may take its name.
        taken = {"username": self.username, "ownerUsername": self.owner_username,
                 "readOnlyUsername": self.read_only_username, "temporal.username": self.temporal.username}
        for key, role in taken.items():
            if self.metrics.enabled and role == MONITORING_ROLE:
                raise ValueError(f"{key}: {role!r} is the metrics exporter's role; choose another name")
        return self


    @property
    def backup_databases(self) -> list[str]:
        """The databases the backup job dumps (`backup.databases`, else the defaults)."""
        if self.backup.databases is not None:
            return list(self.backup.databases)
        found = [self.database]
        if self.temporal.enabled:
            found += ["temporal", "temporal_visibility"]
        return found


class ChartValues(Values):
    """The whole values file."""

    global_: GlobalValues = Field(default_factory=GlobalValues, alias="global")
    postgres: PostgresValues = Field(default_factory=PostgresValues)


# --- loading --------------------------------------------------------------


# Keys of the old chart that this project deliberately dropped, with the reason.
_RETIRED_KEYS = {
    ("global", "namePrefix"): "object names are fixed (postgres, postgres-headless, "
    "postgres-backups, ...) because renaming them would replace PVCs and Services; remove this key",
}


def _describe(error: dict) -> str:
    location = ""
    for part in error["loc"]:
        location += f"[{part}]" if isinstance(part, int) else (f".{part}" if location else str(part))
    if error["type"] == "extra_forbidden":
        retired = _RETIRED_KEYS.get(tuple(str(p) for p in error["loc"]))
        if retired:
            return f"{location}: {retired}"
        return f"{location}: unknown key (check its spelling against values.yaml)"
    message = error["msg"].removeprefix("Value error, ")
    # Cross-field checks run on the parent model and start their message with the
    # field they are about: attach it to the location.
    field = re.match(r"^([A-Za-z][\w.]*): (.*)$", message, flags=re.S)
    if field:
        return f"{location}.{field.group(1)}: {field.group(2)}"
    received = error.get("input")
    if isinstance(received, (dict, list)) or error["type"] == "missing" or repr(received) in message:
        return f"{location}: {message}"
    return f"{location}: {message} (received {received!r})"


def parse_values(data: object, source: str = "values") -> ChartValues:
    """Validate already-parsed values; raise ValuesError listing every problem."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValuesError(f"{source}: the top level must be a mapping with keys global and postgres")
    data = merge(_defaults(), data)
    problems = parameter_problems(data)
    try:
        values = ChartValues.model_validate(data)
    except ValidationError as err:
        problems = [_describe(e) for e in err.errors()] + problems
    if problems:
        listed = "\n".join(f"  - {problem}" for problem in problems)
        raise ValuesError(f"{source} is not valid:\n{listed}")
    return values


@functools.cache
def _defaults() -> dict:
    """Every key at its default, as a values file spells it: a file is merged into this."""
    return ChartValues().model_dump(by_alias=True)


def values_warnings(values: ChartValues) -> list[str]:
    """Settings that work but that an operator should know about."""
    pg = values.postgres
    found = []
    # podDisruptionBudget.minAvailable equal to replicas (1) is the default on purpose
    # and documented in the README: no warning that every run would print.
    if not pg.tls.enabled:
        found.append(
            "postgres.tls.enabled is false: passwords are exchanged with SCRAM, but queries and "
            "data cross the network unencrypted"
        )
    return found


def load_values(path: Path) -> ChartValues:
    """Read and validate a values file."""
    try:
        data = read_values_file(path)
    except SourceError as err:
        raise ValuesError(str(err)) from None
    return parse_values(data, source=str(path))
