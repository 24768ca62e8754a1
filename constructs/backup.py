"""Backups: the ServiceAccount and CronJob `postgres-backup`.

The job runs constructs/scripts/backup.sh from the scripts ConfigMap in the
database's image (pod: pgbundle/k8s/jobs.py); the local pod runner runs the same
script with the same environment, its paths mapped under a state folder.
"""

from __future__ import annotations

from constructs import Construct
from pydantic import BaseModel, ConfigDict

from constructs.certificate import ClientCertificate, ClientCertificateProps
from imports import k8s
from pgbundle import contract
from pgbundle.k8s.jobs import JobPodProps, job_pod_spec

COMPONENT = contract.BACKUP_COMPONENT

# Schedule tolerance: a run may start this late (controller restart, busy
# cluster) before it counts as missed. cdk8s-plus' default is 10 s.
STARTING_DEADLINE_SECONDS = 30 * 60
# A failed run is retried this many times (each retry is a new pod, so the
# failed pod's log stays readable).
BACKOFF_LIMIT = 2
# Finished Jobs of the schedule: the newest few are kept for their logs.
SUCCESSFUL_JOBS_HISTORY = 3
FAILED_JOBS_HISTORY = 3
# Jobs started by hand (`kubectl create job --from=cronjob/...`) are deleted
# after a week.
TTL_SECONDS_AFTER_FINISHED = 7 * 24 * 3600


class BackupProps(BaseModel):
    """What the Backup construct needs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    namespace: str
    """Namespace of the CronJob and its ServiceAccount (required)."""
    version: str
    """The app.kubernetes.io/version label: the database image's tag (required)."""
    schedule: str
    """Cron schedule (validated by the values model) (required)."""
    timeout_minutes: int
    """A run is stopped after this long (required)."""
    pod: JobPodProps
    """The job's pod: image, script, environment, Secrets (required)."""
    time_zone: str = "Etc/UTC"
    """IANA time zone of the schedule. Left out: Etc/UTC."""
    suspend: bool = False
    """Suspend the schedule. Left out: false."""
    client_certificate: ClientCertificateProps | None = None
    """A cert-manager Certificate for the job's client certificate. Left out: none."""


class Backup(Construct):
    """ServiceAccount and CronJob `postgres-backup`: verified pg_dump sets of every
    configured database on the `postgres-backups` volume, pruned by retention."""

    def __init__(self, scope: Construct, id: str, *, props: BackupProps) -> None:
        super().__init__(scope, id)
        self.labels = contract.object_labels(COMPONENT, props.version)
        # The NetworkPolicy admits exactly these pod labels to the database.
        pod_labels = {**self.labels, **contract.selector_labels(COMPONENT)}

        def meta(name: str) -> k8s.ObjectMeta:
            return k8s.ObjectMeta(name=name, namespace=props.namespace, labels=self.labels)

        k8s.KubeServiceAccount(self, "service-account", metadata=meta(contract.BACKUP_SERVICE_ACCOUNT),
                               automount_service_account_token=False)
        if props.client_certificate is not None:
            # The job's client certificate from the same issuer as the server's: with
            # cert-manager on, `secrets generate` writes no CA to sign one with.
            ClientCertificate(self, "client-certificate", props=props.client_certificate)
        backup_cronjob(self, "cronjob", name=contract.BACKUP_CRONJOB, namespace=props.namespace, labels=self.labels,
                       pod_labels=pod_labels, schedule=props.schedule, time_zone=props.time_zone, suspend=props.suspend,
                       timeout_minutes=props.timeout_minutes, pod=props.pod)


def backup_cronjob(scope: Construct, id: str, *, name: str, namespace: str, labels: dict[str, str],
                   pod_labels: dict[str, str], schedule: str, time_zone: str, suspend: bool, timeout_minutes: int,
                   pod: JobPodProps) -> k8s.KubeCronJob:
    """A backup CronJob: never two runs at once, a few retries, the newest jobs kept for their logs."""
    return k8s.KubeCronJob(
        scope,
        id,
        metadata=k8s.ObjectMeta(name=name, namespace=namespace, labels=labels),
        spec=k8s.CronJobSpec(
            schedule=schedule,
            time_zone=time_zone,
            suspend=suspend,
            concurrency_policy="Forbid",
            starting_deadline_seconds=STARTING_DEADLINE_SECONDS,
            successful_jobs_history_limit=SUCCESSFUL_JOBS_HISTORY,
            failed_jobs_history_limit=FAILED_JOBS_HISTORY,
            job_template=k8s.JobTemplateSpec(
                metadata=k8s.ObjectMeta(labels=labels),
                spec=k8s.JobSpec(
                    backoff_limit=BACKOFF_LIMIT,
                    active_deadline_seconds=timeout_minutes * 60,
                    ttl_seconds_after_finished=TTL_SECONDS_AFTER_FINISHED,
                    template=k8s.PodTemplateSpec(
                        metadata=k8s.ObjectMeta(labels=pod_labels),
                        spec=job_pod_spec(pod),
                    ),
                ),
            ),
        ),
    )
