"""A small evaluator of Kubernetes NetworkPolicy semantics over pod labels.

A connection from pod A to pod B on a port is allowed when both hold:
- egress: no policy with policyType Egress selects A, or one of those admits B;
- ingress: no policy with policyType Ingress selects B, or one of those admits A.
Peers: podSelector alone means pods in the policy's own namespace;
namespaceSelector alone means every pod in the matching namespaces; both means
matching pods in matching namespaces. ipBlock peers are for addresses outside
the cluster and never match a pod here. An empty or missing `from`/`to`
admits every peer; missing `ports` admits every port.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chart.policy import selector_matches


@dataclass(frozen=True)
class Pod:
    namespace: str
    labels: dict[str, str]
    ports: dict[str, int] = field(default_factory=dict)
    """Named container ports, for policies that name a port."""
    namespace_labels: dict[str, str] = field(default_factory=dict)

    def ns_labels(self) -> dict[str, str]:
        # The API server labels every namespace with its own name.
        return {"kubernetes.io/metadata.name": self.namespace, **self.namespace_labels}


def pod_from_template(namespace: str, template: dict) -> Pod:
    ports = {
        p["name"]: p["containerPort"]
        for c in template["spec"].get("containers", [])
        for p in c.get("ports") or []
        if "name" in p
    }
    return Pod(namespace, (template.get("metadata") or {}).get("labels") or {}, ports)


def _policy_types(policy: dict) -> list[str]:
    spec = policy["spec"]
    if "policyTypes" in spec:
        return spec["policyTypes"]
    return ["Ingress", "Egress"] if "egress" in spec else ["Ingress"]


def _selects(policy: dict, pod: Pod) -> bool:
    return policy["metadata"].get("namespace") == pod.namespace and selector_matches(
        policy["spec"].get("podSelector") or {}, pod.labels
    )


def _peer_matches(peer: dict, policy_namespace: str, pod: Pod) -> bool:
    if "ipBlock" in peer:
        return False
    pod_ok = selector_matches(peer["podSelector"], pod.labels) if "podSelector" in peer else True
    if "namespaceSelector" in peer:
        ns_ok = selector_matches(peer["namespaceSelector"], pod.ns_labels())
    else:
        ns_ok = pod.namespace == policy_namespace
    return pod_ok and ns_ok


def _port_matches(ports: list[dict] | None, port: int, protocol: str, target: Pod) -> bool:
    if not ports:
        return True
    for p in ports:
        if p.get("protocol", "TCP") != protocol:
            continue
        if "port" not in p:
            return True
        wanted = p["port"]
        number = target.ports.get(wanted) if isinstance(wanted, str) else wanted
        if number is not None and (number == port or number <= port <= p.get("endPort", number)):
            return True
    return False


def _rule_admits(rules: list[dict], peer_key: str, namespace: str, peer: Pod, port: int, protocol: str, target: Pod) -> bool:
    for rule in rules or []:
        peers = rule.get(peer_key)
        if (not peers or any(_peer_matches(p, namespace, peer) for p in peers)) and _port_matches(
            rule.get("ports"), port, protocol, target
        ):
            return True
    return False


def allowed(policies: list[dict], source: Pod, target: Pod, port: int, protocol: str = "TCP") -> bool:
    """Whether `source` may open a connection to `target` on `port`."""
    egress = [p for p in policies if "Egress" in _policy_types(p) and _selects(p, source)]
    if egress and not any(
        _rule_admits(p["spec"].get("egress"), "to", p["metadata"]["namespace"], target, port, protocol, target)
        for p in egress
    ):
        return False
    ingress = [p for p in policies if "Ingress" in _policy_types(p) and _selects(p, target)]
    if ingress and not any(
        _rule_admits(p["spec"].get("ingress"), "from", p["metadata"]["namespace"], source, port, protocol, target)
        for p in ingress
    ):
        return False
    return True
