"""The local pod runner's own behaviour: which state folders it takes, and that it
cleans up after itself. (What the pod does is in test_postgres.py.)"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import connect

import main
from workstation.localpod import LocalPod

TOP = Path(main.__file__).resolve().parent


def local(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOP / "main.py"), "local", *args], capture_output=True, text=True,
                          timeout=180)


@pytest.fixture
def base() -> Path:
    # pytest's own temp folders are private to root; the pod runs as the postgres user.
    folder = Path(tempfile.mkdtemp(prefix="local-runner-"))
    folder.chmod(0o711)
    yield folder
    subprocess.run(["rm", "-rf", str(folder)], check=True)


def snapshot(folder: Path) -> dict[str, tuple[int, bytes | None]]:
    return {str(p.relative_to(folder)): (stat.S_IMODE(p.lstat().st_mode), p.read_bytes() if p.is_file() else None)
            for p in [folder, *sorted(folder.rglob("*"))]}


# --- the state folder ---------------------------------------------------------------


def test_up_refuses_a_folder_that_is_not_a_state_and_changes_nothing(base):
    state = base / "home"
    state.mkdir()
    (state / ".git").mkdir()
    (state / "notes.txt").write_text("mine\n")
    state.chmod(0o750)
    before = snapshot(state)
    result = local("up", "--state", str(state))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: --state: {state} holds .git, notes.txt, which `local up` did not write: refusing to use it; "
        "choose a missing or empty folder, or one holding only dist, pgbackrest-server.log, pki, pod.json, pod.log, "
        "pooler-ro.json, pooler-ro.log, pooler.json, pooler.log, postgres, root, root-pooler-ro, server.json, "
        "values.json")
    assert snapshot(state) == before


def test_up_refuses_a_state_whose_dist_holds_other_files(base):
    state = base / "db"
    (state / "dist").mkdir(parents=True)
    (state / "dist" / "mine.yaml").write_text("kind: Mine\n")
    before = snapshot(state)
    result = local("up", "--state", str(state))
    assert result.returncode == 1
    assert f"error: --state: {state / 'dist'} holds mine.yaml, which a synth did not write" in result.stderr
    assert snapshot(state) == before


def test_down_on_a_folder_holding_no_state_is_an_error(base):
    empty = base / "empty"
    empty.mkdir()
    for folder in (empty, base / "missing"):
        result = local("down", "--state", str(folder))
        assert result.returncode == 1
        assert result.stderr.strip() == f"error: --state: {folder} holds no local pod or cluster: nothing to stop"


# --- a running state ------------------------------------------------------------------

@pytest.fixture
def running(base):
    """A started pod in a state folder under `base`; stopped at the end whatever happened."""
    state = base / "db"
    values = base / "values.yaml"
    values.write_text("postgres:\n  logging:\n    toFile: true\n")
    started = local("up", "--state", str(state), "--values", str(values))
    assert started.returncode == 0, started.stderr
    pod = LocalPod(state)
    yield pod
    pod.stop()
    assert pod.leftovers() == []


def tree(folder: Path) -> dict[str, tuple[float, bytes]]:
    return {str(p.relative_to(folder)): (p.stat().st_mtime, p.read_bytes()) for p in sorted(folder.rglob("*"))
            if p.is_file()}


def test_up_on_a_running_state_refuses_before_writing_anything(running, base):
    # Other values: a second `up` that wrote anything would change postgresql.conf.
    other = base / "other.yaml"
    other.write_text("postgres:\n  config:\n    maxConnections: 50\n")
    config = running.host_path("/etc/postgresql")
    before = {"dist": tree(running.dist), "config": tree(config), "scripts": tree(running.host_path("/opt/postgres")),
              "pod.json": running.pod_file.read_bytes()}
    # Other values or the same: refused as running, the way out named.
    for values in (["--values", str(other)], []):
        result = local("up", "--state", str(running.state), *values)
        assert result.returncode == 1
        assert result.stderr.strip() == (f"error: already running (pid {running.pid()}): "
                                         f"run `local down --state {running.state}` first")
    assert {"dist": tree(running.dist), "config": tree(config), "scripts": tree(running.host_path("/opt/postgres")),
            "pod.json": running.pod_file.read_bytes()} == before
    assert b"max_connections = 200" in (config / "postgresql.conf").read_bytes()


def test_status_and_down_handle_a_server_whose_start_script_was_killed(running):
    script, server = running.pid(), running.postmaster()
    os.kill(script, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while running.pid() is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    # The server keeps serving without its start script.
    status = json.loads(local("status", "--state", str(running.state)).stdout)
    assert status == {"state": "orphaned", "pid": server, "port": running.connection_info()["port"]}
    with connect(running, "appuser") as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    refused = local("up", "--state", str(running.state))
    assert refused.returncode == 1
    assert f"a server still runs on {running.state} (pid {server}) although its start script is gone" in refused.stderr

    down = local("down", "--state", str(running.state))
    assert down.returncode == 0, down.stderr
    assert running.postmaster() is None
    assert running.leftovers() == []  # the log cleaner, the cert watcher and their sleeps too
    assert json.loads(local("status", "--state", str(running.state)).stdout)["state"] == "stopped"
    # The next start finds no stale postmaster.pid in its way.
    again = local("up", "--state", str(running.state))
    assert again.returncode == 0, again.stderr
    assert local("down", "--state", str(running.state)).returncode == 0


def test_the_start_script_leaves_no_process_behind_with_file_logs(running):
    # SIGTERM straight to the start script, as the kubelet sends it: no `down` to sweep up after it.
    script = running.pid()
    assert [p for p in running.leftovers() if Path(f"/proc/{p}/cmdline").read_bytes() == b"sleep\x003600\x00"]
    os.kill(script, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while running.leftovers() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert running.leftovers() == []
