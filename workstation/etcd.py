"""A one-member etcd on loopback: the local HA runner's DCS, where a cluster
uses the Kubernetes API (Debian's etcd-server; Patroni's etcd3 client)."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from pathlib import Path

from workstation.pod_state import LocalPodError
from workstation.processes import running, wait

ETCD = "etcd"


class EtcdError(LocalPodError):
    """etcd cannot be started; the message says why."""


def start(folder: Path, host: str, client_port: int, peer_port: int) -> subprocess.Popen:
    """Start etcd with its data and etcd.log in `folder`; returns at once (see wait_healthy)."""
    if shutil.which(ETCD) is None:
        raise EtcdError("etcd not found: install Debian's etcd-server (make test does)")
    folder.mkdir(mode=0o700, exist_ok=True)
    client, peer = f"http://{host}:{client_port}", f"http://{host}:{peer_port}"
    command = [
        ETCD, "--name", "local", "--data-dir", str(folder / "data"),
        "--listen-client-urls", client, "--advertise-client-urls", client,
        "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
        "--initial-cluster", f"local={peer}", "--initial-cluster-state", "new",
        "--listen-metrics-urls", "", "--enable-v2=false",
    ]
    with open(folder / "etcd.log", "ab") as log:
        return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)


def wait_healthy(process: subprocess.Popen, folder: Path, host: str, client_port: int, timeout: float = 30) -> None:
    """Until etcd's /health says true; EtcdError when it exits or the time runs out."""

    def healthy() -> bool:
        if process.poll() is not None:
            raise EtcdError(f"etcd exited with status {process.returncode}; log {folder / 'etcd.log'}")
        try:
            with urllib.request.urlopen(f"http://{host}:{client_port}/health", timeout=1) as response:
                return json.load(response).get("health") == "true"
        except (OSError, ValueError):
            return False

    wait(healthy, timeout, "etcd healthy", error=EtcdError)


def pid(folder: Path, recorded: int | None) -> int | None:
    """The recorded pid while it is still the etcd of `folder`."""
    return recorded if running(recorded, str(folder)) else None
