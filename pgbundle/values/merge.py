"""Merge a values file into the defaults the way Helm does.

A user moving from the old chart overrides one key and expects the rest to
stay: mappings merge key by key, to any depth; anything else (a list, a
string, a number) replaces the default. A null replaces the default too and
reaches the model as it is: it means "none" where the model admits none (such
as `podSelector: null` before giving an `ipBlock`) and is refused everywhere
else (pgbundle/values/nulls.py), never silently turned back into the default.
"""

from __future__ import annotations

from collections.abc import Mapping


def merge(defaults: Mapping[str, object], override: Mapping[object, object]) -> dict:
    """`override` merged into `defaults`; neither is changed."""
    merged: dict = dict(defaults)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged
