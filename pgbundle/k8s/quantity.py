"""Quantities in the typed bindings."""

from __future__ import annotations

from imports import k8s


def quantity(text: str) -> k8s.Quantity:
    """A resource quantity such as `64Mi` (already checked by the values model)."""
    return k8s.Quantity.from_string(text)
