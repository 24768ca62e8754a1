"""A Patroni primary's first moments with point-in-time recovery, on a real
3-member cluster (etcd, Patroni, pgBackRest) with the volume repository of
examples/ha-pitr.yaml: a repository that cannot be written when the cluster
bootstraps gets its stanza once it can, with nothing restarted (patroni-hook.sh
retries in the background); after a restart of the primary its first commit on
a quiet database is archived within archive_timeout (the hook wakes the
checkpointer).

One cluster for the module, the tests in file order.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
import yaml

import main
from ha import wait_for
from pgbundle import contract
from pgbundle.values.load import parse_values
from test_ha_pitr import PITR_VALUES, commit_rows, connect
from workstation.cluster import LocalCluster
from workstation.cluster_status import MemberStatus, leader_of

pytestmark = pytest.mark.ha

ARCHIVE_TIMEOUT = 30
# Asynchronous: in synchronous mode Patroni's reload when it names the synchronous
# standby also wakes the checkpointer, and would hide a hook that does not.
VALUES = {"postgres": {**PITR_VALUES["postgres"],
                       "ha": {**PITR_VALUES["postgres"]["ha"], "synchronousMode": False},
                       "pitr": {**PITR_VALUES["postgres"]["pitr"], "archiveTimeoutSeconds": ARCHIVE_TIMEOUT}}}
# pitr_retry_seconds in constructs/scripts/pitr/pitr-env.sh.
RETRY_SECONDS = 30
READY = "patroni-hook.sh: primary: pgBackRest stanza ready: archiving goes on"


@pytest.fixture(scope="module")
def cluster() -> LocalCluster:
    """Bootstrapped while the backups volume, where the repository goes, is read-only to the members."""
    base = Path(tempfile.mkdtemp(prefix="hapitr-start-"))
    base.chmod(0o711)  # the members run as the postgres user
    cluster = LocalCluster(base / "cluster")
    try:
        cluster.prepare(parse_values(VALUES), main.synthesize)
        cluster.pod.host_path(contract.BACKUP_DIR).chmod(0o500)
        cluster.up()
        yield cluster
    finally:
        cluster.down()
        shutil.rmtree(base)


def leader(cluster: LocalCluster) -> MemberStatus:
    """The leader, once every other member streams from it."""
    return leader_of(cluster.wait_healthy())


def stanza_file(cluster: LocalCluster) -> Path:
    return cluster.pod.host_path(contract.PITR_BACKUPS_REPO_DIR) / "archive" / contract.PITR_STANZA / "archive.info"


def make_repository_writable(cluster: LocalCluster) -> None:
    """What the operator fixes (a volume's ownership, an endpoint): the members may write the repository."""
    cluster.pod.host_path(contract.BACKUP_DIR).chmod(0o700)
    # A try every RETRY_SECONDS; stanza-create itself takes seconds on a loaded machine.
    log = cluster.log_file(contract.BOOTSTRAP_MEMBER)
    wait_for(lambda: READY in log.read_text(errors="replace"), RETRY_SECONDS + 60, "the stanza")
    assert stanza_file(cluster).exists()


def retries_failed(log: str, failed: str) -> int:
    return log.count(failed) - log.count("patroni-hook.sh: primary: running init.sql")


def test_a_repository_not_writable_at_bootstrap_gets_its_stanza_without_a_restart(cluster):
    first = leader(cluster)
    assert first.name == contract.BOOTSTRAP_MEMBER
    log = cluster.log_file(first.name)
    failed = "patroni-hook.sh: primary: pgBackRest stanza-create failed: archiving waits (WAL stays in pg_wal); " \
             f"retrying in {RETRY_SECONDS}s"
    assert not stanza_file(cluster).exists()
    # Each run of the hook (post_bootstrap, on_start) tries once; a failed try
    # beyond those is the background retry's.
    wait_for(lambda: retries_failed(log.read_text(errors="replace"), failed) >= 1, RETRY_SECONDS + 60,
             "a failed retry")

    make_repository_writable(cluster)
    assert log.read_text(errors="replace").count(READY) == 1
    # Nothing restarted, nobody failed over.
    after = leader(cluster)
    assert (after.name, after.patroni_pid, after.postmaster_pid, after.timeline) == \
        (first.name, first.patroni_pid, first.postmaster_pid, first.timeline)


def test_a_restarted_quiet_primarys_first_commit_is_archived_within_archive_timeout(cluster):
    """After a start PostgreSQL's checkpointer sleeps a whole checkpoint_timeout
    (15 min) before it looks at archive_timeout. A promotion's checkpoint or a
    new replica's pg_basebackup wakes it (measured: a bootstrapped primary's
    first commit was archived in time without the hook's wake); a restart of the
    primary (`patronictl restart`: neither promoted nor cloned) has only the
    hook's reload. No segment switch here."""
    if not stanza_file(cluster).exists():  # run alone
        make_repository_writable(cluster)
    first = leader(cluster)
    log = cluster.log_file(first.name)
    offset = log.stat().st_size
    scope = yaml.safe_load(cluster.config_file(first.name).read_text())["scope"]
    restarted = cluster.patronictl("restart", scope, first.name, "--force")
    assert restarted.returncode == 0, restarted.stderr
    after = leader(cluster)
    assert after.name == first.name and after.postmaster_pid != first.postmaster_pid
    wait_for(lambda: "patroni-hook.sh: primary: done" in log.read_bytes()[offset:].decode(errors="replace"), 60,
             "the hook on_restart")

    commit_rows(cluster, [1])
    with connect(cluster) as conn:
        segment = conn.execute("SELECT pg_walfile_name(pg_current_wal_lsn())").fetchone()[0]

        def archived():
            return (conn.execute("SELECT last_archived_wal FROM pg_stat_archiver").fetchone()[0] or "") >= segment

        # archive_timeout, and the push (seconds) on a loaded machine.
        wait_for(archived, ARCHIVE_TIMEOUT + 60, f"{segment} archived", interval=0.5)
