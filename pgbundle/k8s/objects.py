"""Walking the synthesized objects of an app."""

from __future__ import annotations

import cdk8s


def api_objects(app: cdk8s.App) -> list[cdk8s.ApiObject]:
    """Every ApiObject of every chart, at any depth (`Chart.api_objects` lists
    only a chart's direct children, and ours sit inside constructs)."""
    return [obj for chart in app.charts for obj in chart.node.find_all() if isinstance(obj, cdk8s.ApiObject)]
