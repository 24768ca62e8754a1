"""The values model as a reference: every key's path, type, default, bounds and
description, read from the pydantic model itself so the documentation cannot
drift from what `--check` accepts. `tools/values-reference` writes it to
docs/configuration.md; tests/test_values_reference.py fails when that file is stale.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from pgbundle.values.cron import CronSchedule
from pgbundle.values.durations import GoDuration
from pgbundle.values.fields import (
    Cidr,
    CpuQuantity,
    Digest,
    DnsLabel,
    DnsSubdomain,
    MemoryQuantity,
    PgMemory,
    PgName,
    StorageSize,
    TimeZone,
)
from pgbundle.values.models import ChartValues, ParameterValue
from pgbundle.values.names import ImageRepository, ImageTag, LabelKey, LabelValue, Printable, StorageClass
from pgbundle.values.pitr import Bucket, Endpoint, Region, RepoPath

# The checked string types by what they accept; a new one must be named here
# (type_text raises otherwise), so the reference never shows a bare "string"
# for a value with rules.
_NAMED_TYPES: list[tuple[object, str]] = [
    (DnsLabel, "DNS-1123 label"),
    (DnsSubdomain, "DNS-1123 subdomain"),
    (PgName, "PostgreSQL name"),
    (StorageSize, "storage quantity (Kubernetes, above zero)"),
    (MemoryQuantity, "memory quantity (Kubernetes)"),
    (CpuQuantity, "CPU quantity (Kubernetes)"),
    (PgMemory, "PostgreSQL memory setting (such as 256MB)"),
    (Digest, "image digest (sha256:...)"),
    (Cidr, "CIDR"),
    (TimeZone, "IANA time zone"),
    (CronSchedule, "cron schedule (five fields)"),
    (GoDuration, "duration (such as 2160h)"),
    (ImageRepository, "image repository"),
    (ImageTag, "image tag"),
    (LabelKey, "label key"),
    (LabelValue, "label value"),
    (Printable, "printable ASCII line"),
    (StorageClass, "StorageClass name"),
    (Bucket, "S3 bucket name"),
    (Endpoint, "host[:port]"),
    (Region, "S3 region"),
    (RepoPath, "absolute path"),
    (ParameterValue, "string, number or boolean"),
]
# A field's own Annotated type reaches FieldInfo split into a bare type and its
# metadata: the validator function identifies it.
_VALIDATORS: dict[object, str] = {
    rule.func: text for named, text in _NAMED_TYPES for rule in typing.get_args(named)[1:] if hasattr(rule, "func")
}
_PLAIN_TYPES: dict[object, str] = {bool: "boolean", int: "integer", float: "number", str: "string"}


def is_section(annotation: object) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def without_none(annotation: object) -> tuple[object, bool]:
    """The annotation without its `| None`, and whether it had one (null is a value then)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = typing.get_args(annotation)
        rest = [m for m in members if m is not type(None)]
        if len(rest) < len(members):
            return (rest[0] if len(rest) == 1 else typing.Union[tuple(rest)]), True
    return annotation, False


def type_text(annotation: object) -> str:
    """What a key of this type accepts, in words."""
    inner, nullable = without_none(annotation)
    if nullable:
        return f"{type_text(inner)} or null"
    for named, text in _NAMED_TYPES:
        if annotation == named:
            return text
    if annotation in _PLAIN_TYPES:
        return _PLAIN_TYPES[annotation]
    if is_section(annotation):
        return "mapping"
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return "one of " + ", ".join(f"`{a}`" for a in args)
    if origin is list:
        return f"list of {type_text(args[0])}"
    if origin is dict:
        return f"map of {type_text(args[0])} to {type_text(args[1])}"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_text(a) for a in args)
    raise TypeError(f"no reference name for {annotation!r}: add it to _NAMED_TYPES")


def field_type_text(field: FieldInfo) -> str:
    for rule in field.metadata:
        if getattr(rule, "func", None) in _VALIDATORS:
            return _VALIDATORS[rule.func]
    return type_text(field.annotation)


def bounds_text(field: FieldInfo) -> str:
    """The bounds pydantic checks on the field itself (others are in its description)."""
    found = []
    for rule in field.metadata:
        for kind, symbol, attribute in ((annotated_types.Ge, ">=", "ge"), (annotated_types.Gt, ">", "gt"),
                                        (annotated_types.Le, "<=", "le"), (annotated_types.Lt, "<", "lt")):
            if isinstance(rule, kind):
                found.append(f"{symbol} {getattr(rule, attribute)}")
        unit = "character" if without_none(field.annotation)[0] is str else "item"
        if isinstance(rule, annotated_types.MinLen):
            found.append(f"at least {rule.min_length} {unit}{'s' if rule.min_length != 1 else ''}")
        if isinstance(rule, annotated_types.MaxLen):
            found.append(f"at most {rule.max_length} {unit}s")
        pattern = getattr(rule, "pattern", None)
        if pattern:
            found.append(f"matches `{pattern}`")
    return ", ".join(found)


def default_of(field: FieldInfo) -> object:
    """The field's default as a values file spells it (`...` when the key is required)."""
    if field.is_required():
        return ...
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return value.model_dump(by_alias=True)
    if isinstance(value, list):
        return [v.model_dump(by_alias=True) if isinstance(v, BaseModel) else v for v in value]
    return value


def key_default(key: str, field: FieldInfo, defaults: dict | None) -> object:
    """A key's default where its section's default comes from the parent (`defaults`):
    a subclass or the parent's default may set keys the section's own model requires."""
    return defaults[key] if defaults is not None and key in defaults else default_of(field)


def _default_text(value: object) -> str:
    if value is ...:
        return "required"
    return json.dumps(value, ensure_ascii=False)


def _prose(text: str | None) -> str:
    return " ".join((text or "").split())


@dataclass(frozen=True)
class Key:
    name: str
    type: str
    default: str
    bounds: str
    description: str


@dataclass(frozen=True)
class Section:
    path: str
    description: str
    keys: list[Key]


def item_section(annotation: object) -> type[BaseModel] | None:
    """The model a key's value (or each item of its list) is validated by, if any."""
    inner, _ = without_none(annotation)
    if is_section(inner):
        return typing.cast(type[BaseModel], inner)
    if typing.get_origin(inner) is list and is_section(typing.get_args(inner)[0]):
        return typing.cast(type[BaseModel], typing.get_args(inner)[0])
    return None


def sections(model: type[BaseModel] = ChartValues, path: str = "", description: str = "",
             defaults: dict | None = None) -> Iterator[Section]:
    """Every section of the model, depth first in the model's order, with its keys;
    `defaults`: the section's default as its parent gives it (key_default)."""
    keys, below = [], []
    for name, field in model.model_fields.items():
        key = field.alias or name
        where = f"{path}.{key}" if path else key
        default = key_default(key, field, defaults)
        section = item_section(field.annotation)
        about = _prose(field.description or (section.__doc__ if section is not None else ""))
        if section is not None and without_none(field.annotation)[0] is section:
            keys.append(Key(key, f"{field_type_text(field)} (section `{where}`)", "", "", about))
            below.append((section, where, about, default if isinstance(default, dict) else None))
            continue
        keys.append(Key(key, field_type_text(field), _default_text(default), bounds_text(field), about))
        if section is not None:
            below.append((section, f"{where}[]", _prose(section.__doc__), None))
    yield Section(path, description, keys)
    for section, where, about, section_defaults in below:
        yield from sections(section, where, about, section_defaults)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render() -> str:
    """docs/configuration.md."""
    lines = [
        "<!-- Generated from pgbundle/values/ by `make docs` (tools/values-reference): do not edit. -->",
        "# Configuration reference",
        "",
        "Every key of the values file, at its default. A values file is merged into these defaults:",
        "mappings key by key, anything else replaces the default. A key left out keeps its default.",
        "`null` is a value only where a type below says `or null` (it means none); anywhere else it",
        "is refused: leave the key out for its default, or set `enabled: false` to turn a section off.",
        "Unknown keys are errors. `python main.py --check --values FILE` validates a file.",
    ]
    for section in sections():
        lines += ["", f"## `{section.path or '(top level)'}`", ""]
        if section.description:
            lines += [section.description, ""]
        lines += ["| key | type | default | description |", "| --- | --- | --- | --- |"]
        for key in section.keys:
            kind = f"{key.type} ({key.bounds})" if key.bounds else key.type
            default = f"`{key.default}`" if key.default else ""
            lines.append(f"| `{key.name}` | {_cell(kind)} | {_cell(default)} | {_cell(key.description)} |")
    return "\n".join(lines) + "\n"
