"""The Service `postgres` of a local cluster, for the local pooler.

In Kubernetes the pooler reaches the primary through the Service `postgres`,
whose one endpoint is the pod Patroni labels primary: a failover moves the
endpoint, connections to the old primary die with it, and new ones reach the
new primary. PgBouncer cannot choose the primary itself (1.24 takes a host
list, but has no target_session_attrs: it would stay on a replica). So locally
a small TCP forwarder stands for the Service: it listens on one loopback port
and forwards each new connection, bytes untouched (TLS stays end to end), to
the member whose Patroni answers 200 on /primary, asked every half second, as
the endpoint follows the label. When the primary changes, the forwarded
connections to the old one are closed, as the old pod's are.

`python -m workstation.service_proxy STATE PORT` runs it; `LocalService`
starts and stops it and records its pid and port in STATE/service.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from workstation import processes
from workstation.cluster import LocalCluster
from workstation.pod_state import HOST, LISTEN, LocalPodError, free_port

FOLLOW_INTERVAL = 0.5  # seconds between asks of /primary
SERVICE_FILE = "service.json"


def primary_port(cluster: LocalCluster) -> int | None:
    """The PostgreSQL port of the member whose Patroni says it is the running primary."""
    for name, member in cluster.recorded()["members"].items():
        try:
            code, _ = cluster.api(name, "/primary", timeout=1)
        except OSError:
            continue
        if code == 200:
            return member["port"]
    return None


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def serve(cluster: LocalCluster, port: int) -> None:
    target: list[int | None] = [await asyncio.to_thread(primary_port, cluster)]
    open_to: dict[int, set[asyncio.StreamWriter]] = {}

    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        backend = target[0]
        if backend is None:  # no endpoint: the Service refuses
            client_writer.close()
            return
        try:
            server_reader, server_writer = await asyncio.open_connection(HOST, backend)
        except OSError:
            client_writer.close()
            return
        tracked = open_to.setdefault(backend, set())
        tracked.update((client_writer, server_writer))
        await asyncio.gather(_pipe(client_reader, server_writer), _pipe(server_reader, client_writer))
        tracked.difference_update((client_writer, server_writer))

    # On every address of localhost: PgBouncer connects by that name (the certificates hold no IP).
    server = await asyncio.start_server(handle, LISTEN, port)
    async with server:
        while True:
            await asyncio.sleep(FOLLOW_INTERVAL)
            now = await asyncio.to_thread(primary_port, cluster)
            if now == target[0]:
                continue
            old, target[0] = target[0], now
            for writer in open_to.pop(old, set()) if old is not None else ():
                writer.close()


class LocalService:
    """The forwarder of one local cluster (its state folder)."""

    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster
        self.file = cluster.state / SERVICE_FILE
        self.log_file = cluster.state / "service.log"

    def recorded(self) -> dict:
        """What the last start of the stand-in recorded (pid, port), as LocalPod.recorded(); empty when none."""
        try:
            return json.loads(self.file.read_text())
        except FileNotFoundError:
            return {}

    @property
    def port(self) -> int:
        return self.recorded()["port"]

    def pid(self) -> int | None:
        pid = self.recorded().get("pid")
        # The module and this state folder: a recycled pid is another program.
        return pid if processes.running(pid, f"{__name__}\0{self.cluster.state}") else None

    def start(self) -> int:
        """Start the forwarder (if not running) -> its port."""
        if self.pid() is not None:
            return self.port
        port = self.recorded().get("port") or free_port()
        with open(self.log_file, "ab") as log:
            process = subprocess.Popen([sys.executable, "-m", __name__, str(self.cluster.state), str(port)],
                                       stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        self.file.write_text(json.dumps({"pid": process.pid, "port": port}))
        if processes.poll(lambda: primary_port(self.cluster) is not None and _listening(port), 30) is None:
            self.stop()
            raise LocalPodError(f"the local Service did not start; log {self.log_file}")
        return port

    def stop(self) -> None:
        pid = self.pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)
        if processes.poll(lambda: self.pid() is None, 10) is None:
            os.kill(pid, signal.SIGKILL)


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex((HOST, port)) == 0


if __name__ == "__main__":
    asyncio.run(serve(LocalCluster(Path(sys.argv[1])), int(sys.argv[2])))
