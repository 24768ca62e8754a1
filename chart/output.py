"""Write synthesized manifests so that a failed run never leaves a half-written
or empty output folder behind, and never replaces a folder holding anything
this program did not write."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Collection
from pathlib import Path


class OutputError(Exception):
    """The output folder cannot be used; nothing was changed. The message names the folder."""


def check_replaceable(target: Path, ours: Collection[str], *, option: str, what: str,
                      action: str = "replace") -> None:
    """Raise OutputError unless `target` is missing, empty, or holds only entries
    named in `ours` (what an earlier run wrote). `option`, `what` and `action` word
    the error: `--out: DIR holds a, b, which <what> did not write: refusing to <action> it`."""
    if not target.exists() and not target.is_symlink():
        return
    if not target.is_dir():
        raise OutputError(f"{option}: {target} is not a folder: choose a missing or empty folder")
    foreign = sorted(entry.name for entry in target.iterdir() if entry.name not in ours)
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise OutputError(
            f"{option}: {target} holds {shown}, which {what} did not write: refusing to {action} it; "
            f"choose a missing or empty folder, or one holding only {', '.join(sorted(ours))}")


def replace_folder(target: Path, write: Callable[[Path], None], *, ours: Collection[str],
                   option: str = "--out") -> None:
    """Call `write(staging)` on a fresh sibling folder of `target`; only when it
    returns, swap the result in for `target`. On any error `target` is untouched.

    `target` must be missing, empty, or hold only files named in `ours` (an
    earlier output), else OutputError is raised before anything is written;
    `write` must write only such files."""
    target = target.resolve()
    check_replaceable(target, ours, option=option, what="a synth")
    for entry in ours:
        if (target / entry).is_dir() and not (target / entry).is_symlink():
            raise OutputError(f"{option}: {target / entry} is a folder, not an earlier synth's file: refusing to replace {target}")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-staging-", dir=target.parent))
    try:
        write(staging)
        unexpected = sorted(p.name for p in staging.iterdir() if p.name not in ours)
        if unexpected:  # the next run would refuse the folder: a defect of the program, not the input
            raise RuntimeError(f"the synth wrote {unexpected}, which are not among {sorted(ours)}")
        if target.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{target.name}-old-", dir=target.parent))
            target.rename(retired / target.name)
            staging.rename(target)
            shutil.rmtree(retired)
        else:
            staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
