"""The Patroni installation the local cluster runner and its tests use.

Patroni re-executes its own Python interpreter to start PostgreSQL as the
`postgres` OS user, so the interpreter and the packages must be readable by
that user: a venv inside a checkout under a private folder (such as /root)
leaves the cluster hanging at "establishing a new patroni heartbeat
connection". The venv is therefore made from the system Python in a
world-readable folder outside the checkout, named after the pinned
requirements (the same file the image installs), so a new pin gets a new
folder and two checkouts with the same pin share one.

`python -m workstation.patroni_venv` creates it when missing (make test does).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REQUIREMENTS = Path(__file__).resolve().parents[1] / "image" / "patroni-requirements.txt"
SYSTEM_PYTHON = "/usr/bin/python3"
VENV_ROOT = Path("/opt/pgbundle")
_INSTALLED = ".installed"


def _pin_name() -> str:
    text = REQUIREMENTS.read_text()
    version = re.search(r"^patroni\[[^\]]*\]==(\S+)$", text, re.MULTILINE)
    if version is None:
        raise RuntimeError(f"{REQUIREMENTS} pins no patroni[...]==VERSION")
    return f"patroni-{version.group(1)}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


# The one place the runner, the tests and the benchmark find Patroni.
VENV = VENV_ROOT / _pin_name()
PATRONI = VENV / "bin" / "patroni"
PATRONICTL = VENV / "bin" / "patronictl"


def installed() -> bool:
    return (VENV / _INSTALLED).exists()


def ensure() -> Path:
    """Create the venv when it is missing. It counts as installed only once the
    marker is written last, so an interrupted build is started over."""
    if installed():
        return VENV
    VENV_ROOT.mkdir(parents=True, exist_ok=True)
    VENV_ROOT.chmod(0o755)
    if VENV.exists():
        shutil.rmtree(VENV)
    # A venv records its own path in its scripts: it is built where it lives.
    subprocess.run([SYSTEM_PYTHON, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet",
                    "--disable-pip-version-check", "--no-cache-dir", "-r", str(REQUIREMENTS)], check=True)
    for folder, _, _ in os.walk(VENV):
        os.chmod(folder, 0o755)
    (VENV / _INSTALLED).write_text(REQUIREMENTS.read_text())
    return VENV

if __name__ == "__main__":
    try:
        print(ensure())
    except (OSError, subprocess.CalledProcessError, RuntimeError) as err:
        print(f"error: cannot create the Patroni venv in {VENV}: {err}", file=sys.stderr)
        sys.exit(1)
