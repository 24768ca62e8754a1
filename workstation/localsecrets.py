"""Secret volumes for the local pod runner, laid out the way the kubelet does it.

`python main.py local up --secrets DIR` feeds the runner the Secret manifests
that `secrets generate` wrote (instead of secrets of its own). Each Secret
volume of the pod is projected like the kubelet's atomic writer does:

  TARGET/..2026_11_27_00_01_02.123456789/server.crt   the files, mode from the volume
  TARGET/..data -> ..2026_11_27_00_01_02.123456789    swapped atomically on update
  TARGET/server.crt -> ..data/server.crt              what the container opens

with `items` mapping keys to file names, `optional` honoured, and (when run as
root) files owned by root with the pod's fsGroup as group, as in a cluster.
Projecting again swaps `..data`, which is exactly what a pod sees when a Secret
changes (a cert-manager renewal, a rotation).
"""

from __future__ import annotations

import base64
import datetime
import os
import shlex
import shutil
import tempfile
from pathlib import Path

import yaml

DATA_LINK = "..data"


class SecretVolumeError(Exception):
    """A Secret volume cannot be projected; the message names the Secret and key."""


def read_manifests(folder: Path) -> dict[str, dict[str, bytes]]:
    """Secret name -> decoded data, from every *.yaml/*.yml in `folder` (what `kubectl apply -f` reads)."""
    secrets: dict[str, dict[str, bytes]] = {}
    files = sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml")) if folder.is_dir() else []
    if not files:
        raise SecretVolumeError(f"{folder} holds no Secret manifests: run `python main.py secrets generate --out {shlex.quote(str(folder))}`")
    for path in files:
        for document in yaml.safe_load_all(path.read_text()):
            if not document or document.get("kind") != "Secret":
                continue
            data = {k: base64.b64decode(v) for k, v in (document.get("data") or {}).items()}
            data.update({k: v.encode() for k, v in (document.get("stringData") or {}).items()})
            secrets[document["metadata"]["name"]] = data
    return secrets


def payload(source: dict, secrets: dict[str, dict[str, bytes]]) -> dict[str, tuple[bytes, int]]:
    """File path -> (content, mode) for a pod's `secret` volume source, as the kubelet computes it."""
    name = source["secretName"]
    optional = source.get("optional", False)
    default_mode = source.get("defaultMode", 0o644)
    data = secrets.get(name)
    if data is None:
        if optional:
            return {}
        raise SecretVolumeError(f"Secret {name} is not among the given manifests and its volume is not optional")
    if "items" not in source:
        return {key: (value, default_mode) for key, value in data.items()}
    files = {}
    for item in source["items"]:
        if item["key"] not in data:
            if optional:
                continue
            raise SecretVolumeError(f"Secret {name} has no key {item['key']} (the volume maps it to {item['path']})")
        files[item["path"]] = (data[item["key"]], item.get("mode", default_mode))
    return files


def project(target: Path, files: dict[str, tuple[bytes, int]], *, gid: int) -> None:
    """Write `files` into `target` the kubelet's way and swap them in atomically."""
    target.mkdir(parents=True, exist_ok=True)
    as_root = os.geteuid() == 0
    if not (target / DATA_LINK).is_symlink():
        # Plain files from the runner's own secrets: start over.
        for child in target.iterdir():
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("..%Y_%m_%d_%H_%M_%S.")
    fresh = Path(tempfile.mkdtemp(prefix=stamp, dir=target))
    fresh.chmod(0o755)
    for path, (content, mode) in files.items():
        file = fresh / path
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(content)
        if as_root:
            os.chown(file, 0, gid)  # root-owned, readable through the fsGroup
            file.chmod(mode)
        else:
            file.chmod(0o600)  # a non-root runner is the server's own user
    old = os.readlink(target / DATA_LINK) if (target / DATA_LINK).is_symlink() else None
    temporary_link = target / "..data_tmp"
    if temporary_link.is_symlink():
        temporary_link.unlink()
    temporary_link.symlink_to(fresh.name)
    os.rename(temporary_link, target / DATA_LINK)  # the atomic swap
    top_level = {Path(p).parts[0] for p in files}
    for name in top_level:
        link = target / name
        if not link.is_symlink():
            link.symlink_to(f"{DATA_LINK}/{name}")
    for child in target.iterdir():
        if child.is_symlink() and child.name not in top_level and not child.name.startswith(".."):
            child.unlink()  # a key the Secret no longer has
    if old and old != fresh.name:
        shutil.rmtree(target / old, ignore_errors=True)
