"""Pieces every pod of this project shares: the restricted security contexts
and resource requirements from the values."""

from __future__ import annotations

from imports import k8s
from pgbundle.values.fields import ResourcesValues


def restricted_container(uid: int) -> k8s.SecurityContext:
    """A container context that meets the `restricted` Pod Security Standard."""
    return k8s.SecurityContext(
        allow_privilege_escalation=False,
        capabilities=k8s.Capabilities(drop=["ALL"]),
        privileged=False,
        read_only_root_filesystem=True,
        run_as_non_root=True,
        run_as_user=uid,
        run_as_group=uid,
        seccomp_profile=k8s.SeccompProfile(type="RuntimeDefault"),
    )


def restricted_pod(uid: int) -> k8s.PodSecurityContext:
    """A pod context for uid/gid `uid` whose volumes it can read through fsGroup."""
    return k8s.PodSecurityContext(
        run_as_non_root=True,
        run_as_user=uid,
        run_as_group=uid,
        fs_group=uid,
        fs_group_change_policy="OnRootMismatch",
        seccomp_profile=k8s.SeccompProfile(type="RuntimeDefault"),
    )


def resource_requirements(resources: ResourcesValues) -> k8s.ResourceRequirements:
    def amounts(cpu: str, memory: str) -> dict[str, k8s.Quantity]:
        return {"cpu": k8s.Quantity.from_string(cpu), "memory": k8s.Quantity.from_string(memory)}

    return k8s.ResourceRequirements(
        requests=amounts(resources.requests.cpu, resources.requests.memory),
        limits=amounts(resources.limits.cpu, resources.limits.memory),
    )
