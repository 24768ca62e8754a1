"""Validate custom resources against the vendored CRD schemas in crds/, strictly.

The API server prunes unknown fields of a structural schema silently, so a
misspelt field would vanish without an error; here every object schema that
lists its properties is closed (additionalProperties: false) unless the CRD
keeps unknown fields on purpose (x-kubernetes-preserve-unknown-fields)."""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import yaml

TOP = Path(__file__).resolve().parent.parent
CRDS = TOP / "crds"
_METADATA_KEYS = {"name", "namespace", "labels", "annotations"}


def _closed(schema: dict) -> dict:
    schema = copy.deepcopy(schema)

    def close(node: object) -> None:
        if isinstance(node, dict):
            if ("properties" in node and "additionalProperties" not in node
                    and not node.get("x-kubernetes-preserve-unknown-fields")):
                node["additionalProperties"] = False
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(schema)
    return schema


def crd_schema(file_name: str, version: str) -> dict:
    crd = yaml.safe_load((CRDS / file_name).read_text())
    served = [v for v in crd["spec"]["versions"] if v["name"] == version and v["served"]]
    assert served, f"{file_name} does not serve {version}"
    return _closed(served[0]["schema"]["openAPIV3Schema"])


def validate_custom_resource(doc: dict, file_name: str) -> None:
    """Raise jsonschema.ValidationError when `doc` does not fit the CRD's schema."""
    group_version = doc["apiVersion"].split("/")
    crd = yaml.safe_load((CRDS / file_name).read_text())
    if group_version[0] != crd["spec"]["group"] or doc["kind"] != crd["spec"]["names"]["kind"]:
        raise jsonschema.ValidationError(f"{doc['apiVersion']} {doc['kind']} is not what {file_name} defines")
    unknown = set(doc["metadata"]) - _METADATA_KEYS
    if unknown:
        raise jsonschema.ValidationError(f"metadata: unexpected fields {sorted(unknown)}")
    jsonschema.validate(doc, crd_schema(file_name, group_version[1]))
