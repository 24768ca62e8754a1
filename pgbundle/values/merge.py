"""Merge a values file into the defaults the way Helm does.

A user moving from the old chart overrides one key and expects the rest to
stay: mappings merge key by key, to any depth; anything else (a list, a
string, a number) replaces the default; a key set to null removes the default
there, so the model's own default applies (Helm's way to drop a map entry,
e.g. `podSelector: null` before giving an `ipBlock`). A null for a key the
defaults do not have stays, so the model still reports it.
"""

from __future__ import annotations

from collections.abc import Mapping


def merge(defaults: Mapping[str, object], override: Mapping[object, object]) -> dict:
    """`override` merged into `defaults`; neither is changed."""
    merged: dict = dict(defaults)
    for key, value in override.items():
        if value is None and key in merged:
            del merged[key]
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged
