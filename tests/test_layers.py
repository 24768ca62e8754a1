"""The layer rule of ARCHITECTURE.md: a module imports only from its own layer
or lower ones, and the imports form no cycle."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import TOP

# Highest first; a module belongs to the first prefix it starts with.
LAYERS = [
    ("main",),
    ("workstation.cli",),
    ("workstation",),
    ("chart",),
    ("constructs",),
    ("pgbundle.pgconf", "pgbundle.patroni", "pgbundle.monitoring", "pgbundle.k8s", "pgbundle.manifests"),
    ("pgbundle.values",),
    ("pgbundle.contract",),
]


def layer(module: str) -> int | None:
    """0 for the top layer; None for what is not ours (PyPI, imports/)."""
    for rank, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return len(LAYERS) - rank
    return None


def modules() -> dict[str, Path]:
    found = {"main": TOP / "main.py"}
    for folder in ("workstation", "chart", "constructs", "pgbundle"):
        for path in (TOP / folder).rglob("*.py"):
            parts = path.relative_to(TOP).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    for package in ("workstation", "chart", "pgbundle"):
        del found[package]  # the package itself: a docstring
    return found


def imports(path: Path) -> set[str]:
    """Every module the file imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def graph() -> dict[str, set[str]]:
    ours = modules()
    return {name: {m for m in imports(path) if m in ours and m != name} for name, path in ours.items()}


def test_every_module_has_a_layer():
    assert [name for name in modules() if layer(name) is None] == []


def test_no_module_imports_from_a_higher_layer():
    upward = [f"{name} -> {target}" for name, targets in graph().items() for target in targets
              if layer(target) > layer(name)]
    assert upward == []


def test_imports_form_no_cycle():
    edges = graph()
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> list[str] | None:
        if name in path:
            return path[path.index(name):] + [name]
        if name in done:
            return None
        for target in sorted(edges[name]):
            cycle = visit(target, [*path, name])
            if cycle:
                return cycle
        done.add(name)
        return None

    cycles = [c for c in (visit(name, []) for name in sorted(edges)) if c]
    assert cycles == []
