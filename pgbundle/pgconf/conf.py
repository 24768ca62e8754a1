"""postgresql.conf, derived from the values.

postgresql.conf holds tuning only: every location (data, config, socket, TLS
files, log folder), the port and the listen address reach the server on the
start script's command line (pgbundle/pgconf/env.py), so the local pod runner
can remap them.
"""

from __future__ import annotations

from pgbundle.pgconf.pgbackrest import ARCHIVE_PUSH_COMMAND
from pgbundle.values.models import PostgresValues
from pgbundle.values.tuning import AUTOVACUUM_WORKERS, pg_memory_text

# TLS 1.2 suites the server accepts: ECDHE key exchange (forward secrecy) with
# AEAD encryption only, so no CBC with SHA-1, no static RSA key exchange and no
# anonymous suite. TLS 1.3 suites are all AEAD and ssl_ciphers does not govern them.
TLS12_CIPHERS = ":".join([
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
])


def _literal(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (int, float)):
        return str(value)
    # The config file reader takes backslash escapes (\n, \t, octal) inside quotes.
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def postgresql_settings(postgres: PostgresValues) -> dict[str, str | int | float | bool]:
    """The settings this project derives, in file order (without `parameters`)."""
    tuning = postgres.tuning
    memory = pg_memory_text
    settings: dict[str, str | int | float | bool] = {
        # Connections and authentication.
        "max_connections": tuning.max_connections,
        "password_encryption": "scram-sha-256",
        "ssl": postgres.tls.enabled,
    }
    if postgres.tls.enabled:
        settings["ssl_min_protocol_version"] = "TLSv1.2"
        settings["ssl_ciphers"] = TLS12_CIPHERS
    settings.update({
        # Memory, sized from resources.limits.memory.
        "shared_buffers": memory(tuning.shared_buffers),
        "wal_buffers": memory(tuning.wal_buffers),
        "effective_cache_size": memory(tuning.effective_cache_size),
        "work_mem": memory(tuning.work_mem),
        "maintenance_work_mem": memory(tuning.maintenance_work_mem),
        "autovacuum_max_workers": AUTOVACUUM_WORKERS,
        # Container memory limits count huge pages badly; a node without them makes startup fail with "try".
        "huge_pages": "off",
        "dynamic_shared_memory_type": "posix",
        # Workers, from resources.limits.cpu.
        "max_worker_processes": tuning.max_worker_processes,
        "max_parallel_workers": tuning.max_parallel_workers,
        "max_parallel_workers_per_gather": tuning.max_parallel_workers_per_gather,
        "max_parallel_maintenance_workers": tuning.max_parallel_maintenance_workers,
        # WAL and checkpoints: few, spread-out checkpoints; max_wal_size a tenth of the data volume.
        # wal_compression stays off: with pglz (the one method every build has) it cost about
        # 15% of read-write throughput on 2 CPUs in bench/pgbench.py.
        "wal_level": "replica",
        "max_wal_size": memory(tuning.max_wal_size),
        "min_wal_size": memory(tuning.min_wal_size),
        "checkpoint_timeout": "15min",
        "checkpoint_completion_target": 0.9,
        # Planner: network block storage behaves like SSDs for random reads.
        "random_page_cost": 1.1,
        "effective_io_concurrency": 200,
        # Statistics.
        "shared_preload_libraries": "pg_stat_statements",
        # Logging: jsonlog needs the collector; the start script picks the folder.
        "logging_collector": True,
        "log_destination": "jsonlog",
        "log_checkpoints": True,
        "log_lock_waits": True,
        "log_temp_files": 0,
    })
    if postgres.pitr.enabled:
        # Every WAL segment goes to each repository; its paths and secrets come from
        # the PGBACKREST_* environment the server inherits from the start script.
        settings.update({"archive_mode": True, "archive_command": ARCHIVE_PUSH_COMMAND,
                         "archive_timeout": postgres.pitr.archive_timeout_seconds})
    if postgres.logging.to_file:
        # One file a day; the start script deletes files older than retentionDays.
        settings.update({"log_filename": "postgresql-%Y-%m-%d.log", "log_rotation_age": "1d", "log_rotation_size": 0})
    else:
        # A fixed name: postgresql.json is a symlink to the container's stderr.
        settings.update({"log_filename": "postgresql.log", "log_rotation_age": 0, "log_rotation_size": 0})
    return settings


def render_postgresql_conf(postgres: PostgresValues) -> str:
    lines = ["# Generated from the values by pgbundle/pgconf/conf.py; locations come from the start script."]
    lines += [f"{name} = {_literal(value)}" for name, value in postgresql_settings(postgres).items()]
    if postgres.config.parameters:
        # Last, so they win: PostgreSQL takes the last occurrence of a setting.
        lines.append("# postgres.config.parameters")
        lines += [f"{name} = {_literal(value)}" for name, value in postgres.config.parameters.items()]
    return "\n".join(lines) + "\n"


def shm_size_bytes(postgres: PostgresValues) -> int:
    return postgres.tuning.shm
