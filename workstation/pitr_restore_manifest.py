"""`python main.py pitr-restore-manifest`: the point-in-time restore as YAML.

A single instance: a Job running pitr-restore.sh into a new data volume (its PVC
printed with it), or with `in_place` into the stopped database's own.

A Patroni cluster (replicas >= 2): a new cluster from the repository, the
database chart's objects (dist/10-postgres.k8s.yaml's) whose ConfigMap
postgres-patroni has postgres-0 bootstrap with Patroni's custom bootstrap method
(pgbundle/patroni/restore.py, as `local restore` does) instead of initdb.

Printed, never written to dist/: a GitOps sync must not restore by accident.
docs/pitr.md's runbooks are the procedures around them.
"""

from __future__ import annotations

import cdk8s
import yaml

from chart.compose import compose, pitr_restore_props
from constructs.pitr_restore import PitrRestore
from pgbundle import contract
from pgbundle.patroni import restore as patroni_restore
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
        if in_place:
            raise PitrManifestError(
                f"--in-place: postgres.replicas is {pg.replicas}, and a Patroni cluster is restored as a new cluster "
                "bootstrapped from the repository, never in place (each member's volume and Patroni's state in its "
                "postgres-ha-* ConfigMaps belong to the cluster being replaced); leave out --in-place (docs/pitr.md)")
        return _cluster(values, target)
    app = cdk8s.App()
    chart = cdk8s.Chart(app, "pitr-restore", disable_resource_name_hashes=True)
    PitrRestore(chart, "pitr-restore", props=pitr_restore_props(
        values, kind=target.kind, target=target.recovery_target(), label=target.label, slug=target.slug(), in_place=in_place))
    text = app.synth_yaml()
    return text if text.endswith("\n") else text + "\n"


def _cluster(values: ChartValues, target: RestoreTarget) -> str:
    """The database chart as composed for dist/ (the same objects, labels and
    annotations), but for the bootstrap section."""
    app = cdk8s.App()
    compose(app, values, cluster_restore=patroni_restore.Target(target.kind, target.recovery_target(), target.label))
    [chart] = [c for c in app.charts if c.node.id == contract.DATABASE_CHART]
    return yaml.safe_dump_all(chart.to_json(), sort_keys=False)
