"""postgresql.conf, pg_hba.conf and the start script's environment, derived from the values.

STUB: replaced by the real derivation (issue 3)."""

from __future__ import annotations

from constructs import layout
from constructs.values import PostgresValues


def render_postgresql_conf(postgres: PostgresValues) -> str:
    return f"max_connections = {postgres.config.max_connections}\n"


def render_pg_hba(postgres: PostgresValues) -> str:
    return "local all all scram-sha-256\n"


def shm_size_bytes(postgres: PostgresValues) -> int:
    return 1 << 30


def pod_environment(postgres: PostgresValues) -> dict[str, str]:
    """Environment variables the start script reads (paths are the pod's)."""
    return {"PGDATA": layout.PGDATA}
