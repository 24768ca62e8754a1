"""Point-in-time recovery on this machine: `local backup --type full|diff|incr`,
`local restore-point NAME`, `local restore --state NEW --from OLD` to a
target (workstation/pitr_targets.py: --time, --latest, --name, --label),
`local verify` and `local drill` (the restore drill CronJob's container against
this state's repositories).

Backups run the pod's own pitr.sh, a restore the printed restore Job's
pitr-restore.sh (pgBackRest with the container's settings, paths mapped into
the state folder). A restore never touches the old state: it reads the old
state's volume repository (a single pod's or a cluster's; or, when the old state is gone, the S3 repository
the values name), restores into the new state's data folder and starts the new
pod, which replays WAL to the target and is promoted before its start script
runs init.sql.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

from pgbundle import contract
from pgbundle.manifests import container
from pgbundle.patroni import restore as patroni_restore
from pgbundle.pgconf.env import PORT_ENV
from pgbundle.pgconf.pgbackrest import (pg_host_env, pg_host_port_env, pg_option_env, repo_numbers,
                                        restore_target_environment, volume_repo_dir)
from pgbundle.values.models import ChartValues
from workstation.backup_local import install_client_certificate
from workstation.cluster import LocalCluster
from workstation.cluster_members import POD_FOLDER, ClusterMembers
from workstation.cluster_status import ClusterStatus
from workstation.localpod import LocalPod
from workstation import upgrade_local
from workstation.pitr_targets import RestoreTarget
from workstation.pod_state import LocalPodError, Synthesize

BACKUP_TYPES = ("full", "diff", "incr")
# Secret folders a restored pod takes over from the old state: the passphrase
# (and passwords) and the S3 keys the repositories were written with.
CARRIED_SECRETS = (contract.SECRETS_DIR, contract.PITR_S3_SECRET_DIR, contract.PITR_S3_CA_DIR)


# PostgreSQL's words when the archived WAL ends before any record past the target.
RECOVERY_SHORT = "recovery ended before configured recovery target was reached"


class PitrRequestError(Exception):
    """The request cannot be right (PITR off, a target outside the backups); nothing was changed."""


class PitrFailed(Exception):
    """pgBackRest failed; the message is its error line."""


def _pitr_script(pod: LocalPod) -> str:
    return str(pod.host_path(f"{contract.SCRIPTS_DIR}/pitr.sh"))


def pgbackrest(pod: LocalPod, *args: str) -> str:
    """Run pgBackRest as the pod's user with its settings; its stdout, or PitrFailed with the error line."""
    done = pod.run(["bash", _pitr_script(pod), *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise PitrFailed(_error_line(done, f"pgbackrest {args[0]}"))
    return done.stdout


def _require_pitr(values: ChartValues) -> None:
    if not values.postgres.pitr.enabled:
        raise PitrRequestError("postgres.pitr.enabled is false: there is no pgBackRest repository; turn it on "
                               "(examples/pitr.yaml) or leave out --type/--from")


def _info(pod: LocalPod) -> list[dict]:
    return json.loads(pgbackrest(pod, "info", "--output=json") or "[]")


def backups(pod: LocalPod, info: list[dict] | None = None) -> list[dict]:
    """Every backup in every repository, oldest first (pgBackRest's `info` entries)."""
    found = _info(pod) if info is None else info
    return sorted((b for stanza in found for b in stanza.get("backup", [])), key=lambda b: b["timestamp"]["stop"])


def backup_major(info: list[dict], entry: dict) -> int:
    """The PostgreSQL major a backup was taken of (the stanza's history of databases:
    a major upgrade adds one, `stanza-upgrade`)."""
    key = (entry["database"]["id"], entry["database"]["repo-key"])
    (version,) = [db["version"] for stanza in info for db in stanza.get("db", []) if (db["id"], db["repo-key"]) == key]
    return int(version)


def backup(pod: LocalPod, values: ChartValues, kind: str) -> dict:
    """A physical backup to every repository, each expired by the retention afterwards."""
    _require_pitr(values)
    if pod.pid() is None:
        raise LocalPodError(f"not running: `local up --state {pod.state}` first")
    taken = []
    for repo in repo_numbers(values.postgres.pitr).values():
        pgbackrest(pod, "backup", f"--type={kind}", f"--repo={repo}")
        newest = [b for b in backups(pod) if b["database"]["repo-key"] == repo][-1]
        taken.append({"repo": repo, "label": newest["label"], "start": _iso(newest["timestamp"]["start"]),
                      "stop": _iso(newest["timestamp"]["stop"])})
    return {"type": kind, "taken": taken, "backups": len(backups(pod))}


def scheduled_backup(pod: LocalPod, values: ChartValues, kind: str = "full",
                     env_overrides: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the PITR backup CronJob's container (postgres-pitr-full, or -diff for
    `diff`/`incr`) as the cluster runs it: its command and environment from the
    synthesized CronJob, paths mapped into the state folder, the database pod's
    pgBackRest server at localhost and the port `local up` recorded, the client
    certificate issued for the read-only role from the pod's CA. The job's own
    lock and conf.d folders are its /tmp, not the database container's."""
    _require_pitr(values)
    port = pod.recorded().get("pgbackrest_port")
    if pod.pid() is None or port is None:
        raise LocalPodError(f"not running: `local up --state {pod.state}` first")
    # PGPORT is the database pod's (pgBackRest's server connects with it): the local pod's own port.
    return _run_backup_job(pod, values, kind, {pg_host_env(1): "localhost", pg_host_port_env(1): str(port),
                                               PORT_ENV: str(pod.recorded()["port"]), **(env_overrides or {})})


def cluster_scheduled_backup(cluster: ClusterStatus, values: ChartValues, kind: str = "full",
                             env_overrides: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The same job against a local cluster: pg1..pgN are the members' pgBackRest
    servers (at localhost, the ports `local up` recorded) with each member's own
    data folder, port and socket; pgBackRest reads the backup from a standby."""
    _require_pitr(values)
    members = cluster.recorded()["members"]
    if cluster.leader() is None:
        raise LocalPodError(f"no member leads: `local up --state {cluster.state}` first")
    env: dict[str, str] = {}
    for index, (name, ports) in enumerate(members.items()):
        if ports.get("pgbackrest_port") is None:
            raise LocalPodError(f"member {name} runs no pgbackrest server: `local down` and `local up` again")
        host = {"PATH": str(cluster.data_dir(name)), "PORT": str(ports["port"]),
                "SOCKET_PATH": str(cluster.member_dir(name) / "run")}
        env.update({pg_option_env(index + 1, option): value for option, value in host.items()})
        env.update({pg_host_env(index + 1): "localhost", pg_host_port_env(index + 1): str(ports["pgbackrest_port"])})
        if index == 0:  # pitr-env.sh derives pg1's settings from these
            env.update({"PGDATA": host["PATH"], PORT_ENV: host["PORT"], "PG_RUN_DIR": host["SOCKET_PATH"]})
    return _run_backup_job(cluster.pod, values, kind, {**env, **(env_overrides or {})})


def _run_backup_job(pod: LocalPod, values: ChartValues, kind: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    name = contract.PITR_FULL_CRONJOB if kind == "full" else contract.PITR_DIFF_CRONJOB
    cronjob = pod.manifests().find("CronJob", name)
    if cronjob is None:
        raise PitrRequestError(f"CronJob {name} is not in {pod.dist}")
    job = container(cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"], contract.PITR_BACKUP_CONTAINER)
    install_client_certificate(pod, values.postgres.read_only_username)
    tmp = pod.host_path(contract.TMP_DIR)
    pod._mkdir(tmp)
    env = {**pod.host_environment(job), "PATH": pod.environment()["PATH"], "HOME": str(tmp), **env}
    return subprocess.run(pod.host_command(job), env=env, cwd=pod.state, capture_output=True, text=True,
                          start_new_session=True, **pod.user_options())


def cluster_backup(cluster: ClusterStatus, values: ChartValues, kind: str) -> dict:
    """`local backup --type` on a cluster: the scheduled job's backup (from a standby
    when one answers), each repository expired and verified; what it took."""
    done = cluster_scheduled_backup(cluster, values, kind)
    if done.returncode != 0:
        lines = (done.stdout + done.stderr).splitlines()
        errors = [line for line in lines if "ERROR:" in line or line.startswith("pitr-backup.sh:")] or lines[-1:]
        raise PitrFailed(f"pitr-backup.sh {kind}: {(errors or [f'exit status {done.returncode}'])[0].strip()}")
    summary = done.stdout.strip().splitlines()[-1]
    found = backups(cluster.pod)
    return {"type": kind, "source": re.search(r"source=(\w+)", summary).group(1),
            "label": found[-1]["label"], "backups": len(found)}


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat()


def _source(old: LocalPod, new: LocalPod, values: ChartValues) -> tuple[LocalPod, int, list[str]]:
    """Which pod's settings read the repository, its number, and options pointing at it:
    the old state's volume repository while the old state exists, else the S3 one."""
    repos = repo_numbers(values.postgres.pitr)
    if "volume" in repos and old.dist.is_dir() and old.host_path(volume_repo_dir(values.postgres.pitr)).is_dir():
        n = repos["volume"]
        return old, n, [f"--repo={n}", f"--repo{n}-path={old.host_path(volume_repo_dir(values.postgres.pitr))}"]
    if "s3" in repos:
        return (old if old.dist.is_dir() else new), repos["s3"], [f"--repo={repos['s3']}"]
    raise PitrRequestError(f"--from {old.state}: no volume repository there and the values name no S3 repository")


def _check_target(target: RestoreTarget, candidates: list[dict], repo: int) -> str:
    """Refuse a target no backup in the repository can reach; the label of the backup restored from."""
    if not candidates:
        raise PitrRequestError(f"repo{repo} holds no backup to restore")
    if target.label is not None:
        chosen = [b for b in candidates if b["label"] == target.label]
        if not chosen:
            raise PitrRequestError(f"--label {target.label}: repo{repo} has no such backup; it has "
                                   + ", ".join(b["label"] for b in candidates))
        if target.moment is not None and chosen[0]["timestamp"]["stop"] >= target.moment.timestamp():
            raise PitrRequestError(f"{target.describe()} is before the end of backup {target.label} "
                                   f"({_iso(chosen[0]['timestamp']['stop'])}): give a later time or an older --label")
        return target.label
    if target.moment is not None:
        usable = [b for b in candidates if b["timestamp"]["stop"] < target.moment.timestamp()]
        if not usable:
            raise PitrRequestError(f"{target.describe()} is before any restorable point: the oldest backup "
                                   f"({candidates[0]['label']}) ends at {_iso(candidates[0]['timestamp']['stop'])}")
        return usable[-1]["label"]
    return candidates[-1]["label"]


def _short_recovery(target: RestoreTarget, label: str) -> str:
    """What it means when recovery ran out of archived WAL before the target."""
    if target.kind == "name":
        return (f"{target.describe()}: the archived WAL after backup {label} holds no restore point of that name: it "
                "was never created (or not yet archived), or it is older than that backup (give an older --label)")
    return f"{target.describe()}: the archive holds no commit after it, so recovery cannot tell it reached it; use --latest"


def _pod_state(state: Path) -> Path:
    """The state folder holding a state's repository and Secrets: a cluster's are in
    the members' shared pod folder."""
    return state / POD_FOLDER if ClusterMembers.holds_cluster(state) else state


def restore(new: LocalPod, old_state: Path, values: ChartValues, synthesize: Synthesize, *,
            target: RestoreTarget, secrets_dir: Path | None, port: int | None = None) -> dict:
    """Restore the old state's archive into the new state with the restore Job's
    script (pitr-restore.sh) and start it; the connection details as `local up` prints them."""
    _require_pitr(values)
    old = LocalPod(_pod_state(old_state))
    if new.state == old.state:
        raise PitrRequestError("--state and --from are the same folder: restore into a new state")
    if new.state.exists() and any(new.state.iterdir()):
        raise PitrRequestError(f"--state {new.state} is not empty: restore into a new folder")
    if not old.state.exists() and secrets_dir is None:
        raise PitrRequestError(f"--from {old.state} does not exist: pass --secrets DIR with the lost cluster's "
                               "Secrets (the repository passphrase and the S3 keys)")
    created = not new.state.exists()
    try:
        new.prepare(values, synthesize, secrets_dir)
        if secrets_dir is None:
            _carry_secrets(old, new)
        reader, repo, options = _source(old, new, values)
        info = _info(reader)
        candidates = [b for b in backups(reader, info) if b["database"]["repo-key"] == repo]
        label = _check_target(target, candidates, repo)
        # The new state runs on the major of the backup it restores (a major upgrade adds one).
        upgrade_local.run_on(new, backup_major(info, next(b for b in candidates if b["label"] == label)))
        archive_get = " ".join(["pgbackrest", *options, "archive-get", "%f", '"%p"'])
        # The chosen backup is named to pgBackRest: left to pick by time, it cuts the target
        # to whole seconds, so in the second a backup ends it takes another one (after an
        # upgrade, of the old major, under the new major's binaries) or none at all.
        # As the new pod's user with its settings, from the source repository only.
        done = new.run(["bash", str(new.host_path(f"{contract.SCRIPTS_DIR}/pitr-restore.sh")), *options,
                        f"--recovery-option=restore_command={archive_get}"],
                       extra_env=restore_target_environment(target.kind, target.recovery_target(), label,
                                                              in_place=False),
                       capture_output=True, text=True)
        if done.returncode != 0:
            raise PitrFailed(_error_line(done, "pgbackrest restore"))
        try:
            return new.start(port=port)
        except LocalPodError:
            new.stop()
            if RECOVERY_SHORT in new.log_file.read_text(errors="replace"):
                raise PitrRequestError(_short_recovery(target, label)) from None
            raise
    except BaseException:
        # Changes nothing: a new state made here goes again.
        if created:
            shutil.rmtree(new.state, ignore_errors=True)
        raise


def restore_point(pod: LocalPod, values: ChartValues, name: str, timeout: float = 60) -> dict:
    """pg_create_restore_point(name) as the superuser, then a WAL switch, waiting
    until the segment holding it is archived: restorable at once."""
    _require_pitr(values)
    if pod.pid() is None:
        raise LocalPodError(f"not running: `local up --state {pod.state}` first")
    sql = ("SELECT lsn, pg_walfile_name(lsn), clock_timestamp(), pg_walfile_name(pg_switch_wal()) "
           f"FROM pg_create_restore_point('{name}') AS lsn")  # the name's grammar has no quote
    row = _psql(pod, sql).split("|")
    segment = row[3]
    deadline = time.monotonic() + timeout
    while (_psql(pod, "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver") or "") < segment:
        if time.monotonic() > deadline:
            raise PitrFailed(f"restore point {name} created at {row[0]}, but WAL segment {segment} was not archived "
                             f"within {timeout:.0f} s: see PostgresWalArchivingFailing in docs/runbook.md")
        time.sleep(0.2)
    return {"name": name, "lsn": row[0], "time": row[2], "archived_wal": segment}


def _psql(pod: LocalPod, sql: str) -> str:
    env = pod.environment()
    done = pod.run(["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", env["PG_RUN_DIR"], "-p", env["PGPORT"],
                    "-U", contract.SUPERUSER_ROLE, "-d", "postgres", "-c", sql], capture_output=True, text=True)
    if done.returncode != 0:
        raise PitrFailed(_error_line(done, "psql"))
    return done.stdout.strip()


def _error_line(done: subprocess.CompletedProcess, what: str) -> str:
    lines = (done.stdout + done.stderr).splitlines()
    errors = [line for line in lines if "ERROR:" in line] or lines[-1:] or [f"exit status {done.returncode}"]
    return f"{what}: {errors[0].split('ERROR: ', 1)[-1].strip()}"


def restore_cluster(new: LocalCluster, old_state: Path, values: ChartValues, synthesize: Synthesize, *,
                    target: RestoreTarget) -> dict:
    """Restore the old state's archive into a new cluster (to `target`) and start it. Its first member bootstraps from the
    repository (Patroni's custom bootstrap method, with the settings
    pitr-restore-manifest prints): pitr-replica.sh restores the
    newest backup that ends before the target, Patroni writes the recovery
    settings (WAL from the source repository, to the target, then promote) and
    runs the post-bootstrap hook once the member is promoted; the other members
    clone it. It archives to its own repository from then on."""
    _require_pitr(values)
    old = LocalPod(_pod_state(old_state))
    if new.state in (old.state, old_state.resolve()):
        raise PitrRequestError("--state and --from are the same folder: restore into a new state")
    if new.state.exists() and any(new.state.iterdir()):
        raise PitrRequestError(f"--state {new.state} is not empty: restore into a new folder")
    if not old.state.exists():
        raise PitrRequestError(f"--from {old_state} does not exist")
    created = not new.state.exists()
    try:
        new.prepare(values, synthesize)
        _carry_secrets(old, new.pod)
        reader, repo, options = _source(old, new.pod, values)
        label = _check_target(target, [b for b in backups(reader) if b["database"]["repo-key"] == repo], repo)
        archive_get = " ".join(["pgbackrest", *options, "archive-get", "%f", '"%p"'])
        script = new.pod.host_path(f"{contract.SCRIPTS_DIR}/pitr-replica.sh")
        new.bootstrap_with(patroni_restore.bootstrap_method(
            command=" ".join([str(script), *options]), restore_command=archive_get,
            # The label as given, as the printed manifest has it: without one pgBackRest
            # picks the backup (_check_target made sure one can reach the target).
            target=patroni_restore.Target(target.kind, target.recovery_target(), target.label)))
        try:
            return new.up()
        except LocalPodError:
            if RECOVERY_SHORT in new.log_file(contract.BOOTSTRAP_MEMBER).read_text(errors="replace"):
                raise PitrRequestError(_short_recovery(target, label)) from None
            raise
    except BaseException:
        # Changes nothing: a new state made here goes again.
        if created:
            new.down()
            shutil.rmtree(new.state, ignore_errors=True)
        raise


def _carry_secrets(old: LocalPod, new: LocalPod) -> None:
    for folder in CARRIED_SECRETS:
        source = old.host_path(folder)
        if source.is_dir():
            for item in source.iterdir():
                if item.is_file():
                    new._write(new.host_path(folder) / item.name, item.read_bytes(), 0o600)


def verify(pod: LocalPod, values: ChartValues) -> dict:
    """`pgbackrest verify` of every repository (backups and WAL against their checksums).
    pgBackRest (2.45, and 2.55.1 still) ends with status 0 whatever it found: its summary says `status: error`."""
    _require_pitr(values)
    repos = list(repo_numbers(values.postgres.pitr).values())
    for repo in repos:
        text = pgbackrest(pod, "verify", f"--repo={repo}")
        if re.search(r"^\s*status: error", text, flags=re.M):
            findings = re.findall(r"INFO: ((?:invalid|missing)[^\n]*)", text)
            raise PitrFailed(f"pgbackrest verify repo{repo}: {findings[0] if findings else 'status: error'}")
    return {"verified": repos}


def drill(pod: LocalPod, values: ChartValues) -> str:
    """Run the restore drill CronJob's container as the cluster runs it: its command
    and environment from the synthesized CronJob, paths mapped into the state folder
    (its scratch volume and /tmp are folders there, which the script empties again).
    It reads this state's repositories only; the pod need not run. Its log, the
    last line `pitr drill ok: ...`; PitrFailed with its `pitr drill failed: ...` line."""
    _require_pitr(values)
    cronjob = pod.manifests().find("CronJob", contract.PITR_DRILL_CRONJOB)
    if cronjob is None:
        raise PitrRequestError(f"CronJob {contract.PITR_DRILL_CRONJOB} is not in {pod.dist}: "
                               "postgres.pitr.drill.enabled is false")
    job = container(cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"], contract.PITR_DRILL_CONTAINER)
    tmp = pod.host_path(contract.TMP_DIR)
    for folder in (tmp, pod.host_path(contract.PITR_DRILL_DIR)):
        pod._mkdir(folder)
    env = {**pod.host_environment(job), "PATH": pod.environment()["PATH"], "HOME": str(tmp)}
    done = subprocess.run(pod.host_command(job), env=env, cwd=pod.state, capture_output=True, text=True,
                          start_new_session=True, **pod.user_options())
    if done.returncode != 0:
        failed = [line for line in done.stderr.splitlines() if line.startswith("pitr drill failed: ")]
        raise PitrFailed(failed[-1] if failed else
                         f"pitr drill exited with status {done.returncode}: {done.stderr.strip()[-500:]}")
    return done.stdout
