"""Every in-repo link of the docs lands: the file exists and its `#anchor` is a
heading there (GitHub's slugs, tests/mdpages.py). The same holds for the pages
the code and the pods' messages point readers at."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest
from mdpages import anchors, doc_pages, links

from conftest import TOP

PAGES = [*doc_pages(), TOP / "ARCHITECTURE.md"]
README_MAX_LINES = 250
# Where the code names a page for the reader: help texts, errors, pod scripts' messages, comments.
SOURCES = ["constructs", "pgbundle", "chart", "workstation", "tools", "examples", "values.yaml", "main.py"]
PAGE_REFERENCE = re.compile(r"\b((?:README|ARCHITECTURE)\.md|docs/[\w-]+\.md)(?:#([\w-]+))?")


def problem(target: str, page: Path) -> str | None:
    """Why a link from `page` does not land, or None when it does (or is not ours)."""
    if re.match(r"^[a-z][a-z0-9+.-]*:", target, flags=re.I):  # https:, mailto:: not in the repository
        return None
    path, _, anchor = target.partition("#")
    file = (page.parent / unquote(path)).resolve() if path else page
    if not file.is_relative_to(TOP) or not file.exists():
        return f"{target}: no such file"
    if anchor and (file.suffix != ".md" or anchor not in anchors(file.read_text())):
        return f"{target}: {file.relative_to(TOP)} has no heading #{anchor}"
    return None


def broken_links(page: Path) -> list[str]:
    return [found for target in links(page.read_text()) if (found := problem(target, page))]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(TOP)))
def test_every_link_lands(page):
    assert broken_links(page) == []


def test_the_docs_have_links_to_check():
    assert sum(len(links(page.read_text())) for page in PAGES) >= 50


def test_a_missing_file_or_heading_is_reported():
    page = TOP / "docs" / "test-page-never-committed.md"  # resolved, never written
    assert problem("nope.md", page) == "nope.md: no such file"
    assert problem("runbook.md#postgresdown", page) is None
    assert problem("runbook.md#postgresup", page) == "runbook.md#postgresup: docs/runbook.md has no heading #postgresup"
    assert problem("../README.md", page) is None
    assert problem("https://example.invalid/x.md#y", page) is None


def test_links_in_code_are_no_links():
    assert links("[a](b.md) `[c](d.md)`\n\n```\n[e](f.md)\n```\n![g](h.png)\n") == ["b.md", "h.png"]


def source_files() -> list[Path]:
    files = []
    for name in SOURCES:
        path = TOP / name
        files += [p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts] if path.is_dir() else [path]
    return files


def test_every_page_the_code_names_exists_with_its_heading():
    named = [(file, match) for file in source_files() for match in PAGE_REFERENCE.finditer(file.read_text())]
    assert len(named) >= 10
    for file, match in named:
        target = match.group(1) + (f"#{match.group(2)}" if match.group(2) else "")
        assert problem(target, TOP / "x") is None, f"{file.relative_to(TOP)} names {target}"


def test_the_readme_is_a_landing_page():
    assert len((TOP / "README.md").read_text().splitlines()) <= README_MAX_LINES
