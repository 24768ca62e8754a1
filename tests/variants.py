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
    "metrics-off": {"postgres": {"metrics": {"enabled": False}}},
    # The Prometheus Operator objects and the dashboard on, everything else at defaults.
    "metrics-objects": {"postgres": {"metrics": {"serviceMonitor": {"enabled": True},
                                                 "prometheusRule": {"enabled": True},
                                                 "dashboard": {"enabled": True}}}},
    # Every backup option away from its default: RWX volume (no affinity), client certificates.
    "backup-options": {"postgres": {
        "persistence": {"backups": {"accessMode": "ReadWriteMany"}},
        "ca": {"verifyClients": True},
        "backup": {"schedule": "30 3 * * 0", "timeZone": "Europe/Berlin", "retention": {"count": 14, "days": 30},
                   "compression": 6, "suspend": True, "databases": ["appdb"], "timeoutMinutes": 60}}},
    "backup-off": {"postgres": {"backup": {"enabled": False}}},
}
