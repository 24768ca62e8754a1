"""Pieces every pod of this project shares: the restricted security contexts
and resource requirements."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from imports import k8s
from pgbundle.k8s.quantity import quantity


class Resources(BaseModel):
    """A container's requests and limits (quantities such as 500m, 1Gi); all required."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cpu_request: str
    memory_request: str
    cpu_limit: str
    memory_limit: str


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


def resource_requirements(resources: Resources) -> k8s.ResourceRequirements:
    return k8s.ResourceRequirements(
        requests={"cpu": quantity(resources.cpu_request), "memory": quantity(resources.memory_request)},
        limits={"cpu": quantity(resources.cpu_limit), "memory": quantity(resources.memory_limit)},
    )
