"""Point-in-time recovery's scheduled backups: the ServiceAccount and the CronJobs
`postgres-pitr-full` and `postgres-pitr-diff`.

Each runs constructs/scripts/pitr/pitr-backup.sh in the database's image: a
pgBackRest backup taken through the TLS server in the database pod (the
`pgbackrest` sidecar, mutual TLS with the job's client certificate), then expire.
The local pod runner runs the same script with the same environment.
"""

from __future__ import annotations

from constructs import Construct
from pydantic import BaseModel, ConfigDict

from constructs.backup import backup_cronjob
from constructs.certificate import ClientCertificate, ClientCertificateProps
from imports import k8s
from pgbundle import contract
from pgbundle.k8s.jobs import JobPodProps

COMPONENT = contract.PITR_BACKUP_COMPONENT


class PitrBackupProps(BaseModel):
    """What the PitrBackup construct needs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    namespace: str
    """Namespace of the CronJobs and their ServiceAccount (required)."""
    version: str
    """The app.kubernetes.io/version label: the database image's tag (required)."""
    full_schedule: str
    """Cron schedule of full backups (required)."""
    timeout_minutes: int
    """A run is stopped after this long (required)."""
    full_pod: JobPodProps
    """The full backup's pod (required)."""
    time_zone: str = "Etc/UTC"
    """IANA time zone of the schedules. Left out: Etc/UTC."""
    differential_schedule: str | None = None
    """Cron schedule of differential or incremental backups. Left out: full backups only."""
    differential_pod: JobPodProps | None = None
    """Their pod (required with differential_schedule)."""
    client_certificate: ClientCertificateProps | None = None
    """A cert-manager Certificate for the jobs' client certificate. Left out: none
    (`secrets generate` writes it, or the pg_dump job's Certificate issues it)."""


class PitrBackup(Construct):
    """ServiceAccount and CronJobs of pgBackRest's full and differential backups."""

    def __init__(self, scope: Construct, id: str, *, props: PitrBackupProps) -> None:
        super().__init__(scope, id)
        self.labels = contract.object_labels(COMPONENT, props.version)
        # The NetworkPolicy admits exactly these pod labels to the pgBackRest port.
        pod_labels = {**self.labels, **contract.selector_labels(COMPONENT)}
        k8s.KubeServiceAccount(self, "service-account", metadata=k8s.ObjectMeta(
            name=contract.PITR_BACKUP_SERVICE_ACCOUNT, namespace=props.namespace, labels=self.labels),
            automount_service_account_token=False)
        if props.client_certificate is not None:
            ClientCertificate(self, "client-certificate", props=props.client_certificate)
        schedules = [("full", contract.PITR_FULL_CRONJOB, props.full_schedule, props.full_pod)]
        if props.differential_schedule is not None and props.differential_pod is not None:
            schedules.append(("diff", contract.PITR_DIFF_CRONJOB, props.differential_schedule, props.differential_pod))
        for id_, name, schedule, pod in schedules:
            backup_cronjob(self, id_, name=name, namespace=props.namespace, labels=self.labels, pod_labels=pod_labels,
                           schedule=schedule, time_zone=props.time_zone, suspend=False,
                           timeout_minutes=props.timeout_minutes, pod=pod)
