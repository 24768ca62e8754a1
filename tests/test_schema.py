"""Every synthesized document is valid for the Kubernetes API, strictly (unknown fields fail)."""

from __future__ import annotations

import copy

import kubernetes_validate
import pytest
from variants import VARIANTS

# The oldest supported (the bindings are 1.27's), two later ones a platform team
# may run, and the newest kubernetes-validate ships.
KUBERNETES_VERSIONS = ["1.27.0", "1.31.0", "1.35.0", kubernetes_validate.latest_version()]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_document_validates_strictly(synth, variant, version):
    docs = [d for d in synth(VARIANTS[variant]).docs if "monitoring.coreos.com" not in d["apiVersion"]
            and "cert-manager.io" not in d["apiVersion"]]
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)


def test_strict_validation_catches_an_unknown_field(synth):
    """The gate above can fail: a misspelt field is refused."""
    statefulset = copy.deepcopy(synth().get("StatefulSet", "postgres"))
    statefulset["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(statefulset, "1.27.0", strict=True)
