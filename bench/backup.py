"""Backup and restore speed on pgbench data, interleaved in one run.

Starts the local pod (workstation/localpod.py) with the default values, fills
`appdb` with pgbench data as the application role (about 750 MB at scale 50),
then alternates:
- ours: the CronJob's backup.sh as the CronJob runs it (pg_dump -Fc with the
  configured compression, streamed through a full pg_restore verification,
  SHA-256, fsync, rename, roles dump, prune), over TLS as the read-only role;
- old: the old project's method: a custom-format dump at compression 9, a plain
  dump through gzip, and SHA-256 checksums of both;
and, for restores of the same archive into an emptied schema:
- ours: the restore Job's restore.sh (checksum, pg_restore -j 2 --clean --if-exists);
- bare: the same pg_restore -j 2 --clean --if-exists alone.

Targets (issue 4): our backup >= 2.5x faster than the old method with <= 0.55x
its size; our restore <= 1.1x the bare pg_restore.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TOP))
os.environ["PATH"] = f"{TOP / 'node_modules' / '.bin'}{os.pathsep}{os.environ['PATH']}"

import main  # noqa: E402
from pgbundle import contract  # noqa: E402
from pgbundle.values.load import parse_values  # noqa: E402
from workstation.backup_local import (  # noqa: E402
    container_process,
    cronjob_container,
    restore_container,
    run_process,
)
from workstation.localpod import LocalPod  # noqa: E402


def bindir() -> str:
    return subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True).stdout.strip()


def timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


class Bench:
    def __init__(self, pod: LocalPod, values: dict, workdir: Path) -> None:
        self.pod = pod
        self.values = parse_values(values)
        self.bin = bindir()
        self.work = workdir
        info = pod.connection_info()
        self.info = info
        base = {**os.environ, "PGHOST": info["host"], "PGPORT": str(info["port"]), "PGSSLMODE": "verify-full",
                "PGSSLROOTCERT": info["sslrootcert"], "PGDATABASE": info["database"]}
        self.app_env = {**base, "PGUSER": "appuser", "PGPASSWORD": info["passwords"]["appuser"]}
        self.super_env = {**base, "PGUSER": "postgres", "PGPASSWORD": info["passwords"]["postgres"]}

    def sql(self, statement: str, env: dict | None = None) -> str:
        return subprocess.run([f"{self.bin}/psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", statement],
                              env=env or self.super_env, capture_output=True, text=True, check=True).stdout.strip()

    def load(self, scale: int, random_mb: int) -> int:
        # As the application role: the tables land in schema `app` and the read-only role may read them.
        subprocess.run([f"{self.bin}/pgbench", "-i", "-q", "-s", str(scale)], env=self.app_env, check=True,
                       capture_output=True)
        if random_mb:
            rows = random_mb * 1024 * 1024 // 200
            self.sql("CREATE TABLE noise (id int, payload text)", self.app_env)
            self.sql("INSERT INTO noise SELECT g, " + " || ".join(["md5(random()::text)"] * 6) +
                     f" FROM generate_series(1, {rows}) g", self.app_env)
        self.sql("VACUUM ANALYZE")
        return int(self.sql("SELECT pg_database_size(current_database())"))

    # --- backups ---

    def run_script(self, container: dict) -> tuple[float, dict[str, str]]:
        """Time the script alone (the environment is prepared first); return its summary fields."""
        command, env, user = container_process(self.pod, container)
        found: list = []
        seconds = timed(lambda: found.append(run_process(self.pod, command, env, user)))
        result = found[0]
        if result.returncode != 0:
            raise SystemExit(f"{command[-1]} failed: {result.stderr}")
        summary = result.stdout.strip().splitlines()[-1].split(": ", 1)[1]
        return seconds, dict(part.split("=", 1) for part in summary.split())

    def ours_backup(self) -> tuple[float, int]:
        seconds, summary = self.run_script(cronjob_container(self.pod))
        self.last_set = summary["set"]
        return seconds, int(summary["bytes"])

    def old_backup(self) -> tuple[float, int]:
        folder = self.work / "old"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        custom, plain = folder / "appdb.dump", folder / "appdb.sql.gz"

        def run() -> None:
            subprocess.run([f"{self.bin}/pg_dump", "-Fc", "-Z9", "-f", str(custom)], env=self.super_env, check=True)
            with open(plain, "wb") as out:
                dump = subprocess.Popen([f"{self.bin}/pg_dump"], env=self.super_env, stdout=subprocess.PIPE)
                subprocess.run(["gzip"], stdin=dump.stdout, stdout=out, check=True)
                dump.stdout.close()
                assert dump.wait() == 0
            with open(folder / "SHA256SUMS", "w") as sums:
                subprocess.run(["sha256sum", custom.name, plain.name], cwd=folder, stdout=sums, check=True)

        seconds = timed(run)
        return seconds, custom.stat().st_size + plain.stat().st_size

    # --- restores ---

    def empty_schema(self) -> None:
        tables = self.sql("SELECT string_agg(format('%I.%I', schemaname, tablename), ', ') FROM pg_tables "
                          "WHERE schemaname = 'app'")
        if tables:
            self.sql(f"DROP TABLE {tables} CASCADE")

    def bare_restore(self, dump: Path, jobs: int) -> float:
        self.empty_schema()
        return timed(lambda: subprocess.run([f"{self.bin}/pg_restore", "-j", str(jobs), "--clean", "--if-exists",
                                             "-d", "appdb", str(dump)],
                                            env=self.super_env, check=True))

    def ours_restore(self, jobs: int) -> float:
        self.empty_schema()
        return self.run_script(restore_container(self.values, self.last_set, ["appdb"], jobs))[0]


def median(values: list[float]) -> float:
    return statistics.median(values)


def main_() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=50, help="pgbench scale (50 = about 750 MB)")
    parser.add_argument("--random-mb", type=int, default=0, help="also add this many MB of random text")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=2, help="pg_restore jobs")
    parser.add_argument("--compression", type=int, default=None, help="backup.compression (default: the values')")
    args = parser.parse_args()
    values: dict = {}
    if args.compression is not None:
        values = {"postgres": {"backup": {"compression": args.compression}}}
    base = Path(tempfile.mkdtemp(prefix="bench-backup-"))
    base.chmod(0o711)
    pod = LocalPod(base / "pod")
    pod.prepare(parse_values(values), main.synthesize)
    pod.start()
    try:
        bench = Bench(pod, values, base)
        size = bench.load(args.scale, args.random_mb)
        compression = bench.values.postgres.backup.compression
        print(f"appdb: {size / 1e6:.0f} MB (pgbench scale {args.scale}, random {args.random_mb} MB), "
              f"{args.rounds} interleaved rounds, backup compression {compression}", flush=True)
        ours_t, old_t, ours_b, old_b = [], [], 0, 0
        bench.ours_backup()  # warm caches for both
        for round_ in range(args.rounds):
            order = [("ours", bench.ours_backup), ("old", bench.old_backup)]
            for name, run in order if round_ % 2 == 0 else reversed(order):
                seconds, size_b = run()
                (ours_t if name == "ours" else old_t).append(seconds)
                if name == "ours":
                    ours_b = size_b
                else:
                    old_b = size_b
        dump = pod.host_path(contract.BACKUP_DIR) / bench.last_set / "appdb.dump"
        bare_r, ours_r = [], []
        for round_ in range(args.rounds):
            order = [("ours", lambda: bench.ours_restore(args.jobs)), ("bare", lambda: bench.bare_restore(dump, args.jobs))]
            for name, run in order if round_ % 2 == 0 else reversed(order):
                (ours_r if name == "ours" else bare_r).append(run())
    finally:
        pod.stop()
        shutil.rmtree(base)

    speed = median(old_t) / median(ours_t)
    ratio = ours_b / old_b
    restore_ratio = median(ours_r) / median(bare_r)
    print("backup (median seconds, bytes)")
    print(f"  ours: dump+verify+checksum+roles+prune  {median(ours_t):7.2f} s  {ours_b / 1e6:8.1f} MB")
    print(f"  old:  -Fc -Z9 + plain|gzip + sha256     {median(old_t):7.2f} s  {old_b / 1e6:8.1f} MB")
    print(f"  speed-up {speed:.2f}x (target >= 2.5)   size {ratio:.2f}x (target <= 0.55)")
    print(f"restore of the same {ours_b / 1e6:.1f} MB archive, -j {args.jobs} (median seconds)")
    print(f"  ours: checksum + pg_restore --clean --if-exists  {median(ours_r):7.2f} s")
    print(f"  bare: pg_restore --clean --if-exists            {median(bare_r):7.2f} s")
    print(f"  ratio {restore_ratio:.2f}x (target <= 1.1)")


if __name__ == "__main__":
    main_()
