"""postgresql.conf, pg_hba.conf and the start script's environment, derived from the values.

postgresql.conf holds tuning only: every location (data, config, socket, TLS
files, log folder), the port and the listen address reach the server on the
start script's command line, so the local pod runner can remap them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from constructs import layout
from constructs.quantity import cpu_cores, memory_bytes
from constructs.values import PostgresValues
from pgbundle.values.parameters import memory_range

KB = 1024
MB = 1024 * KB
GB = 1024 * MB
_PG_UNITS = {"B": 1, "kB": KB, "MB": MB, "GB": GB, "TB": 1024 * GB}

# Autovacuum workers each may use maintenance_work_mem; PostgreSQL's default count.
AUTOVACUUM_WORKERS = 3
# Parallel query keeps shared hash tables in /dev/shm: per worker up to
# work_mem x hash_mem_multiplier (2 by default), plus a fixed allowance for tuple queues.
HASH_MEM_MULTIPLIER = 2
SHM_BASE = 64 * MB
# Memory left for what the settings do not count: backend code and catalogue
# caches, the postmaster, the start script.
RESERVE_FRACTION = 0.10
RESERVE_MIN = 32 * MB
WORK_MEM_MIN = 64 * KB  # PostgreSQL's lower bound for work_mem
MAINTENANCE_WORK_MEM_MAX = 1 * GB

# Environment variables the start and probe scripts read. The local pod runner
# remaps every value that is an absolute path and these two.
LISTEN_ENV = "PG_LISTEN_ADDRESSES"
PORT_ENV = "PGPORT"

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


@dataclass(frozen=True)
class Tuning:
    """Memory (bytes) and worker settings derived from the values."""

    max_connections: int
    shared_buffers: int
    wal_buffers: int
    effective_cache_size: int
    work_mem: int
    maintenance_work_mem: int
    shm: int
    max_worker_processes: int
    max_parallel_workers: int
    max_parallel_workers_per_gather: int
    max_parallel_maintenance_workers: int
    max_wal_size: int
    min_wal_size: int


def pg_memory_bytes(text: str) -> int:
    """Bytes of a PostgreSQL memory setting such as `256MB` (units of 1024)."""
    number = text.rstrip("BkMGT")
    return int(number) * _PG_UNITS[text[len(number):]]


def _pg_memory(value: int) -> str:
    """Render bytes in the largest unit that divides them (PostgreSQL needs whole numbers)."""
    unit = next(u for u in ("GB", "MB", "kB", "B") if value % _PG_UNITS[u] == 0)
    return f"{value // _PG_UNITS[unit]}{unit}"


def _floor(value: int, step: int) -> int:
    return value // step * step


def derive_tuning(postgres: PostgresValues) -> Tuning:
    """Size memory from `resources.limits.memory` and workers from `limits.cpu`.

    Raises ValueError naming the fields when the settings cannot fit the limit.
    """
    config = postgres.config
    limit = memory_bytes(postgres.resources.limits.memory)
    cores = max(1, math.ceil(cpu_cores(postgres.resources.limits.cpu)))
    connections = config.max_connections

    def chosen(field: str | None, derived: int) -> int:
        return pg_memory_bytes(field) if field is not None else derived

    shared_buffers = chosen(config.shared_buffers, _floor(limit // 4, MB))
    # PostgreSQL's own rule for wal_buffers = -1, written out so it is counted.
    wal_buffers = min(max(shared_buffers // 32, 64 * KB), 16 * MB)
    maintenance = chosen(config.maintenance_work_mem, min(max(_floor(limit // 16, MB), MB), MAINTENANCE_WORK_MEM_MAX))
    parallel_workers = cores
    # Each parallel worker may hold a share of a hash table in /dev/shm next to its own work_mem.
    work_mem_users = connections + HASH_MEM_MULTIPLIER * parallel_workers
    budget = limit - max(RESERVE_MIN, int(limit * RESERVE_FRACTION))
    fixed = shared_buffers + wal_buffers + SHM_BASE + (AUTOVACUUM_WORKERS + 1) * maintenance
    work_mem = chosen(config.work_mem, _floor(max(budget - fixed, 0) // work_mem_users, 64 * KB))
    needed = fixed + work_mem * work_mem_users
    if work_mem < WORK_MEM_MIN or needed > budget:
        work = f"workMem {_pg_memory(work_mem)}" if config.work_mem is not None else "workMem (derived; at least 64kB)"
        raise ValueError(
            f"config: the memory settings do not fit resources.limits.memory {postgres.resources.limits.memory}: "
            f"{budget // MB}MB are usable after {RESERVE_FRACTION:.0%} for the server's processes, but "
            f"sharedBuffers {_pg_memory(shared_buffers)} + {AUTOVACUUM_WORKERS + 1} x maintenanceWorkMem "
            f"{_pg_memory(maintenance)} + (maxConnections {connections} + {HASH_MEM_MULTIPLIER * parallel_workers} "
            f"parallel-query shares) x {work} + {SHM_BASE // MB}MB for parallel query need "
            f"{max(needed, fixed + WORK_MEM_MIN * work_mem_users) // MB}MB. Raise resources.limits.memory or lower "
            "maxConnections, sharedBuffers, workMem or maintenanceWorkMem"
        )
    effective_cache_size = chosen(config.effective_cache_size, _floor(limit * 3 // 4, MB))
    _check_ranges(postgres, shared_buffers=shared_buffers, effective_cache_size=effective_cache_size,
                  work_mem=work_mem, maintenance_work_mem=maintenance)
    data_size = memory_bytes(postgres.persistence.data.size)
    max_wal_size = min(max(_floor(data_size // 10, GB), GB), 16 * GB)
    return Tuning(
        max_connections=connections,
        shared_buffers=shared_buffers,
        wal_buffers=wal_buffers,
        effective_cache_size=effective_cache_size,
        work_mem=work_mem,
        maintenance_work_mem=maintenance,
        shm=SHM_BASE + HASH_MEM_MULTIPLIER * parallel_workers * work_mem,
        max_worker_processes=max(8, cores + 4),
        max_parallel_workers=parallel_workers,
        max_parallel_workers_per_gather=max(1, cores // 2),
        max_parallel_maintenance_workers=max(1, cores // 2),
        max_wal_size=max_wal_size,
        min_wal_size=max_wal_size // 4,
    )


# Where each memory setting comes from when it is not set: the values key and the share of the limit.
_DERIVED_FROM = {"shared_buffers": ("sharedBuffers", "a quarter of it"),
                 "effective_cache_size": ("effectiveCacheSize", "three quarters of it"),
                 "work_mem": ("workMem", "its share per connection"),
                 "maintenance_work_mem": ("maintenanceWorkMem", "a sixteenth of it")}


def _check_ranges(postgres: PostgresValues, **settings: int) -> None:
    """A derived or chosen memory setting outside PostgreSQL's range stops the server at startup."""
    for name, value in settings.items():
        low, high = memory_range(name)
        if low <= value <= high:
            continue
        key, share = _DERIVED_FROM[name]
        bound = f"above PostgreSQL's maximum of {_pg_memory(high)}" if value > high else \
            f"below PostgreSQL's minimum of {_pg_memory(low)}"
        chosen = getattr(postgres.config, name)
        if chosen is not None:
            raise ValueError(f"config.{key}: {chosen} is {bound}; use {_pg_memory(low)} to {_pg_memory(high)}")
        raise ValueError(
            f"resources.limits.memory: {postgres.resources.limits.memory} makes {name} ({share}) "
            f"{_pg_memory(value)}, {bound}; lower the limit or set config.{key} (at most {_pg_memory(high)})")


def _literal(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (int, float)):
        return str(value)
    # The config file reader takes backslash escapes (\n, \t, octal) inside quotes.
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def postgresql_settings(postgres: PostgresValues) -> dict[str, str | int | float | bool]:
    """The settings this project derives, in file order (without `parameters`)."""
    tuning = derive_tuning(postgres)
    memory = _pg_memory
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
    if postgres.logging.to_file:
        # One file a day; the start script deletes files older than retentionDays.
        settings.update({"log_filename": "postgresql-%Y-%m-%d.log", "log_rotation_age": "1d", "log_rotation_size": 0})
    else:
        # A fixed name: postgresql.json is a symlink to the container's stderr.
        settings.update({"log_filename": "postgresql.log", "log_rotation_age": 0, "log_rotation_size": 0})
    return settings


def render_postgresql_conf(postgres: PostgresValues) -> str:
    lines = ["# Generated from the values by constructs/pgconf.py; locations come from the start script."]
    lines += [f"{name} = {_literal(value)}" for name, value in postgresql_settings(postgres).items()]
    if postgres.config.parameters:
        # Last, so they win: PostgreSQL takes the last occurrence of a setting.
        lines.append("# postgres.config.parameters")
        lines += [f"{name} = {_literal(value)}" for name, value in postgres.config.parameters.items()]
    return "\n".join(lines) + "\n"


def render_pg_hba(postgres: PostgresValues) -> str:
    lines = [
        "# Generated from the values by constructs/pgconf.py. First match wins.",
        "# TYPE     DATABASE USER     ADDRESS  METHOD",
        # The start script and the probes run as the postgres OS user inside the pod.
        "local      all      postgres          peer",
        "local      all      all               scram-sha-256",
    ]
    if postgres.tls.enabled:
        lines += [
            "hostnossl  all      all      0.0.0.0/0 reject",
            "hostnossl  all      all      ::/0      reject",
        ]
        method = "scram-sha-256 clientcert=verify-ca" if postgres.ca.verify_clients else "scram-sha-256"
        lines += [f"hostssl    all      all      {cidr} {method}" for cidr in postgres.allowed_cidrs]
    else:
        lines += [f"host       all      all      {cidr} scram-sha-256" for cidr in postgres.allowed_cidrs]
    return "\n".join(lines) + "\n"


def shm_size_bytes(postgres: PostgresValues) -> int:
    return derive_tuning(postgres).shm


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
