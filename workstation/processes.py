"""Finding again the processes the local runners started: a recorded pid may
have exited, become a zombie, or been recycled by another program."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def running(pid: int | None, *markers: str) -> bool:
    """Whether `pid` runs (a zombie does not) and its command line holds one of
    `markers` (a recycled pid belongs to another program)."""
    if pid is None:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z" and any(marker.encode() in cmdline for marker in markers)


def postmaster(pgdata: Path) -> int | None:
    """The pid of the server running on `pgdata`, or None. postmaster.pid
    outlives a crash, so the pid must still be a server on that folder."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None
    return pid if running(pid, str(pgdata)) else None


def poll(condition: Callable[[], T], timeout: float, interval: float = 0.2) -> T | None:
    """Call `condition` until it returns something truthy (returned) or `timeout` seconds pass (None)."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            return None
        time.sleep(interval)


def wait(condition: Callable[[], T], timeout: float, what: str, *, error: type[Exception],
         interval: float = 0.2) -> T:
    """Like poll, but `error` naming `what` after `timeout` seconds."""
    result = poll(condition, timeout, interval)
    if result is None:
        raise error(f"{what}: not reached after {timeout:.0f}s")
    return result
