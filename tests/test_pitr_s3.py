"""Point-in-time recovery to an encrypted S3 repository over TLS, disaster
recovery from it alone, and an S3 outage: a real S3 protocol server (moto) behind Debian's nginx
for TLS (FIELD-NOTES: moto's own TLS breaks pgBackRest's uploads), one server
for the whole module, on a free loopback port below the ephemeral range."""

from __future__ import annotations

import shutil
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import boto3
import pytest
import yaml

from pgbundle import contract
from pgbundle.monitoring import alerts
from pgbundle.values.load import parse_values
from workstation import secretgen
from workstation.localpod import LocalPod
from pitr_helpers import TOP, archive_everything, cli, cli_json, commit_rows, connect, event_ids, wait_past
from s3_server import BUCKET, KEY_ID, KEY_SECRET, S3Server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """The S3 server for the whole module."""
    with S3Server(tmp_path_factory.mktemp("s3")) as server:
        yield server


@pytest.fixture(scope="module")
def setup(s3, tmp_path_factory):
    """Values with an encrypted S3 repository beside the volume one, and the
    Secrets a cluster would hold: `secrets generate` plus the S3 keys and CA."""
    base = Path(tempfile.mkdtemp(prefix="pitr-s3-"))
    base.chmod(0o711)
    values = yaml.safe_load((TOP / "examples" / "pitr.yaml").read_text())
    values["postgres"]["pitr"]["repos"]["s3"] = s3.repo_values("/cluster-a")
    values_file = base / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    secrets = base / "secrets"
    s3.write_secrets(parse_values(values), secrets)
    yield {"values": values_file, "secrets": secrets, "base": base}
    for state in base.iterdir():
        if (state / "pod.json").exists():
            LocalPod(state).stop()
    shutil.rmtree(base)


def test_disaster_recovery_from_the_encrypted_s3_repository_alone_is_exact(setup):
    values, secrets, base = setup["values"], setup["secrets"], setup["base"]
    old = base / "cluster-a"
    cli_json("up", "--state", str(old), "--secrets", str(secrets), values=values)
    origin = LocalPod(old)
    full = cli_json("backup", "--state", str(old), "--type", "full", values=values)
    assert [t["repo"] for t in full["taken"]] == [1, 2]  # the volume and S3 repositories each hold one
    commit_rows(origin, [1, 2])
    incr = cli_json("backup", "--state", str(old), "--type", "incr", values=values)
    assert incr["type"] == "incr"
    target = commit_rows(origin, [3]) + timedelta(milliseconds=100)
    wait_past(origin, target)
    commit_rows(origin, [4, 5])
    archive_everything(origin)
    # What the bucket holds is encrypted (OpenSSL's salted format), not zstd.
    client = s3_client(setup)
    wal = [key for key in bucket_keys(client) if "/archive/" in key and key.endswith(".zst")]
    assert wal and client.get_object(Bucket=BUCKET, Key=wal[0])["Body"].read(8) == b"Salted__"
    # The restore drill restores each repository in turn, the S3 one through its own archive-get.
    drill = cli("drill", "--state", str(old), values=values)
    assert drill.returncode == 0, drill.stderr
    assert "pitr drill: repo2: appdb.public.events rows=5" in drill.stdout.splitlines()
    labels = ",".join(t["label"] for t in incr["taken"])
    assert drill.stdout.splitlines()[-1].startswith(f"pitr drill ok: repos=1,2 backup={labels} "), drill.stdout

    # The namespace is lost: data, volume repository, everything but the bucket and the Secrets.
    LocalPod(old).stop()
    shutil.rmtree(old)
    new = base / "cluster-b"
    cli_json("restore", "--state", str(new), "--from", str(old), "--time", target.isoformat(),
             "--secrets", str(secrets), values=values)
    assert event_ids(LocalPod(new)) == [1, 2, 3]
    assert not old.exists()


def s3_client(setup):
    """A client of the bucket over TLS through nginx, trusting the test CA."""
    values = yaml.safe_load(setup["values"].read_text())
    endpoint = values["postgres"]["pitr"]["repos"]["s3"]["endpoint"]
    ca = setup["base"] / "s3-ca.pem"
    ca.write_bytes(secretgen.read_secret(setup["secrets"] / "s3-ca.yaml")[contract.CA_CERT_FILE])
    return boto3.client("s3", endpoint_url=f"https://{endpoint}", region_name="us-east-1", verify=str(ca),
                        aws_access_key_id=KEY_ID, aws_secret_access_key=KEY_SECRET)


def bucket_keys(client) -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="cluster-a/")
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


# What the exporter's stat_archiver collector reads (postgres_exporter v0.20.1), and the
# rows written that PostgresWalArchivingStale weighs it against (stat_database).
ARCHIVER_QUERY = ("SELECT archived_count, failed_count, extract(epoch FROM now() - last_archived_time)::float "
                  "FROM pg_stat_archiver")
WRITTEN_QUERY = "SELECT sum(tup_inserted + tup_updated + tup_deleted)::bigint FROM pg_stat_database"


def archiver(pod: LocalPod) -> dict:
    with connect(pod, "postgres") as conn:
        archived, failed, age = conn.execute(ARCHIVER_QUERY).fetchone()
        written = conn.execute(WRITTEN_QUERY).fetchone()[0]
    ready = len(list((pod.host_path(contract.PGDATA) / "pg_wal" / "archive_status").glob("*.ready")))
    return {"archived": archived, "failed": failed, "age": age, "written": written, "ready": ready}


OUTAGE_ARCHIVE_TIMEOUT = 30  # the lowest allowed, so the stale threshold is the shortest
MODES = ("sync", "async")


def start_outage_server(setup, s3, mode: str) -> dict:
    """A server archiving to S3 alone (`mode`: sync or async archive-push), with a full
    backup and ten rows archived."""
    base, secrets = setup["base"], setup["secrets"]
    values = yaml.safe_load(setup["values"].read_text())
    pitr = values["postgres"]["pitr"]
    pitr["repos"] = {"volume": {"enabled": False}, "s3": s3.repo_values(f"/cluster-outage-{mode}")}
    pitr["archiveTimeoutSeconds"] = OUTAGE_ARCHIVE_TIMEOUT
    pitr["archiveAsync"] = mode == "async"
    values_file = base / f"values-outage-{mode}.yaml"
    values_file.write_text(yaml.safe_dump(values))
    old = base / f"outage-{mode}-a"
    cli_json("up", "--state", str(old), "--secrets", str(secrets), values=values_file)
    origin = LocalPod(old)
    cli_json("backup", "--state", str(old), "--type", "full", values=values_file)
    acknowledged = list(range(1, 11))
    commit_rows(origin, acknowledged)
    archive_everything(origin)
    return {"values": values_file, "old": old, "origin": origin, "acknowledged": acknowledged,
            "before": archiver(origin)}


def test_s3_outage_keeps_commits_and_loses_nothing_once_archiving_catches_up(setup, s3):
    """S3 unavailable (503 to every request) for longer than the stale threshold: commits go on, WAL waits in
    pg_wal, both archiving alerts' inputs say so; S3 back: the backlog is archived
    and a restore from S3 alone has every acknowledged row. A synchronous and an
    asynchronous archiver live through the same outage side by side (each on its own
    server and bucket prefix), so the threshold is waited out once."""
    stale = alerts.archive_stale_seconds(OUTAGE_ARCHIVE_TIMEOUT)
    servers = {mode: start_outage_server(setup, s3, mode) for mode in MODES}

    s3.set_outage(True)
    try:
        # A synchronous archive-push retries the unreachable endpoint for minutes
        # before it fails (failed_count rises that late); the archive's age does not wait.
        deadline = time.monotonic() + stale + 900
        waiting = list(MODES)
        while waiting:
            for mode in list(waiting):
                server = servers[mode]
                origin, acknowledged = server["origin"], server["acknowledged"]
                # Each row commits in its own transaction while the repository is unreachable.
                n = acknowledged[-1] + 1
                commit_rows(origin, [n])
                acknowledged.append(n)
                if n % 60 == 0:
                    with connect(origin, "postgres") as conn:
                        conn.execute("SELECT pg_switch_wal()")
                during = server["during"] = archiver(origin)
                if during["age"] > stale and during["ready"] >= 3 and during["failed"] > server["before"]["failed"]:
                    waiting.remove(mode)
                assert time.monotonic() < deadline, (mode, server["before"], during)
            time.sleep(0.5)
        for mode, server in servers.items():
            before, during = server["before"], server["during"]
            # PostgresWalArchivingFailing: increase(failed_count) > 0. PostgresWalArchivingStale:
            # last_archive_age > archive_timeout + grace, and rows written in that time.
            assert during["archived"] == before["archived"], mode
            assert during["written"] > before["written"], mode
        # The asynchronous archiver's status files, on the data volume.
        assert (servers["async"]["origin"].host_path(contract.PGBACKREST_SPOOL_DIR) / "archive" / "postgres"
                / "out").is_dir()
    finally:
        s3.set_outage(False)

    for mode, server in servers.items():
        origin, during = server["origin"], server["during"]
        # Archiving catches up by itself, oldest segment first, and the alerts' inputs clear.
        archive_everything(origin, timeout=300)
        after = archiver(origin)
        assert after["archived"] >= during["archived"] + during["ready"], mode
        assert after["age"] < stale and after["ready"] == 0, mode

    for mode, server in servers.items():
        # The whole local state is lost; S3 alone restores every acknowledged row.
        server["origin"].stop()
        shutil.rmtree(server["old"])
        new = setup["base"] / f"outage-{mode}-b"
        cli_json("restore", "--state", str(new), "--from", str(server["old"]), "--latest",
                 "--secrets", str(setup["secrets"]), values=server["values"])
        assert event_ids(LocalPod(new)) == server["acknowledged"], mode
