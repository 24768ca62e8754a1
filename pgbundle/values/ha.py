"""postgres.ha: Patroni's behaviour when postgres.replicas >= 2."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from pgbundle.values.fields import Cidr, ImageValues, Values
from pgbundle.values.names import ImageRepository


class HaImageValues(ImageValues):
    """The database image's model (grammar, no `latest`, a tag, a digest or both), with
    no default; its PostgreSQL major is postgres.image's, which it is built FROM."""

    repository: ImageRepository
    """Repository of an image with Patroni: image/Dockerfile built and pushed
    (docs/high-availability.md). Required."""


# Patroni's own minimums (its configuration validator; it raises a smaller value to these).
PATRONI_MIN_TTL = 20
PATRONI_MIN_RETRY_TIMEOUT = 3
# Patroni sets no maximum. A lost leader is replaced only after ttl: beyond an hour
# that is no longer failover, and the same bound keeps a crashed primary's restart
# attempts (primaryStartTimeout) within one. loopWait and retryTimeout are bounded
# by ttl through the rule in HaValues._check.
MAX_HA_SECONDS = 3600
# Patroni compares the lag with WAL positions, 64-bit byte counts; the DCS keeps it
# as JSON, which readers outside Python hold in a signed 64-bit integer.
MAX_LAG_BYTES = 2**63 - 1


class HaValues(Values):
    """Patroni's behaviour when replicas >= 2 (written to its DCS at bootstrap;
    later changes need `patronictl edit-config`, see docs/high-availability.md, Runbook)."""

    image: HaImageValues | None = None
    """The database image with Patroni, built FROM postgres.image (image/Dockerfile).
    Required when replicas >= 2; left out otherwise."""
    synchronous_mode: bool = True
    """A commit returns only once a standby has it, so a failover loses no
    acknowledged write; commits wait one network round trip longer. Left out: true."""
    synchronous_mode_strict: bool = False
    """With no synchronous standby left, refuse writes rather than go on
    asynchronously (then losing the primary too would lose the latest commits).
    Needs `synchronousMode: true`. Left out: false (availability first)."""
    ttl: int = Field(default=PATRONI_MIN_TTL, ge=PATRONI_MIN_TTL, le=MAX_HA_SECONDS)
    """Seconds the leader lock lives without renewal: a lost leader is replaced
    after about this long. 20 (Patroni's minimum) to 3600. Left out: 20."""
    loop_wait: int = Field(default=4, ge=1)
    """Seconds between two runs of Patroni's HA loop: a crashed primary is noticed
    within this long, while a lost node is replaced between ttl - loopWait and
    ttl after its last renewal, so lowering it slows that case. Left out: 4
    (bench/failover.py: crash and node loss both within their targets)."""
    retry_timeout: int = Field(default=5, ge=PATRONI_MIN_RETRY_TIMEOUT)
    """Seconds an API server or PostgreSQL call is retried before the leader
    demotes itself: API server outages longer than this restart the primary as a
    replica until the API answers. At least 3 (Patroni's minimum). Left out: 5."""
    primary_start_timeout: int = Field(default=0, ge=0, le=MAX_HA_SECONDS)
    """Seconds Patroni tries to restart a crashed primary in place before
    failing over, 0 to 3600. Left out: 0 (fail over at once: with synchronous mode nothing is lost)."""
    maximum_lag_on_failover: int = Field(default=1048576, ge=0, le=MAX_LAG_BYTES)
    """Bytes a replica may lag and still be promoted (asynchronous mode). Left out: 1048576 (1 MiB)."""
    anti_affinity: Literal["preferred", "required"] = "preferred"
    """Spread members across nodes: `required` refuses to schedule two on one node
    (then N members need N nodes). Left out: preferred."""
    api_server_cidrs: list[Cidr] = Field(default_factory=list)
    """Addresses of the Kubernetes API server, for the NetworkPolicy's egress
    (Patroni keeps its leader lock there; the API server has no pod selector).
    Left out: none; required when networkPolicy.enabled and replicas >= 2."""
    api_server_port: int = Field(default=443, ge=1, le=65535)
    """The API server's port as the pods reach it (the `kubernetes` Service's
    endpoints, often 6443). Left out: 443."""

    @model_validator(mode="after")
    def _check(self) -> HaValues:
        if self.loop_wait + 2 * self.retry_timeout > self.ttl:
            raise ValueError(
                f"loopWait: {self.loop_wait} + 2 x retryTimeout {self.retry_timeout} exceeds ttl {self.ttl}: "
                "a leader could lose its lock while still retrying; raise ttl or lower loopWait/retryTimeout")
        if self.synchronous_mode_strict and not self.synchronous_mode:
            raise ValueError(
                "synchronousModeStrict: true needs synchronousMode: true (strict only decides what synchronous "
                "mode does without a standby); set synchronousMode: true or remove synchronousModeStrict")
        return self

