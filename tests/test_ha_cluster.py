"""A real 3-member Patroni cluster on etcd, run by the local cluster runner
with the configuration every pod gets: replication, security and failovers.

The tests share one cluster and run in file order (faults after the
read-only checks). Every wait has a deadline; the failover figures are
measured in bench/failover.py, not asserted here.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import socket
import ssl
import struct
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg
import pytest
import yaml
from cryptography import x509

import main
from ha import APP_USER, MEMBERS, VALUES, settled, wait_for
from pgbundle import contract
from pgbundle.monitoring.metric_catalog import METRICS
from workstation import pki
from workstation.cluster import LocalCluster
from workstation.cluster_status import MemberStatus
from workstation.writeprobe import WriteProbe

pytestmark = pytest.mark.ha

class FastWatchCluster(LocalCluster):
    """The runner with the certificate watcher polling every second instead of every 20."""

    def environment(self, name: str) -> dict[str, str]:
        return {**super().environment(name), "PG_CERT_WATCH_INTERVAL": "1"}


@pytest.fixture(scope="module")
def started():
    """(cluster, the JSON `main.py local up` printed)."""
    base = Path(tempfile.mkdtemp(prefix="localcluster-"))
    base.chmod(0o711)  # the members run as the postgres user
    values = base / "values.yaml"
    values.write_text(yaml.safe_dump(VALUES))
    cluster = FastWatchCluster(base / "cluster")
    try:
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            assert main.main(["local", "up", "--state", str(cluster.state), "--values", str(values)]) == 0
        yield cluster, json.loads(printed.getvalue())
    finally:
        cluster.down()
        shutil.rmtree(base)


@pytest.fixture(scope="module")
def cluster(started) -> LocalCluster:
    return started[0]


def password(cluster: LocalCluster, user: str) -> str:
    return cluster.connection_info()["passwords"][user]


def connect(cluster: LocalCluster, member: MemberStatus | None = None, user: str = APP_USER,
            **options) -> psycopg.Connection:
    """TLS (verify-full) to one member, or through dsn_all to whichever accepts writes."""
    params = {"sslmode": "verify-full", "sslrootcert": str(cluster.pod.sslrootcert), "connect_timeout": 5,
              "password": password(cluster, user), "dbname": cluster.connection_info()["database"], "user": user}
    params.update(options)
    if member is None:
        return psycopg.connect(cluster.dsn_all(), autocommit=True, **params)
    return psycopg.connect(host=member.host, port=member.port, autocommit=True, **params)


def test_bootstrap_has_one_synchronous_standby_and_every_replica_streaming(cluster):
    leader, standbys = settled(cluster)
    with connect(cluster, leader, user="postgres") as conn:
        rows = conn.execute("SELECT application_name, state, sync_state FROM pg_stat_replication").fetchall()
        assert conn.execute("SHOW data_checksums").fetchone() == ("on",)
        assert conn.execute("SHOW ssl").fetchone() == ("on",)
    assert sorted(rows) == sorted(
        (m.name, "streaming", "sync" if m.role == "sync_standby" else "async") for m in standbys)
    assert len({m.timeline for m in cluster.status()}) == 1


def test_local_up_prints_the_single_pods_keys_plus_members_and_dsn_all(started):
    cluster, info = started
    assert {"host", "port", "database", "sslrootcert", "passwords", "members", "dsn_all"} <= set(info)
    leader, _ = settled(cluster)
    assert info["port"] == leader.port
    assert set(info["members"][0]) == {"name", "host", "port", "api_port", "role", "patroni_pid", "postmaster_pid"}
    assert {m["name"] for m in info["members"]} == {f"postgres-{n}" for n in range(MEMBERS)}
    assert all(m["patroni_pid"] and m["postmaster_pid"] for m in info["members"])
    assert "target_session_attrs=read-write" in info["dsn_all"]
    with connect(cluster) as conn:
        assert conn.info.port == leader.port


def test_non_tls_client_connections_are_refused_by_every_member(cluster):
    for member in cluster.status():
        with pytest.raises(psycopg.OperationalError, match="pg_hba.conf rejects connection .* no encryption"):
            connect(cluster, member, sslmode="disable")


def replication_command(cluster: LocalCluster, member: MemberStatus, sslmode: str) -> subprocess.CompletedProcess:
    conninfo = (f"host={member.host} port={member.port} user=replicator replication=true sslmode={sslmode} "
                f"sslrootcert={cluster.pod.sslrootcert} connect_timeout=5")
    secrets = cluster.pod.host_path(contract.SECRETS_DIR)
    env = {"PATH": "/usr/bin:/bin", "PGPASSWORD": (secrets / contract.REPLICATION_PASSWORD_KEY).read_text().strip()}
    return subprocess.run(["psql", "-X", "-tA", conninfo, "-c", "IDENTIFY_SYSTEM"], env=env,
                          capture_output=True, text=True, timeout=30)


def test_replication_connections_need_tls(cluster):
    leader, _ = settled(cluster)
    refused = replication_command(cluster, leader, "disable")
    assert refused.returncode != 0
    assert "rejects replication connection" in refused.stderr and "no encryption" in refused.stderr
    accepted = replication_command(cluster, leader, "verify-full")
    assert accepted.returncode == 0, accepted.stderr  # the same role over TLS is admitted


def test_replicas_serve_reads_and_refuse_writes(cluster):
    leader, standbys = settled(cluster)
    with connect(cluster, leader) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS replicated (id int PRIMARY KEY)")
        conn.execute("INSERT INTO replicated VALUES (1) ON CONFLICT DO NOTHING")
        # A synchronous commit is on the synchronous standby; wait for the other one too.
        lsn = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    for member in standbys:
        with connect(cluster, member) as conn:
            wait_for(lambda: conn.execute("SELECT pg_last_wal_replay_lsn() >= %s", (lsn,)).fetchone()[0], 30,
                     f"{member.name} replays the insert")
            assert conn.execute("SELECT id FROM replicated").fetchall() == [(1,)]
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                conn.execute("INSERT INTO replicated VALUES (2)")
        with connect(cluster, member, user="backupuser") as conn:  # the read-only role exists there too
            assert conn.execute("SELECT count(*) FROM replicated").fetchone() == (1,)


def test_every_patroni_metric_the_alerts_use_is_served_by_every_member(cluster):
    wanted = {name for name in METRICS if name.startswith("patroni_")}
    assert wanted
    for member in cluster.status():
        code, text = cluster.api(member.name, "/metrics")
        assert code == 200
        served = {line.split("{", 1)[0] for line in text.splitlines() if line and not line.startswith("#")}
        assert wanted <= served, (member.name, wanted - served)


def test_rest_api_refuses_unsafe_calls_without_credentials(cluster):
    leader, _ = settled(cluster)
    request = urllib.request.Request(f"https://{leader.host}:{leader.api_port}/switchover", method="POST",
                                     data=b'{"leader": "%s"}' % leader.name.encode())
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5, context=cluster._ssl_context())
    assert refused.value.code == 401
    assert settled(cluster)[0].name == leader.name  # nothing happened


def test_node_loss_of_the_leader_loses_no_acknowledged_write(cluster):
    old, _ = settled(cluster)
    probe = WriteProbe(cluster.dsn_all(), APP_USER, password(cluster, APP_USER)).start()
    try:
        wait_for(lambda: len(probe.acknowledged) >= 20, 30, "writes before the fault")
        fault = time.monotonic()
        cluster.kill_member(old.name)  # kill -9 of Patroni and the postmaster: the node is gone
        wait_for(lambda: probe.acknowledged_since(fault) >= 20, 90, "writes on a new leader")
    finally:
        probe.stop()
    new = cluster.leader()
    assert new is not None and new.name != old.name
    with connect(cluster, new) as conn:
        assert probe.lost(conn) == []
    print(f"node loss: no writes for {probe.longest_gap(fault):.1f}s")
    # Kubernetes restarts the pod: the old leader rejoins as a replica (pg_rewind).
    cluster.up()
    rejoined = next(m for m in settled(cluster)[1] if m.name == old.name)
    assert rejoined.state == "streaming"


def test_planned_switchover_to_the_synchronous_standby(cluster):
    old, standbys = settled(cluster)
    candidate = next(m for m in standbys if m.role == "sync_standby")
    probe = WriteProbe(cluster.dsn_all(), APP_USER, password(cluster, APP_USER)).start()
    try:
        wait_for(lambda: len(probe.acknowledged) >= 10, 30, "writes before the switchover")
        moment = time.monotonic()
        result = cluster.patronictl("switchover", "--leader", old.name, "--candidate", candidate.name, "--force")
        assert result.returncode == 0, result.stdout + result.stderr
        wait_for(lambda: probe.acknowledged_since(moment) >= 10, 60, "writes after the switchover")
    finally:
        probe.stop()
    leader, standbys = settled(cluster)
    assert leader.name == candidate.name
    assert old.name in {m.name for m in standbys}
    with connect(cluster, leader) as conn:
        assert probe.lost(conn) == []


def test_rotated_password_works_after_a_failover(cluster):
    old, _ = settled(cluster)
    secrets = cluster.pod.host_path(contract.SECRETS_DIR)
    previous = (secrets / contract.APP_PASSWORD_KEY).read_text().strip()
    rotated = "Rotated" + previous[7:]
    cluster.pod._write(secrets / contract.APP_PASSWORD_KEY, rotated.encode(), 0o600)  # the Secret changes
    cluster.kill_member(old.name, postmaster=True)  # a failover, as on node loss

    def new_password_works():
        try:
            with connect(cluster, password=rotated) as conn:
                return conn.info.port != old.port
        except psycopg.OperationalError:
            return False

    wait_for(new_password_works, 90, "the rotated password on a new leader")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        connect(cluster, password=previous)
    cluster.up()
    settled(cluster)


def local(*argv: str) -> dict:
    """`main.py local ...`, its JSON output."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main.main(["local", *argv]) == 0
    return json.loads(printed.getvalue())


def test_backup_from_the_primary_and_restore_into_it_with_the_replicas_following(cluster):
    leader, _ = settled(cluster)
    with connect(cluster, leader) as conn:
        conn.execute("CREATE TABLE restored (id int)")
        conn.execute("INSERT INTO restored SELECT generate_series(1, 100)")
    taken = local("backup", "--state", str(cluster.state))
    with connect(cluster, leader) as conn:
        conn.execute("DELETE FROM restored")
    restored = local("restore", "--state", str(cluster.state), "--values", str(cluster.state.parent / "values.yaml"),
                     "--backup", taken["set"], "--database", "appdb")
    assert restored["databases"] == ["appdb"]

    def everywhere() -> bool:
        for member in cluster.status():
            with connect(cluster, member) as conn:
                if conn.execute("SELECT count(*) FROM restored").fetchone() != (100,):
                    return False
        return True

    wait_for(everywhere, 30, "the restored rows on every member")


def served_certificate(member: MemberStatus) -> x509.Certificate:
    """The certificate a member's PostgreSQL presents (SSLRequest, then a TLS handshake)."""
    with socket.create_connection((member.host, member.port), timeout=10) as raw:
        raw.sendall(struct.pack("!ii", 8, 80877103))
        assert raw.recv(1) == b"S"
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        with context.wrap_socket(raw) as tls:
            return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))


def test_a_renewed_certificate_is_served_by_every_member_without_a_restart(cluster):
    before = {m.name: m.postmaster_pid for m in cluster.status()}
    tls = cluster.pod.host_path(contract.TLS_DIR)
    pair = pki.server_certificate(cluster.pod._ca(), contract.service_names("api-forge-prod"), ["127.0.0.1"])
    cluster.pod._write(tls / contract.TLS_KEY_FILE, pair.key_pem, 0o600)
    cluster.pod._write(tls / contract.TLS_CERT_FILE, pair.cert_pem, 0o600)
    serial = pair.certificate.serial_number
    wait_for(lambda: all(served_certificate(m).serial_number == serial for m in cluster.status()), 60,
             "the new certificate on every member")
    assert {m.name: m.postmaster_pid for m in cluster.status()} == before


def test_down_stops_everything_including_an_orphaned_postmaster(cluster):
    leader, standbys = settled(cluster)
    orphan = standbys[0]
    cluster.kill_member(orphan.name, postmaster=False)  # Patroni gone, its postmaster left running
    wait_for(lambda: cluster.patroni_pid(orphan.name) is None, 10, "Patroni killed")
    assert cluster.postmaster_pid(orphan.name) == orphan.postmaster_pid
    pids = [m.patroni_pid for m in [leader, *standbys]] + [m.postmaster_pid for m in [leader, *standbys]]
    pids.append(cluster.etcd_pid())
    assert main.main(["local", "down", "--state", str(cluster.state)]) == 0
    assert [pid for pid in pids if running(pid)] == []


def running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
