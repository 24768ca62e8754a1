#!/usr/bin/env python3
"""pgbench through the pooler (PgBouncer in transaction mode) against the
database directly, both over TLS with SCRAM, as `local up` runs them.

Two questions: what a new connection per transaction costs (pgbench -C: every
transaction opens a TLS + SCRAM connection, to PgBouncer, which keeps its
server connections, or to PostgreSQL, which forks a backend each time), and
what the pooler costs in steady state (connections held for the whole run).
Beside each pgbench figure it reads the CPU time the database side spent (the
postmaster, its backends and PgBouncer, the same processes in both arms) per
transaction: pgbench runs on the same two cores, and its own client-side TLS
and SCRAM work is the same in both arms, so TPS alone understates what the
pooler saves the database.
Short runs alternate between the two targets in a rotating order, since this
machine's throughput drifts by 20-30 % over minutes. Prints the median TPS of
each target and mode and the median and range of the per-round ratios.
Targets (issue 21): -C through the pooler >= 3x direct; steady state >= 0.7x.
Usage: bench/pooler.py [--rounds 7] [--seconds 5] [--scale 10] [--clients 8]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import main  # noqa: E402
from pgbench import spread, stop_on_sigterm  # noqa: E402
from pgbundle.values.load import parse_values  # noqa: E402
from workstation.localpod import LocalPod  # noqa: E402
from workstation.localpooler import LocalPooler  # noqa: E402
from workstation.pod_state import postgres_bindir  # noqa: E402

VALUES = {"postgres": {"pooler": {"enabled": True, "replicas": 1}}}
# Select-only transactions: the connection's cost is what differs, not the disk.
MODES = {"new connection per transaction (-C -S)": ["-C", "-S"], "steady state (-S)": ["-S"],
         "steady state read-write (TPC-B)": []}
TARGETS = ("direct", "pooler")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid: int, *, with_reaped: bool = False) -> int:
    """utime + stime of a process (and of its exited children when asked), from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # fields[0] is the state (stat's 3rd field): utime, stime, cutime, cstime are the 14th to 17th.
    return sum(int(f) for f in fields[11:15 if with_reaped else 13])


def database_cpu_seconds(postmaster: int, pgbouncer: int) -> float:
    """CPU time of the postmaster, every backend it forked (live or exited) and PgBouncer."""
    live = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                    live += cpu_ticks(int(entry.name))
            except (FileNotFoundError, ProcessLookupError):
                continue  # exited while read: its time is in the postmaster's reaped children now
    return (live + cpu_ticks(postmaster, with_reaped=True) + cpu_ticks(pgbouncer)) / CLOCK_TICKS


def pgbench(bindir: str, host: str, port: int, user: str, password: str, database: str, sslrootcert: str,
            *args: str) -> str:
    # Connection settings through the environment: pgbench takes no connection string.
    env = {**os.environ, "PGHOST": host, "PGPORT": str(port), "PGUSER": user, "PGPASSWORD": password,
           "PGDATABASE": database, "PGSSLMODE": "verify-full", "PGSSLROOTCERT": sslrootcert}
    done = subprocess.run([f"{bindir}/pgbench", *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"pgbench {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def main_() -> int:
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=int, default=5, help="length of each pgbench run")
    parser.add_argument("--scale", type=int, default=10)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    bindir = postgres_bindir()
    base = Path(tempfile.mkdtemp(prefix="bench-pooler-"))
    base.chmod(0o711)  # the pod runs as the postgres user
    values = parse_values(VALUES)
    pod = LocalPod(base / "pod")
    pooler = LocalPooler(pod)
    try:
        pod.prepare(values, main.synthesize)
        pod.start()
        pooler.prepare(values)
        pooler.start()
        info = pod.connection_info()
        ports = {"direct": info["port"], "pooler": pooler.connection_info()["port"]}
        env = pod.environment()

        def run(target: str, user: str, *flags: str) -> str:
            return pgbench(bindir, info["host"], ports[target], user, info["passwords"][user], info["database"],
                           info["sslrootcert"], *flags)

        # The tables belong to the owner (the migrator's role setting), in the application's schema.
        run("direct", env["PG_MIGRATOR_USER"], "-i", "-q", "-s", str(args.scale))
        print(f"pgbench scale {args.scale}, -c {args.clients} -j 2, {args.seconds}s runs, {args.rounds} interleaved "
              f"rounds; TLS (verify-full) + SCRAM on every connection; pooler: PgBouncer "
              f"{values.postgres.pooler.image.tag}, {values.postgres.pooler.pool_mode} mode, pool "
              f"{values.postgres.pooler.default_pool_size}", flush=True)
        results: dict[tuple[str, str], list[float]] = {}
        cpu_ms: dict[tuple[str, str], list[float]] = {}
        postmaster, pgbouncer = pod.postmaster(), pooler.pid()
        for mode, flags in MODES.items():
            for round_number in range(args.rounds):
                order = TARGETS if round_number % 2 == 0 else TARGETS[::-1]
                for target in order:
                    before = database_cpu_seconds(postmaster, pgbouncer)
                    out = run(target, env["PG_APP_USER"], "-n", "-c", str(args.clients), "-j", "2",
                              "-T", str(args.seconds), *flags)
                    spent = database_cpu_seconds(postmaster, pgbouncer) - before
                    tps = float(re.search(r"tps = ([0-9.]+)", out).group(1))
                    done = int(re.search(r"number of transactions actually processed: ([0-9]+)", out).group(1))
                    results.setdefault((target, mode), []).append(tps)
                    cpu_ms.setdefault((target, mode), []).append(1000 * spent / done)
                    print(f"round {round_number + 1} {target:7} {mode:40} {tps:9.0f} TPS "
                          f"{1000 * spent / done:7.3f} ms database CPU per transaction", flush=True)
        print(f"\n{'TPS: median [min-max]':42}" + "".join(f"{t:>22}" for t in TARGETS) + f"{'pooler / direct':>26}")
        for mode in MODES:
            ratios = [p / d for p, d in zip(results["pooler", mode], results["direct", mode])]
            print(f"{mode:42}" + "".join(f"{spread(results[t, mode], '.0f'):>22}" for t in TARGETS)
                  + f"{spread(ratios, '.2f'):>26}")
        print(f"\n{'database CPU ms per transaction':42}" + "".join(f"{t:>22}" for t in TARGETS)
              + f"{'direct / pooler':>26}")
        for mode in MODES:
            savings = [d / p for d, p in zip(cpu_ms["direct", mode], cpu_ms["pooler", mode])]
            print(f"{mode:42}" + "".join(f"{spread(cpu_ms[t, mode], '.3f'):>22}" for t in TARGETS)
                  + f"{spread(savings, '.2f'):>26}")
    finally:
        pooler.stop()
        pod.stop()
        shutil.rmtree(base)
    return 0


if __name__ == "__main__":
    sys.exit(main_())
