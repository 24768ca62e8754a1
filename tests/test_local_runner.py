"""The local pod runner's own behaviour: which state folders it takes, and that it
cleans up after itself. (What the pod does is in test_postgres.py.)"""

from __future__ import annotations

import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import main

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
        "choose a missing or empty folder, or one holding only dist, pki, pod.json, pod.log, root")
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
