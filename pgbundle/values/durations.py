"""The two duration formats the values use: Go's (cert-manager: `2160h`, `1h30m`)
and Prometheus' (`30s`, `1m`)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

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


def prometheus_duration_seconds(text: str) -> float:
    number, unit = re.match(r"^([0-9]+)(ms|s|m|h)$", text).groups()
    return int(number) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]

