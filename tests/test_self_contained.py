"""The repository is self-contained: nothing tracked reads from outside the
checkout, so a fresh clone on any machine builds and tests."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent
# The sibling folder of reference material on the project's own machines. The
# pattern is assembled so that this file does not match itself.
_SIBLING = "sha" + "red"
OUTSIDE = re.compile(
    rb"\.\.[/\\]" + _SIBLING.encode() + rb"\b"               # ../<sibling>
    rb"|parent\s*/\s*[\"']" + _SIBLING.encode() + rb"[\"']"  # TOP.parent / "<sibling>"
)


def tracked_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=TOP, check=True, capture_output=True).stdout
    return [TOP / name for name in listed.decode().split("\0") if name]


def outside_references(root: Path, files: list[Path]) -> list[str]:
    """`path:line` of every line of `files` that refers to the sibling folder."""
    found = []
    for path in files:
        if path.is_symlink() or not path.is_file():
            continue
        for number, line in enumerate(path.read_bytes().splitlines(), start=1):
            if OUTSIDE.search(line):
                found.append(f"{path.relative_to(root)}:{number}")
    return found


def test_no_tracked_file_refers_to_the_sibling_folder():
    files = tracked_files()
    assert TOP / "cdk8s.yaml" in files  # the listing works: the check below is not vacuous
    assert outside_references(TOP, files) == []


def test_the_check_finds_a_reference(tmp_path):
    # The same check on files that do refer outside: it must report each of them.
    (tmp_path / "a.yaml").write_text(f"imports:\n  - ../{_SIBLING}/crds/x.yaml\n")
    (tmp_path / "b.py").write_text(f'CRDS = TOP.parent / "{_SIBLING}" / "crds"\n')
    (tmp_path / "c.md").write_text("crds/ are vendored in this repository\n")
    assert outside_references(tmp_path, sorted(tmp_path.iterdir())) == ["a.yaml:2", "b.py:1"]
