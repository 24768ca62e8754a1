"""Point-in-time recovery speed on pgbench data, against the logical dumps.

Starts the local pod with examples/pitr.yaml (volume repository, zst,
aes-256-cbc), fills `appdb` with pgbench data (about 750 MB at scale 50), then:
- a full pgBackRest backup (time, repository size) vs `pg_dump -Fc` (time, size);
- an incremental backup after changing 1% of pgbench_accounts (time, bytes added), against the full;
- a restore to a time (restore, WAL replay, promotion, start: until `local`
  reports ready) vs `pg_restore -j 2` of the dump into an empty database.

Targets (issue 20): the restore no slower than `pg_restore -j2`; the incremental
backup of a 1% change <= 20% of the full backup's time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
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


def bindir() -> str:
    return subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True).stdout.strip()


def timed(action) -> float:
    start = time.perf_counter()
    action()
    return round(time.perf_counter() - start, 2)


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main_() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=50, help="pgbench scale (50: about 750 MB)")
    args = parser.parse_args()
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
