"""The pgBackRest everything on this machine runs (the local pod and its
sidecar, `local backup|restore|verify|upgrade`, the tests and benchmarks): the
image's version, contract.PGBACKREST_VERSION, never Debian 12's 2.45, which
cannot read PostgreSQL 18 data, has no block incrementals, and whose `verify`
ends with status 0 whatever it finds.

On Debian 13 and later the distribution's package is that version. On Debian 12
the program of Debian 13's binary package (debian13.py; the same file the image
copies) goes into a world-readable folder outside the checkout, the `postgres`
OS user runs it, with Debian 12's libraries (RUNTIME_LIBRARIES). The workstation's
tools put `binary().parent` first on the PATH of everything that runs pgbackrest,
so the pod's scripts call `pgbackrest` as they do in the image.

`python -m workstation.pgbackrest_install` installs it when missing (make test does).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from pgbundle.contract import PGBACKREST_VERSION
from workstation.debian13 import Program, unpack_binary

# What Debian 13's program links, by their Debian 12 names: those image/Dockerfile
# installs, and those the postgres image has for PostgreSQL itself.
IMAGE_LIBRARIES = ("libbz2-1.0", "liblz4-1", "libssh2-1", "libxml2", "libzstd1", "zlib1g")
RUNTIME_LIBRARIES = (*IMAGE_LIBRARIES, "libpq5", "libssl3")


def _install(work: Path, prefix: Path) -> None:
    root = unpack_binary("pgbackrest", PGBACKREST_VERSION, work, "PGBACKREST_VERSION")
    (prefix / "bin").mkdir(parents=True)
    shutil.copy2(root / "usr/bin/pgbackrest", prefix / "bin" / "pgbackrest")


PGBACKREST = Program(
    package="pgbackrest", version=PGBACKREST_VERSION, contract_name="PGBACKREST_VERSION",
    packaged_path=Path("/usr/bin/pgbackrest"),
    version_pattern=r"pgBackRest (\d+\.\d+(?:\.\d+)?)", version_args=("version",),
    build_dependencies=RUNTIME_LIBRARIES, install=_install)


def ensure() -> Path:
    """Install it when missing; the program's path."""
    return PGBACKREST.ensure()


def binary() -> Path:
    """The pgbackrest program every workstation tool runs (installed or not)."""
    return PGBACKREST.binary()


def bin_dir() -> str:
    """The folder to put first on PATH so that `pgbackrest` is binary()."""
    return str(binary().parent)


if __name__ == "__main__":
    PGBACKREST.main()
