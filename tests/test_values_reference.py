"""docs/configuration.md is generated from the values model: it is current, it names
every key values.yaml has, and every key carries a description and a type."""

from __future__ import annotations

import subprocess
import sys
from typing import Annotated

import pytest
import yaml
from pydantic import AfterValidator

from conftest import TOP
from pgbundle.values.reference import render, sections, type_text

REFERENCE = TOP / "docs" / "configuration.md"


def test_the_committed_reference_is_what_the_model_gives():
    assert REFERENCE.read_text() == render(), "docs/configuration.md is stale: run `make docs` and commit it"


def test_the_tool_writes_the_reference(tmp_path):
    out = tmp_path / "configuration.md"
    subprocess.run([sys.executable, str(TOP / "tools" / "values-reference"), str(out)], check=True)
    assert out.read_text() == render()


def reference_paths() -> set[str]:
    return {f"{s.path}.{k.name}" if s.path else k.name for s in sections() for k in s.keys}


def value_paths(data: object, where: str = "") -> set[str]:
    found: set[str] = set()
    if isinstance(data, dict):
        for key, value in data.items():
            path = f"{where}.{key}" if where else key
            found |= {path} | value_paths(value, path)
    elif isinstance(data, list):
        for item in data:
            found |= value_paths(item, f"{where}[]")
    return found


def test_every_key_of_values_yaml_is_in_the_reference():
    shipped = value_paths(yaml.safe_load((TOP / "values.yaml").read_text()))
    # Mapping keys of labels and config.parameters are the user's, not the model's.
    shipped = {p for p in shipped if not any(f".{m}." in p for m in ("matchLabels", "labels", "parameters"))}
    assert shipped - reference_paths() == set()


def test_every_key_is_described():
    undescribed = [f"{s.path}.{k.name}" for s in sections() for k in s.keys if not k.description]
    assert undescribed == []


def test_a_checked_type_without_a_reference_name_is_an_error():
    unnamed = Annotated[str, AfterValidator(str.strip)]
    with pytest.raises(TypeError, match="add it to _NAMED_TYPES"):
        type_text(unnamed)
