"""Point-in-time recovery on real PostgreSQL and pgBackRest, through `local`:
the volume repository in the state folder (examples/pitr.yaml, encrypted)."""

from __future__ import annotations

import re
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from conftest import log_records, restart
from pgbundle import contract
from pgbundle.values.load import parse_values
from workstation import pitr_local
from workstation.localpod import LocalPod
from pitr_helpers import (TOP, archive_everything, cli, cli_json, commit_rows, connect, event_ids,
                          state_folders, wait_past)

pytestmark = pytest.mark.slow

VALUES_FILE = TOP / "examples" / "pitr.yaml"
VALUES = yaml.safe_load(VALUES_FILE.read_text())


@pytest.fixture(scope="module")
def origin(pods) -> LocalPod:
    return pods("pitr", VALUES)


@pytest.fixture(scope="module")
def restored_states():
    with state_folders("pitr-restores-") as base:
        yield base


@pytest.fixture(scope="module")
def history(origin):
    """A full backup, rows 1-2, a differential backup, row 3, the target, rows
    4-6 after it; everything archived."""
    full = cli_json("backup", "--state", str(origin.state), "--type", "full", values=VALUES_FILE)
    commit_rows(origin, [1, 2])
    diff = cli_json("backup", "--state", str(origin.state), "--type", "diff", values=VALUES_FILE)
    target = commit_rows(origin, [3]) + timedelta(milliseconds=100)
    wait_past(origin, target)
    commit_rows(origin, [4, 5, 6])
    archive_everything(origin)
    return {"full": full, "diff": diff, "target": target}


def test_backups_are_taken_and_typed(history):
    assert (history["full"]["type"], history["diff"]["type"]) == ("full", "diff")
    assert [t["repo"] for t in history["full"]["taken"]] == [1] and history["diff"]["backups"] == 2


def test_a_target_after_the_last_archived_commit_fails_with_one_line_and_changes_nothing(origin, history,
                                                                                       restored_states):
    """Recovery stops at the first commit past the target: with none archived yet
    (the next segment is archived within archiveTimeoutSeconds) it cannot."""
    new = restored_states / "too-late"
    late = (datetime.now(timezone.utc) - timedelta(milliseconds=200)).isoformat()
    done = cli("restore", "--state", str(new), "--from", str(origin.state), "--time", late, values=VALUES_FILE)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [f"error: --time {late}: the archive holds no commit after it, so recovery "
                                        "cannot tell it reached it; use --latest"]
    assert not new.exists()


def test_restore_to_a_time_has_exactly_the_rows_committed_before_it(origin, history, restored_states):
    new = restored_states / "to-time"
    info = cli_json("restore", "--state", str(new), "--from", str(origin.state), "--time", history["target"].isoformat(),
                    values=VALUES_FILE)
    # As `local up` prints.
    assert set(info) == {"host", "hostaddr", "port", "database", "sslrootcert", "passwords", "dsn",
                         "DATABASE_URL"}
    restored = LocalPod(new)
    assert event_ids(restored) == [1, 2, 3]
    assert event_ids(origin) == [1, 2, 3, 4, 5, 6]  # the old state is untouched and keeps running
    # The restored pod archives on a new timeline into its own repository.
    archive_everything(restored)
    assert (new / "root" / contract.PITR_BACKUPS_REPO_DIR.lstrip("/") / "archive" / contract.PITR_STANZA).is_dir()


def test_restore_to_the_latest_point_has_every_archived_row(origin, history, restored_states):
    new = restored_states / "latest"
    cli_json("restore", "--state", str(new), "--from", str(origin.state), "--latest", values=VALUES_FILE)
    assert event_ids(LocalPod(new)) == [1, 2, 3, 4, 5, 6]


def test_a_target_before_the_oldest_backup_fails_with_one_line_and_changes_nothing(origin, history, restored_states):
    new = restored_states / "too-early"
    early = history["target"] - timedelta(days=1)
    done = cli("restore", "--state", str(new), "--from", str(origin.state), "--time", early.isoformat(),
               values=VALUES_FILE)
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"error: --time {early.isoformat()} is before any restorable point: the oldest backup (")
    assert not new.exists()


@pytest.mark.parametrize("args, expected", [
    (["--time", "yesterday"], "is not a time"),
    (["--time", "2026-01-01T00:00:00"], "has no time zone"),
    (["--time", "2999-01-01T00:00:00+00:00"], "is in the future"),
])
def test_bad_targets_are_refused(origin, restored_states, args, expected):
    new = restored_states / "bad"
    done = cli("restore", "--state", str(new), "--from", str(origin.state), *args, values=VALUES_FILE)
    assert done.returncode == 2 and expected in done.stderr and len(done.stderr.splitlines()) == 1
    assert not new.exists()


def test_physical_backup_needs_pitr(tmp_path):
    values = tmp_path / "values.yaml"
    values.write_text("{}\n")
    done = cli("backup", "--state", str(tmp_path / "state"), "--type", "full", values=values)
    assert done.returncode == 2
    assert done.stderr.startswith("error: postgres.pitr.enabled is false")


def test_a_restart_finds_the_stanza_and_archiving_goes_on(origin, history):
    restart(origin)
    created = [r["message"] for r in log_records(origin) if r.get("ps") == "pgbackrest"
               and "stanza-create command end: completed successfully" in r["message"]]
    assert len(created) == 2  # the first start and this one: idempotent
    commit_rows(origin, [7])
    archive_everything(origin)


def archived_segments(pod: LocalPod) -> dict[str, Path]:
    """The repository's archived WAL segments by name (without pgBackRest's checksum suffix)."""
    archive = pod.host_path(contract.PITR_BACKUPS_REPO_DIR) / "archive" / contract.PITR_STANZA
    return {p.name[:24]: p for p in archive.rglob("*") if p.is_file() and re.fullmatch(r"[0-9A-F]{24}-\w+(\.\w+)?", p.name)}


def assert_drill_left_nothing(pod: LocalPod) -> None:
    """The scratch folder is empty again, no drill server runs, nothing new was archived by it."""
    scratch = pod.host_path(contract.PITR_DRILL_DIR)
    assert scratch.is_dir() and not any(scratch.iterdir())
    assert str(scratch) not in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    # Archiving is off in the restored copy: its promotion to timeline 2 never reaches the repository.
    assert not list((pod.host_path(contract.PITR_BACKUPS_REPO_DIR) / "archive").rglob("00000002*"))


def test_the_drill_restores_the_newest_backup_and_all_wal_and_checks_it(origin, history):
    """With the pod stopped (the drill needs only the repository) and the repository
    read-only, as the CronJob mounts it: the drill writes nothing there."""
    commit_rows(origin, [8])
    archive_everything(origin)
    rows = len(event_ids(origin))
    assert origin.stop() == 0
    repo = origin.host_path(contract.PITR_BACKUPS_REPO_DIR)
    modes = {path: path.stat().st_mode for path in [repo, *repo.rglob("*")]}
    for path, mode in modes.items():
        path.chmod(mode & ~0o222)
    try:
        done = cli("drill", "--state", str(origin.state), values=VALUES_FILE)
    finally:
        for path, mode in modes.items():
            path.chmod(mode)
        origin.start()
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    diff = history["diff"]["taken"][0]["label"]
    # Every archived row, counted in the restored copy: the WAL after the newest backup was replayed.
    assert f"pitr drill: repo1: appdb.public.events rows={rows}" in lines
    assert re.fullmatch(rf"pitr drill ok: repos=1 backup={diff} databases=3 tables=\d+ rows=\d+ amcheck=yes "
                        r"seconds=\d+", lines[-1]), lines[-1]
    assert_drill_left_nothing(origin)


def test_the_drill_fails_on_a_missing_wal_segment_and_says_which(origin, history):
    """Recovery would end quietly before the gap: the drill compares it with the archive's newest segment."""
    commit_rows(origin, [9])
    archive_everything(origin)
    segments = archived_segments(origin)
    newest = max(segments)
    backup = pitr_local.backups(origin)[-1]
    gap = f"{int(backup['archive']['stop'], 16) + 1:024X}"
    assert gap < newest, (gap, newest)
    moved = segments[gap].rename(segments[gap].with_name(segments[gap].name + ".away"))
    try:
        done = cli("drill", "--state", str(origin.state), values=VALUES_FILE)
    finally:
        moved.rename(segments[gap])
    assert done.returncode == 1
    # Where recovery says it stopped, measured: 15.18 names the last segment before
    # the gap, 17.12 the gap itself. Either way it is short of the archive's newest.
    (line,) = done.stderr.splitlines()
    assert re.fullmatch(f"error: pitr drill failed: repo1: recovery stopped in WAL segment "
                        f"({int(gap[8:], 16) - 1:016X}|{gap[8:]}) but the archive reaches {newest[8:]}: "
                        "a segment after it is missing or unreadable", line), line
    assert_drill_left_nothing(origin)


def damage_largest_file(origin: LocalPod, label: str) -> None:
    """Flip one byte in the middle of the largest file of backup `label` in the volume
    repository: a bundle of small files, or a table's file."""
    backup_dir = origin.host_path(contract.PITR_BACKUPS_REPO_DIR) / "backup" / contract.PITR_STANZA / label
    victim = max((p for p in backup_dir.rglob("*") if p.is_file() and not p.name.startswith("backup.manifest")),
                 key=lambda p: p.stat().st_size)
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))


def test_verify_passes_then_finds_a_corrupt_file(origin, history):
    """Last in this module: it damages the origin's repository."""
    values = parse_values(VALUES)
    assert pitr_local.verify(origin, values) == {"verified": [1]}
    damage_largest_file(origin, history["full"]["taken"][0]["label"])
    done = cli("verify", "--state", str(origin.state), values=VALUES_FILE)
    assert done.returncode == 1
    assert done.stderr.startswith("error: pgbackrest verify repo1: invalid ")
    assert history["full"]["taken"][0]["label"] in done.stderr and len(done.stderr.splitlines()) == 1


def test_the_drill_fails_on_a_damaged_backup_file(origin, history):
    """After the corruption above: a damaged file of the newest backup too, which every restore reads."""
    damage_largest_file(origin, history["diff"]["taken"][0]["label"])
    done = cli("drill", "--state", str(origin.state), values=VALUES_FILE)
    assert done.returncode == 1
    (line,) = done.stderr.splitlines()
    assert line.startswith("error: pitr drill failed: repo1: restore: "), line
    assert_drill_left_nothing(origin)


def test_a_quiet_database_archives_its_first_commit_within_archive_timeout(pods):
    """Right after a start PostgreSQL's checkpointer would sleep a whole
    checkpoint_timeout (15 min) before it looked at archive_timeout: the start
    script wakes it, so one commit on a quiet database is archived in time."""
    values = yaml.safe_load(VALUES_FILE.read_text())
    values["postgres"]["pitr"]["archiveTimeoutSeconds"] = 30
    pod = pods("pitr-quiet", values)
    started = time.monotonic()
    commit_rows(pod, [1])
    with connect(pod, "postgres") as conn:
        segment = conn.execute("SELECT pg_walfile_name(pg_current_wal_lsn())").fetchone()[0]
        while (conn.execute("SELECT last_archived_wal FROM pg_stat_archiver").fetchone()[0] or "") < segment:
            # archive_timeout, and the push (seconds) on a loaded machine.
            assert time.monotonic() - started < 30 + 60, f"{segment} not archived"
            time.sleep(0.5)
