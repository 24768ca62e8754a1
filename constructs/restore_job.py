"""The one-off Job restoring a backup set, printed by `python main.py
restore-manifest` and never part of dist/, so a GitOps sync never runs it."""

from __future__ import annotations

from constructs import Construct
from pydantic import BaseModel, ConfigDict

from constructs.backup import TTL_SECONDS_AFTER_FINISHED
from imports import k8s
from pgbundle import contract
from pgbundle.k8s.jobs import JobPodProps, job_pod_spec


class RestoreJobProps(BaseModel):
    """What the RestoreJob construct needs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    namespace: str
    """Namespace of the Job (the database's) (required)."""
    version: str
    """The app.kubernetes.io/version label: the database image's tag (required)."""
    backup: str
    """Name of the backup set to restore, a directory on the backup volume such as
    20260101T020000Z (required)."""
    pod: JobPodProps
    """The job's pod: image, script, environment, Secrets (required)."""


def restore_job_name(backup: str) -> str:
    return contract.RESTORE_JOB_PREFIX + backup.lower()


class RestoreJob(Construct):
    """Job `postgres-restore-<set>` running restore.sh once, never retried."""

    def __init__(self, scope: Construct, id: str, *, props: RestoreJobProps) -> None:
        super().__init__(scope, id)
        labels = contract.object_labels(contract.BACKUP_COMPONENT, props.version)
        # Same pod labels as the backup job: the NetworkPolicy lets them reach the database.
        pod_labels = {**labels, **contract.selector_labels(contract.BACKUP_COMPONENT)}
        k8s.KubeJob(
            self,
            "job",
            metadata=k8s.ObjectMeta(name=restore_job_name(props.backup), namespace=props.namespace, labels=labels),
            spec=k8s.JobSpec(
                # A restore is not retried blindly: read the log, then decide.
                backoff_limit=0,
                ttl_seconds_after_finished=TTL_SECONDS_AFTER_FINISHED,
                template=k8s.PodTemplateSpec(
                    metadata=k8s.ObjectMeta(labels=pod_labels),
                    spec=job_pod_spec(props.pod),
                ),
            ),
        )
