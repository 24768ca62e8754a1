"""The Services `postgres` and `postgres-replicas` of a local cluster, for the local poolers.

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

The read-only pooler's Service `postgres-replicas` selects the pods labelled
replica: its stand-in is the same forwarder asking /replica (200 on a running
replica), spreading new connections over the members that answer, and closing
those to a member that stops being one (a promoted replica leaves the Service).

`python -m workstation.service_proxy STATE PORT ENDPOINT` runs one; `LocalService`
starts and stops it and records its pid and port in STATE/service.json
(STATE/service-replicas.json for the replicas').
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from pgbundle import contract
from workstation import processes
from workstation.cluster import LocalCluster
from workstation.pod_state import HOST, LISTEN, LocalPodError, free_port

FOLLOW_INTERVAL = 0.5  # seconds between asks of Patroni
PRIMARY, REPLICA = "/primary", "/replica"  # Patroni's health endpoints: the Services' role labels


def member_ports(cluster: LocalCluster, endpoint: str = PRIMARY) -> list[int]:
    """The PostgreSQL ports of the members whose Patroni answers 200 on `endpoint`
    (PRIMARY: the running primary; REPLICA: each running replica)."""
    found = []
    for name, member in cluster.recorded()["members"].items():
        try:
            code, _ = cluster.api(name, endpoint, timeout=1)
        except OSError:
            continue
        if code == 200:
            found.append(member["port"])
    return found


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def serve(cluster: LocalCluster, port: int, endpoint: str = PRIMARY) -> None:
    targets: list[int] = await asyncio.to_thread(member_ports, cluster, endpoint)
    open_to: dict[int, set[asyncio.StreamWriter]] = {}
    picks = itertools.count()

    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if not targets:  # no endpoint: the Service refuses
            client_writer.close()
            return
        backend = targets[next(picks) % len(targets)]  # the Service picks an endpoint per connection
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
            now = await asyncio.to_thread(member_ports, cluster, endpoint)
            if now == targets:
                continue
            for gone in set(targets) - set(now):
                for writer in open_to.pop(gone, set()):
                    writer.close()
            targets[:] = now


class LocalService:
    """A forwarder of one local cluster (its state folder): the Service `postgres`'s,
    or with `replicas` the Service `postgres-replicas`'s."""

    def __init__(self, cluster: LocalCluster, *, replicas: bool = False) -> None:
        self.cluster = cluster
        self.endpoint = REPLICA if replicas else PRIMARY
        self.service = contract.REPLICAS_SERVICE if replicas else contract.SERVICE
        suffix = "-replicas" if replicas else ""
        self.file = cluster.state / f"service{suffix}.json"
        self.log_file = cluster.state / f"service{suffix}.log"

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
        # The module, this state folder and endpoint: a recycled pid is another program.
        marker = f"{__name__}\0{self.cluster.state}\0{self.recorded().get('port')}\0{self.endpoint}\0"
        return pid if processes.running(pid, marker) else None

    def start(self) -> int:
        """Start the forwarder (if not running) -> its port."""
        if self.pid() is not None:
            return self.port
        port = self.recorded().get("port") or free_port()
        with open(self.log_file, "ab") as log:
            process = subprocess.Popen([sys.executable, "-m", __name__, str(self.cluster.state), str(port),
                                        self.endpoint], stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                       start_new_session=True)
        self.file.write_text(json.dumps({"pid": process.pid, "port": port}))
        if processes.poll(lambda: member_ports(self.cluster, self.endpoint) and _listening(port), 30) is None:
            self.stop()
            raise LocalPodError(f"the local stand-in for the Service {self.service} did not start within 30 s "
                                f"(or no member answered 200 on Patroni's {self.endpoint}); log {self.log_file}")
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
    asyncio.run(serve(LocalCluster(Path(sys.argv[1])), int(sys.argv[2]), sys.argv[3]))
