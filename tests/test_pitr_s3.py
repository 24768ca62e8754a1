"""Point-in-time recovery to an encrypted S3 repository over TLS, and disaster
recovery from it alone: a real S3 protocol server (moto) behind Debian's nginx
for TLS (FIELD-NOTES: moto's own TLS breaks pgBackRest's uploads), one server
for the whole module, on a free loopback port below the ephemeral range."""

from __future__ import annotations

import shutil
import tempfile
from datetime import timedelta
from pathlib import Path

import boto3
import pytest
import yaml

from pgbundle import contract
from pgbundle.values.load import parse_values
from workstation import secretgen
from workstation.localpod import LocalPod
from pitr_helpers import TOP, archive_everything, cli, cli_json, commit_rows, event_ids, wait_past
from s3_server import BUCKET, KEY_ID, KEY_SECRET, S3Server


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
