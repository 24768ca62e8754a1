"""The memory budget: PostgreSQL's memory and worker settings sized from the
container's limits, and the check that explicit settings fit in them.

Part of the values model because a misfit is a values error (named fields, no
output); pgbundle/pgconf renders the result into postgresql.conf.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from pgbundle.values.parameters import memory_range
from pgbundle.values.quantity import cpu_cores, memory_bytes

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


def pg_memory_text(value: int) -> str:
    """Render bytes in the largest unit that divides them (PostgreSQL needs whole numbers)."""
    unit = next(u for u in ("GB", "MB", "kB", "B") if value % _PG_UNITS[u] == 0)
    return f"{value // _PG_UNITS[unit]}{unit}"


def _floor(value: int, step: int) -> int:
    return value // step * step


class MemorySettings(Protocol):
    """The `postgres.config` keys the memory check counts (None: derive it)."""

    max_connections: int
    shared_buffers: str | None
    effective_cache_size: str | None
    work_mem: str | None
    maintenance_work_mem: str | None


def derive_tuning(config: MemorySettings, *, memory_limit: str, cpu_limit: str, data_size: str) -> Tuning:
    """Size memory from `resources.limits.memory` and workers from `limits.cpu`.

    Raises ValueError naming the fields when the settings cannot fit the limit.
    """
    limit = memory_bytes(memory_limit)
    cores = max(1, math.ceil(cpu_cores(cpu_limit)))
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
        work = f"workMem {pg_memory_text(work_mem)}" if config.work_mem is not None else "workMem (derived; at least 64kB)"
        raise ValueError(
            f"config: the memory settings do not fit resources.limits.memory {memory_limit}: "
            f"{budget // MB}MB are usable after {RESERVE_FRACTION:.0%} for the server's processes, but "
            f"sharedBuffers {pg_memory_text(shared_buffers)} + {AUTOVACUUM_WORKERS + 1} x maintenanceWorkMem "
            f"{pg_memory_text(maintenance)} + (maxConnections {connections} + {HASH_MEM_MULTIPLIER * parallel_workers} "
            f"parallel-query shares) x {work} + {SHM_BASE // MB}MB for parallel query need "
            f"{max(needed, fixed + WORK_MEM_MIN * work_mem_users) // MB}MB. Raise resources.limits.memory or lower "
            "maxConnections, sharedBuffers, workMem or maintenanceWorkMem"
        )
    effective_cache_size = chosen(config.effective_cache_size, _floor(limit * 3 // 4, MB))
    _check_ranges(config, memory_limit, shared_buffers=shared_buffers, effective_cache_size=effective_cache_size,
                  work_mem=work_mem, maintenance_work_mem=maintenance)
    data_size_bytes = memory_bytes(data_size)
    max_wal_size = min(max(_floor(data_size_bytes // 10, GB), GB), 16 * GB)
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


def _check_ranges(config: MemorySettings, memory_limit: str, **settings: int) -> None:
    """A derived or chosen memory setting outside PostgreSQL's range stops the server at startup."""
    for name, value in settings.items():
        low, high = memory_range(name)
        if low <= value <= high:
            continue
        key, share = _DERIVED_FROM[name]
        bound = (f"above PostgreSQL's maximum of {pg_memory_text(high)}" if value > high
                 else f"below PostgreSQL's minimum of {pg_memory_text(low)}")
        chosen = getattr(config, name)
        if chosen is not None:
            raise ValueError(f"config.{key}: {chosen} is {bound}; use {pg_memory_text(low)} to {pg_memory_text(high)}")
        raise ValueError(
            f"resources.limits.memory: {memory_limit} makes {name} ({share}) {pg_memory_text(value)}, {bound}; "
            f"lower the limit or set config.{key} (at most {pg_memory_text(high)})")
