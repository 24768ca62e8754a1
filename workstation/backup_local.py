"""`python main.py local backup|restore`: the backup CronJob's and the restore
Job's scripts, run against the local pod (workstation/localpod.py).

The container's command and environment are read from the synthesized objects
(the CronJob in the state folder's dist/, the Job from `restore_manifest`),
paths are mapped under the state folder exactly as the local pod maps its own,
and the Service name becomes `localhost` at 127.0.0.1 and the local pod's port
(both the runner's own server certificate and the one `secrets generate` writes
are valid for that name, so `sslmode=verify-full` still holds).

With client-certificate verification the job's certificate comes, as in a
cluster, from the Secret the CronJob mounts: `local backup --secrets DIR`
projects it from the manifests `secrets generate` wrote (kubelet layout, see
workstation/localsecrets.py); without --secrets (and nothing projected before)
the runner issues one from the pod's CA.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path

import yaml

from pgbundle.contract import (
    BACKUP_CONTAINER,
    BACKUP_CRONJOB,
    CLIENT_CERT_FILE,
    CLIENT_KEY_FILE,
    CLIENT_TLS_DIR,
    CLIENT_TLS_VOLUME,
    DEFAULT_RESTORE_JOBS,
    RESTORE_CONTAINER,
)
from pgbundle.manifests import container
from pgbundle.values.models import ChartValues
from workstation import localsecrets
from workstation.localpod import LocalPod
from workstation.pod_state import HOST
from workstation.restore_manifest import restore_manifest

SUMMARY = re.compile(r"^(backup|restore) complete: (?P<fields>.*)$")


class LocalJobError(Exception):
    """The job could not run, or its script failed; the message is the script's error line."""


def cronjob_pod_spec(pod: LocalPod) -> dict:
    """The backup job's pod spec as synthesized into the local pod's dist/."""
    cronjob = pod.manifests().find("CronJob", BACKUP_CRONJOB)
    if cronjob is None:
        raise LocalJobError(f"CronJob {BACKUP_CRONJOB} is not in {pod.dist}: is postgres.backup.enabled false?")
    return cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def cronjob_container(pod: LocalPod) -> dict:
    """The backup container as synthesized into the local pod's dist/."""
    return container(cronjob_pod_spec(pod), BACKUP_CONTAINER)


def project_client_certificate(pod: LocalPod, pod_spec: dict, secrets_dir: Path) -> None:
    """Lay the job's client-certificate volume out from the Secret manifests in
    `secrets_dir`, items and modes as the kubelet does (a no-op when the job
    mounts none: clients are not verified)."""
    sources = [v["secret"] for v in pod_spec["volumes"] if v["name"] == CLIENT_TLS_VOLUME]
    if not sources:
        return
    try:
        files = localsecrets.payload(sources[0], localsecrets.read_manifests(secrets_dir))
    except localsecrets.SecretVolumeError as err:
        raise LocalJobError(f"{err} (run `python main.py secrets generate --out {shlex.quote(str(secrets_dir))}`)") from None
    localsecrets.project(pod.host_path(CLIENT_TLS_DIR), files, gid=pod.gid)


def _prepare_client_certificate(pod: LocalPod, env: dict[str, str]) -> None:
    """With client-certificate verification the job presents its own certificate
    (Secret postgres-backup-tls in a cluster). One projected from a Secret is
    used as it is; otherwise issue one from the local CA."""
    if "PGSSLCERT" in env:
        install_client_certificate(pod, env["PGUSER"])


def install_client_certificate(pod: LocalPod, user: str) -> None:
    """The job's client-certificate volume: as projected from a Secret, else issued
    for `user` from the local CA."""
    folder = pod.host_path(CLIENT_TLS_DIR)
    if (folder / localsecrets.DATA_LINK).is_symlink():
        return
    cert, key = pod.client_certificate(user)
    folder.mkdir(parents=True, exist_ok=True)
    for source, name in ((cert, CLIENT_CERT_FILE), (key, CLIENT_KEY_FILE)):
        target = folder / name
        target.write_bytes(source.read_bytes())
        os.chown(target, pod.uid, pod.gid)
        target.chmod(0o600)


def job_environment(pod: LocalPod, container: dict) -> dict[str, str]:
    """The container's environment with the pod's paths mapped into the state
    folder and the Service replaced by the local pod's address."""
    port = pod.status().get("port")
    if pod.pid() is None or not port:
        raise LocalJobError(f"the local database is not running: run `python main.py local up --state {shlex.quote(str(pod.state))}`")
    env = pod.host_environment(container)
    # The server certificate names localhost (not the address): verify-full checks
    # PGHOST, PGHOSTADDR only says where to connect.
    env["PGHOST"] = "localhost"
    env["PGHOSTADDR"] = HOST
    env["PGPORT"] = str(port)
    # The local PostgreSQL binaries, as the local pod itself uses them (the image has them on PATH).
    pod_env = pod.environment()
    env["PATH"] = pod_env["PATH"]
    env["LC_ALL"] = pod_env.get("LC_ALL", "C.UTF-8")
    env["HOME"] = env["TMPDIR"]
    Path(env["TMPDIR"]).mkdir(parents=True, exist_ok=True)
    _prepare_client_certificate(pod, env)
    return env


def container_process(pod: LocalPod, container: dict, *, env_overrides: dict[str, str] | None = None,
                      extra_path: str | None = None) -> tuple[list[str], dict[str, str], dict]:
    """(argv, environment, user options) that run the container's command as the pod's user."""
    env = {**job_environment(pod, container), **(env_overrides or {})}
    if extra_path:
        env["PATH"] = f"{extra_path}:{env['PATH']}"
    return pod.host_command(container), env, pod.user_options()


def run_container(pod: LocalPod, container: dict, *, env_overrides: dict[str, str] | None = None,
                  extra_path: str | None = None,
                  preexec_fn: Callable[[], None] | None = None) -> subprocess.CompletedProcess:
    """Run the container's command as the pod's user. Tests break things through
    `env_overrides` (a closed port, another CA), `extra_path` (first on PATH:
    fault-injecting wrappers) and `preexec_fn` (resource limits)."""
    command, env, user = container_process(pod, container, env_overrides=env_overrides, extra_path=extra_path)
    return run_process(pod, command, env, user, preexec_fn=preexec_fn)


def run_process(pod: LocalPod, command: list[str], env: dict[str, str], user: dict,
                preexec_fn: Callable[[], None] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(command, env=env, cwd=pod.state, capture_output=True, text=True,
                          start_new_session=True, preexec_fn=preexec_fn, **user)


def _summary(result: subprocess.CompletedProcess) -> dict[str, str]:
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if " failed: " in line]
        raise LocalJobError(lines[-1] if lines else f"exit status {result.returncode}: {result.stderr.strip()}")
    for line in reversed(result.stdout.splitlines()):
        found = SUMMARY.match(line)
        if found:
            return dict(part.split("=", 1) for part in found["fields"].split())
    raise LocalJobError(f"no summary line in the output:\n{result.stdout}")


def backup(pod: LocalPod, secrets_dir: Path | None = None) -> dict:
    """Run backup.sh; return {"set", "files", "bytes", "seconds"}. With `secrets_dir`
    the client certificate comes from the Secret manifests there."""
    pod_spec = cronjob_pod_spec(pod)
    if secrets_dir is not None:
        project_client_certificate(pod, pod_spec, secrets_dir)
    command, env, user = container_process(pod, container(pod_spec, BACKUP_CONTAINER))
    summary = _summary(run_process(pod, command, env, user))
    folder = Path(env["BACKUP_DIR"]) / summary["set"]
    files = sorted(str(p) for p in folder.iterdir())
    return {"set": summary["set"], "files": files, "bytes": int(summary["bytes"]), "seconds": float(summary["seconds"])}


def restore_container(values: ChartValues, backup_name: str, databases: list[str] | None = None,
                      jobs: int = DEFAULT_RESTORE_JOBS) -> dict:
    """The restore container of the Job `restore-manifest` prints for these values."""
    job = yaml.safe_load(restore_manifest(values, backup=backup_name, databases=databases or [], jobs=jobs))
    return container(job["spec"]["template"]["spec"], RESTORE_CONTAINER)


def restore(pod: LocalPod, container: dict, backups_of: LocalPod | None = None) -> dict:
    """Run restore.sh; return {"set", "databases", "bytes", "seconds"}. With `backups_of`
    the set comes from that state's backups folder (a disaster-recovery rehearsal:
    another cluster's backups volume mounted into the Job)."""
    overrides = None
    if backups_of is not None:
        backup_dir = next(item["value"] for item in container["env"] if item["name"] == "BACKUP_DIR")
        overrides = {"BACKUP_DIR": str(backups_of.host_path(backup_dir))}
    summary = _summary(run_container(pod, container, env_overrides=overrides))
    return {"set": summary["set"], "databases": summary["databases"].split(","),
            "bytes": int(summary["bytes"]), "seconds": float(summary["seconds"])}
