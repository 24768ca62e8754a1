"""The namespace, labelled so the cluster refuses any pod that breaks the
restricted Pod Security Standard."""

from __future__ import annotations

from constructs import Construct
from pydantic import BaseModel, ConfigDict

from imports import k8s
from pgbundle.contract import MANAGED_BY, PART_OF

PSS_LABELS = {
    f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "audit", "warn")
}


class NamespaceProps(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    """Name of the namespace (required)."""


class Namespace(Construct):
    def __init__(self, scope: Construct, id: str, *, props: NamespaceProps) -> None:
        super().__init__(scope, id)
        k8s.KubeNamespace(
            self,
            "namespace",
            metadata=k8s.ObjectMeta(
                name=props.name,
                labels={
                    "app.kubernetes.io/part-of": PART_OF,
                    "app.kubernetes.io/managed-by": MANAGED_BY,
                    **PSS_LABELS,
                },
            ),
        )
