"""Kubernetes resource quantities: parse them the way the API server does, so a
bad size fails at synth time instead of at `kubectl apply` time."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}
_MILLI = {"m": Decimal("0.001")}
_QUANTITY = re.compile(r"^(?P<number>[0-9]+(\.[0-9]+)?)(?P<suffix>[A-Za-z]*)$")


def parse_quantity(text: str, *, allow_milli: bool) -> Decimal:
    """Return the value of a non-negative quantity such as `500m`, `1Gi` or `20G`.

    Raises ValueError naming what is allowed; `20GB` and `-1Gi` are refused
    because the API server refuses them too.
    """
    match = _QUANTITY.match(str(text).strip())
    suffixes = {**_BINARY, **_DECIMAL, **(_MILLI if allow_milli else {})}
    if not match or match.group("suffix") not in suffixes:
        allowed = "Ki, Mi, Gi, Ti, Pi, Ei, k, M, G, T, P, E" + (", m" if allow_milli else "")
        raise ValueError(
            f"{text!r} is not a Kubernetes quantity: use a non-negative number with one of "
            f"the suffixes {allowed} (for example 20Gi)"
        )
    try:
        number = Decimal(match.group("number"))
    except InvalidOperation as err:  # pragma: no cover - the regex admits only decimals
        raise ValueError(f"{text!r} is not a number") from err
    return number * suffixes[match.group("suffix")]


def memory_bytes(text: str) -> int:
    return int(parse_quantity(text, allow_milli=False))


def cpu_cores(text: str) -> Decimal:
    return parse_quantity(text, allow_milli=True)
