"""The one-off point-in-time restore, printed by `python main.py
pitr-restore-manifest` and never part of dist/, so a GitOps sync never runs it:
a Job running constructs/scripts/pitr/pitr-restore.sh into a new data volume
(its PVC is printed with it), or in place into the stopped database's volume.
docs/pitr.md is the procedure around it."""

from __future__ import annotations

from constructs import Construct
from pydantic import BaseModel, ConfigDict

from constructs.backup import TTL_SECONDS_AFTER_FINISHED
from constructs.database import VolumeClaimProps, claim_spec
from imports import k8s
from pgbundle import contract
from pgbundle.k8s.jobs import JobPodProps, job_pod_spec

COMPONENT = contract.PITR_BACKUP_COMPONENT


class PitrRestoreProps(BaseModel):
    """What the PitrRestore construct needs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    namespace: str
    """Namespace of the Job and the PVC (the database's) (required)."""
    version: str
    """The app.kubernetes.io/version label: the database image's tag (required)."""
    job_name: str
    """Name of the Job (required)."""
    claim_name: str
    """The data volume restored into; the pod mounts it at the data mount (required)."""
    new_claim: VolumeClaimProps | None = None
    """The PVC claim_name to create, like the StatefulSet's data volume. Left out: none
    (claim_name exists: the stopped database's, restored in place)."""
    pod: JobPodProps
    """The job's pod: the PITR image, pitr-restore.sh, the repositories and their Secrets (required)."""


class PitrRestore(Construct):
    """Job `postgres-pitr-restore-<target>` running pitr-restore.sh once, never retried,
    and the PVC it restores into when that is a new one."""

    def __init__(self, scope: Construct, id: str, *, props: PitrRestoreProps) -> None:
        super().__init__(scope, id)
        labels = contract.object_labels(COMPONENT, props.version)
        # The backup jobs' pod labels: their NetworkPolicy lets them reach DNS and the S3 endpoint.
        pod_labels = {**labels, **contract.selector_labels(COMPONENT)}
        if props.new_claim is not None:
            k8s.KubePersistentVolumeClaim(
                self, "data", metadata=k8s.ObjectMeta(name=props.claim_name, namespace=props.namespace, labels=labels),
                spec=claim_spec(props.new_claim))
        k8s.KubeJob(
            self,
            "job",
            metadata=k8s.ObjectMeta(name=props.job_name, namespace=props.namespace, labels=labels),
            spec=k8s.JobSpec(
                # A restore is not retried blindly: read the log, then decide.
                backoff_limit=0,
                ttl_seconds_after_finished=TTL_SECONDS_AFTER_FINISHED,
                template=k8s.PodTemplateSpec(metadata=k8s.ObjectMeta(labels=pod_labels), spec=job_pod_spec(props.pod)),
            ),
        )
