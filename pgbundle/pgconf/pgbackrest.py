"""pgbackrest.conf and pgBackRest's environment, derived from `postgres.pitr`.

The file holds neither secrets nor locations: the passphrase and the S3 keys
reach pgBackRest through a conf.d file the start script writes from the Secret
files (constructs/scripts/pitr-env.sh), and every path through PGBACKREST_*
variables of the pod's environment, which the local pod runner remaps.
"""

from __future__ import annotations

import re
from typing import Literal

from pgbundle import contract
from pgbundle.values.models import PostgresValues
from pgbundle.values.pitr import PitrValues

CIPHER = "aes-256-cbc"
# WAL in and out of the repositories; every setting comes from the PGBACKREST_*
# environment the server inherits (from the start script, or Patroni's).
ARCHIVE_PUSH_COMMAND = "pgbackrest archive-push %p"
ARCHIVE_GET_COMMAND = 'pgbackrest archive-get %f "%p"'


def repo_numbers(pitr: PitrValues) -> dict[str, int]:
    """pgBackRest's repository index of each enabled repository: the volume first
    (restores read the first repository holding what they need)."""
    kinds = [kind for kind, on in (("volume", pitr.repos.volume.enabled), ("s3", pitr.repos.s3.enabled)) if on]
    return {kind: n for n, kind in enumerate(kinds, start=1)}


def volume_repo_dir(pitr: PitrValues) -> str:
    return contract.PITR_REPO_DIR if pitr.repos.volume.claim == "own" else contract.PITR_BACKUPS_REPO_DIR


def render_pgbackrest_conf(postgres: PostgresValues) -> str:
    pitr = postgres.pitr
    lines = ["# Generated from the values by pgbundle/pgconf/pgbackrest.py. Secrets come from conf.d",
             "# (written by the start script), locations from the PGBACKREST_* environment.",
             "[global]",
             f"compress-type={pitr.compression.type}"]
    if pitr.compression.effective_level is not None:
        lines.append(f"compress-level={pitr.compression.effective_level}")
    # No log files (the root file system is read-only): warnings and errors go to stderr,
    # which the server's collector turns into JSON log lines for archive_command;
    # pitr.sh prints its commands' progress on stdout instead.
    lines += ["log-level-file=off", "log-level-console=off",
              # A backup starts with an immediate checkpoint instead of waiting for the next one.
              "start-fast=y"]
    if pitr.archive_async:
        # The spool is PGBACKREST_SPOOL_PATH. Never archive-push-queue-max: past it
        # pgBackRest drops WAL and reports success, a hole in the archive no alert shows.
        lines.append("archive-async=y")
    for kind, n in repo_numbers(pitr).items():
        repo = f"repo{n}"
        if kind == "volume":
            lines.append(f"{repo}-type=posix")
        else:
            s3 = pitr.repos.s3
            host = (s3.endpoint or "").partition(":")[0]
            lines += [f"{repo}-type=s3", f"{repo}-path={s3.path}", f"{repo}-s3-bucket={s3.bucket}",
                      f"{repo}-s3-endpoint={host}", f"{repo}-s3-region={s3.region}", f"{repo}-s3-uri-style={s3.uri_style}",
                      f"{repo}-storage-port={s3.port}"]
        # Small files bundled into few objects: a small database's thousand files are
        # otherwise a thousand requests (about 25 s to S3 in the tests here). Block
        # incrementals (they need bundling): a diff or incr stores only the changed
        # blocks of a changed file, not the whole 1 GB segment.
        lines += [f"{repo}-bundle=y", f"{repo}-block=y",
                  f"{repo}-retention-full-type=count", f"{repo}-retention-full={pitr.retention.full}"]
        if pitr.retention.differential is not None:
            lines.append(f"{repo}-retention-diff={pitr.retention.differential}")
        if pitr.encryption.enabled:
            lines.append(f"{repo}-cipher-type={CIPHER}")
    if pitr.archive_async:
        # The asynchronous archiver pushes two segments at a time (a backlog after an outage).
        lines += ["", "[global:archive-push]", "process-max=2"]
    return "\n".join(lines) + "\n"


# Where upgrade.sh leaves contract.PITR_UPGRADE_MARKER: set for the database
# container and the upgrade Job only when PITR is on.
UPGRADE_MARKER_ENV = "PG_PITR_UPGRADE_MARKER"


def pitr_environment(postgres: PostgresValues) -> dict[str, str]:
    """What the start script, pitr.sh and archive_command need: pgBackRest's
    locations (pod paths) and where its secrets are."""
    pitr = postgres.pitr
    repos = repo_numbers(pitr)
    env = {
        "PGBACKREST_CONFIG": f"{contract.CONFIG_DIR}/{contract.PGBACKREST_CONF}",
        "PGBACKREST_CONFIG_INCLUDE_PATH": f"{contract.PGBACKREST_RUN_DIR}/conf.d",
        "PGBACKREST_LOCK_PATH": contract.PGBACKREST_RUN_DIR,
        "PGBACKREST_STANZA": contract.PITR_STANZA,
        "PG_PITR_REPOS": " ".join(str(n) for n in repos.values()),
        UPGRADE_MARKER_ENV: contract.PITR_UPGRADE_MARKER,
    }
    if pitr.archive_async:
        env["PGBACKREST_SPOOL_PATH"] = contract.PGBACKREST_SPOOL_DIR
    if "volume" in repos:
        env[f"PGBACKREST_REPO{repos['volume']}_PATH"] = volume_repo_dir(pitr)
    if pitr.encryption.enabled:
        env["PG_PITR_CIPHER_FILE"] = f"{contract.SECRETS_DIR}/{contract.CIPHER_PASS_KEY}"
    if "s3" in repos:
        n = repos["s3"]
        env["PG_PITR_S3_REPO"] = str(n)
        env["PG_PITR_S3_KEY_FILE"] = f"{contract.PITR_S3_SECRET_DIR}/{contract.S3_KEY_ID_KEY}"
        env["PG_PITR_S3_KEY_SECRET_FILE"] = f"{contract.PITR_S3_SECRET_DIR}/{contract.S3_KEY_SECRET_KEY}"
        if pitr.repos.s3.ca_secret is not None:
            env[f"PGBACKREST_REPO{n}_STORAGE_CA_FILE"] = f"{contract.PITR_S3_CA_DIR}/{contract.CA_CERT_FILE}"
    return env


# The TLS server's listen address and port: the local pod runner binds them to
# loopback and a free port instead.
SERVER_ADDRESS_ENV = "PGBACKREST_TLS_SERVER_ADDRESS"
SERVER_PORT_ENV = "PGBACKREST_TLS_SERVER_PORT"
# Where the backup job finds member n's TLS server (pgbackrest pgN, n from 1): the
# local runner points them at its own.
def pg_host_env(n: int) -> str:
    return f"PGBACKREST_PG{n}_HOST"


def pg_host_port_env(n: int) -> str:
    return f"PGBACKREST_PG{n}_HOST_PORT"


def pg_option_env(n: int, option: str) -> str:
    return f"PGBACKREST_PG{n}_{option}"


def server_environment(postgres: PostgresValues) -> dict[str, str]:
    """What the sidecar's `pgbackrest server` adds to the database container's
    environment: TLS with the server's certificate, and mutual TLS that admits only
    the backup jobs' client certificate (CN the read-only role) to the stanza."""
    return {
        SERVER_ADDRESS_ENV: "*",
        SERVER_PORT_ENV: str(contract.PGBACKREST_PORT),
        "PGBACKREST_TLS_SERVER_CERT_FILE": f"{contract.TLS_DIR}/{contract.TLS_CERT_FILE}",
        "PGBACKREST_TLS_SERVER_KEY_FILE": f"{contract.TLS_DIR}/{contract.TLS_KEY_FILE}",
        "PGBACKREST_TLS_SERVER_CA_FILE": f"{contract.CA_DIR}/{contract.CA_CERT_FILE}",
        "PGBACKREST_TLS_SERVER_AUTH": f"{postgres.read_only_username}={contract.PITR_STANZA}",
    }


def _repository_access(postgres: PostgresValues) -> dict[str, str]:
    """pgBackRest in a job: the repositories as the database container has them,
    locks and conf.d in the job's /tmp."""
    return {
        **pitr_environment(postgres),
        "PGBACKREST_CONFIG_INCLUDE_PATH": f"{contract.PITR_JOB_RUN_DIR}/conf.d",
        "PGBACKREST_LOCK_PATH": contract.PITR_JOB_RUN_DIR,
    }


def _job_environment(postgres: PostgresValues) -> dict[str, str]:
    """What a PITR job's pgBackRest needs: the database pod's paths and the repositories."""
    return {
        "PG_SCRIPTS_DIR": contract.SCRIPTS_DIR,
        "PGDATA": contract.PGDATA,
        "PGPORT": str(contract.PORT),
        "PG_RUN_DIR": contract.RUN_DIR,
        **_repository_access(postgres),
    }


def backup_job_environment(postgres: PostgresValues, namespace: str) -> dict[str, str]:
    """The backup CronJobs' environment: the repositories as the database container
    has them (the job writes to them), and every member reached through its TLS
    server (pg1..pgN, pg-host-type=tls) with the job's client certificate.
    PGDATA, PGPORT and PG_RUN_DIR are the database pods': the servers read them.
    With Patroni, the backup is read from a standby (pitr-backup.sh falls back to
    the primary when no standby answers)."""
    env = _job_environment(postgres)
    for index in range(postgres.replicas):
        n = index + 1
        if n > 1:  # pg1's path, port and socket come from pitr-env.sh
            env.update({pg_option_env(n, "PATH"): contract.PGDATA, pg_option_env(n, "PORT"): str(contract.PORT),
                        pg_option_env(n, "SOCKET_PATH"): contract.RUN_DIR})
        env.update({
            pg_host_env(n): contract.member_dns_name(index, namespace),
            pg_option_env(n, "HOST_TYPE"): "tls",
            pg_host_port_env(n): str(contract.PGBACKREST_PORT),
            pg_option_env(n, "HOST_CERT_FILE"): f"{contract.CLIENT_TLS_DIR}/{contract.CLIENT_CERT_FILE}",
            pg_option_env(n, "HOST_KEY_FILE"): f"{contract.CLIENT_TLS_DIR}/{contract.CLIENT_KEY_FILE}",
            pg_option_env(n, "HOST_CA_FILE"): f"{contract.CA_DIR}/{contract.CA_CERT_FILE}",
        })
    if postgres.replicas > 1:
        env["PGBACKREST_BACKUP_STANDBY"] = "y"
    return env


# What pitr-restore.sh restores to: a time, a named restore point, the end of the
# archive, or a backup's own end (`immediate`, with a label).
RestoreType = Literal["time", "name", "latest", "immediate"]
# Restore point names the product creates and targets: PostgreSQL allows 63 bytes of
# anything; these also stay readable in object names and on command lines.
RESTORE_POINT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


def restore_target_environment(kind: RestoreType, target: str | None, label: str | None,
                               in_place: bool) -> dict[str, str]:
    """pitr-restore.sh's target: its kind, the time or name, the backup label, and
    whether PGDATA may hold the stopped database (moved aside first)."""
    env = {"PG_PITR_RESTORE_TYPE": kind}
    if target is not None:
        env["PG_PITR_RESTORE_TARGET"] = target
    if label is not None:
        env["PG_PITR_RESTORE_SET"] = label
    if in_place:
        env["PG_PITR_RESTORE_IN_PLACE"] = contract.PITR_RESTORE_ASIDE_PREFIX
    return env


def restore_job_environment(postgres: PostgresValues, *, kind: RestoreType, target: str | None,
                            label: str | None, in_place: bool) -> dict[str, str]:
    """The PITR restore Job's environment: the repositories as the database
    container has them, PGDATA on the data volume it mounts, its own locks and
    conf.d in /tmp."""
    return {**_job_environment(postgres), **restore_target_environment(kind, target, label, in_place)}


def drill_environment(postgres: PostgresValues) -> dict[str, str]:
    """The restore drill's environment: the repositories as the backup jobs have them
    (read-only here), its own locks and conf.d, the scratch volume and the
    application's database to count. No PGDATA: the script restores into the scratch volume."""
    return {
        "PG_SCRIPTS_DIR": contract.SCRIPTS_DIR,
        "PGPORT": str(contract.PORT),
        "TMPDIR": contract.TMP_DIR,
        **_repository_access(postgres),
        "PG_DRILL_DIR": contract.PITR_DRILL_DIR,
        "PG_DRILL_DATABASE": postgres.database,
    }
