"""Shared test helpers: synthesize values in-process and pick objects by kind and name."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import yaml

TOP = Path(__file__).resolve().parent.parent
# jsii needs Node >= 22: use the pinned one from node_modules.
os.environ["PATH"] = f"{TOP / 'node_modules' / '.bin'}{os.pathsep}{os.environ['PATH']}"
if str(TOP) not in sys.path:
    sys.path.insert(0, str(TOP))

import main  # noqa: E402
from constructs.values import parse_values  # noqa: E402


class Manifests:
    """The documents of one synth, with lookups by kind and name."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.files = sorted(folder.glob("*.yaml"))
        self.docs = [d for f in self.files for d in yaml.safe_load_all(f.read_text()) if d]

    def get(self, kind: str, name: str) -> dict:
        found = [d for d in self.docs if d["kind"] == kind and d["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
        return found[0]

    def find(self, kind: str, name: str) -> dict | None:
        found = [d for d in self.docs if d["kind"] == kind and d["metadata"]["name"] == name]
        return found[0] if found else None

    def kinds(self) -> set[tuple[str, str]]:
        return {(d["kind"], d["metadata"]["name"]) for d in self.docs}

    def text(self) -> str:
        return "".join(f.read_text() for f in self.files)


def deep_merge(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


@pytest.fixture
def synth(tmp_path_factory):
    """synth(values_dict) -> Manifests, synthesized in-process from the given values."""

    def run(values: dict | None = None) -> Manifests:
        out = tmp_path_factory.mktemp("dist")
        main.synthesize(parse_values(values or {}), out)
        return Manifests(out)

    return run


@pytest.fixture
def synth_file(tmp_path_factory):
    """synth_file(path) -> Manifests for a values file such as examples/production.yaml."""

    def run(path: Path) -> Manifests:
        out = tmp_path_factory.mktemp("dist")
        main.synthesize(parse_values(yaml.safe_load(path.read_text()), str(path)), out)
        return Manifests(out)

    return run


def container(pod_spec: dict, name: str) -> dict:
    found = [c for c in pod_spec["containers"] if c["name"] == name]
    assert len(found) == 1, f"expected one container {name}"
    return found[0]
