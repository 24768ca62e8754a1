"""The PgBouncer the local pooler and its tests run: the image's version
(contract.POOLER_VERSION), never Debian 12's 1.18, which lacks `auth_dbname`
(1.19) and prepared statements in transaction mode (1.21).

On Debian 13 and later the distribution's package is that version: it is
installed with apt. On Debian 12 it is built from Debian 13's source package
(the same source the pinned image installs; debian13.py) into a
world-readable folder outside the checkout, because PgBouncer refuses to run as
root and the `postgres` OS user must be able to run it. It builds in under a minute.

`python -m workstation.pgbouncer_install` installs it when missing (make test does).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from pgbundle.contract import POOLER_VERSION
from workstation.debian13 import Program, unpack_source


def _build(work: Path, prefix: Path) -> None:
    source = unpack_source("pgbouncer", POOLER_VERSION, work, "POOLER_VERSION")
    subprocess.run(["./configure", f"--prefix={prefix}", "--with-cares"], cwd=source, check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run(["make", f"-j{os.cpu_count() or 1}"], cwd=source, check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["make", "install"], cwd=source, check=True, stdout=subprocess.DEVNULL)


PGBOUNCER = Program(
    package="pgbouncer", version=POOLER_VERSION, contract_name="POOLER_VERSION",
    packaged_path=Path("/usr/sbin/pgbouncer"),
    version_pattern=r"PgBouncer (\d+\.\d+(?:\.\d+)?)", version_args=("--version",),
    build_dependencies=("libevent-dev", "libc-ares-dev", "libssl-dev", "pkg-config", "make", "gcc"),
    install=_build)
binary = PGBOUNCER.binary
installed = PGBOUNCER.installed


if __name__ == "__main__":
    PGBOUNCER.main()
