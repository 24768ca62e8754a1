"""`python main.py pitr-restore-manifest`: the point-in-time restore of a single
instance, as YAML: a Job running pitr-restore.sh into a new data volume (its PVC
printed with it), or with `in_place` into the stopped database's own.

Printed, never written to dist/: a GitOps sync must not restore by accident.
docs/pitr.md's runbook is the procedure around it (putting the new volume under
the StatefulSet, or scaling to 0 for a restore in place).
"""

from __future__ import annotations

import cdk8s

from chart.compose import pitr_restore_props
from constructs.pitr_restore import PitrRestore
from pgbundle.values.models import ChartValues
from workstation.pitr_targets import RestoreTarget


class PitrManifestError(Exception):
    """The values cannot restore this way; the message says why."""


def pitr_restore_manifest(values: ChartValues, target: RestoreTarget, *, in_place: bool = False) -> str:
    pg = values.postgres
    if not pg.pitr.enabled:
        raise PitrManifestError("postgres.pitr.enabled is false: there is no pgBackRest repository to restore from; "
                                "give the values the database runs with")
    if pg.replicas > 1:
        raise PitrManifestError(f"postgres.replicas is {pg.replicas}: pitr-restore-manifest restores a single "
                                "instance (replicas: 1); a Patroni cluster is restored by bootstrapping it from the "
                                "repository (docs/pitr.md)")
    app = cdk8s.App()
    chart = cdk8s.Chart(app, "pitr-restore", disable_resource_name_hashes=True)
    PitrRestore(chart, "pitr-restore", props=pitr_restore_props(
        values, kind=target.kind, target=target.recovery_target(), label=target.label, slug=target.slug(), in_place=in_place))
    text = app.synth_yaml()
    return text if text.endswith("\n") else text + "\n"
