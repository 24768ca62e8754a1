"""The PgBouncer the local pooler and its tests run: the image's version
(contract.POOLER_VERSION), never Debian 12's 1.18, which lacks `auth_dbname`
(1.19) and prepared statements in transaction mode (1.21).

On Debian 13 and later the distribution's package is that version: it is
installed with apt. On Debian 12 it is built from Debian 13's source package
(the same source the pinned image installs) into a world-readable folder
outside the checkout, because PgBouncer refuses to run as root and the
`postgres` OS user must be able to run it. Debian 13's binaries cannot be
installed on 12 (they need a newer glibc); the source builds there in under a
minute. The machine's apt configuration is left as it is: the source index is
fetched into a private folder with a private list.

`python -m workstation.pgbouncer_install` installs it when missing (make test does).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from pgbundle.contract import POOLER_VERSION

ROOT = Path("/opt/pgbundle")
BUILD = ROOT / f"pgbouncer-{POOLER_VERSION}"
PACKAGED = Path("/usr/sbin/pgbouncer")
_INSTALLED = ".installed"
# Debian 13's suite, whose pgbouncer source is POOLER_VERSION.
SOURCE_SUITE = "trixie"
BUILD_DEPENDENCIES = ("libevent-dev", "libc-ares-dev", "libssl-dev", "pkg-config", "make", "gcc")
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


def _debian_major() -> int:
    return int(Path("/etc/debian_version").read_text().split(".")[0].strip() or 0)


def _packaged() -> bool:
    """Debian 13 and later ship POOLER_VERSION (or a later one) as a package."""
    try:
        return _debian_major() >= 13
    except (OSError, ValueError):
        return False


def binary() -> Path:
    """Where the pgbouncer binary is (installed or not)."""
    return PACKAGED if _packaged() else BUILD / "bin" / "pgbouncer"


def version(path: Path) -> str:
    out = subprocess.run([str(path), "--version"], capture_output=True, text=True, check=True).stdout
    found = re.search(r"PgBouncer (\d+\.\d+(?:\.\d+)?)", out)
    if found is None:
        raise RuntimeError(f"{path} --version printed no PgBouncer version: {out!r}")
    return found.group(1)


def _major_minor(text: str) -> tuple[int, int]:
    major, minor = text.split(".")[:2]
    return int(major), int(minor)


def installed() -> bool:
    path = binary()
    if not path.exists():
        return False
    if not _packaged():
        return (BUILD / _INSTALLED).exists()
    return _major_minor(version(path)) >= _major_minor(POOLER_VERSION)


def _apt_install(*packages: str) -> None:
    missing = [p for p in packages if subprocess.run(["dpkg-query", "-W", "-f=${Status}", p], capture_output=True,
                                                      text=True).stdout != "install ok installed"]
    if missing:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env, stdout=subprocess.DEVNULL)


def _mirror() -> str:
    """The Debian mirror this machine's apt uses (the deb822 or the one-line format)."""
    files = sorted(Path("/etc/apt/sources.list.d").glob("*.sources")) + sorted(Path("/etc/apt").glob("sources.list*"))
    for path in files:
        if not path.is_file():
            continue
        for match in re.finditer(r"(?:URIs:\s*|^deb\s+(?:\[[^]]*\]\s+)?)(\S+/debian)/?\s", path.read_text(), re.M):
            return match.group(1)
    raise RuntimeError("no Debian mirror found in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list")


def _download_source(work: Path) -> Path:
    """Debian 13's pgbouncer source package, signature-checked by apt, into `work`; its upstream tarball."""
    lists = work / "lists"
    (lists / "partial").mkdir(parents=True)
    source_list = work / "sources.list"
    source_list.write_text(f"deb-src [signed-by={KEYRING}] {_mirror()} {SOURCE_SUITE} main\n")
    private = ["-o", f"Dir::Etc::sourcelist={source_list}", "-o", "Dir::Etc::sourceparts=-",
               "-o", f"Dir::State::Lists={lists}"]
    subprocess.run(["apt-get", *private, "update", "-qq"], check=True)
    subprocess.run(["apt-get", *private, "source", "--download-only", "-qq", "pgbouncer"], check=True, cwd=work)
    tarball = work / f"pgbouncer_{POOLER_VERSION}.orig.tar.gz"
    if not tarball.exists():
        found = sorted(p.name for p in work.glob("pgbouncer_*.orig.tar.*"))
        raise RuntimeError(f"Debian {SOURCE_SUITE}'s pgbouncer source is {found}, not {POOLER_VERSION}: "
                           "update contract.POOLER_VERSION with the image tag")
    return tarball


def _build() -> None:
    _apt_install(*BUILD_DEPENDENCIES)
    ROOT.mkdir(parents=True, exist_ok=True)
    ROOT.chmod(0o755)
    if BUILD.exists():
        shutil.rmtree(BUILD)
    with tempfile.TemporaryDirectory(prefix="pgbouncer-build-") as tmp:
        work = Path(tmp)
        if _has_user("_apt"):
            shutil.chown(work, user="_apt")  # apt downloads as _apt: otherwise it warns and downloads as root
        tarball = _download_source(work)
        subprocess.run(["tar", "-xf", str(tarball), "-C", str(work)], check=True)
        source = work / f"pgbouncer-{POOLER_VERSION}"
        subprocess.run(["./configure", f"--prefix={BUILD}", "--with-cares"], cwd=source, check=True,
                       stdout=subprocess.DEVNULL)
        subprocess.run(["make", f"-j{os.cpu_count() or 1}"], cwd=source, check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["make", "install"], cwd=source, check=True, stdout=subprocess.DEVNULL)
    for folder, _, files in os.walk(BUILD):
        os.chmod(folder, 0o755)
        for name in files:
            path = Path(folder) / name
            path.chmod(0o755 if os.access(path, os.X_OK) else 0o644)
    built = version(BUILD / "bin" / "pgbouncer")
    if built != POOLER_VERSION:
        raise RuntimeError(f"the build reports PgBouncer {built}, not {POOLER_VERSION}")
    (BUILD / _INSTALLED).write_text(POOLER_VERSION + "\n")


def _has_user(name: str) -> bool:
    return subprocess.run(["id", "-u", name], capture_output=True).returncode == 0


def ensure() -> Path:
    """Install PgBouncer when it is missing; the marker is written last, so an
    interrupted build starts over."""
    if installed():
        return binary()
    if _packaged():
        _apt_install("pgbouncer")
        found = version(PACKAGED)
        if _major_minor(found) < _major_minor(POOLER_VERSION):
            raise RuntimeError(f"Debian's pgbouncer is {found}; the pooler needs {POOLER_VERSION} or later")
    else:
        _build()
    return binary()


if __name__ == "__main__":
    try:
        print(ensure())
    except (OSError, subprocess.CalledProcessError, RuntimeError) as err:
        print(f"error: cannot install PgBouncer {POOLER_VERSION}: {err}", file=sys.stderr)
        sys.exit(1)
