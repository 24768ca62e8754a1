"""Point-in-time recovery's restore drill: the ServiceAccount and CronJob
`postgres-pitr-drill`.

Each run executes constructs/scripts/pitr/pitr-drill.sh in the database's image:
the newest backup and all archived WAL of every repository restored into a
scratch volume (an ephemeral PVC, gone with the pod), PostgreSQL started there
with no network and checked. The pod mounts the repositories read-only and has
no database credentials but the repositories' passphrase; its NetworkPolicy
reaches no database port. `local drill` runs the same script with the same environment.
"""

from __future__ import annotations

from constructs import Construct
from pydantic import BaseModel, ConfigDict

from constructs.backup import backup_cronjob
from imports import k8s
from pgbundle import contract
from pgbundle.k8s.jobs import JobPodProps

COMPONENT = contract.PITR_DRILL_COMPONENT


class PitrDrillProps(BaseModel):
    """What the PitrDrill construct needs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    namespace: str
    """Namespace of the CronJob and its ServiceAccount (required)."""
    version: str
    """The app.kubernetes.io/version label: the database image's tag (required)."""
    schedule: str
    """Cron schedule (required)."""
    timeout_minutes: int
    """A run is stopped after this long (required)."""
    pod: JobPodProps
    """The drill's pod: the repositories read-only, a scratch volume (required)."""
    time_zone: str = "Etc/UTC"
    """IANA time zone of the schedule. Left out: Etc/UTC."""


class PitrDrill(Construct):
    """ServiceAccount and CronJob of the scheduled restore drill."""

    def __init__(self, scope: Construct, id: str, *, props: PitrDrillProps) -> None:
        super().__init__(scope, id)
        self.labels = contract.object_labels(COMPONENT, props.version)
        # Its NetworkPolicy selects exactly these pod labels.
        pod_labels = {**self.labels, **contract.selector_labels(COMPONENT)}
        k8s.KubeServiceAccount(self, "service-account", metadata=k8s.ObjectMeta(
            name=contract.PITR_DRILL_SERVICE_ACCOUNT, namespace=props.namespace, labels=self.labels),
            automount_service_account_token=False)
        backup_cronjob(self, "cronjob", name=contract.PITR_DRILL_CRONJOB, namespace=props.namespace,
                       labels=self.labels, pod_labels=pod_labels, schedule=props.schedule, time_zone=props.time_zone,
                       suspend=False, timeout_minutes=props.timeout_minutes, pod=props.pod)
