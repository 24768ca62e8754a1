"""The one-off Job upgrading the stopped database's data to a new PostgreSQL
major in place, printed by `python main.py upgrade-manifest` and never part of
dist/ (docs/upgrading.md).

The official images carry one major each: an init container running the old
image copies its PostgreSQL (binaries, libraries, share files; same layout under
a prefix, which PostgreSQL's relocatable paths follow) into an emptyDir, and
the new image runs upgrade.sh from the scripts ConfigMap on the data volume
with both.
"""

from __future__ import annotations

from constructs import Construct
from pydantic import BaseModel, ConfigDict

from constructs.backup import TTL_SECONDS_AFTER_FINISHED
from imports import k8s
from pgbundle import contract
from pgbundle.k8s.podsecurity import Resources, resource_requirements, restricted_container, restricted_pod
from pgbundle.k8s.quantity import quantity
from pgbundle.pgconf.pgbackrest import UPGRADE_MARKER_ENV

OLD_BINARIES = "/opt/postgres-old"  # the emptyDir the init container fills


def debian_bindir(major: int, prefix: str = "") -> str:
    """Where Debian's packages (and so the official images) put a major's binaries."""
    return f"{prefix}/usr/lib/postgresql/{major}/bin"


def copy_command(major: int) -> list[str]:
    """The init container's command: the old major's installation, paths kept, under OLD_BINARIES.
    Not `-a`: as a non-root user it fails on the parent folders' owner (root)."""
    return ["cp", "-dR", "--parents", f"/usr/lib/postgresql/{major}", f"/usr/share/postgresql/{major}", OLD_BINARIES]


class UpgradeJobProps(BaseModel):
    """What the UpgradeJob construct needs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    namespace: str
    """Namespace of the Job (the database's) (required)."""
    version: str
    """The app.kubernetes.io/version label: the new image's tag (required)."""
    old_image: str
    """The image the data was written by (required)."""
    old_major: int
    """Its PostgreSQL major (required)."""
    new_image: str
    """The image the database will run after the upgrade (required)."""
    new_major: int
    """Its PostgreSQL major (required)."""
    claim: str
    """The data volume's PersistentVolumeClaim (required)."""
    resources: Resources
    """Requests and limits of both containers (required)."""
    image_pull_policy: str = "IfNotPresent"
    """Pull policy. Left out: IfNotPresent."""
    pitr_upgrade_marker: str | None = None
    """With PITR on: the file upgrade.sh leaves for the database's next start, which
    upgrades the pgBackRest stanza and takes a full backup. Left out: none (PITR off)."""


class UpgradeJob(Construct):
    """Job `postgres-upgrade-<major>` running upgrade.sh once, never retried."""

    def __init__(self, scope: Construct, id: str, *, props: UpgradeJobProps) -> None:
        super().__init__(scope, id)
        uid = contract.POSTGRES_UID
        labels = contract.object_labels(contract.UPGRADE_COMPONENT, props.version)
        old = k8s.VolumeMount(name="old-binaries", mount_path=OLD_BINARIES)
        environment = {
            "PGDATA": contract.PGDATA,
            "PG_OLD_BINDIR": debian_bindir(props.old_major, OLD_BINARIES),
            "PG_NEW_BINDIR": debian_bindir(props.new_major),
            "PG_UPGRADE_WORK": f"{contract.TMP_DIR}/upgrade",
        }
        if props.pitr_upgrade_marker is not None:
            environment[UPGRADE_MARKER_ENV] = props.pitr_upgrade_marker
        common = {"image_pull_policy": props.image_pull_policy, "resources": resource_requirements(props.resources),
                  "security_context": restricted_container(uid)}
        k8s.KubeJob(
            self,
            "job",
            metadata=k8s.ObjectMeta(name=f"{contract.UPGRADE_JOB_PREFIX}{props.new_major}", namespace=props.namespace,
                                    labels=labels),
            spec=k8s.JobSpec(
                # An upgrade is not retried blindly: read the log, then decide (docs/upgrading.md).
                backoff_limit=0,
                ttl_seconds_after_finished=TTL_SECONDS_AFTER_FINISHED,
                template=k8s.PodTemplateSpec(
                    metadata=k8s.ObjectMeta(labels=labels),
                    spec=k8s.PodSpec(
                        service_account_name=contract.SERVICE_ACCOUNT,
                        automount_service_account_token=False,
                        enable_service_links=False,
                        restart_policy="Never",
                        security_context=restricted_pod(uid),
                        init_containers=[k8s.Container(
                            name="old-binaries", image=props.old_image, command=copy_command(props.old_major),
                            volume_mounts=[old], **common)],
                        containers=[k8s.Container(
                            name=contract.UPGRADE_CONTAINER, image=props.new_image,
                            command=["bash", f"{contract.SCRIPTS_DIR}/upgrade.sh"],
                            env=[k8s.EnvVar(name=k, value=v) for k, v in environment.items()],
                            volume_mounts=[
                                k8s.VolumeMount(name=contract.DATA_CLAIM, mount_path=contract.DATA_MOUNT),
                                k8s.VolumeMount(name="scripts", mount_path=contract.SCRIPTS_DIR, read_only=True),
                                k8s.VolumeMount(name="tmp", mount_path=contract.TMP_DIR),
                                old,
                            ],
                            **common)],
                        volumes=[
                            k8s.Volume(name=contract.DATA_CLAIM, persistent_volume_claim=(
                                k8s.PersistentVolumeClaimVolumeSource(claim_name=props.claim))),
                            k8s.Volume(name="scripts", config_map=k8s.ConfigMapVolumeSource(
                                name=contract.SCRIPTS_CONFIG_MAP, default_mode=contract.SCRIPT_FILE_MODE)),
                            k8s.Volume(name="tmp", empty_dir=k8s.EmptyDirVolumeSource(size_limit=quantity("256Mi"))),
                            # An official image's PostgreSQL is about 60 MB.
                            k8s.Volume(name="old-binaries",
                                       empty_dir=k8s.EmptyDirVolumeSource(size_limit=quantity("1Gi"))),
                        ],
                    ),
                ),
            ),
        )
