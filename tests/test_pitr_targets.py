"""Restore targets beyond a time, on real PostgreSQL and pgBackRest: a named
restore point (`local restore-point`, `--name`) and a backup label (`--label`,
alone or as the starting point of a time or a name); and the printed restore
Job's script (`pitr-restore-manifest`) run for real, into a new folder from a
read-only copy of the repository, and in place."""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

import main
from conftest import container
from pgbundle import contract
from pgbundle.values.load import parse_values
from workstation import pitr_local
from workstation.localpod import LocalPod
from pitr_helpers import TOP, archive_everything, cli, cli_json, commit_rows, event_ids, state_folders, wait_past

pytestmark = pytest.mark.slow

VALUES_FILE = TOP / "examples" / "pitr.yaml"
VALUES = yaml.safe_load(VALUES_FILE.read_text())
POINT = "before-five"


@pytest.fixture(scope="module")
def origin(pods) -> LocalPod:
    return pods("pitr-targets", VALUES)


@pytest.fixture(scope="module")
def states():
    with state_folders("pitr-targets-") as base:
        yield base


@pytest.fixture(scope="module")
def history(origin):
    """Row 1, a full backup, row 2, a differential backup, row 3, a time, row 4,
    the restore point, rows 5-6; everything archived."""
    commit_rows(origin, [1])
    full = cli_json("backup", "--state", str(origin.state), "--type", "full", values=VALUES_FILE)
    commit_rows(origin, [2])
    diff = cli_json("backup", "--state", str(origin.state), "--type", "diff", values=VALUES_FILE)
    moment = commit_rows(origin, [3]) + timedelta(milliseconds=100)
    wait_past(origin, moment)
    commit_rows(origin, [4])
    point = cli_json("restore-point", "--state", str(origin.state), POINT, values=VALUES_FILE)
    commit_rows(origin, [5, 6])
    archive_everything(origin)
    return {"full": full["taken"][0]["label"], "diff": diff["taken"][0]["label"], "time": moment.isoformat(),
            "point": point}


def restore(origin: LocalPod, new: Path, *args: str) -> list[int]:
    cli_json("restore", "--state", str(new), "--from", str(origin.state), *args, values=VALUES_FILE)
    return event_ids(LocalPod(new))


def test_a_restore_point_is_created_and_archived(history):
    point = history["point"]
    assert point["name"] == POINT and point["lsn"] and point["archived_wal"]


def test_restore_to_a_named_point_has_exactly_the_rows_committed_before_it(origin, history, states):
    assert restore(origin, states / "name", "--name", POINT) == [1, 2, 3, 4]


def test_restore_of_a_label_alone_has_exactly_the_rows_in_that_backup(origin, history, states):
    assert restore(origin, states / "full", "--label", history["full"]) == [1]
    assert restore(origin, states / "diff", "--label", history["diff"]) == [1, 2]


def test_a_label_is_the_starting_point_of_a_time_or_a_name(origin, history, states):
    """From the full backup, past the differential one: its WAL replays to the target."""
    assert restore(origin, states / "full-time", "--label", history["full"], "--time", history["time"]) == [1, 2, 3]
    assert restore(origin, states / "full-name", "--label", history["full"], "--name", POINT) == [1, 2, 3, 4]


def test_an_unknown_label_lists_the_labels_there_are_and_changes_nothing(origin, history, states):
    new = states / "no-such-label"
    done = cli("restore", "--state", str(new), "--from", str(origin.state), "--label", "20200101-000000F",
               values=VALUES_FILE)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [f"error: --label 20200101-000000F: repo1 has no such backup; it has "
                                        f"{history['full']}, {history['diff']}"]
    assert not new.exists()


def test_a_time_before_the_labelled_backup_ends_is_refused(origin, history, states):
    new = states / "time-before-label"
    done = cli("restore", "--state", str(new), "--from", str(origin.state), "--label", history["diff"],
               "--time", history["time"].replace(history["time"][:4], "2025"), values=VALUES_FILE)
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1, done.stderr
    assert f"is before the end of backup {history['diff']}" in done.stderr
    assert not new.exists()


def test_a_name_never_created_fails_with_one_line_and_changes_nothing(origin, history, states):
    """PostgreSQL replays every archived segment looking for it, then stops
    ("recovery ended before configured recovery target was reached"): no promotion."""
    new = states / "no-such-name"
    done = cli("restore", "--state", str(new), "--from", str(origin.state), "--name", "never-made", values=VALUES_FILE)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        f"error: --name never-made: the archived WAL after backup {history['diff']} holds no restore point of that "
        "name: it was never created (or not yet archived), or it is older than that backup (give an older --label)"]
    assert not new.exists()


@pytest.mark.parametrize("args, expected", [
    (["--name", "no spaces"], "error: --name 'no spaces' is not a restore point name"),
    (["--label", "latest"], "error: --label 'latest' is not a pgBackRest backup label"),
    (["--name", POINT, "--latest"], "error: --latest and --name exclude each other"),
])
def test_bad_targets_are_one_line(origin, states, args, expected):
    new = states / "bad"
    done = cli("restore", "--state", str(new), "--from", str(origin.state), *args, values=VALUES_FILE)
    assert done.returncode == 2 and done.stderr.splitlines()[0].startswith(expected), done.stderr
    assert len(done.stderr.splitlines()) == 1 and not new.exists()


# --- the printed Job's script, for real -----------------------------------------


def printed(*args: str) -> list[dict]:
    done = subprocess.run([sys.executable, str(TOP / "main.py"), "pitr-restore-manifest", "--values", str(VALUES_FILE),
                           *args], capture_output=True, text=True, cwd=TOP, timeout=120)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def run_job(docs: list[dict], into: LocalPod, repo: Path) -> subprocess.CompletedProcess:
    """The Job's container as the cluster runs it: its command and environment,
    paths mapped into `into`'s state folder, the volume repository at `repo`."""
    job = next(d for d in docs if d["kind"] == "Job")
    spec = container(job["spec"]["template"]["spec"], contract.PITR_RESTORE_CONTAINER)
    tmp = into.host_path(contract.TMP_DIR)
    into._mkdir(tmp)
    env = {**into.host_environment(spec), "PGBACKREST_REPO1_PATH": str(repo), "PATH": into.environment()["PATH"],
           "HOME": str(tmp)}
    return subprocess.run(into.host_command(spec), env=env, cwd=into.state, capture_output=True, text=True,
                          start_new_session=True, **into.user_options())


@pytest.fixture(scope="module")
def read_only_repo(origin, history, states) -> Path:
    """A copy of the origin's repository the pod's user cannot write: the Job mounts it read-only."""
    copy = states.parent / f"{states.name}-repo"
    shutil.copytree(origin.host_path(contract.PITR_BACKUPS_REPO_DIR), copy)
    for path in [copy, *copy.rglob("*")]:
        shutil.chown(path, origin.uid, origin.gid)
        path.chmod(path.stat().st_mode & ~0o222)
    yield copy
    for path in [copy, *copy.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o200)
    shutil.rmtree(copy)


def fresh_state(origin: LocalPod, path: Path, repo: Path) -> LocalPod:
    """A new state with the origin's Secrets and its volume repository at `repo`,
    as the new volume's pod has the cluster's (start.sh's restore_command reads it)."""
    pod = LocalPod(path)
    pod.prepare(parse_values(VALUES), main.synthesize)
    pitr_local._carry_secrets(origin, pod)
    link = pod.host_path(contract.PITR_BACKUPS_REPO_DIR)
    if link.is_dir():
        link.rmdir()
    link.symlink_to(repo)
    return pod


def test_the_jobs_script_restores_a_new_volume_from_a_read_only_repository(origin, history, states, read_only_repo):
    docs = printed("--name", POINT)
    assert [(d["kind"], d["metadata"]["name"]) for d in docs] == [
        ("PersistentVolumeClaim", f"{contract.PITR_RESTORE_CLAIM_PREFIX}name-{POINT}"),
        ("Job", f"{contract.PITR_RESTORE_JOB_PREFIX}name-{POINT}")]
    pod = fresh_state(origin, states / "job-new-volume", read_only_repo)
    done = run_job(docs, pod, read_only_repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1].startswith(f"pitr restore complete: type=name target={POINT} set=auto aside=none")
    # The pod's start script recovers to the point and promotes, as in the cluster.
    pod.start()
    assert event_ids(pod) == [1, 2, 3, 4]


def test_the_jobs_script_refuses_a_running_database_and_changes_nothing(origin, history, states, read_only_repo):
    pod = LocalPod(states / "job-new-volume")  # running since the test above
    assert pod.pid() is not None
    done = run_job(printed("--in-place", "--latest"), pod, read_only_repo)
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1].startswith("pitr-restore failed: ")
    assert "postmaster.pid exists: the database may still run; scale the StatefulSet to 0 first" in done.stderr
    assert event_ids(pod) == [1, 2, 3, 4]


def test_the_jobs_script_restores_in_place_and_keeps_the_old_data_aside(origin, history, states, read_only_repo):
    pod = LocalPod(states / "job-new-volume")
    pod.stop()
    done = run_job(printed("--in-place", "--time", history["time"]), pod, read_only_repo)
    assert done.returncode == 0, done.stdout + done.stderr
    [aside] = pod.host_path(contract.DATA_MOUNT).glob(f"{contract.PITR_RESTORE_ASIDE_PREFIX}*")
    assert (aside / "PG_VERSION").is_file()
    pod.start()
    assert event_ids(pod) == [1, 2, 3]


def test_a_failed_restore_in_place_puts_the_data_back(origin, history, states, read_only_repo):
    pod = LocalPod(states / "job-new-volume")
    pod.stop()
    before = sorted(p.name for p in pod.host_path(contract.DATA_MOUNT).iterdir())
    done = run_job(printed("--in-place", "--label", "20200101-000000F"), pod, read_only_repo)
    assert done.returncode == 1
    assert "the data moved aside is back" in done.stdout
    assert done.stderr.splitlines()[-1] == "pitr-restore failed: pgbackrest restore failed (its ERROR line above); nothing changed"
    assert sorted(p.name for p in pod.host_path(contract.DATA_MOUNT).iterdir()) == before
    pod.start()
    assert event_ids(pod) == [1, 2, 3]


def test_the_jobs_script_stops_on_any_error():
    text = (TOP / "constructs" / "scripts" / "pitr" / "pitr-restore.sh").read_text()
    assert text.startswith("#!/usr/bin/env bash\n") and "\nset -euo pipefail\n" in text
