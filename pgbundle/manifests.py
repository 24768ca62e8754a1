"""The synthesized YAML read back: the one loader the workstation tools (local
pod runner, local backups) and the tests share."""

from __future__ import annotations

from pathlib import Path

import yaml

# libyaml's parser (in PyYAML's wheels) reads the same documents about ten times
# faster than the pure-Python one; the local runner reads a state's manifests for
# every command it runs in the pod.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class ManifestError(Exception):
    """An object the caller needs is not in the manifests; the message names it."""


class Manifests:
    """The documents of one synth folder, with lookups by kind and name."""

    def __init__(self, folder: Path) -> None:
        if not folder.is_dir():
            raise ManifestError(f"{folder} does not exist: synthesize first")
        self.folder = folder
        self.files = sorted(folder.glob("*.yaml"))
        self.docs = [d for f in self.files for d in yaml.load_all(f.read_text(), Loader=_LOADER) if d]

    def find(self, kind: str, name: str) -> dict | None:
        found = [d for d in self.docs if d["kind"] == kind and d["metadata"]["name"] == name]
        return found[0] if found else None

    def get(self, kind: str, name: str) -> dict:
        found = [d for d in self.docs if d["kind"] == kind and d["metadata"]["name"] == name]
        if len(found) != 1:
            raise ManifestError(f"expected one {kind} {name} in {self.folder}, found {len(found)}")
        return found[0]

    def kinds(self) -> set[tuple[str, str]]:
        return {(d["kind"], d["metadata"]["name"]) for d in self.docs}

    def text(self) -> str:
        return "".join(f.read_text() for f in self.files)


def container(pod_spec: dict, name: str) -> dict:
    """The container `name` of a pod spec."""
    found = [c for c in pod_spec["containers"] if c["name"] == name]
    if len(found) != 1:
        raise ManifestError(f"expected one container {name}, found {len(found)}")
    return found[0]
