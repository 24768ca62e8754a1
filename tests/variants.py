"""The values variants that every gate (schema, snapshots, policy) checks."""

from __future__ import annotations

from pathlib import Path

import yaml

TOP = Path(__file__).resolve().parent.parent

VARIANTS: dict[str, dict] = {
    "defaults": {},
    "production": yaml.safe_load((TOP / "examples" / "production.yaml").read_text()),
    "temporal": {"postgres": {"temporal": {"enabled": True}}},
    "network-policy": {"postgres": {"networkPolicy": {"enabled": True}}},
    "tls-off": {"postgres": {"tls": {"enabled": False}}},
    "cert-manager": {"postgres": {"tls": {"certManager": {
        "enabled": True, "issuerRef": {"name": "internal-ca", "kind": "ClusterIssuer"}}}}},
    "metrics-off": {"postgres": {"metrics": {"enabled": False}}},
    # The Prometheus Operator objects and the dashboard on, everything else at defaults.
    "metrics-objects": {"postgres": {"metrics": {"serviceMonitor": {"enabled": True},
                                                 "prometheusRule": {"enabled": True},
                                                 "dashboard": {"enabled": True}}}},
}
