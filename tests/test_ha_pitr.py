"""Point-in-time recovery with Patroni: a real 3-member cluster (etcd, Patroni,
pgBackRest) run by the local cluster runner with a volume repository in its
state folder. Only the primary archives; new members are restored from the
repository when it holds a backup (pg_basebackup before that); the scheduled
backup job reads a standby through the members' pgBackRest servers; and the
archive continues on the new timeline after the leader is killed, so a
restore to a time after the failover has exactly the rows committed before it.

One cluster for the module, the tests in file order (the failover last).
"""

from __future__ import annotations

import contextlib
import io
import shutil
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import yaml

import main
from ha import VALUES, settled, wait_for
from pitr_helpers import TOP, cli_json
from workstation.cluster import LocalCluster
from workstation.cluster_status import MemberStatus

pytestmark = pytest.mark.ha

# examples/ha-pitr.yaml: every member archives to and restores from the one
# repository, on the backups volume every member mounts (ReadWriteMany).
EXAMPLE = yaml.safe_load((TOP / "examples" / "ha-pitr.yaml").read_text())["postgres"]
PITR_VALUES = {"postgres": {**VALUES["postgres"], "persistence": EXAMPLE["persistence"], "pitr": EXAMPLE["pitr"]}}
# A cluster restored from that repository: two members are enough to see the second follow.
RESTORED_VALUES = {"postgres": {**PITR_VALUES["postgres"], "replicas": 2}}


@pytest.fixture(scope="module")
def base():
    folder = Path(tempfile.mkdtemp(prefix="hapitr-"))
    folder.chmod(0o711)  # the members run as the postgres user
    yield folder
    shutil.rmtree(folder)


@pytest.fixture(scope="module")
def cluster(base) -> LocalCluster:
    values = base / "values.yaml"
    values.write_text(yaml.safe_dump(PITR_VALUES))
    cluster = LocalCluster(base / "cluster")
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            assert main.main(["local", "up", "--state", str(cluster.state), "--values", str(values)]) == 0
        settled(cluster)
        yield cluster
    finally:
        cluster.down()


def connect(cluster: LocalCluster, member: MemberStatus | None = None, user: str = "postgres") -> psycopg.Connection:
    """TLS to one member, or through dsn_all to whichever accepts writes."""
    info = cluster.connection_info()
    params = {"sslmode": "verify-full", "sslrootcert": str(cluster.pod.sslrootcert), "connect_timeout": 5,
              "password": info["passwords"][user], "dbname": info["database"], "user": user}
    if member is None:
        return psycopg.connect(cluster.dsn_all(), autocommit=True, **params)
    return psycopg.connect(host=member.host, port=member.port, autocommit=True, **params)


def commit_rows(cluster: LocalCluster, ids: list[int]) -> datetime:
    """Commit each id on the primary in its own transaction; the server's clock after the last."""
    with connect(cluster) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS public.events (id int PRIMARY KEY, "
                     "at timestamptz NOT NULL DEFAULT clock_timestamp())")
        for n in ids:
            conn.execute("INSERT INTO public.events (id) VALUES (%s)", (n,))
        return conn.execute("SELECT clock_timestamp()").fetchone()[0]


def archive_everything(cluster: LocalCluster, timeout: float = 60) -> None:
    """Switch the primary to a new WAL segment and wait until the finished one is archived."""
    with connect(cluster) as conn:
        segment = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()[0]

        def archived():
            done, failed = conn.execute("SELECT last_archived_wal, last_failed_wal FROM pg_stat_archiver").fetchone()
            return done is not None and done >= segment

        wait_for(archived, timeout, f"{segment} archived")


def log_since(cluster: LocalCluster, name: str, offset: int) -> str:
    return cluster.log_file(name).read_bytes()[offset:].decode(errors="replace")


def test_new_members_clone_the_primary_while_the_repository_holds_no_backup(cluster):
    """At bootstrap the repository is empty: the pgbackrest method fails fast and
    Patroni falls back to pg_basebackup for both replicas."""
    for name in ("postgres-1", "postgres-2"):
        log = cluster.log_file(name).read_text(errors="replace")
        assert "Error creating replica using method pgbackrest" in log
        assert "replica has been created using basebackup" in log


def test_only_the_primary_archives(cluster):
    commit_rows(cluster, [0])
    archive_everything(cluster)
    leader, standbys = settled(cluster)
    with connect(cluster, leader) as conn:
        assert conn.execute("SELECT archived_count > 0, failed_count FROM pg_stat_archiver").fetchone() == (True, 0)
    for member in standbys:
        with connect(cluster, member) as conn:
            # archive_mode on (not always): a standby hands nothing to archive_command.
            assert conn.execute("SHOW archive_mode").fetchone() == ("on",)
            assert conn.execute("SELECT archived_count, failed_count FROM pg_stat_archiver").fetchone() == (0, 0)


def test_local_backup_reads_a_standby_through_the_members_pgbackrest_servers(cluster, base):
    taken = cli_json("backup", "--state", str(cluster.state), "--type", "full", values=base / "values.yaml")
    assert (taken["type"], taken["source"], taken["backups"]) == ("full", "standby", 1)


def test_a_rebuilt_replica_is_restored_from_the_repository(cluster):
    _, standbys = settled(cluster)
    name = standbys[-1].name
    offset = cluster.log_file(name).stat().st_size
    cluster.stop_member(name)
    shutil.rmtree(cluster.data_dir(name))
    cluster.start_member(name)
    settled(cluster)
    log = log_since(cluster, name, offset)
    assert "replica has been created using pgbackrest" in log
    assert "basebackup" not in log


def test_the_archive_continues_across_a_failover_into_a_cluster_restored_to_a_time_after_it(cluster, base):
    leader, _ = settled(cluster)
    commit_rows(cluster, [1, 2])
    cluster.kill_member(leader.name)

    def new_leader():
        found = cluster.leader()
        return found if found is not None and found.name != leader.name and found.timeline > leader.timeline else None

    promoted = wait_for(new_leader, 90, "a new leader on a new timeline")
    # Committed on the new timeline only, through whichever member accepts writes.
    target = wait_for(lambda: _try_commit(cluster, [3]), 60, "writes on the new leader") + timedelta(milliseconds=100)
    with connect(cluster) as conn:
        while conn.execute("SELECT clock_timestamp() <= %s", (target,)).fetchone()[0]:
            pass
    commit_rows(cluster, [4, 5])
    archive_everything(cluster)
    cluster.down()  # the restore reads its repository's files; the CPU goes to the new cluster

    values = base / "restored.yaml"
    values.write_text(yaml.safe_dump(RESTORED_VALUES))
    restored = LocalCluster(base / "restored")
    try:
        info = cli_json("restore", "--state", str(restored.state), "--from", str(cluster.state),
                        "--time", target.isoformat(), values=values)
        # The first member bootstrapped from the repository (Patroni's custom bootstrap), the other follows.
        log = restored.log_file("postgres-0").read_text(errors="replace")
        assert "Running custom bootstrap script" in log and "pitr-replica.sh" in log
        leader, standbys = settled(restored, members=2)
        assert leader.name == "postgres-0" and [m.state for m in standbys] == ["streaming"]
        with psycopg.connect(restored.dsn_all(), user="postgres", password=info["passwords"]["postgres"],
                             dbname=info["database"], sslmode="verify-full", sslrootcert=info["sslrootcert"],
                             autocommit=True) as conn:
            assert [r[0] for r in conn.execute("SELECT id FROM public.events ORDER BY id")] == [0, 1, 2, 3]
        # The restore followed the history the new primary archived, and promoted past it.
        assert leader.timeline > promoted.timeline
    finally:
        restored.down()


def _try_commit(cluster: LocalCluster, ids: list[int]) -> datetime | None:
    try:
        return commit_rows(cluster, ids)
    except psycopg.OperationalError:
        return None
