"""What the real-cluster tests share: the values of a small 3-member cluster and
the waits for it to settle. The runner runs this machine's PostgreSQL and
Patroni, so the image is never pulled."""

from __future__ import annotations

import time

from workstation.cluster import LocalCluster
from workstation.cluster_status import MemberStatus

MEMBERS = 3
APP_USER = "appuser"
# Small enough for three servers next to the rest of the test suite.
VALUES = {"postgres": {"replicas": MEMBERS, "ha": {"image": {"repository": "local", "tag": "unused"}},
                       "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                                     "limits": {"cpu": "1", "memory": "512Mi"}}}}


def wait_for(condition, timeout: float, what: str, interval: float = 0.3):
    """condition()'s first truthy result, polled until `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout:.0f}s")


def settled(cluster: LocalCluster, timeout: float = 120,
            members: int = MEMBERS) -> tuple[MemberStatus, list[MemberStatus]]:
    """Wait for one leader, one synchronous standby and every other member streaming."""

    def check():
        found = cluster.status()
        leaders = [m for m in found if m.role == "leader" and m.state == "running"]
        standbys = [m for m in found if m.role != "leader"]
        if (len(leaders) == 1 and len(standbys) == members - 1 and all(m.state == "streaming" for m in standbys)
                and [m.role for m in standbys].count("sync_standby") == 1):
            return leaders[0], standbys
        return None

    return wait_for(check, timeout, "one leader, one synchronous standby, all streaming")
