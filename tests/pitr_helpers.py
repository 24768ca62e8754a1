"""Shared steps of the point-in-time recovery tests: commits with known times,
waiting for the archive, and the `local` command line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import psycopg

from workstation.localpod import LocalPod

TOP = Path(__file__).resolve().parent.parent


@contextmanager
def state_folders(prefix: str) -> Iterator[Path]:
    """A folder for the new state folders of restores; each restored pod is stopped at the end."""
    base = Path(tempfile.mkdtemp(prefix=prefix))
    base.chmod(0o711)  # the postgres OS user reaches the states below it
    try:
        yield base
    finally:
        for state in base.iterdir():
            LocalPod(state).stop()
        shutil.rmtree(base)


def cli(*args: str, values: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOP / "main.py"), "local", *args, "--values", str(values)],
                          capture_output=True, text=True, timeout=300)


def cli_json(*args: str, values: Path) -> dict:
    done = cli(*args, values=values)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def connect(pod: LocalPod, user: str) -> psycopg.Connection:
    """TLS with verify-full by the name `localhost`, which both the runner's certificate
    and the one `secrets generate` writes carry."""
    info = pod.connection_info()
    return psycopg.connect(host="localhost", hostaddr=info["hostaddr"], port=info["port"], dbname=info["database"],
                           user=user, password=info["passwords"][user], sslmode="verify-full",
                           sslrootcert=info["sslrootcert"], autocommit=True, connect_timeout=10)


def commit_rows(pod: LocalPod, ids: list[int]) -> datetime:
    """Commit each id in its own transaction; return the server's clock after the last commit."""
    with connect(pod, "postgres") as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS public.events (id int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())")
        for n in ids:
            conn.execute("INSERT INTO public.events (id) VALUES (%s)", (n,))
        return conn.execute("SELECT clock_timestamp()").fetchone()[0]


def wait_past(pod: LocalPod, moment: datetime) -> None:
    """Return once the server's clock is past `moment`, so the next commit is after it."""
    with connect(pod, "postgres") as conn:
        while conn.execute("SELECT clock_timestamp() <= %s", (moment,)).fetchone()[0]:
            time.sleep(0.05)


def archive_everything(pod: LocalPod, timeout: float = 60) -> None:
    """Switch to a new WAL segment and wait until the finished one is archived."""
    with connect(pod, "postgres") as conn:
        segment = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()[0]
        deadline = time.monotonic() + timeout
        while True:
            archived, failed = conn.execute(
                "SELECT last_archived_wal, last_failed_wal FROM pg_stat_archiver").fetchone()
            if archived is not None and archived >= segment:
                return
            assert time.monotonic() < deadline, f"{segment} not archived (last failed: {failed})"
            time.sleep(0.1)


def event_ids(pod: LocalPod) -> list[int]:
    with connect(pod, "postgres") as conn:
        return [row[0] for row in conn.execute("SELECT id FROM public.events ORDER BY id")]
