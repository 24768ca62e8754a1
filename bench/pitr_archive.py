"""WAL archiving under a WAL-heavy load: synchronous `archive-push` against
pgBackRest's asynchronous archiver (`pitr.archiveAsync`), to the volume
repository and to an S3 repository (moto behind nginx for TLS, as in the tests).

Each configuration starts a fresh local pod (examples/pitr.yaml with only that
repository, pgbench scale 10 in `appdb`, max_wal_size 32MB so checkpoints and
full-page images come often), runs pgbench (TPC-B-like) and prints: write
throughput (TPS) and average commit latency; WAL written; the archive backlog
(segments waiting in pg_wal/archive_status, the most seen and at the end); and
how long after the load the last segment took to reach the repository. Then the
archiving ceiling: with archive_command failing (ALTER SYSTEM), a second load
leaves a backlog in pg_wal, and once archiving works again the time to ship it
gives segments (and MB of WAL) per second. A run without archiving (PITR off)
is the baseline. The order rotates per round, and
the figures are medians over the rounds: the machine's throughput drifts.
Usage: bench/pitr_archive.py [--rounds 2] [--seconds 30] [--clients 4]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent
# The S3 server and connection helpers live with the tests.
sys.path[:0] = [str(TOP / "tests"), str(TOP)]
os.environ["PATH"] = f"{TOP / 'node_modules' / '.bin'}{os.pathsep}{os.environ['PATH']}"

import yaml  # noqa: E402

import main  # noqa: E402
from pgbundle import contract  # noqa: E402
from pgbundle.values.load import parse_values  # noqa: E402
from pitr_helpers import connect  # noqa: E402
from s3_server import S3Server  # noqa: E402
from workstation.localpod import LocalPod  # noqa: E402
from workstation.pod_state import postgres_bindir  # noqa: E402

CONFIGURATIONS = ("no archiving", "volume sync", "volume async", "s3 sync", "s3 async")
# WAL-heavy: a checkpoint every 32 MB of WAL, each followed by full-page images.
WAL_HEAVY = {"max_wal_size": "32MB", "min_wal_size": "32MB"}


def values_for(name: str, s3: S3Server, run: int) -> dict:
    values = yaml.safe_load((TOP / "examples" / "pitr.yaml").read_text())
    values["postgres"]["config"] = {"parameters": WAL_HEAVY}
    pitr = values["postgres"]["pitr"]
    if name == "no archiving":
        pitr["enabled"] = False
        return values
    repo, mode = name.split()
    pitr["archiveAsync"] = mode == "async"
    if repo == "s3":
        pitr["repos"] = {"volume": {"enabled": False}, "s3": s3.repo_values(f"/bench-{run}")}
    return values


def sql(pod: LocalPod, query: str):
    with connect(pod, "postgres") as conn:
        cursor = conn.execute(query)
        return cursor.fetchone() if cursor.description else None


def ready_segments(pod: LocalPod) -> int:
    return len(list((pod.host_path(contract.PGDATA) / "pg_wal" / "archive_status").glob("*.ready")))


def drain_seconds(pod: LocalPod, timeout: float = 600) -> float:
    """Switch segments and time until the switched one is archived."""
    segment = sql(pod, "SELECT pg_walfile_name(pg_switch_wal())")[0]
    start = time.perf_counter()
    while (sql(pod, "SELECT last_archived_wal FROM pg_stat_archiver")[0] or "") < segment:
        if time.perf_counter() - start > timeout:
            raise SystemExit(f"bench/pitr_archive.py: {segment} not archived in {timeout} s")
        time.sleep(0.1)
    return round(time.perf_counter() - start, 2)


def ceiling(pod: LocalPod, pgbench, args) -> dict:
    """Archive a backlog left while archive_command failed: segments per second."""
    sql(pod, "ALTER SYSTEM SET archive_command = 'false'")
    sql(pod, "SELECT pg_reload_conf()")
    pgbench("-c", str(args.clients), "-j", "2", "-T", str(args.seconds))
    sql(pod, "SELECT pg_switch_wal()")
    backlog = ready_segments(pod)
    sql(pod, "ALTER SYSTEM RESET archive_command")
    sql(pod, "SELECT pg_reload_conf()")
    start = time.perf_counter()
    while ready_segments(pod):
        time.sleep(0.1)
    seconds = time.perf_counter() - start
    return {"backlog_segments": backlog, "backlog_s": round(seconds, 2),
            "ceiling_segments_per_s": round(backlog / seconds, 1), "ceiling_mb_per_s": round(16 * backlog / seconds, 1)}


def run_one(name: str, s3: S3Server, work: Path, run: int, args) -> dict:
    values = values_for(name, s3, run)
    chart = parse_values(values)
    secrets = None
    if chart.postgres.pitr.enabled and chart.postgres.pitr.repos.s3.enabled:
        secrets = work / f"secrets-{run}"
        s3.write_secrets(chart, secrets)
    pod = LocalPod(work / f"pod-{run}")
    try:
        pod.prepare(chart, main.synthesize, secrets_dir=secrets)
        port = pod.start()["port"]
        socket = str(pod.host_path(contract.RUN_DIR))

        def pgbench(*argv: str) -> str:
            return pod.run([f"{postgres_bindir()}/pgbench", "-h", socket, "-p", str(port), *argv, "appdb"],
                           check=True, capture_output=True, text=True).stdout

        pgbench("-i", "-q", "-s", str(args.scale))
        archiving = chart.postgres.pitr.enabled
        if archiving:
            drain_seconds(pod)  # the load starts with an empty backlog
        sql(pod, "CHECKPOINT")
        lsn_before = sql(pod, "SELECT pg_current_wal_lsn()")[0]
        peak, stop = [0], threading.Event()

        def sample() -> None:
            while not stop.wait(0.5):
                peak[0] = max(peak[0], ready_segments(pod))

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            out = pgbench("-c", str(args.clients), "-j", "2", "-T", str(args.seconds))
        finally:
            stop.set()
            sampler.join()
        wal = sql(pod, f"SELECT pg_current_wal_lsn() - '{lsn_before}'::pg_lsn")[0]
        figures = {"tps": float(re.search(r"tps = ([\d.]+)", out).group(1)),
                   "latency_ms": float(re.search(r"latency average = ([\d.]+) ms", out).group(1)),
                   "wal_mb": round(float(wal) / 2**20, 1)}
        if archiving:
            figures |= {"ready_peak": peak[0], "ready_at_end": ready_segments(pod), "drain_s": drain_seconds(pod)}
            figures |= ceiling(pod, pgbench, args)
        return figures
    finally:
        if pod.state.exists():
            pod.stop()
            shutil.rmtree(pod.state)


def main_() -> None:
    # A stopped benchmark stops its servers too (the finally clauses).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--scale", type=int, default=10)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-archive-"))
    work.chmod(0o711)
    runs: dict[str, list[dict]] = {name: [] for name in CONFIGURATIONS}
    try:
        (work / "s3").mkdir()
        with S3Server(work / "s3") as s3:
            run = 0
            for round_ in range(args.rounds):
                order = CONFIGURATIONS[round_ % len(CONFIGURATIONS):] + CONFIGURATIONS[:round_ % len(CONFIGURATIONS)]
                for name in order:
                    run += 1
                    runs[name].append(run_one(name, s3, work, run, args))
                    print(f"# {name}: {runs[name][-1]}", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(work)
    medians = {name: {key: round(statistics.median(r[key] for r in results), 2) for key in results[0]}
               for name, results in runs.items()}
    print(json.dumps({"rounds": args.rounds, "seconds": args.seconds, "clients": args.clients,
                      "scale": args.scale, "median": medians}, indent=2))


if __name__ == "__main__":
    main_()
