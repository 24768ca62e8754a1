"""Point-in-time recovery speed on pgbench data, against the logical dumps.

Starts the local pod with examples/pitr.yaml (volume repository, zst,
aes-256-cbc), fills `appdb` with pgbench data (about 750 MB at scale 50), then:
- a full pgBackRest backup (time, repository size) vs `pg_dump -Fc` (time, size);
- an incremental backup after changing 1% of pgbench_accounts (time, bytes added), against the full;
- a restore to a time (restore, WAL replay, promotion, start: until `local`
  reports ready) vs `pg_restore -j 2` of the dump into an empty database.

Targets (issue 20): the restore no slower than `pg_restore -j2`; the incremental
backup of a 1% change <= 20% of the full backup's time.

`--part rpo` (also in the default `--part all`) measures the RPO on a small
database with the shipped values (archiveTimeoutSeconds 60): the gap between the
last acknowledged commit before a simulated loss (kill -9 of the server, its
data deleted; the repository kept) and the newest row a restore to the latest
point brings back, with a writer committing a row every 50 ms; the same after a
clean stop (target 0); and on a quiet database, how long one commit waits until
its segment is archived (target <= archive_timeout).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TOP))
os.environ["PATH"] = f"{TOP / 'node_modules' / '.bin'}{os.pathsep}{os.environ['PATH']}"

import yaml  # noqa: E402

import main  # noqa: E402
from pgbundle import contract  # noqa: E402
from pgbundle.values.load import parse_values  # noqa: E402
from workstation import pitr_local, pitr_targets  # noqa: E402
from workstation.localpod import LocalPod  # noqa: E402

sys.path.insert(0, str(TOP / "tests"))
from pitr_helpers import archive_everything, connect  # noqa: E402


def bindir() -> str:
    return subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True).stdout.strip()


def timed(action) -> float:
    start = time.perf_counter()
    action()
    return round(time.perf_counter() - start, 2)


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


class Writer(threading.Thread):
    """Commits one row every `interval` seconds, each in its own transaction, and
    records when each was acknowledged; stops at the first error (the server gone)."""

    def __init__(self, pod: LocalPod, interval: float = 0.05) -> None:
        super().__init__()
        self.pod, self.interval, self.acked, self.stopping = pod, interval, {}, threading.Event()

    def run(self) -> None:
        try:
            with connect(self.pod, "postgres") as conn:
                n = 0
                while not self.stopping.wait(self.interval):
                    n += 1
                    conn.execute("INSERT INTO public.rpo (id) VALUES (%s)", (n,))
                    self.acked[n] = time.time()
        except Exception:  # the server was killed or stopped: what was acknowledged stands
            pass


def rpo_trial(work: Path, values, name: str, loss: str) -> dict:
    """A writer, then a loss (`kill`: kill -9, or `stop`: a clean stop), the data
    deleted, a restore to the latest point: how much acknowledged time is missing."""
    pod, restored = LocalPod(work / f"{name}-origin"), LocalPod(work / f"{name}-restored")
    try:
        pod.prepare(values, main.synthesize)
        pod.start()
        with connect(pod, "postgres") as conn:
            conn.execute("CREATE TABLE public.rpo (id int PRIMARY KEY)")
        pitr_local.backup(pod, values, "full")
        archive_everything(pod)
        writer = Writer(pod)
        writer.start()
        # Longer than archive_timeout: the kill lands somewhere in a switch cycle.
        time.sleep(values.postgres.pitr.archive_timeout_seconds * 1.5)
        with connect(pod, "postgres") as conn:
            age = conn.execute("SELECT extract(epoch FROM now() - last_archived_time)::float "
                               "FROM pg_stat_archiver").fetchone()[0]
        if loss == "kill":
            os.kill(pod.postmaster(), signal.SIGKILL)
        pod.stop()
        writer.stopping.set()
        writer.join()
        shutil.rmtree(pod.host_path(contract.PGDATA))
        pitr_local.restore(restored, pod.state, values, main.synthesize, target=None, secrets_dir=None)
        with connect(restored, "postgres") as conn:
            newest = conn.execute("SELECT coalesce(max(id), 0) FROM public.rpo").fetchone()[0]
        last = max(writer.acked)
        return {"acknowledged": last, "restored": newest, "rows_lost": last - newest,
                "rpo_s": round(writer.acked[last] - writer.acked[newest], 2) if newest else None,
                "last_archive_age_before_loss_s": round(age, 1)}
    finally:
        for each in (restored, pod):
            if each.state.exists():
                each.stop()


def quiet_commit_archived_after(work: Path, values) -> float:
    """A quiet database: one commit, then how long until its segment is archived."""
    pod = LocalPod(work / "quiet")
    try:
        pod.prepare(values, main.synthesize)
        pod.start()
        archive_everything(pod)
        time.sleep(5)
        with connect(pod, "postgres") as conn:
            conn.execute("CREATE TABLE public.quiet (id int)")
            lsn, committed = conn.execute("SELECT pg_current_wal_lsn(), clock_timestamp()").fetchone()
            segment = conn.execute("SELECT pg_walfile_name(%s)", (lsn,)).fetchone()[0]
            while (conn.execute("SELECT last_archived_wal FROM pg_stat_archiver").fetchone()[0] or "") < segment:
                time.sleep(0.2)
            return round(conn.execute("SELECT extract(epoch FROM clock_timestamp() - %s)::float",
                                      (committed,)).fetchone()[0], 1)
    finally:
        pod.stop()


def rpo(work: Path) -> dict:
    values = parse_values(yaml.safe_load((TOP / "examples" / "pitr.yaml").read_text()))
    return {"archive_timeout_s": values.postgres.pitr.archive_timeout_seconds,
            "kill_9_steady_writer": rpo_trial(work, values, "kill", "kill"),
            "clean_stop_steady_writer": rpo_trial(work, values, "stop", "stop"),
            "quiet_commit_archived_after_s": quiet_commit_archived_after(work, values)}


def main_() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=50, help="pgbench scale (50: about 750 MB)")
    parser.add_argument("--part", choices=("all", "speed", "rpo"), default="all")
    args = parser.parse_args()
    if args.part in ("all", "rpo"):
        work = Path(tempfile.mkdtemp(prefix="bench-rpo-"))
        work.chmod(0o711)
        try:
            print(json.dumps({"rpo": rpo(work)}, indent=2))
        finally:
            shutil.rmtree(work)
    if args.part in ("all", "speed"):
        speed(args)


def speed(args) -> None:
    values = parse_values(yaml.safe_load((TOP / "examples" / "pitr.yaml").read_text()))
    work = Path(tempfile.mkdtemp(prefix="bench-pitr-"))
    work.chmod(0o711)
    pod, restored = LocalPod(work / "origin"), LocalPod(work / "restored")
    try:
        pod.prepare(values, main.synthesize)
        port = pod.start()["port"]
        socket = str(pod.host_path(contract.RUN_DIR))

        def tool(name: str, *argv: str) -> None:
            pod.run([f"{bindir()}/{name}", "-h", socket, "-p", str(port), *argv], check=True,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        tool("pgbench", "-i", "-q", "-s", str(args.scale), "appdb")
        dumps = work / "dumps"  # written by the pod's user
        dumps.mkdir()
        os.chown(dumps, pod.uid, pod.gid)
        dump = dumps / "appdb.dump"
        figures: dict[str, object] = {"scale": args.scale}
        figures["full_backup_s"] = timed(lambda: pitr_local.backup(pod, values, "full"))
        figures["full_backup_bytes"] = folder_bytes(pod.host_path(contract.PITR_BACKUPS_REPO_DIR) / "backup")
        figures["pg_dump_s"] = timed(lambda: tool("pg_dump", "-Fc", "-d", "appdb", "-f", str(dump)))
        figures["pg_dump_bytes"] = dump.stat().st_size
        # 1% of the accounts, contiguous: about 1% of the table's pages.
        tool("psql", "-X", "-q", "-d", "appdb", "-c",
             f"UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid <= {args.scale * 1000}")
        figures["incr_backup_1pct_s"] = timed(lambda: pitr_local.backup(pod, values, "incr"))
        # Block incrementals (repo-block): only the changed blocks of the changed file are stored.
        figures["incr_backup_1pct_bytes"] = (folder_bytes(pod.host_path(contract.PITR_BACKUPS_REPO_DIR) / "backup")
                                             - figures["full_backup_bytes"])
        # What the time follows: pgBackRest finds changed blocks by reading each changed
        # file whole, and the 1% is in the one file that holds most of the data.
        full_info, incr_info = (b["info"] for b in pitr_local.backups(pod)[-2:])
        figures["full_backup_read_bytes"] = full_info["size"]
        figures["incr_backup_1pct_read_bytes"] = incr_info["delta"]
        target = datetime.now(timezone.utc)
        time.sleep(1)
        # Recovery stops at the first commit after the target: there must be one in the archive.
        tool("psql", "-X", "-q", "-d", "appdb", "-c", "CREATE TABLE after_target ()")
        tool("psql", "-X", "-q", "-d", "postgres", "-c", "SELECT pg_switch_wal()")
        time.sleep(2)  # archive_command pushes the switched segment
        figures["restore_to_time_s"] = timed(lambda: pitr_local.restore(
            restored, pod.state, values, main.synthesize, target=pitr_targets.target(time=target.isoformat()),
            secrets_dir=None))
        restored.stop()
        tool("psql", "-X", "-q", "-d", "postgres", "-c", "CREATE DATABASE bench_restore")
        figures["pg_restore_j2_s"] = timed(lambda: tool("pg_restore", "-j", "2", "-d", "bench_restore", str(dump)))
        figures["targets"] = {
            "restore_le_pg_restore": figures["restore_to_time_s"] <= figures["pg_restore_j2_s"],
            "incr_le_20pct_of_full": figures["incr_backup_1pct_s"] <= 0.2 * figures["full_backup_s"]}
        print(json.dumps(figures, indent=2))
    finally:
        for each in (restored, pod):
            if each.state.exists():
                each.stop()
        shutil.rmtree(work)


if __name__ == "__main__":
    main_()
