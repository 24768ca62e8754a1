"""The app.kubernetes.io labels every object carries."""

from __future__ import annotations

NAME = "postgres"
PART_OF = "api-forge"
MANAGED_BY = "cdk8s"


def selector_labels(component: str) -> dict[str, str]:
    """Labels that select pods. They never change between versions: a
    StatefulSet's selector is immutable."""
    return {
        "app.kubernetes.io/name": NAME,
        "app.kubernetes.io/instance": NAME,
        "app.kubernetes.io/component": component,
    }


def object_labels(component: str, version: str) -> dict[str, str]:
    return {
        **selector_labels(component),
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/version": version,
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }
