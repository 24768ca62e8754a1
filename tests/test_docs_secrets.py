"""The docs' `kubectl apply` after `secrets generate` applies every Secret the
command writes, whatever the values (4 with ca.verifyClients and backups), and
never the CA key."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml
from mdpages import Block, doc_pages, fenced_blocks

import main

# The files `kubectl apply -f FOLDER` reads (not recursive without -R).
KUBECTL_SUFFIXES = (".json", ".yaml", ".yml")


def generate_and_apply_blocks() -> list[Block]:
    found = []
    for page in doc_pages():
        for block in fenced_blocks(page):
            lines = [line.split("#")[0].strip() for line in block.text.splitlines()]
            if any(line.endswith("main.py secrets generate") for line in lines) and any(
                    line.startswith("kubectl apply") and "secrets/" in line for line in lines):
                found.append(block)
    return found


def applied(line: str, folder: Path) -> set[str]:
    words = shlex.split(line)
    paths = [folder.parent / words[i + 1] for i, word in enumerate(words) if word == "-f"]
    found = set()
    for path in paths:
        if path.is_dir():
            found |= {p.name for p in path.iterdir() if p.suffix in KUBECTL_SUFFIXES}
        else:
            found.add(path.name)
    return found


def test_the_create_block_is_found():
    assert generate_and_apply_blocks(), "no block runs `secrets generate` then `kubectl apply -f secrets/...`"


@pytest.mark.parametrize("values", [
    "{}",
    "postgres: {ca: {verifyClients: true}}",
    "postgres: {ca: {verifyClients: true}, pooler: {enabled: true}}",
], ids=["default", "verifyClients", "verifyClients+pooler"])
@pytest.mark.parametrize("block", generate_and_apply_blocks(), ids=lambda b: f"{b.page.name}:{b.line}")
def test_kubectl_apply_names_every_secret_written(block, values, tmp_path):
    (tmp_path / "values.yaml").write_text(values + "\n")
    out = tmp_path / "secrets"
    assert main.main(["secrets", "generate", "--values", str(tmp_path / "values.yaml"), "--out", str(out)]) == 0
    secrets = {p.name for p in out.iterdir() if p.suffix == ".yaml" and yaml.safe_load(p.read_text())["kind"] == "Secret"}
    assert len(secrets) >= 3
    line = next(line.split("#")[0] for line in block.text.splitlines()
                if line.startswith("kubectl apply") and "secrets/" in line)
    assert applied(line, out) == secrets
    assert "ca.key" in {p.name for p in out.iterdir()}
