"""`postgres.networkPolicy`: the peers admitted to the database, in the shape of
Kubernetes' NetworkPolicyPeer."""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, model_validator

from pgbundle.values.fields import Cidr, Values
from pgbundle.values.names import LabelKey, Labels, LabelValue


class LabelSelectorRequirement(Values):
    """One expression of a label selector, as Kubernetes spells it."""

    key: LabelKey
    """The label the expression tests."""
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    """How: In and NotIn take values, Exists and DoesNotExist none."""
    values: list[LabelValue] = []
    """The values In or NotIn compare with."""

    @model_validator(mode="after")
    def _values_fit_the_operator(self) -> LabelSelectorRequirement:
        # The API server's rule: In/NotIn need values, Exists/DoesNotExist take none.
        if self.operator in ("In", "NotIn") and not self.values:
            raise ValueError(f"values: operator {self.operator} needs at least one value")
        if self.operator in ("Exists", "DoesNotExist") and self.values:
            raise ValueError(f"values: operator {self.operator} takes no values; remove them")
        return self

class LabelSelector(Values):
    """Kubernetes' label selector: every label in `matchLabels` and every expression must match."""

    match_labels: Labels = {}
    """Labels a pod (or namespace) must carry. Left out: none."""
    match_expressions: list[LabelSelectorRequirement] = []
    """Expressions a pod's (or namespace's) labels must match. Left out: none."""


class IpBlock(Values):
    """Addresses a peer may use, in CIDR form."""

    cidr: Cidr
    """The network admitted."""
    except_: list[Cidr] = Field(default=[], alias="except")
    """Networks inside `cidr` that are not admitted. Left out: none."""

    @model_validator(mode="after")
    def _exceptions_inside(self) -> IpBlock:
        outer = ipaddress.ip_network(self.cidr)
        for inner in map(ipaddress.ip_network, self.except_):
            if inner.version != outer.version or not inner.subnet_of(outer):
                raise ValueError(f"except: {inner} is not inside cidr {self.cidr}; the API server refuses that")
        return self


class NetworkPolicyPeer(Values):
    """A NetworkPolicy peer: pods (`podSelector`, `namespaceSelector`) or addresses (`ipBlock`), never both."""

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
    """A port of an ingress rule: only the database port is allowed."""

    protocol: Literal["TCP"] = "TCP"
    """Left out: TCP, the only protocol PostgreSQL speaks."""
    port: int | str = 5432
    """5432 or its name `postgresql`. Left out: 5432."""


class NetworkPolicyIngressRule(Values):
    """Peers admitted to the database port."""

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
    """The database pods' NetworkPolicy."""

    enabled: bool = False
    """Emit a NetworkPolicy that admits only the listed peers (and this project's
    own backup pods, and `metrics.scrapers` on 9187). Left out: false; enable it in production."""
    ingress: list[NetworkPolicyIngressRule] = Field(default_factory=_default_ingress)
    """Who may connect on 5432. Left out: pods labelled
    app.kubernetes.io/component=application in the same namespace."""
    dns: NetworkPolicyPeer = Field(default_factory=_default_dns)
    """Where the cluster DNS runs: the only egress besides the database port.
    Left out: pods labelled k8s-app=kube-dns in namespace kube-system."""

