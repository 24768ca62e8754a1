"""Kubernetes pieces several constructs share: Secret volumes, and walking the
synthesized objects of an app."""

from __future__ import annotations

import cdk8s
from pydantic import BaseModel, ConfigDict

from imports import k8s
from pgbundle.contract import SECRET_FILE_MODE


class SecretFiles(BaseModel):
    """Which Secret a volume shows, and as which files."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    secret_name: str
    """The Secret (required)."""
    items: dict[str, str] | None = None
    """Secret key -> file name. Left out: every key, under its own name."""
    optional: bool | None = None
    """Whether the pod may start without the Secret. Left out: unset, which
    Kubernetes reads as false (the pod waits for it)."""


def secret_volume(name: str, files: SecretFiles) -> k8s.Volume:
    """A Secret volume whose files the pod's fsGroup can read (contract.SECRET_FILE_MODE)."""
    items = None if files.items is None else [k8s.KeyToPath(key=k, path=p) for k, p in files.items.items()]
    return k8s.Volume(name=name, secret=k8s.SecretVolumeSource(
        secret_name=files.secret_name, default_mode=SECRET_FILE_MODE, items=items,
        optional=files.optional))


def api_objects(app: cdk8s.App) -> list[cdk8s.ApiObject]:
    """Every ApiObject of every chart, at any depth (`Chart.api_objects` lists
    only a chart's direct children, and ours sit inside constructs)."""
    return [obj for chart in app.charts for obj in chart.node.find_all() if isinstance(obj, cdk8s.ApiObject)]
