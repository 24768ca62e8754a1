"""What a user of the local cluster gets from the command line (issue 22): a
patronictl that works (`local patronictl`, with the REST API password), and
connection strings to the leader as `local up` printed them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest
import yaml

import main
from ha import APP_USER, MEMBERS, VALUES, settled
from workstation.cluster import LocalCluster

pytestmark = pytest.mark.ha

TOP = Path(main.__file__).resolve().parent


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOP / "main.py"), *args], capture_output=True, text=True, timeout=300)


def test_patronictl_and_the_printed_connection_strings_work():
    base = Path(tempfile.mkdtemp(prefix="localcluster-cli-"))
    base.chmod(0o711)  # the members run as the postgres user
    values = base / "values.yaml"
    values.write_text(yaml.safe_dump(VALUES))
    cluster = LocalCluster(base / "cluster")
    try:
        up = cli("local", "up", "--state", str(cluster.state), "--values", str(values))
        assert up.returncode == 0, up.stderr
        info = json.loads(up.stdout)
        leader, _ = settled(cluster)

        listed = cli("local", "patronictl", "--state", str(cluster.state), "--", "list", "--format", "json")
        assert listed.returncode == 0, listed.stderr
        rows = json.loads(listed.stdout)
        assert sorted(row["Member"] for row in rows) == [f"postgres-{n}" for n in range(MEMBERS)]
        assert [row["Member"] for row in rows if row["Role"] == "Leader"] == [leader.name]
        # A command that needs the REST API password (the KeyError of issue 22 without it).
        paused = cli("local", "patronictl", "--state", str(cluster.state), "--", "pause", "--wait")
        assert paused.returncode == 0, paused.stderr
        resumed = cli("local", "patronictl", "--state", str(cluster.state), "--", "resume", "--wait")
        assert resumed.returncode == 0, resumed.stderr

        assert info["port"] == leader.port and set(info["dsn_all"].split()) >= {"target_session_attrs=read-write"}
        for dsn in (info["dsn"][APP_USER], info["DATABASE_URL"]):
            with psycopg.connect(dsn, connect_timeout=10) as conn:
                assert conn.execute("SELECT session_user, pg_is_in_recovery()").fetchone() == (APP_USER, False)
        with psycopg.connect(info["dsn_all"], user=APP_USER, password=info["passwords"][APP_USER]) as conn:
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
        # Later commands take the values `local up` used; others are refused.
        assert json.loads(cli("local", "status", "--state", str(cluster.state)).stdout)["state"] == "ready"
        other = TOP / "examples" / "production.yaml"
        refused = cli("local", "restore", "--state", str(cluster.state), "--values", str(other), "--backup", "x")
        assert refused.returncode == 1 and f"--values: {other} is not {values}" in refused.stderr
    finally:
        cli("local", "down", "--state", str(cluster.state))
        shutil.rmtree(base)
