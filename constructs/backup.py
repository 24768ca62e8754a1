"""Backups: the CronJob `postgres-backup`, and the restore Job that
`python main.py restore-manifest` prints.

Both run a script from the scripts ConfigMap (constructs/scripts/backup.sh,
restore.sh) in the database's image, with the environment built here; the local
pod runner runs the same scripts with the same environment, its paths mapped
under a state folder (`job_environment`).
"""

from __future__ import annotations

import re

from constructs import Construct
from pydantic import BaseModel, ConfigDict

from imports import k8s
from constructs import certificate, layout, tls
from constructs.labels import object_labels, selector_labels
from constructs.podsecurity import resource_requirements, restricted_container, restricted_pod
from constructs.values import PostgresValues

COMPONENT = "backup"
CRONJOB = layout.BACKUP_CRONJOB  # the backup alerts select its Jobs by this name
SERVICE_ACCOUNT = "postgres-backup"
RESTORE_JOB_PREFIX = "postgres-restore-"
BACKUP_CONTAINER = "backup"
RESTORE_CONTAINER = "restore"
BACKUP_SCRIPT = "backup.sh"
RESTORE_SCRIPT = "restore.sh"
# Mount path of the backup job's client certificate (used when ca.verifyClients).
CLIENT_TLS_DIR = "/etc/postgres/client-tls"
CLIENT_CERT_FILE = layout.CLIENT_CERT_FILE
CLIENT_KEY_FILE = layout.CLIENT_KEY_FILE
CLIENT_TLS_VOLUME = "client-tls"

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
# Parallel jobs of pg_restore (the database's CPU limit is the usual bound).
DEFAULT_RESTORE_JOBS = 2

SECRET_FILE_MODE = 0o440  # readable by uid 999 through fsGroup; libpq accepts it for a root-owned key
SCRIPT_FILE_MODE = 0o555
SET_NAME = re.compile(r"^[0-9]{8}T[0-9]{6}Z$")


class BackupProps(BaseModel):
    """What the Backup construct needs; every field is required."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    namespace: str
    """Namespace of the CronJob and its ServiceAccount."""
    image_pull_policy: str
    """Pull policy of the backup container (the image is the database's)."""
    postgres: PostgresValues
    """The `postgres` section of the values; `postgres.backup` configures the job."""


class RestoreJobProps(BaseModel):
    """What the RestoreJob construct needs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    namespace: str
    """Namespace of the Job (the database's)."""
    image_pull_policy: str
    """Pull policy of the restore container (the image is the database's)."""
    postgres: PostgresValues
    """The `postgres` section of the values."""
    backup: str
    """Name of the backup set to restore, a directory on the backup volume such as
    20260101T020000Z."""
    databases: list[str]
    """Databases to restore from the set; empty = every dump in the set."""
    jobs: int = DEFAULT_RESTORE_JOBS
    """Parallel pg_restore jobs. Left out: 2."""


def connection_environment(pg: PostgresValues, *, user: str, password_key: str, paths: dict[str, str] | None = None,
                           host: str = layout.SERVICE, port: int = layout.PORT) -> dict[str, str]:
    """libpq settings of a job: TLS with the server certificate checked against
    the CA (`verify-full`, never a fallback to plain text), the password from a
    Secret file. `paths` maps the pod's directories to others (local runner)."""
    where = {
        "secrets": layout.SECRETS_DIR,
        "ca": layout.CA_DIR,
        "client_tls": CLIENT_TLS_DIR,
        **(paths or {}),
    }
    env = {
        "PGHOST": host,
        "PGPORT": str(port),
        "PGUSER": user,
        "PG_PASSWORD_FILE": f"{where['secrets']}/{password_key}",
        "PGCONNECT_TIMEOUT": "10",
    }
    if pg.tls.enabled:
        env["PGSSLMODE"] = "verify-full"
        env["PGSSLROOTCERT"] = f"{where['ca']}/{layout.CA_CERT_FILE}"
        if pg.ca.verify_clients:
            env["PGSSLCERT"] = f"{where['client_tls']}/{CLIENT_CERT_FILE}"
            env["PGSSLKEY"] = f"{where['client_tls']}/{CLIENT_KEY_FILE}"
    else:
        # The server has no TLS (values warn about it): asking for it would fail every run.
        env["PGSSLMODE"] = "disable"
    return env


def backup_environment(pg: PostgresValues, *, paths: dict[str, str] | None = None, host: str = layout.SERVICE,
                       port: int = layout.PORT) -> dict[str, str]:
    """The environment backup.sh runs with (pod paths unless `paths` maps them)."""
    where = {"backups": layout.BACKUP_DIR, "tmp": layout.TMP_DIR, **(paths or {})}
    backup = pg.backup
    env = {
        **connection_environment(pg, user=pg.read_only_username, password_key=layout.READ_ONLY_PASSWORD_KEY,
                                 paths=paths, host=host, port=port),
        "PGAPPNAME": CRONJOB,
        "BACKUP_DIR": where["backups"],
        "BACKUP_DATABASES": " ".join(pg.backup_databases),
        "BACKUP_COMPRESSION": str(backup.compression),
        "BACKUP_RETENTION_COUNT": str(backup.retention.count),
        "TMPDIR": where["tmp"],
    }
    if backup.retention.days is not None:
        env["BACKUP_RETENTION_DAYS"] = str(backup.retention.days)
    return env


def restore_environment(pg: PostgresValues, *, backup: str, databases: list[str], jobs: int,
                        paths: dict[str, str] | None = None, host: str = layout.SERVICE,
                        port: int = layout.PORT) -> dict[str, str]:
    """The environment restore.sh runs with: the superuser, so that owners and
    privileges are restored exactly."""
    where = {"backups": layout.BACKUP_DIR, "tmp": layout.TMP_DIR, **(paths or {})}
    env = {
        **connection_environment(pg, user="postgres", password_key=layout.SUPERUSER_PASSWORD_KEY,
                                 paths=paths, host=host, port=port),
        "PGAPPNAME": "postgres-restore",
        "BACKUP_DIR": where["backups"],
        "RESTORE_BACKUP": backup,
        "RESTORE_JOBS": str(jobs),
        "TMPDIR": where["tmp"],
    }
    if databases:
        env["RESTORE_DATABASES"] = " ".join(databases)
    return env


def uses_client_certificate(pg: PostgresValues) -> bool:
    """The backup job presents a client certificate only when the server demands one."""
    return pg.tls.enabled and pg.ca.verify_clients


def client_secret_items(pg: PostgresValues) -> dict[str, str]:
    """Key of the client-certificate Secret -> file name in CLIENT_TLS_DIR. cert-manager
    writes tls.crt/tls.key (and ca.crt, not mounted: the CA volume has it); the keys
    `secrets generate` writes are the file names themselves."""
    if tls.uses_cert_manager(pg):
        return {tls.CERT_MANAGER_CERT_KEY: CLIENT_CERT_FILE, tls.CERT_MANAGER_KEY_KEY: CLIENT_KEY_FILE}
    return {CLIENT_CERT_FILE: CLIENT_CERT_FILE, CLIENT_KEY_FILE: CLIENT_KEY_FILE}


def _quantity(text: str) -> k8s.Quantity:
    return k8s.Quantity.from_string(text)


def _job_pod_spec(pg: PostgresValues, *, image_pull_policy: str, container: str, script: str,
                  env: dict[str, str], password_key: str, backups_read_only: bool,
                  service_account: str) -> k8s.PodSpec:
    """A restricted pod running one script against the database: only the one
    password it needs, the CA, the scripts and the backup volume."""
    uid = layout.POSTGRES_UID
    resources = pg.backup.resources
    mounts = [
        k8s.VolumeMount(name="scripts", mount_path=layout.SCRIPTS_DIR, read_only=True),
        k8s.VolumeMount(name="secrets", mount_path=layout.SECRETS_DIR, read_only=True),
        k8s.VolumeMount(name="backups", mount_path=layout.BACKUP_DIR, read_only=backups_read_only),
        k8s.VolumeMount(name="tmp", mount_path=layout.TMP_DIR),
    ]
    volumes = [
        k8s.Volume(name="scripts", config_map=k8s.ConfigMapVolumeSource(
            name=layout.SCRIPTS_CONFIG_MAP, default_mode=SCRIPT_FILE_MODE)),
        k8s.Volume(name="secrets", secret=k8s.SecretVolumeSource(
            secret_name=pg.secrets.existing_secret, default_mode=SECRET_FILE_MODE,
            items=[k8s.KeyToPath(key=password_key, path=password_key)])),
        k8s.Volume(name="backups", persistent_volume_claim=k8s.PersistentVolumeClaimVolumeSource(
            claim_name=layout.BACKUP_CLAIM, read_only=backups_read_only)),
        k8s.Volume(name="tmp", empty_dir=k8s.EmptyDirVolumeSource(size_limit=_quantity("256Mi"))),
    ]
    if pg.tls.enabled:
        mounts.append(k8s.VolumeMount(name="ca", mount_path=layout.CA_DIR, read_only=True))
        # Required: without the CA the server's certificate cannot be checked. Its
        # Secret is postgres-ca, or the TLS Secret when cert-manager issues it.
        volumes.append(k8s.Volume(name="ca", secret=k8s.SecretVolumeSource(
            secret_name=tls.ca_secret_name(pg), default_mode=SECRET_FILE_MODE,
            items=[k8s.KeyToPath(key=key, path=path) for key, path in tls.ca_secret_items(pg).items()])))
        if pg.ca.verify_clients:
            mounts.append(k8s.VolumeMount(name=CLIENT_TLS_VOLUME, mount_path=CLIENT_TLS_DIR, read_only=True))
            volumes.append(k8s.Volume(name=CLIENT_TLS_VOLUME, secret=k8s.SecretVolumeSource(
                secret_name=pg.backup.client_certificate.existing_secret, default_mode=SECRET_FILE_MODE,
                items=[k8s.KeyToPath(key=key, path=path) for key, path in client_secret_items(pg).items()])))

    affinity = None
    if pg.persistence.backups.access_mode == "ReadWriteOnce":
        # The database pod mounts the ReadWriteOnce volume too: only a pod on its
        # node can attach it.
        affinity = k8s.Affinity(pod_affinity=k8s.PodAffinity(
            required_during_scheduling_ignored_during_execution=[k8s.PodAffinityTerm(
                label_selector=k8s.LabelSelector(match_labels=selector_labels("database")),
                topology_key="kubernetes.io/hostname",
            )]))

    return k8s.PodSpec(
        service_account_name=service_account,
        automount_service_account_token=False,
        enable_service_links=False,
        restart_policy="Never",
        affinity=affinity,
        security_context=restricted_pod(uid),
        containers=[k8s.Container(
            name=container,
            image=pg.image.reference,
            image_pull_policy=image_pull_policy,
            command=["bash", f"{layout.SCRIPTS_DIR}/{script}"],
            env=[k8s.EnvVar(name=k, value=v) for k, v in env.items()],
            resources=resource_requirements(resources),
            volume_mounts=mounts,
            security_context=restricted_container(uid),
        )],
        volumes=volumes,
    )


class Backup(Construct):
    """ServiceAccount and CronJob `postgres-backup`: verified pg_dump sets of every
    configured database on the `postgres-backups` volume, pruned by retention."""

    def __init__(self, scope: Construct, id: str, *, props: BackupProps) -> None:
        super().__init__(scope, id)
        pg = props.postgres
        backup = pg.backup
        self.labels = object_labels(COMPONENT, pg.image.tag)
        # The NetworkPolicy admits exactly these pod labels to the database.
        pod_labels = {**self.labels, **selector_labels(COMPONENT)}

        def meta(name: str) -> k8s.ObjectMeta:
            return k8s.ObjectMeta(name=name, namespace=props.namespace, labels=self.labels)

        k8s.KubeServiceAccount(self, "service-account", metadata=meta(SERVICE_ACCOUNT),
                               automount_service_account_token=False)
        if tls.uses_cert_manager(pg) and uses_client_certificate(pg):
            # The job's client certificate from the same issuer as the server's: with
            # cert-manager on, `secrets generate` writes no CA to sign one with.
            certificate.add_client_certificate(self, props.namespace, self.labels, pg)
        k8s.KubeCronJob(
            self,
            "cronjob",
            metadata=meta(CRONJOB),
            spec=k8s.CronJobSpec(
                schedule=backup.schedule,
                time_zone=backup.time_zone,
                suspend=backup.suspend,
                concurrency_policy="Forbid",
                starting_deadline_seconds=STARTING_DEADLINE_SECONDS,
                successful_jobs_history_limit=SUCCESSFUL_JOBS_HISTORY,
                failed_jobs_history_limit=FAILED_JOBS_HISTORY,
                job_template=k8s.JobTemplateSpec(
                    metadata=k8s.ObjectMeta(labels=self.labels),
                    spec=k8s.JobSpec(
                        backoff_limit=BACKOFF_LIMIT,
                        active_deadline_seconds=backup.timeout_minutes * 60,
                        ttl_seconds_after_finished=TTL_SECONDS_AFTER_FINISHED,
                        template=k8s.PodTemplateSpec(
                            metadata=k8s.ObjectMeta(labels=pod_labels),
                            spec=_job_pod_spec(
                                pg, image_pull_policy=props.image_pull_policy, container=BACKUP_CONTAINER,
                                script=BACKUP_SCRIPT, env=backup_environment(pg),
                                password_key=layout.READ_ONLY_PASSWORD_KEY, backups_read_only=False,
                                service_account=SERVICE_ACCOUNT),
                        ),
                    ),
                ),
            ),
        )


def restore_job_name(backup: str) -> str:
    return RESTORE_JOB_PREFIX + backup.lower()


class RestoreJob(Construct):
    """A one-off Job restoring a backup set (printed by `main.py restore-manifest`,
    never part of dist/, so a GitOps sync never runs it)."""

    def __init__(self, scope: Construct, id: str, *, props: RestoreJobProps) -> None:
        super().__init__(scope, id)
        pg = props.postgres
        labels = object_labels(COMPONENT, pg.image.tag)
        # Same pod labels as the backup job: the NetworkPolicy lets them reach the database.
        pod_labels = {**labels, **selector_labels(COMPONENT)}
        env = restore_environment(pg, backup=props.backup, databases=props.databases, jobs=props.jobs)
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
                    spec=_job_pod_spec(
                        pg, image_pull_policy=props.image_pull_policy, container=RESTORE_CONTAINER,
                        script=RESTORE_SCRIPT, env=env, password_key=layout.SUPERUSER_PASSWORD_KEY,
                        backups_read_only=True, service_account=SERVICE_ACCOUNT),
                ),
            ),
        )


_MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
           "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}


def longest_interval_seconds(schedule: str) -> int:
    """The longest time between two runs of a (validated) cron schedule, found by
    walking four years of days (time-zone changes ignored). An alert on the age
    of the last successful backup should allow this much, times a margin."""
    import datetime

    from constructs.values import CRON_FIELDS, cron_values

    fields = _MACROS.get(schedule.strip(), schedule).split()
    minutes, hours, days, months, weekdays = (
        cron_values(f, low, high, names) for f, (_, low, high, names) in zip(fields, CRON_FIELDS))
    # Standard cron: with both day fields restricted, a day matching either runs.
    either = not fields[2].startswith(("*", "?")) and not fields[4].startswith(("*", "?"))
    times = sorted(h * 3600 + m * 60 for h in hours for m in minutes)
    within = max([b - a for a, b in zip(times, times[1:])], default=0)
    longest, previous, runs = within, None, 0
    start, window = datetime.date(2025, 1, 1), 4 * 366
    for offset in range(window):
        day = start + datetime.timedelta(days=offset)
        dom, dow = day.day in days, day.isoweekday() % 7 in weekdays
        if day.month in months and ((dom or dow) if either else (dom and dow)):
            if previous is not None:
                longest = max(longest, (offset - previous) * 86400 + times[0] - times[-1])
            previous = offset
            runs += 1
    # A schedule that runs on at most one day in four years (29 February): the whole window.
    return longest if runs > 1 else window * 86400
