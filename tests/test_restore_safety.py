"""A failed restore loses nothing it did not restore (issue 19), on real PostgreSQL.

With one job (the default) each database is restored in one transaction: a
restore that fails, or is killed half-way, leaves every row and every privilege
as they were. A parallel restore that the server has no connections for is
refused before --clean drops anything.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from conftest import connect
from pgbundle.values.load import parse_values
from workstation.backup_local import LocalJobError, backup, container_process, restore, restore_container

VALUES = {"postgres": {"config": {"maxConnections": 10}}}
TABLES = [f"t{n:02}" for n in range(30)]
STATE_SQL = """
SELECT c.relname, pg_get_userbyid(c.relowner), coalesce(c.relacl::text, ''),
       (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM app.%I', c.relname), false, true, '')))[1]::text
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'app' AND c.relkind = 'r' ORDER BY 1
"""


@pytest.fixture(scope="module")
def pod(pods):
    pod = pods("restore-safety", VALUES)
    with connect(pod, "appuser") as conn:
        conn.execute("CREATE TABLE r (id int PRIMARY KEY, payload text)")
        conn.execute("INSERT INTO r SELECT g, md5(g::text) FROM generate_series(1, 100) g")
        for table in TABLES:
            conn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY)")
            conn.execute(f"INSERT INTO {table} SELECT generate_series(1, 200)")
        # Random text, so that its COPY takes long enough to be caught half-way.
        conn.execute("CREATE TABLE big (id int PRIMARY KEY, payload text)")
        conn.execute("INSERT INTO big SELECT g, repeat(md5(random()::text), 8) FROM generate_series(1, 300000) g")
    return pod


@pytest.fixture(scope="module")
def taken(pod) -> str:
    return backup(pod)["set"]


@pytest.fixture
def changed_since(pod, taken):
    """Rows changed after the backup, so that 'as it was' differs from the backup."""
    with connect(pod, "appuser") as conn:
        conn.execute("DELETE FROM r WHERE id > 90")
        conn.execute("INSERT INTO t05 SELECT generate_series(1001, 1010) ON CONFLICT DO NOTHING")
    yield
    with connect(pod, "postgres") as conn:
        conn.execute("DROP VIEW IF EXISTS app.blocks_r")
    restore(pod, restore_container(parse_values(VALUES), taken))  # back to the backup for the next test


def state(pod) -> dict:
    with connect(pod, "postgres") as conn:
        tables = conn.execute(STATE_SQL).fetchall()
        schema = conn.execute("SELECT nspacl::text FROM pg_namespace WHERE nspname = 'app'").fetchone()
    with connect(pod, "appuser") as conn:  # appuser still reads and writes its schema
        conn.execute("INSERT INTO r VALUES (-1, 'probe'); DELETE FROM r WHERE id = -1")
    return {"tables": tables, "schema": schema}


def test_more_jobs_than_free_connections_are_refused_before_anything_is_dropped(pod, taken, changed_since):
    before = state(pod)
    with pytest.raises(LocalJobError, match=r"^restore failed: setup: RESTORE_JOBS=8 needs 9 connections but the "
                                            r"server has [0-9] free .*nothing was changed$"):
        restore(pod, restore_container(parse_values(VALUES), taken, jobs=8))
    assert state(pod) == before


def test_a_failed_restore_leaves_the_database_as_it_was(pod, taken, changed_since):
    with connect(pod, "postgres") as conn:  # not in the dump: --clean cannot drop app.r
        conn.execute("CREATE VIEW app.blocks_r AS SELECT id FROM app.r")
    before = state(pod)
    with pytest.raises(LocalJobError, match=r"^restore failed: database appdb: restore: .*cannot drop table app\.r "
                                            r"because other objects depend on it.*; appdb is as it was \(the "
                                            r"transaction was rolled back\)$"):
        restore(pod, restore_container(parse_values(VALUES), taken))
    assert state(pod) == before
    assert dict((t, n) for t, _, _, n in before["tables"])["r"] == "90"


def test_a_restore_killed_half_way_leaves_the_database_as_it_was(pod, taken, changed_since):
    before = state(pod)
    command, env, user = container_process(pod, restore_container(parse_values(VALUES), taken))
    job = subprocess.Popen(command, env=env, cwd=pod.state, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True, **user)
    with connect(pod, "postgres") as conn:
        deadline = time.monotonic() + 60
        while not conn.execute("SELECT 1 FROM pg_stat_activity WHERE application_name = 'postgres-restore' "
                               "AND query LIKE 'COPY app.big %'").fetchone():
            assert job.poll() is None and time.monotonic() < deadline, "the restore never reached app.big"
            time.sleep(0.01)
        os.killpg(job.pid, signal.SIGKILL)
        job.wait()
        # The server rolls the transaction back once it sees the client gone.
        while conn.execute("SELECT 1 FROM pg_stat_activity WHERE application_name = 'postgres-restore'").fetchone():
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert state(pod) == before


def test_a_failed_parallel_restore_says_what_it_may_have_left(pod, taken, changed_since):
    with connect(pod, "postgres") as conn:
        conn.execute("CREATE VIEW app.blocks_r AS SELECT id FROM app.r")
    with pytest.raises(LocalJobError, match=r"; appdb may be partly restored \(a parallel restore is not atomic\): "
                                            r"restore it again, with --jobs 1 for all or nothing$"):
        restore(pod, restore_container(parse_values(VALUES), taken, jobs=2))
