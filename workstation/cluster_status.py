"""What a local cluster's members say: Patroni's REST API and patronictl, each
member's processes and role, and the connection details clients get."""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass

from pgbundle import contract
from pgbundle.patroni import config as patroni_config
from workstation import patroni_venv
from workstation.cluster_members import ClusterError, ClusterMembers
from workstation.pod_state import HOST, HOST_NAME


@dataclass(frozen=True)
class MemberStatus:
    name: str
    host: str
    port: int
    api_port: int
    role: str | None
    """leader, sync_standby or replica (Patroni's words); None when its Patroni does not run
    or the DCS does not list it."""
    state: str
    """Patroni's word (running, streaming, starting...) while its Patroni runs; else
    stopped, or orphaned when its postmaster outlived Patroni."""
    timeline: int | None
    lag: int | None
    """Bytes behind the leader (replicas)."""
    patroni_pid: int | None
    postmaster_pid: int | None


def leader_of(members: list[MemberStatus]) -> MemberStatus | None:
    return next((m for m in members if m.role == "leader" and m.state == "running"), None)


def cluster_state(members: list[MemberStatus]) -> str:
    """ready (a leader, every other member streaming), degraded (a leader), starting
    (a Patroni runs), orphaned (only postmasters run) or stopped."""
    leader = leader_of(members)
    if leader is not None:
        return "ready" if all(m.state == "streaming" for m in members if m is not leader) else "degraded"
    if any(m.patroni_pid for m in members):
        return "starting"
    return "orphaned" if any(m.postmaster_pid for m in members) else "stopped"


class ClusterStatus(ClusterMembers):
    """Asking the members' Patroni how the cluster is."""

    # --- REST API ------------------------------------------------------------

    def _ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.pod.sslrootcert))

    def api(self, name: str, path: str, method: str = "GET", body: dict | None = None,
            timeout: float = 2) -> tuple[int, dict | str]:
        """Call member `name`'s REST API over TLS (basic auth for unsafe methods)."""
        port = self.recorded()["members"][name]["api_port"]
        request = urllib.request.Request(f"https://{HOST}:{port}{path}", method=method,
                                         data=json.dumps(body).encode() if body is not None else None)
        if method != "GET":
            token = base64.b64encode(f"{patroni_config.Users().restapi}:{self.api_password()}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=self._ssl_context()) as response:
                status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as err:
            status, text = err.code, err.read().decode()
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def api_password(self) -> str:
        return (self.pod.host_path(contract.SECRETS_DIR) / contract.PATRONI_API_PASSWORD_KEY).read_text().strip()

    def patronictl(self, *args: str, timeout: float | None = 120, answers: str | None = None,
                   capture: bool = True) -> subprocess.CompletedProcess:
        """Run patronictl against the cluster, as `kubectl exec ... patronictl` does in a pod:
        with a member's configuration and the REST API password it reads from the
        environment; `answers` are typed at its prompts (`local patronictl` passes
        the terminal through: capture=False)."""
        members = self.recorded()["members"]
        if not members:
            raise ClusterError(f"{self.state} holds no cluster: run `local up` with values of postgres.replicas >= 2")
        env = {**os.environ, patroni_config.PASSWORD_ENV["restapi"]: self.api_password()}
        return subprocess.run([str(patroni_venv.PATRONICTL), "-c", str(self.config_file(next(iter(members)))), *args],
                              env=env, input=answers, capture_output=capture, text=True, timeout=timeout)

    def status(self) -> list[MemberStatus]:
        """Every member: its processes, and while its Patroni runs, what Patroni's
        /cluster says of it (asked of the first running member that answers). The
        DCS names a killed leader until its lock expires: the processes decide."""
        recorded = self.recorded()["members"]
        pids = {name: (self.patroni_pid(name), self.postmaster_pid(name)) for name in recorded}
        cluster: dict = {}
        for name in recorded:
            if pids[name][0] is None:
                continue
            try:
                code, body = self.api(name, "/cluster")
            except OSError:
                continue
            if code == 200 and isinstance(body, dict):
                cluster = {m["name"]: m for m in body.get("members", [])}
                break
        result = []
        for name, ports in recorded.items():
            patroni, postmaster = pids[name]
            seen = cluster.get(name, {}) if patroni is not None else {}
            if patroni is not None:
                state = seen.get("state", "starting")  # running, but not (yet) in the DCS
            else:
                state = "stopped" if postmaster is None else "orphaned"
            lag = seen.get("lag")
            result.append(MemberStatus(
                name=name, host=HOST, port=ports["port"], api_port=ports["api_port"],
                role=seen.get("role"), state=state, timeline=seen.get("timeline"),
                lag=lag if isinstance(lag, int) else None, patroni_pid=patroni, postmaster_pid=postmaster,
            ))
        return result

    def summary(self) -> dict:
        """`local status` for a cluster: the single pod's keys (state, and the pid and
        port of the leader, as clients reach it) plus every member."""
        members = self.status()
        leader = leader_of(members)
        return {"state": cluster_state(members), "pid": leader.patroni_pid if leader else None,
                "port": leader.port if leader else None, "members": [member.__dict__ for member in members]}

    def leader(self) -> MemberStatus | None:
        return leader_of(self.status())

    # --- connection details --------------------------------------------------

    def dsn_all(self) -> str:
        """A libpq connection string over every member that reaches whichever accepts writes."""
        members = self.recorded()["members"].values()
        # The name the certificate holds, the address to connect to (as the single pod's dsn).
        return (f"host={','.join(HOST_NAME for _ in members)} hostaddr={','.join(HOST for _ in members)} "
                f"port={','.join(str(m['port']) for m in members)} "
                f"dbname={self.pod.environment()['PG_DATABASE']} target_session_attrs=read-write "
                f"sslmode=verify-full sslrootcert={self.pod.sslrootcert} connect_timeout=2")

    def connection_info(self) -> dict:
        """The single pod's keys (host, port = the leader, database, sslrootcert, passwords,
        dsn per role and DATABASE_URL to the leader) plus every member and a connection string over all of them."""
        members = self.status()
        leader = next((m for m in members if m.role == "leader"), None)
        info = self.pod.connection_info(port=leader.port if leader is not None else None)
        info["members"] = [
            {"name": m.name, "host": m.host, "port": m.port, "api_port": m.api_port, "role": m.role,
             "patroni_pid": m.patroni_pid, "postmaster_pid": m.postmaster_pid} for m in members
        ]
        info["dsn_all"] = self.dsn_all()
        return info
