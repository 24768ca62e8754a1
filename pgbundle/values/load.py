"""Reading a values file: YAML (pgbundle/values/source.py), merged into the
defaults as Helm does (merge.py), a null where the model takes none refused
(nulls.py), validation into the model and of config.parameters
(parameters.py), errors that name the field and the fix, and warnings about settings that work but deserve a look."""

from __future__ import annotations

import functools
import re
from pathlib import Path

from pydantic import ValidationError

from pgbundle.values.merge import merge
from pgbundle.values.models import ChartValues
from pgbundle.values.nulls import null_problems
from pgbundle.values.parameters import problems_in as parameter_problems
from pgbundle.values.source import SourceError, read_values_file


class ValuesError(Exception):
    """The values file cannot be used; the message names the field and the fix."""


# Keys of the old chart that this project deliberately dropped, with the reason.
_RETIRED_KEYS = {
    ("global", "namePrefix"): "object names are fixed (postgres, postgres-headless, "
    "postgres-backups, ...) because renaming them would replace PVCs and Services; remove this key",
}


def _location(loc: tuple) -> str:
    location = ""
    for part in loc:
        location += f"[{part}]" if isinstance(part, int) else (f".{part}" if location else str(part))
    return location


def _describe(error: dict) -> str:
    location = _location(error["loc"])
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
    nulls = null_problems(data)
    data = merge(_defaults(), data)
    problems = list(nulls.values()) + parameter_problems(data)
    try:
        values = ChartValues.model_validate(data)
    except ValidationError as err:
        # A refused null is reported once, by null_problems, not again as a type error.
        errors = [e for e in err.errors() if _location(e["loc"]) not in nulls]
        problems = [_describe(e) for e in errors] + problems
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
    # and documented in docs/deploy.md: no warning that every run would print.
    if pg.replicas == 2:
        found.append(
            "postgres.replicas is 2: with synchronous mode a failover loses nothing, but while one member "
            "is down the other runs alone (no standby: a second loss loses the latest commits); use 3"
        )
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
