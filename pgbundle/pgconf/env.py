"""The start script's environment: the contract between the StatefulSet (or the
local pod runner) and constructs/scripts/start.sh and probe.sh."""

from __future__ import annotations

from pgbundle import contract as layout
from pgbundle.values.models import PostgresValues

# Environment variables the start and probe scripts read. The local pod runner
# remaps every value that is an absolute path and these two.
LISTEN_ENV = "PG_LISTEN_ADDRESSES"
PORT_ENV = "PGPORT"


def pod_environment(postgres: PostgresValues) -> dict[str, str]:
    """Environment variables the start script reads (paths are the pod's)."""
    env = {
        "PGDATA": layout.PGDATA,
        PORT_ENV: str(layout.PORT),
        LISTEN_ENV: "*",
        "PG_CONFIG_DIR": layout.CONFIG_DIR,
        "PG_SCRIPTS_DIR": layout.SCRIPTS_DIR,
        "PG_SECRETS_DIR": layout.SECRETS_DIR,
        "PG_RUN_DIR": layout.RUN_DIR,
        "PG_DATABASE": postgres.database,
        "PG_SCHEMA": postgres.schema_,
        "PG_OWNER_USER": postgres.owner_username,
        "PG_APP_USER": postgres.username,
        "PG_READ_ONLY_USER": postgres.read_only_username,
        "PG_TEMPORAL": "on" if postgres.temporal.enabled else "off",
        "PG_TEMPORAL_USER": postgres.temporal.username,
        "PG_METRICS": "on" if postgres.metrics.enabled else "off",
        "PG_MONITORING_USER": layout.MONITORING_ROLE,
    }
    if postgres.tls.enabled:
        env["PG_TLS_DIR"] = layout.TLS_DIR
    if postgres.ca.verify_clients:
        env["PG_CA_DIR"] = layout.CA_DIR
    if postgres.logging.to_file:
        env["PG_LOG_DIR"] = f"{layout.DATA_MOUNT}/log"
        env["PG_LOG_RETENTION_DAYS"] = str(postgres.logging.retention_days)
    return env
