"""Reading a values file: YAML, validation into the model, errors that name the
field and the fix, and warnings about settings that work but deserve a look."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from pydantic import ValidationError

from pgbundle.values.models import ChartValues


class ValuesError(Exception):
    """The values file cannot be used; the message names the field and the fix."""


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
    try:
        return ChartValues.model_validate(data)
    except ValidationError as err:
        problems = "\n".join(f"  - {_describe(e)}" for e in err.errors())
        raise ValuesError(f"{source} is not valid:\n{problems}") from None


def values_warnings(values: ChartValues) -> list[str]:
    """Settings that work but that an operator should know about."""
    pg = values.postgres
    found = []
    pdb = pg.pod_disruption_budget
    if pdb.enabled and pdb.min_available == pg.replicas:
        found.append(
            f"postgres.podDisruptionBudget.minAvailable equals replicas ({pg.replicas}): no pod "
            "may be evicted, so every node drain waits until someone moves the database by hand"
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
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValuesError(
            f"values file {path} does not exist: pass --values FILE or set VALUES"
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ValuesError(f"{path} is not valid YAML: {err}") from None
    return parse_values(data, source=str(path))
