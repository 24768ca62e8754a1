"""The PITR backup CronJob against the database pod's pgBackRest TLS server, on
real PostgreSQL and pgBackRest: `local up` starts the `pgbackrest` sidecar's
command from the synthesized StatefulSet, and the CronJob's container (its
command and environment from the synthesized CronJob) takes the backup over
mutual TLS, with no data volume of its own; a restore from it is exact."""

from __future__ import annotations

import os
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from pgbundle import contract
from pgbundle.values.load import parse_values
from workstation import pitr_local, pitr_targets
from workstation.localpod import LocalPod
from pitr_helpers import TOP, archive_everything, commit_rows, event_ids, wait_past

VALUES = yaml.safe_load((TOP / "examples" / "pitr.yaml").read_text())


@pytest.fixture(scope="module")
def origin(pods) -> LocalPod:
    return pods("pitr-server", VALUES)


@pytest.fixture(scope="module")
def values():
    return parse_values(VALUES, "examples/pitr.yaml")


@pytest.fixture(scope="module")
def full(origin, values):
    """The scheduled full backup, run as the CronJob's container."""
    done = pitr_local.scheduled_backup(origin, values, "full")
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def _cronjob_pod(origin: LocalPod, name: str) -> dict:
    return origin.manifests().get("CronJob", name)["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def test_the_job_has_no_data_volume_and_reaches_the_database_over_tls(origin):
    spec = _cronjob_pod(origin, contract.PITR_FULL_CRONJOB)
    (job,) = spec["containers"]
    env = {item["name"]: item["value"] for item in job["env"]}
    assert contract.DATA_CLAIM not in {v["name"] for v in spec["volumes"]}
    assert not any(m["mountPath"].startswith(contract.DATA_MOUNT) for m in job["volumeMounts"])
    assert (env["PGBACKREST_PG1_HOST_TYPE"], env["PGBACKREST_PG1_HOST_PORT"]) == ("tls", str(contract.PGBACKREST_PORT))


def test_the_scheduled_full_backup_lands_in_the_repository(origin, full):
    assert full.stdout.splitlines()[-1].startswith("pitr backup complete: type=full source=primary repos=1 verified=yes ")
    taken = pitr_local.backups(origin)
    assert [b["type"] for b in taken] == ["full"] and taken[0]["error"] is False


def test_a_restore_to_a_time_from_the_scheduled_backup_is_exact(origin, full, values, tmp_path_factory):
    commit_rows(origin, [1, 2])
    target = commit_rows(origin, [3]) + timedelta(milliseconds=100)
    wait_past(origin, target)
    commit_rows(origin, [4, 5])
    archive_everything(origin)
    base = Path(tempfile.mkdtemp(prefix="pitr-server-restore-"))
    base.chmod(0o711)
    restored = LocalPod(base / "restored")
    try:
        import main

        pitr_local.restore(restored, origin.state, values, main.synthesize,
                           target=pitr_targets.target(time=target.isoformat()), secrets_dir=None)
        assert event_ids(restored) == [1, 2, 3]
    finally:
        restored.stop()
        shutil.rmtree(base)


def test_a_client_certificate_of_another_name_is_refused(origin, full, values):
    # Issued by the same CA, for a CN the server's tls-server-auth does not list.
    cert, key = origin.client_certificate("intruder")
    folder = origin.host_path(f"{contract.TMP_DIR}/intruder")
    folder.mkdir(parents=True, exist_ok=True)
    for source, name in ((cert, "tls.crt"), (key, "tls.key")):
        shutil.copyfile(source, folder / name)
        os.chown(folder / name, origin.uid, origin.gid)
        (folder / name).chmod(0o600)
    done = pitr_local.scheduled_backup(origin, values, "diff", env_overrides={
        "PGBACKREST_PG1_HOST_CERT_FILE": str(folder / "tls.crt"), "PGBACKREST_PG1_HOST_KEY_FILE": str(folder / "tls.key"),
    })
    assert done.returncode != 0 and "access denied" in done.stdout
    assert [b["type"] for b in pitr_local.backups(origin)] == ["full"]


def test_with_no_standby_to_read_the_job_backs_up_from_the_primary(origin, full, values):
    """A cluster's jobs ask for a standby (backup-standby=y); here, as in a cluster
    left with its primary alone, there is none: the backup is taken anyway."""
    done = pitr_local.scheduled_backup(origin, values, "diff", env_overrides={"PGBACKREST_BACKUP_STANDBY": "y"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "unable to find standby cluster" in done.stdout
    assert done.stderr.splitlines() == ["pitr-backup.sh: no standby answers: backing up from the primary"]
    assert " source=primary " in done.stdout.splitlines()[-1]
    assert [b["type"] for b in pitr_local.backups(origin)] == ["full", "diff"]


def test_verify_after_the_backup_fails_the_run_on_a_damaged_repository(origin, full, values):
    """Last in this module: it damages the repository."""
    repo = origin.host_path(contract.PITR_BACKUPS_REPO_DIR)
    label = pitr_local.backups(origin)[0]["label"]
    backup_dir = repo / "backup" / contract.PITR_STANZA / label
    victim = max((p for p in backup_dir.rglob("*") if p.is_file() and not p.name.startswith("backup.manifest")),
                 key=lambda p: p.stat().st_size)
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    done = pitr_local.scheduled_backup(origin, values, "incr")
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.startswith("pitr-backup.sh: verify repo1 failed: invalid")
    assert "pitr backup complete" not in done.stdout
