"""The pod scripts' environments: the contract between the pods (or the local
pod runner) and constructs/scripts/ (start.sh and probe.sh; backup.sh and
restore.sh with their libpq settings)."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from pgbundle import contract
from pgbundle.pgconf.pgbackrest import pitr_environment
from pgbundle.values.models import PostgresValues

# Environment variables the start and probe scripts read. The local pod runner
# remaps every value that is an absolute path and these two.
LISTEN_ENV = "PG_LISTEN_ADDRESSES"
PORT_ENV = "PGPORT"


def pod_environment(postgres: PostgresValues) -> dict[str, str]:
    """Environment variables the start script reads (paths are the pod's)."""
    env = {
        "PGDATA": contract.PGDATA,
        PORT_ENV: str(contract.PORT),
        LISTEN_ENV: "*",
        "PG_CONFIG_DIR": contract.CONFIG_DIR,
        "PG_SCRIPTS_DIR": contract.SCRIPTS_DIR,
        "PG_SECRETS_DIR": contract.SECRETS_DIR,
        "PG_RUN_DIR": contract.RUN_DIR,
        "PG_DATABASE": postgres.database,
        "PG_SCHEMA": postgres.schema_,
        "PG_OWNER_USER": postgres.owner_username,
        "PG_APP_USER": postgres.username,
        "PG_READ_ONLY_USER": postgres.read_only_username,
        "PG_MIGRATOR_USER": postgres.migrator_username,
        "PG_TEMPORAL": "on" if postgres.temporal.enabled else "off",
        "PG_TEMPORAL_USER": postgres.temporal.username,
        "PG_TEMPORAL_OWNER": postgres.temporal.owner_username,
        "PG_METRICS": "on" if postgres.metrics.enabled else "off",
        "PG_MONITORING_USER": contract.MONITORING_ROLE,
        "PG_POOLER": "on" if postgres.pooler.enabled else "off",
        "PG_POOLER_AUTH_USER": contract.POOLER_AUTH_ROLE,
        "PG_POOLER_AUTH_SCHEMA": contract.POOLER_AUTH_SCHEMA,
        "PG_POOLER_AUTH_FUNCTION": contract.POOLER_AUTH_FUNCTION_NAME,
        # The roles whose SCRAM verifiers the pooler's auth function returns (a PostgreSQL array).
        "PG_POOLER_ROLES": "{" + ",".join(postgres.pooler_roles) + "}",
        # The passwords Secret keys the script refuses to start without: listed once, here.
        "PG_REQUIRED_KEYS": " ".join(contract.password_keys(
            temporal=postgres.temporal.enabled, metrics=postgres.metrics.enabled, ha=postgres.replicas > 1,
            pooler=postgres.pooler.enabled, cipher=postgres.pitr.cipher)),
    }
    if postgres.pitr.enabled:
        env.update(pitr_environment(postgres))
    if postgres.temporal.previous_username is not None:
        env["PG_TEMPORAL_PREVIOUS_USER"] = postgres.temporal.previous_username
    if postgres.tls.enabled:
        env["PG_TLS_DIR"] = contract.TLS_DIR
    if postgres.ca.verify_clients:
        env["PG_CA_DIR"] = contract.CA_DIR
    if postgres.logging.to_file:
        env["PG_LOG_DIR"] = f"{contract.DATA_MOUNT}/log"
        env["PG_LOG_RETENTION_DAYS"] = str(postgres.logging.retention_days)
    return env


def connection_environment(pg: PostgresValues, *, user: str, password_key: str,
                           host: str = contract.SERVICE, port: int = contract.PORT) -> dict[str, str]:
    """libpq settings of a job: TLS with the server certificate checked against
    the CA (`verify-full`, never a fallback to plain text), the password from a
    Secret file."""
    env = {
        "PGHOST": host,
        "PGPORT": str(port),
        "PGUSER": user,
        "PG_PASSWORD_FILE": f"{contract.SECRETS_DIR}/{password_key}",
        "PGCONNECT_TIMEOUT": "10",
    }
    if pg.tls.enabled:
        env["PGSSLMODE"] = "verify-full"
        env["PGSSLROOTCERT"] = f"{contract.CA_DIR}/{contract.CA_CERT_FILE}"
        if pg.ca.verify_clients:
            env["PGSSLCERT"] = f"{contract.CLIENT_TLS_DIR}/{contract.CLIENT_CERT_FILE}"
            env["PGSSLKEY"] = f"{contract.CLIENT_TLS_DIR}/{contract.CLIENT_KEY_FILE}"
    else:
        # The server has no TLS (values warn about it): asking for it would fail every run.
        env["PGSSLMODE"] = "disable"
    return env


def backup_environment(pg: PostgresValues) -> dict[str, str]:
    """The environment backup.sh runs with."""
    backup = pg.backup
    env = {
        **connection_environment(pg, user=pg.read_only_username, password_key=contract.READ_ONLY_PASSWORD_KEY),
        "PGAPPNAME": contract.BACKUP_CRONJOB,
        "BACKUP_DIR": contract.BACKUP_DIR,
        "BACKUP_DATABASES": " ".join(pg.backup_databases),
        "BACKUP_COMPRESSION": str(backup.compression),
        "BACKUP_RETENTION_COUNT": str(backup.retention.count),
        "TMPDIR": contract.TMP_DIR,
    }
    if backup.retention.days is not None:
        env["BACKUP_RETENTION_DAYS"] = str(backup.retention.days)
    return env


def restore_environment(pg: PostgresValues, *, backup: str, databases: list[str], jobs: int) -> dict[str, str]:
    """The environment restore.sh runs with: the superuser, so that owners and
    privileges are restored exactly."""
    env = {
        **connection_environment(pg, user="postgres", password_key=contract.SUPERUSER_PASSWORD_KEY),
        "PGAPPNAME": "postgres-restore",
        "BACKUP_DIR": contract.BACKUP_DIR,
        "RESTORE_BACKUP": backup,
        "RESTORE_JOBS": str(jobs),
        "TMPDIR": contract.TMP_DIR,
    }
    if databases:
        env["RESTORE_DATABASES"] = " ".join(databases)
    return env


# libpq variable -> URL query parameter (libpq's own names, which SQLAlchemy passes on).
URL_QUERY = {"PGSSLMODE": "sslmode", "PGSSLROOTCERT": "sslrootcert", "PGSSLCERT": "sslcert", "PGSSLKEY": "sslkey"}
MIGRATE_APPLICATION_NAME = "migrate"  # pg_stat_activity.application_name of the migration Job's sessions


# The URL's scheme per client driver. A plain `postgresql://` is what libpq itself
# (psql, psycopg.connect) takes, but SQLAlchemy reads it as its default driver:
# psycopg2 up to 2.0, psycopg (3) from 2.1. Both drivers are libpq, so both take
# the query's sslmode, sslrootcert, sslcert and sslkey as they are.
URL_SCHEMES = {"libpq": "postgresql", "psycopg2": "postgresql+psycopg2", "psycopg": "postgresql+psycopg"}
DEFAULT_DRIVER = "libpq"


def database_url(env: dict[str, str], driver: str = DEFAULT_DRIVER) -> str:
    """A libpq/SQLAlchemy URL from libpq variables, without a password: libpq
    takes the password a connection string lacks from PGPASSWORD."""
    query = {name: env[var] for var, name in URL_QUERY.items() if var in env}
    return (f"{URL_SCHEMES[driver]}://{quote(env['PGUSER'], safe='')}@{env['PGHOST']}:{env['PGPORT']}/"
            f"{quote(env['PGDATABASE'], safe='')}?{urlencode(query, safe='/')}")


def migration_environment(pg: PostgresValues, driver: str = DEFAULT_DRIVER) -> dict[str, str]:
    """The migration Job's environment but the password (PGPASSWORD, from the
    Secret): libpq variables, PGOPTIONS and DATABASE_URL. PGOPTIONS repeats what
    the migration role's own settings do at connect (act as the owner, the
    schema first on the search path) for every libpq client, visibly."""
    env = connection_environment(pg, user=pg.migrator_username, password_key=contract.MIGRATOR_PASSWORD_KEY)
    env.pop("PG_PASSWORD_FILE")  # the password comes as PGPASSWORD
    env.update({
        "PGDATABASE": pg.database,
        "PGAPPNAME": MIGRATE_APPLICATION_NAME,
        "PGOPTIONS": f"-c role={pg.owner_username} -c search_path={pg.schema_},public",
    })
    env["DATABASE_URL"] = database_url(env, driver)
    return env
