"""Reading the project's Markdown as GitHub renders it: heading anchors and fenced blocks."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from conftest import TOP

_FENCE = re.compile(r"^(`{3,}|~{3,})(.*)$")
_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")


def doc_pages() -> list[Path]:
    """README.md and every page under docs/."""
    return [TOP / "README.md", *sorted((TOP / "docs").rglob("*.md"))]


def _outside_fences(text: str) -> list[str]:
    lines, fence = [], None
    for line in text.splitlines():
        opened = _FENCE.match(line.lstrip())
        if fence is None and opened:
            fence = opened.group(1)
        elif fence is not None and line.strip().startswith(fence[0] * len(fence)) and not line.strip().strip(fence[0]):
            fence = None
        elif fence is None:
            lines.append(line)
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text: lower case, markup and punctuation
    dropped (letters, digits, '_' and '-' stay), each space a '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    text = re.sub(r"<[^>]+>", "", text).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every heading anchor of a Markdown page, with GitHub's -1, -2 for repeats."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for line in _outside_fences(text):
        heading = _HEADING.match(line)
        if not heading:
            continue
        base = slug(heading.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    info: str  # the fence's info string: `sh test`
    text: str


def fenced_blocks(page: Path) -> list[Block]:
    blocks, fence, start, info, body = [], None, 0, "", []
    for number, line in enumerate(page.read_text().splitlines(), start=1):
        stripped = line.strip()
        if fence is None:
            opened = _FENCE.match(stripped)
            if opened:
                fence, start, info, body = opened.group(1), number, opened.group(2).strip(), []
        elif stripped.startswith(fence[0] * len(fence)) and not stripped.strip(fence[0]):
            blocks.append(Block(page, start, info, "\n".join(body) + "\n"))
            fence = None
        else:
            body.append(line)
    return blocks


_CODE_SPAN = re.compile(r"(`+).*?\1")
_LINK = re.compile(r"!?\[(?:[^\]`]|`[^`]*`)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def links(text: str) -> list[str]:
    """The target of every inline link and image of a page, outside fenced blocks
    and code spans (GitHub renders neither as a link)."""
    found = []
    for line in _outside_fences(text):
        found += _LINK.findall(_CODE_SPAN.sub("", line))
    return found
