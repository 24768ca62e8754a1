"""Argo CD sync waves, assigned by kind in one place.

Argo CD applies lower waves first and waits for each wave to be healthy before
the next, so the namespace exists before anything in it, and everything the
StatefulSet's pods mount or need (ServiceAccount, ConfigMaps, backup PVC,
Services, NetworkPolicy) exists before the StatefulSet starts them. Jobs that
talk to the database (backups, restores) come after it.
"""

from __future__ import annotations

import cdk8s

from pgbundle.k8s.objects import api_objects

SYNC_WAVE_ANNOTATION = "argocd.argoproj.io/sync-wave"

NAMESPACE_WAVE = -2
PREREQUISITE_WAVE = -1
DATABASE_WAVE = 0
CLIENT_WAVE = 1

SYNC_WAVES: dict[str, int] = {
    "Namespace": NAMESPACE_WAVE,
    # What the database pods reference, mount or are isolated by.
    "ServiceAccount": PREREQUISITE_WAVE,
    "Role": PREREQUISITE_WAVE,
    "RoleBinding": PREREQUISITE_WAVE,
    "ConfigMap": PREREQUISITE_WAVE,
    "Secret": PREREQUISITE_WAVE,
    "PersistentVolumeClaim": PREREQUISITE_WAVE,
    "Service": PREREQUISITE_WAVE,
    "NetworkPolicy": PREREQUISITE_WAVE,
    "PodDisruptionBudget": PREREQUISITE_WAVE,
    # cert-manager writes the TLS Secret the database pods mount.
    "Certificate": PREREQUISITE_WAVE,
    # The database.
    "StatefulSet": DATABASE_WAVE,
    # Clients of the running database.
    "CronJob": CLIENT_WAVE,
    "Job": CLIENT_WAVE,
    "Deployment": CLIENT_WAVE,
    # Monitoring objects select the database's Service or pods.
    "ServiceMonitor": CLIENT_WAVE,
    "PodMonitor": CLIENT_WAVE,
    "PrometheusRule": CLIENT_WAVE,
}


SYNC_OPTIONS_ANNOTATION = "argocd.argoproj.io/sync-options"
# Objects whose deletion loses data: deleting the Namespace deletes every PVC in
# it (the database's data too), deleting the backup PVC deletes the backups.
# Argo CD never prunes them (an object dropped from dist/ by mistake) nor deletes
# them with the Application; removing them is a deliberate kubectl delete.
KEEP_OPTIONS = "Prune=false,Delete=false"
KEPT_KINDS = {"Namespace", "PersistentVolumeClaim"}


def sync_wave(kind: str) -> int:
    try:
        return SYNC_WAVES[kind]
    except KeyError:
        # A new kind must be placed deliberately: a wrong wave breaks a one-pass sync.
        raise ValueError(f"no Argo CD sync wave for kind {kind!r}: add it to SYNC_WAVES in chart/gitops.py") from None


def apply_sync_waves(app: cdk8s.App) -> None:
    """Annotate every object of every chart in `app` with its kind's sync wave
    (and the objects that hold data with their keep options)."""
    for obj in api_objects(app):
        obj.metadata.add_annotation(SYNC_WAVE_ANNOTATION, str(sync_wave(obj.kind)))
        if obj.kind in KEPT_KINDS:
            obj.metadata.add_annotation(SYNC_OPTIONS_ANNOTATION, KEEP_OPTIONS)
