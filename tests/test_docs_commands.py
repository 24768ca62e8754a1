"""The docs' commands, run as a reader runs them.

A fenced block whose info string is `sh test` (or `console test`: only its `$ `
lines run) is runnable; GitHub shows it as an ordinary `sh` block. The runnable
blocks of one page (README.md, docs/**.md) run in order in one bash session
(`set -euo pipefail`: a reader's terminal, variables carry over), in a scratch
copy of the checkout: everything linked except main.py (copied, so dist/ and
secrets/ land in the scratch folder) and what commands write (dist/, secrets/,
.local/). Every local pod a page leaves running is stopped, and the checkout
must be unchanged afterwards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import pytest
from mdpages import Block, doc_pages, fenced_blocks

from conftest import TOP

pytestmark = pytest.mark.slow

RUNNABLE = ("sh test", "console test")
# What the docs' commands write, and what a clone does not have: never linked.
NOT_LINKED = {"dist", "secrets", ".local", ".git", ".pytest_cache", "__pycache__", "main.py"}
TIMEOUT_SECONDS = 600


def runnable_blocks(page: Path) -> list[Block]:
    return [block for block in fenced_blocks(page) if block.info in RUNNABLE]


def commands(block: Block) -> str:
    if block.info.startswith("console"):
        return "".join(line[2:] + "\n" for line in block.text.splitlines() if line.startswith("$ "))
    return block.text


def where(block: Block) -> str:
    page = block.page.relative_to(TOP) if block.page.is_relative_to(TOP) else block.page
    return f"{page}:{block.line}"


def session_script(blocks: list[Block]) -> str:
    parts = ["set -euo pipefail"]
    for block in blocks:
        parts += [f"echo '>>> {where(block)}' >&2", commands(block)]
    return "\n".join(parts) + "\n"


@contextmanager
def scratch_checkout() -> Iterator[Path]:
    # pytest's temp folders are private to root; a local pod runs as the postgres user.
    folder = Path(tempfile.mkdtemp(prefix="docs-commands-"))
    folder.chmod(0o711)
    try:
        for entry in TOP.iterdir():
            if entry.name not in NOT_LINKED:
                (folder / entry.name).symlink_to(entry)
        shutil.copy2(TOP / "main.py", folder / "main.py")
        yield folder
    finally:
        refused = []
        for state in folder.rglob("pod.json"):
            down = subprocess.run([sys.executable, str(folder / "main.py"), "local", "down", "--state",
                                   str(state.parent)], cwd=folder, capture_output=True, text=True, timeout=120,
                                  check=False)
            if down.returncode != 0:
                refused.append(f"{state.parent}: {down.stderr.strip()}")
        shutil.rmtree(folder)
        # A pod the clean-up could not stop would outlive the test: say why, here.
        assert refused == [], "`local down` after the page failed"


def run_session(blocks: list[Block], folder: Path) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in ("VALUES", "CDK8S_OUTDIR")}
    return subprocess.run(["bash", "-c", session_script(blocks)], cwd=folder, env=environment, text=True,
                          capture_output=True, timeout=TIMEOUT_SECONDS, check=False)


def failure(result: subprocess.CompletedProcess[str]) -> str:
    markers = [line for line in result.stderr.splitlines() if line.startswith(">>> ")]
    block = markers[-1].removeprefix(">>> ") if markers else "before the first block"
    return f"the block at {block} failed (status {result.returncode}):\n{result.stderr[-3000:]}"


def checkout_state() -> str:
    return subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=TOP, text=True,
                          capture_output=True, check=True).stdout


@cache  # one run per page: the five-minute test reads the README's run again
def run_page(page: Path) -> subprocess.CompletedProcess[str]:
    blocks = runnable_blocks(page)
    assert blocks, f"{page} has no runnable block"
    before = checkout_state()
    with scratch_checkout() as folder:
        result = run_session(blocks, folder)
    assert checkout_state() == before, "the docs' commands changed the checkout"
    return result


PAGES = [page for page in doc_pages() if runnable_blocks(page)]


def test_readme_has_runnable_blocks():
    assert TOP / "README.md" in PAGES


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(TOP)))
def test_the_runnable_commands_of_each_page_succeed(page):
    result = run_page(page)
    assert result.returncode == 0, failure(result)


def pod_processes(marker: str) -> list[str]:
    listed = subprocess.run(["ps", "-eo", "args"], text=True, capture_output=True, check=True).stdout
    return [line for line in listed.splitlines() if marker in line]


def test_the_five_minute_path_reaches_psql_in_the_local_pod():
    """The README's five-minute path: synth and secrets with the production
    values, local up with those Secrets, psql with the printed dsn over
    verify-full and a client certificate, down."""
    result = run_page(TOP / "README.md")
    assert result.returncode == 0, failure(result)
    assert "appuser|on|t" in result.stdout.splitlines()
    assert pod_processes("docs-commands-") == []


def test_a_failing_block_is_named_and_stops_the_session(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("```sh test\necho one\n```\n\ntext\n\n```sh test\nfalse\necho never\n```\n")
    with scratch_checkout() as folder:
        result = run_session(runnable_blocks(page), folder)
    assert result.returncode == 1
    assert result.stdout == "one\n"
    assert failure(result).startswith(f"the block at {page}:7 failed (status 1)")


def test_console_blocks_run_their_prompt_lines_only(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("```console test\n$ echo hello\nhello\n$ test -L pgbundle && test ! -e dist && echo clean\n```\n")
    with scratch_checkout() as folder:
        result = run_session(runnable_blocks(page), folder)
    assert (result.returncode, result.stdout) == (0, "hello\nclean\n")


def test_a_pod_a_page_leaves_running_is_stopped(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("```sh test\n.venv/bin/python main.py local up --state .local/db\n```\n")
    with scratch_checkout() as folder:
        result = run_session(runnable_blocks(page), folder)
        assert result.returncode == 0, failure(result)
        assert pod_processes(str(folder)) != []
    assert pod_processes(str(folder)) == []
