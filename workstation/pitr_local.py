"""Point-in-time recovery on this machine: `local backup --type full|diff|incr`
and `local restore --state NEW --from OLD --time T | --latest`.

Both run the pod's own pitr.sh (pgBackRest with the container's settings,
paths mapped into the state folder). A restore never touches the old state: it
reads the old state's volume repository (a single pod's or a cluster's; or,
when the old state is gone, the S3 repository the values name), restores into
the new state's data folder and starts the new pod, which replays WAL to the
target and is promoted before its start script runs init.sql.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path

from pgbundle import contract
from pgbundle.manifests import container
from pgbundle.pgconf.env import PORT_ENV
from pgbundle.pgconf.pgbackrest import pg_host_env, pg_host_port_env, pg_option_env, repo_numbers, volume_repo_dir
from pgbundle.values.models import ChartValues
from workstation.backup_local import install_client_certificate
from workstation.cluster import LocalCluster
from workstation.cluster_members import POD_FOLDER, ClusterMembers
from workstation.cluster_status import ClusterStatus
from workstation.localpod import LocalPod
from workstation.pod_state import LocalPodError, Synthesize

BACKUP_TYPES = ("full", "diff", "incr")
# Secret folders a restored pod takes over from the old state: the passphrase
# (and passwords) and the S3 keys the repositories were written with.
CARRIED_SECRETS = (contract.SECRETS_DIR, contract.PITR_S3_SECRET_DIR, contract.PITR_S3_CA_DIR)


# Patroni's name of the custom bootstrap method a restored cluster's first member runs.
BOOTSTRAP_METHOD = "pgbackrest"
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
        lines = (done.stdout + done.stderr).splitlines()
        errors = [line for line in lines if "ERROR:" in line] or lines[-1:] or [f"exit status {done.returncode}"]
        raise PitrFailed(f"pgbackrest {args[0]}: {errors[0].split('ERROR: ', 1)[-1].strip()}")
    return done.stdout


def _require_pitr(values: ChartValues) -> None:
    if not values.postgres.pitr.enabled:
        raise PitrRequestError("postgres.pitr.enabled is false: there is no pgBackRest repository; turn it on "
                               "(examples/pitr.yaml) or leave out --type/--from")


def backups(pod: LocalPod) -> list[dict]:
    """Every backup in every repository, oldest first (pgBackRest's `info` entries)."""
    found = json.loads(pgbackrest(pod, "info", "--output=json") or "[]")
    return sorted((b for stanza in found for b in stanza.get("backup", [])), key=lambda b: b["timestamp"]["stop"])


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


def parse_target(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise PitrRequestError(f"--time {text!r} is not a time: use ISO 8601 with a zone, such as "
                               "2026-12-05T14:03:00+00:00") from None
    if moment.tzinfo is None:
        raise PitrRequestError(f"--time {text!r} has no time zone: add one, such as +00:00")
    if moment > datetime.now(timezone.utc):
        raise PitrRequestError(f"--time {text} is in the future: the archive ends now; use --latest")
    return moment


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


def _pod_state(state: Path) -> Path:
    """The state folder holding a state's repository and Secrets: a cluster's are in
    the members' shared pod folder."""
    return state / POD_FOLDER if ClusterMembers.holds_cluster(state) else state


def restore(new: LocalPod, old_state: Path, values: ChartValues, synthesize: Synthesize, *,
            target: str | None, secrets_dir: Path | None, port: int | None = None) -> dict:
    """Restore the old state's archive into the new state (to `target`, else the
    latest archived WAL) and start it; the connection details as `local up` prints them."""
    _require_pitr(values)
    old = LocalPod(_pod_state(old_state))
    if new.state == old.state:
        raise PitrRequestError("--state and --from are the same folder: restore into a new state")
    if new.state.exists() and any(new.state.iterdir()):
        raise PitrRequestError(f"--state {new.state} is not empty: restore into a new folder")
    if not old.state.exists() and secrets_dir is None:
        raise PitrRequestError(f"--from {old.state} does not exist: pass --secrets DIR with the lost cluster's "
                               "Secrets (the repository passphrase and the S3 keys)")
    moment = parse_target(target) if target is not None else None
    created = not new.state.exists()
    try:
        new.prepare(values, synthesize, secrets_dir)
        if secrets_dir is None:
            _carry_secrets(old, new)
        reader, repo, options = _source(old, new, values)
        candidates = [b for b in backups(reader) if b["database"]["repo-key"] == repo]
        if moment is not None:
            usable = [b for b in candidates if b["timestamp"]["stop"] < moment.timestamp()]
            if not usable:
                oldest = (f"the oldest backup ({candidates[0]['label']}) ends at {_iso(candidates[0]['timestamp']['stop'])}"
                          if candidates else "the repository holds no backup")
                raise PitrRequestError(f"--time {target} is before any restorable point: {oldest}")
        elif not candidates:
            raise PitrRequestError(f"repo{repo} holds no backup to restore")
        pgdata = new.host_path(contract.PGDATA)
        new._mkdir(pgdata)
        recovery = ["--type=time", f"--target={moment.isoformat(sep=' ')}", "--target-action=promote"] \
            if moment is not None else ["--type=default"]
        archive_get = " ".join(["pgbackrest", *options, "archive-get", "%f", '"%p"'])
        # Read as the new pod's user with the new pod's settings, from the source repository only.
        pgbackrest(new, "restore", *options, *recovery, f"--recovery-option=restore_command={archive_get}")
        try:
            return new.start(port=port)
        except LocalPodError:
            new.stop()
            if RECOVERY_SHORT in new.log_file.read_text(errors="replace"):
                raise PitrRequestError(f"--time {target}: the archive holds no commit after it, so recovery "
                                       "cannot tell it reached it; use --latest") from None
            raise
    except BaseException:
        # Changes nothing: a new state made here goes again.
        if created:
            shutil.rmtree(new.state, ignore_errors=True)
        raise


def restore_cluster(new: LocalCluster, old_state: Path, values: ChartValues, synthesize: Synthesize, *,
                    target: str | None) -> dict:
    """Restore the old state's archive into a new cluster (to `target`, else the
    latest archived WAL) and start it. Its first member bootstraps from the
    repository (Patroni's custom bootstrap method): pitr-replica.sh restores the
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
    moment = parse_target(target) if target is not None else None
    created = not new.state.exists()
    try:
        new.prepare(values, synthesize)
        _carry_secrets(old, new.pod)
        reader, repo, options = _source(old, new.pod, values)
        usable = [b for b in backups(reader) if b["database"]["repo-key"] == repo
                  and (moment is None or b["timestamp"]["stop"] < moment.timestamp())]
        if not usable:
            raise PitrRequestError(f"repo{repo} holds no backup that ends before {target or 'now'}")
        archive_get = " ".join(["pgbackrest", *options, "archive-get", "%f", '"%p"'])
        recovery = {"restore_command": archive_get, "recovery_target_timeline": "latest"}
        if moment is not None:
            recovery.update({"recovery_target_time": moment.isoformat(sep=" "), "recovery_target_action": "promote"})
        script = new.pod.host_path(f"{contract.SCRIPTS_DIR}/pitr-replica.sh")
        new.bootstrap_with(BOOTSTRAP_METHOD, {
            "command": " ".join([str(script), *options, f"--set={usable[-1]['label']}"]),
            "no_params": True, "recovery_conf": recovery})
        try:
            return new.up()
        except LocalPodError:
            if RECOVERY_SHORT in new.log_file(contract.BOOTSTRAP_MEMBER).read_text(errors="replace"):
                raise PitrRequestError(f"--time {target}: the archive holds no commit after it, so recovery "
                                       "cannot tell it reached it; use --latest") from None
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
    pgBackRest 2.45 ends with status 0 whatever it found: its summary says `status: error`."""
    _require_pitr(values)
    repos = list(repo_numbers(values.postgres.pitr).values())
    for repo in repos:
        text = pgbackrest(pod, "verify", f"--repo={repo}")
        if re.search(r"^\s*status: error", text, flags=re.M):
            findings = re.findall(r"INFO: ((?:invalid|missing)[^\n]*)", text)
            raise PitrFailed(f"pgbackrest verify repo{repo}: {findings[0] if findings else 'status: error'}")
    return {"verified": repos}
