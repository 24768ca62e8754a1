"""pgbackrest.conf and pgBackRest's environment, derived from `postgres.pitr`.

The file holds neither secrets nor locations: the passphrase and the S3 keys
reach pgBackRest through a conf.d file the start script writes from the Secret
files (constructs/scripts/pitr-env.sh), and every path through PGBACKREST_*
variables of the pod's environment, which the local pod runner remaps.
"""

from __future__ import annotations

from pgbundle import contract
from pgbundle.values.models import PostgresValues
from pgbundle.values.pitr import PitrValues

CIPHER = "aes-256-cbc"


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
        # otherwise a thousand requests (about 25 s to S3 in the tests here).
        lines += [f"{repo}-bundle=y",
                  f"{repo}-retention-full-type=count", f"{repo}-retention-full={pitr.retention.full}"]
        if pitr.retention.differential is not None:
            lines.append(f"{repo}-retention-diff={pitr.retention.differential}")
        if pitr.encryption.enabled:
            lines.append(f"{repo}-cipher-type={CIPHER}")
    if pitr.archive_async:
        # The asynchronous archiver pushes two segments at a time (a backlog after an outage).
        lines += ["", "[global:archive-push]", "process-max=2"]
    return "\n".join(lines) + "\n"


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
# Where the backup job finds the TLS server: the local runner points it at its own.
PG_HOST_ENV = "PGBACKREST_PG1_HOST"
PG_HOST_PORT_ENV = "PGBACKREST_PG1_HOST_PORT"


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


def backup_job_environment(postgres: PostgresValues, namespace: str) -> dict[str, str]:
    """The backup CronJobs' environment: the repositories as the database container
    has them (the job writes to them), and the database reached through the TLS
    server of its first pod (pg1-host-type=tls) with the job's client certificate.
    PGDATA, PGPORT and PG_RUN_DIR are the database pod's: the server reads them."""
    return {
        "PG_SCRIPTS_DIR": contract.SCRIPTS_DIR,
        "PGDATA": contract.PGDATA,
        "PGPORT": str(contract.PORT),
        "PG_RUN_DIR": contract.RUN_DIR,
        **pitr_environment(postgres),
        "PGBACKREST_CONFIG_INCLUDE_PATH": f"{contract.PITR_JOB_RUN_DIR}/conf.d",
        "PGBACKREST_LOCK_PATH": contract.PITR_JOB_RUN_DIR,
        PG_HOST_ENV: f"{contract.BOOTSTRAP_MEMBER}.{contract.HEADLESS_SERVICE}.{namespace}.svc",
        "PGBACKREST_PG1_HOST_TYPE": "tls",
        PG_HOST_PORT_ENV: str(contract.PGBACKREST_PORT),
        "PGBACKREST_PG1_HOST_CERT_FILE": f"{contract.CLIENT_TLS_DIR}/{contract.CLIENT_CERT_FILE}",
        "PGBACKREST_PG1_HOST_KEY_FILE": f"{contract.CLIENT_TLS_DIR}/{contract.CLIENT_KEY_FILE}",
        "PGBACKREST_PG1_HOST_CA_FILE": f"{contract.CA_DIR}/{contract.CA_CERT_FILE}",
    }
