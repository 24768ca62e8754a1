"""Every synthesized document is valid for the Kubernetes API, strictly (unknown fields fail)."""

from __future__ import annotations

import copy
import functools

import kubernetes_validate
import kubernetes_validate.utils
import pytest
from variants import VARIANTS, synth_variant

# The oldest supported (the bindings are 1.27's), two later ones a platform team
# may run, and the newest kubernetes-validate ships.
KUBERNETES_VERSIONS = ["1.27.0", "1.31.0", "1.35.0", kubernetes_validate.latest_version()]


@pytest.fixture(scope="module", autouse=True)
def schemas_parsed_once():
    """kubernetes_validate.validate reads and parses its schema files (the definitions
    alone are 1 MB of JSON per version) for every document: read each once for the
    module. The validation itself is the library's, unchanged."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(kubernetes_validate.utils, "schema_contents",
                      functools.cache(kubernetes_validate.utils.schema_contents))
        yield


@pytest.fixture(scope="module")
def variant_docs(tmp_path_factory):
    """variant_docs(variant) -> its documents, synthesized once for the module: every
    Kubernetes version validates the same ones."""

    @functools.cache
    def docs(variant: str) -> list[dict]:
        return synth_variant(variant, tmp_path_factory.mktemp(variant)).docs

    return docs


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_document_validates_strictly(variant_docs, variant, version):
    docs = [d for d in variant_docs(variant) if "monitoring.coreos.com" not in d["apiVersion"]
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
