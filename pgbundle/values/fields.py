"""Field types of the values model and the base every section derives from.

Each type checks one value the way the component that reads it will (the API
server, PostgreSQL), so a bad value fails at synth time with the field named.
"""

from __future__ import annotations

import ipaddress
import re
import zoneinfo
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from pgbundle.values.names import DNS1123_LABEL, ImageRepository, ImageTag
from pgbundle.values.quantity import cpu_cores, memory_bytes

_PG_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
_PG_MEMORY = re.compile(r"^[0-9]+(B|kB|MB|GB|TB)$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
# The tag's leading number: `17.6-bookworm` and `17` name PostgreSQL 17, `bookworm` names none.
_TAG_MAJOR = re.compile(r"([0-9]+)(?:[.-]|$)")

# PostgreSQL majors the product runs: the start scripts, the parameter lists
# (pgbundle/values/parameters.py) and the tests cover these and no others.
SUPPORTED_MAJORS = (15, 16, 17, 18)


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


def _digest(value: str) -> str:
    if not _DIGEST.fullmatch(value):
        raise ValueError(f"{value!r} must look like sha256:<64 hex digits>")
    return value


def tag_major(tag: str | None) -> int | None:
    """The PostgreSQL major an image tag names (`17.6-bookworm` -> 17), or None."""
    found = _TAG_MAJOR.match(tag or "")
    return int(found.group(1)) if found else None


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
Digest = Annotated[str, AfterValidator(_digest)]


class Values(BaseModel):
    """Base of every values model: camelCase keys, no unknown keys, immutable,
    strict types (YAML's `true` is not the integer 1, nor `"5"` the number 5)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True, strict=True,
        use_attribute_docstrings=True,
    )


def _cidr(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError as err:
        raise ValueError(f"{value!r} is not a network in CIDR form such as 10.0.0.0/8 or ::/0 ({err})") from None



Cidr = Annotated[str, AfterValidator(_cidr)]


def _time_zone(value: str) -> str:
    if value not in zoneinfo.available_timezones():
        raise ValueError(
            f"{value!r} is not a time zone of the IANA database: use a name such as Etc/UTC or "
            "Europe/Berlin (the CronJob's timeZone field)"
        )
    return value


TimeZone = Annotated[str, AfterValidator(_time_zone)]


# --- sections several parts of the model share ------------------------------


class ImageValues(Values):
    """An image, with the same rules wherever the values name one: a repository and
    a pinned tag, a digest, or both (then the digest is pulled)."""

    repository: ImageRepository
    tag: ImageTag | None = None
    """Image tag, pinned (never `latest`). Required unless `digest` is set."""
    digest: Digest | None = None
    """`sha256:...` digest; when set it is used instead of the tag. Left out: the tag."""

    @model_validator(mode="after")
    def _pinned(self) -> ImageValues:
        if self.tag == "latest":
            raise ValueError("tag: 'latest' is not reproducible: pin a full version such as 17.6-bookworm")
        if self.tag is None and self.digest is None:
            raise ValueError("tag: required unless digest is set: pin the image by a tag, a digest or both")
        return self

    @property
    def reference(self) -> str:
        if self.digest:
            return f"{self.repository}@{self.digest}"
        return f"{self.repository}:{self.tag}"


def image_reference(text: str) -> ImageValues:
    """An image as a command line names it (`repo:tag`, `repo@sha256:...` or both), held to
    the values' rules; ValueError says what is wrong."""
    rest, at, digest = text.partition("@")
    repository, colon, tag = rest.rpartition(":")
    if not colon or "/" in tag:  # no tag: that colon, if any, is a registry's port
        repository, tag = rest, ""
    try:
        return ImageValues.model_validate({"repository": repository, "tag": tag or None, "digest": digest if at else None})
    except ValidationError as err:
        raise ValueError("; ".join(e["msg"].removeprefix("Value error, ") for e in err.errors())) from None


class PostgresImageValues(ImageValues):
    """The database image (the official `postgres` image unless `ha.image` is needed)."""

    repository: ImageRepository = "postgres"
    """Image repository. Left out: the official `postgres` image (Debian, uid 999)."""
    tag: ImageTag = "17.6-bookworm"
    """Image tag, pinned to a full minor version; it names the PostgreSQL major (and the
    objects' version label) even when a digest is set. Left out: 17.6-bookworm."""
    major: int | None = None
    """The image's PostgreSQL major (15 to 18), required when the tag names none (a
    digest with a tag such as `bookworm`); it must agree with a tag that names one.
    Left out: read from the tag."""

    @model_validator(mode="after")
    def _supported_major(self) -> PostgresImageValues:
        named = tag_major(self.tag)
        if self.major is None and named is None:
            raise ValueError(
                f"major: required: the tag {self.tag!r} names no PostgreSQL major (17.6-bookworm names 17); "
                f"state the image's major, one of {', '.join(map(str, SUPPORTED_MAJORS))}")
        if self.major is not None and named is not None and self.major != named:
            raise ValueError(f"major: {self.major} contradicts tag {self.tag!r}, which names PostgreSQL {named}")
        major, key = (self.major, "major") if self.major is not None else (named, "tag")
        if major not in SUPPORTED_MAJORS:
            shown = self.major if key == "major" else self.tag
            raise ValueError(
                f"{key}: {shown!r} is PostgreSQL {major}, which the product does not run: use a major from "
                f"{SUPPORTED_MAJORS[0]} to {SUPPORTED_MAJORS[-1]}")
        return self

    @property
    def major_version(self) -> str:
        """The PostgreSQL major version (`17.6-bookworm` -> `17`)."""
        return str(self.major if self.major is not None else tag_major(self.tag))


class ResourceAmounts(Values):
    """A CPU and a memory amount (Kubernetes quantities)."""

    cpu: CpuQuantity
    """CPU, such as 500m or 2."""
    memory: MemoryQuantity
    """Memory, such as 1Gi or 512Mi."""


class ResourcesValues(Values):
    """Requests and limits of the database container."""

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


