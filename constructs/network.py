"""Pod-level network isolation for the database."""

from __future__ import annotations

from cdk8s_plus_27 import k8s
from constructs import Construct
from pydantic import BaseModel, ConfigDict

from constructs import layout
from constructs.values import NetworkPolicyValues


class NetworkIsolationProps(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    namespace: str
    """Namespace of the policy (required)."""
    labels: dict[str, str]
    """Labels of the policy object (required)."""
    database_selector: dict[str, str]
    """Labels that select the database pods (required)."""
    policy: NetworkPolicyValues
    """`postgres.networkPolicy` from the values (required)."""


class NetworkIsolation(Construct):
    """A NetworkPolicy that admits only the configured peers on the database port."""

    def __init__(self, scope: Construct, id: str, *, props: NetworkIsolationProps) -> None:
        super().__init__(scope, id)
        port = k8s.NetworkPolicyPort(protocol="TCP", port=k8s.IntOrString.from_number(layout.PORT))
        ingress = [
            k8s.NetworkPolicyIngressRule(
                from_=[k8s.NetworkPolicyPeer(**peer.model_dump(by_alias=False, exclude_defaults=True)) for peer in rule.from_],
                ports=[port],
            )
            for rule in props.policy.ingress
        ]
        k8s.KubeNetworkPolicy(
            self,
            "network-policy",
            metadata=k8s.ObjectMeta(name=layout.NETWORK_POLICY, namespace=props.namespace, labels=props.labels),
            spec=k8s.NetworkPolicySpec(
                pod_selector=k8s.LabelSelector(match_labels=props.database_selector),
                policy_types=["Ingress"],
                ingress=ingress,
            ),
        )
