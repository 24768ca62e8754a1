#!/usr/bin/env python3
"""pgbench throughput of the generated postgresql.conf against initdb's defaults
and the old Helm chart's static settings, on this machine's PostgreSQL.

The same pgbench data is copied once per configuration, and all servers run side
by side with their buffers prewarmed (steady state). Short runs then alternate
between them in a rotating order, so a configuration is compared with the others
within seconds: this machine's throughput drifts by 20-30 % over minutes, more
than the differences measured. Prints the median TPS of each configuration for
read-write (TPC-B-like) and select-only runs, and the median and range of the
ratios within each round.
Usage: bench/pgbench.py [--rounds 15] [--seconds 5] [--scale 50]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pgbundle.pgconf.conf import render_postgresql_conf  # noqa: E402
from pgbundle.values.load import parse_values  # noqa: E402
from workstation.pod_state import postgres_bindir  # noqa: E402

# The container the generated configuration is derived for.
LIMITS = {"cpu": "2", "memory": "4Gi"}
OLD_CHART = {"shared_buffers": "256MB", "effective_cache_size": "1GB", "work_mem": "4MB", "max_wal_size": "1GB"}
MODES = {"read-write": [], "select-only": ["-S"]}


def as_postgres() -> dict:
    # PostgreSQL refuses root.
    return {"user": "postgres", "group": "postgres", "extra_groups": []} if os.geteuid() == 0 else {}


def configurations(data: Path) -> dict[str, str]:
    """Name -> postgresql.conf text. Each starts from initdb's file so only the tuning differs."""
    defaults = (data / "postgresql.conf").read_text()
    values = parse_values({"postgres": {"resources": {"limits": LIMITS}}}).postgres
    # The benchmark talks over the socket: TLS has no certificate here and no part in the figures.
    generated = render_postgresql_conf(values).replace("ssl = on\n", "ssl = off\n")
    old = "".join(f"{name} = '{value}'\n" for name, value in OLD_CHART.items())
    # Diagnostic: what the required statement statistics cost (one shared entry per
    # query, updated under a spinlock by every client running it).
    without_statements = generated.replace("shared_preload_libraries = 'pg_stat_statements'\n", "")
    if without_statements == generated:
        raise SystemExit("bench/pgbench.py: the generated config no longer preloads pg_stat_statements as expected")
    return {"initdb defaults": defaults, "old chart": defaults + old, "generated 4Gi/2CPU": defaults + generated,
            "generated without pg_stat_statements": defaults + without_statements}


class Server:
    """One configuration's server on its own copy of the data, reachable over a socket in `folder`."""

    def __init__(self, bindir: str, folder: Path, conf: str) -> None:
        self.bindir, self.folder = bindir, folder
        (folder / "bench.conf").write_text(conf)
        self.process = subprocess.Popen(
            [f"{bindir}/postgres", "-D", str(folder / "data"), "-c", f"config_file={folder}/bench.conf",
             "-c", "listen_addresses=", "-c", f"unix_socket_directories={folder}", "-c", f"log_directory={folder}/log"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **as_postgres())
        while self.run("pg_isready", "-q").returncode != 0:
            if self.process.poll() is not None:
                raise SystemExit(f"the server did not start with this configuration:\n{conf}")
            time.sleep(0.1)

    def prewarm(self) -> None:
        """Each configuration's buffers as full of pgbench data as they can be."""
        self.sql("CREATE EXTENSION IF NOT EXISTS pg_prewarm",
                 "SELECT pg_prewarm(oid) FROM pg_class WHERE relname LIKE 'pgbench%' AND relkind IN ('r', 'i')")

    def sql(self, *statements: str) -> None:
        self.run("psql", "-X", "-q", "-d", "postgres", *(f"-c{statement}" for statement in statements), check=True)

    def run(self, program: str, *args: str, check: bool = False) -> subprocess.CompletedProcess:
        return subprocess.run([f"{self.bindir}/{program}", "-h", str(self.folder), *args],
                              capture_output=True, text=True, check=check, **as_postgres())

    def tps(self, mode: list[str], seconds: int) -> float:
        out = self.run("pgbench", "-n", "-c", "4", "-j", "2", "-T", str(seconds), *mode, "postgres", check=True).stdout
        return float(re.search(r"tps = ([0-9.]+)", out).group(1))

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)  # fast shutdown
        self.process.wait()


def spread(values: list[float], number_format: str) -> str:
    """'median [min-max]' of a list of figures."""
    return f"{statistics.median(values):{number_format}} [{min(values):{number_format}}-{max(values):{number_format}}]"


def stop_on_sigterm(signum, frame) -> None:
    raise SystemExit(f"stopped by signal {signum}")  # runs the clean-up: servers stopped, folder removed


def main() -> int:
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--seconds", type=int, default=5, help="length of each pgbench run")
    parser.add_argument("--scale", type=int, default=50, help="pgbench scale (50 is about 750MB)")
    args = parser.parse_args()
    bindir = postgres_bindir()
    folder = Path(tempfile.mkdtemp(prefix="pgbench-"))
    folder.chmod(0o777)
    servers: dict[str, Server] = {}
    try:
        seed = folder / "seed"
        seed.mkdir()
        seed.chmod(0o777)
        subprocess.run([f"{bindir}/initdb", "-D", str(seed / "data"), "-U", "postgres", "--auth=trust",
                        "--no-instructions"], check=True, capture_output=True, **as_postgres())
        configs = configurations(seed / "data")
        print(f"pgbench scale {args.scale}, -c 4 -j 2, {args.seconds}s runs, {args.rounds} interleaved rounds per mode; "
              f"generated config for limits {LIMITS}", flush=True)
        server = Server(bindir, seed, configs["initdb defaults"])
        try:
            server.run("pgbench", "-i", "-q", "-s", str(args.scale), "postgres", check=True)
        finally:
            server.stop()
        for number, (name, conf) in enumerate(configs.items()):
            own = folder / f"config{number}"
            subprocess.run(["cp", "-a", str(seed), str(own)], check=True)
            servers[name] = Server(bindir, own, conf)
        for server in servers.values():
            server.prewarm()
        results: dict[tuple[str, str], list[float]] = {}
        names = list(configs)
        for mode, flags in MODES.items():
            for round_number in range(args.rounds):
                order = names[round_number % len(names):] + names[:round_number % len(names)]
                for name in order:
                    tps = servers[name].tps(flags, args.seconds)
                    if mode == "read-write":
                        servers[name].sql("CHECKPOINT")  # its writes must not land in another server's run
                    results.setdefault((name, mode), []).append(tps)
                    print(f"round {round_number + 1} {name:38} {mode:12} {tps:10.0f} TPS", flush=True)
        print()
        # A configuration's own min-max is this machine's noise floor for one run.
        print(f"{'TPS: median [min-max]':58}" + "".join(f"{mode:>24}" for mode in MODES))
        for name in names:
            print(f"{name:58}" + "".join(f"{spread(results[name, mode], '.0f'):>24}" for mode in MODES))
        # Ratios within a round, where both configurations met the same machine state;
        # their spread shows how far one round can be trusted on this machine.
        print(f"\n{'ratio: median of per-round ratios [min-max]':58}" + "".join(f"{mode:>21}" for mode in MODES))
        for generated in ("generated 4Gi/2CPU", "generated without pg_stat_statements"):
            for base in ("initdb defaults", "old chart"):
                cells = "".join(
                    f"{spread([g / b for g, b in zip(results[generated, mode], results[base, mode])], '.2f'):>21}"
                    for mode in MODES)
                print(f"{generated.replace('generated', 'ratio') + ' / ' + base:58}{cells}")
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
