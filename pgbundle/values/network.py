"""`postgres.networkPolicy`: the peers admitted to the database, in the shape of
Kubernetes' NetworkPolicyPeer."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from pgbundle.values.fields import Values

class LabelSelector(Values):
    match_labels: dict[str, str] = {}
    match_expressions: list[dict[str, str | list[str]]] = []


class IpBlock(Values):
    cidr: str
    except_: list[str] = Field(default=[], alias="except")


class NetworkPolicyPeer(Values):
    pod_selector: LabelSelector | None = None
    namespace_selector: LabelSelector | None = None
    ip_block: IpBlock | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> NetworkPolicyPeer:
        # The API server refuses both an empty peer and an ipBlock mixed with selectors.
        if self.ip_block is None and self.pod_selector is None and self.namespace_selector is None:
            raise ValueError("a peer needs podSelector, namespaceSelector or ipBlock")
        if self.ip_block is not None and (self.pod_selector is not None or self.namespace_selector is not None):
            raise ValueError("ipBlock cannot be combined with podSelector or namespaceSelector in one peer")
        return self


class NetworkPolicyPort(Values):
    protocol: Literal["TCP"] = "TCP"
    port: int | str = 5432


class NetworkPolicyIngressRule(Values):
    from_: list[NetworkPolicyPeer] = Field(alias="from", min_length=1)
    ports: list[NetworkPolicyPort] = [NetworkPolicyPort()]

    @model_validator(mode="after")
    def _database_port_only(self) -> NetworkPolicyIngressRule:
        for port in self.ports:
            if port.port not in (5432, "postgresql"):
                raise ValueError(
                    f"ports: {port.port!r} is not the database port; the policy only opens 5432"
                )
        return self


def _default_ingress() -> list[NetworkPolicyIngressRule]:
    return [
        NetworkPolicyIngressRule.model_validate(
            {"from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/component": "application"}}}]}
        )
    ]


def _default_dns() -> NetworkPolicyPeer:
    return NetworkPolicyPeer.model_validate(
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    )


class NetworkPolicyValues(Values):
    enabled: bool = False
    """Emit a NetworkPolicy that admits only the listed peers (and this project's
    own backup pods, and `metrics.scrapers` on 9187). Left out: false; enable it in production."""
    ingress: list[NetworkPolicyIngressRule] = Field(default_factory=_default_ingress)
    """Who may connect on 5432. Left out: pods labelled
    app.kubernetes.io/component=application in the same namespace."""
    dns: NetworkPolicyPeer = Field(default_factory=_default_dns)
    """Where the cluster DNS runs: the only egress besides the database port.
    Left out: pods labelled k8s-app=kube-dns in namespace kube-system."""

