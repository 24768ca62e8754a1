"""Debian 13's PgBouncer and pgBackRest on Debian 12.

The workstation runs the same PgBouncer and pgBackRest versions as the image
(pgbouncer_install.py, pgbackrest_install.py). Debian 13 and later ship them as
packages. On Debian 12 they come from Debian 13's packages too: PgBouncer's
binary needs Debian 13's newer glibc, so it is built from its source package;
pgBackRest's binary needs only glibc 2.34 and runs on Debian 12's libraries
(measured: every symbol resolves with LD_BIND_NOW=1), so its binary package is
unpacked. The machine's apt configuration is left as it is: Debian 13's index
is fetched into a private folder with a private list, and apt checks what it
downloads against Debian's keyring.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# Debian 13's suite, whose sources are the versions the image carries.
SOURCE_SUITE = "trixie"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
# Where the builds go: outside the checkout and readable by the `postgres` OS
# user, which runs PostgreSQL, PgBouncer and pgBackRest (none of them run as root).
ROOT = Path("/opt/pgbundle")


def debian_major() -> int:
    return int(Path("/etc/debian_version").read_text().split(".")[0].strip() or 0)


def packaged() -> bool:
    """Debian 13 and later ship the image's versions (or later ones) as packages."""
    try:
        return debian_major() >= 13
    except (OSError, ValueError):
        return False


def major_minor(text: str) -> tuple[int, int]:
    major, minor = text.split(".")[:2]
    return int(major), int(minor)


def apt_install(*packages: str) -> None:
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


def _has_user(name: str) -> bool:
    return subprocess.run(["id", "-u", name], capture_output=True).returncode == 0


def _private_apt(work: Path, kind: str) -> list[str]:
    """apt options reading only Debian 13's `kind` ("deb" or "deb-src") index, kept in `work`."""
    if _has_user("_apt"):
        shutil.chown(work, user="_apt")  # apt downloads as _apt: otherwise it warns and downloads as root
    lists = work / "lists"
    (lists / "partial").mkdir(parents=True)
    source_list = work / "sources.list"
    source_list.write_text(f"{kind} [signed-by={KEYRING}] {_mirror()} {SOURCE_SUITE} main\n")
    private = ["-o", f"Dir::Etc::sourcelist={source_list}", "-o", "Dir::Etc::sourceparts=-",
               "-o", f"Dir::State::Lists={lists}"]
    subprocess.run(["apt-get", *private, "update", "-qq"], check=True)
    return private


def _wrong_version(package: str, version: str, found: list[Path], contract_name: str) -> RuntimeError:
    return RuntimeError(f"Debian {SOURCE_SUITE}'s {package} is {sorted(p.name for p in found)}, not {version}: "
                        f"update contract.{contract_name} with the image")


def unpack_source(package: str, version: str, work: Path, contract_name: str) -> Path:
    """Debian 13's source package `package` at upstream `version`, downloaded into
    `work` and its upstream tarball unpacked there; the source folder."""
    private = _private_apt(work, "deb-src")
    subprocess.run(["apt-get", *private, "source", "--download-only", "-qq", package], check=True, cwd=work)
    tarballs = sorted(work.glob(f"{package}_{version}.orig.tar.*"))
    if not tarballs:
        raise _wrong_version(package, version, list(work.glob(f"{package}_*.orig.tar.*")), contract_name)
    subprocess.run(["tar", "-xf", str(tarballs[0]), "-C", str(work)], check=True)
    return work / f"{package}-{version}"


def unpack_binary(package: str, version: str, work: Path, contract_name: str) -> Path:
    """Debian 13's binary package `package` at upstream `version`, downloaded into
    `work` and unpacked (not installed: dpkg would ask for Debian 13's libraries)
    there; the folder standing for `/`."""
    private = _private_apt(work, "deb")
    subprocess.run(["apt-get", *private, "download", "-qq", package], check=True, cwd=work)
    debs = sorted(work.glob(f"{package}_{version}-*.deb"))
    if not debs:
        raise _wrong_version(package, version, list(work.glob(f"{package}_*.deb")), contract_name)
    root = work / "root"
    subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(root)], check=True)
    return root


def _make_readable(folder: Path) -> None:
    """Every file under `folder` readable (and programs runnable) by every user."""
    for parent, _, files in os.walk(folder):
        os.chmod(parent, 0o755)
        for name in files:
            path = Path(parent) / name
            path.chmod(0o755 if os.access(path, os.X_OK) else 0o644)


_INSTALLED = ".installed"


@dataclass(frozen=True)
class Program:
    """One program the workstation runs at the image's version: Debian's package
    on Debian 13 and later, else Debian 13's, built from its source package or
    taken from its binary package, in ROOT/<package>-<version>."""

    package: str
    version: str
    contract_name: str  # the constant in pgbundle/contract.py holding `version`
    packaged_path: Path  # where Debian's package puts the program
    version_pattern: str  # a regular expression finding the version in `<program> version_args`
    version_args: tuple[str, ...]
    build_dependencies: tuple[str, ...]  # what `install` (and the program) need from Debian 12
    install: Callable[[Path, Path], None]  # (an empty work folder, the install prefix): fetches and installs

    @property
    def prefix(self) -> Path:
        return ROOT / f"{self.package}-{self.version}"

    def binary(self) -> Path:
        """Where the program is (installed or not)."""
        return self.packaged_path if packaged() else self.prefix / "bin" / self.packaged_path.name

    def installed_version(self, path: Path) -> str:
        out = subprocess.run([str(path), *self.version_args], capture_output=True, text=True, check=True).stdout
        found = re.search(self.version_pattern, out)
        if found is None:
            raise RuntimeError(f"{path} {' '.join(self.version_args)} printed no version: {out!r}")
        return found.group(1)

    def installed(self) -> bool:
        path = self.binary()
        if not path.exists():
            return False
        if not packaged():
            return (self.prefix / _INSTALLED).exists()
        return major_minor(self.installed_version(path)) >= major_minor(self.version)

    def ensure(self) -> Path:
        """Install the program when it is missing; the build's marker is written
        last, so an interrupted build starts over."""
        if self.installed():
            return self.binary()
        if packaged():
            apt_install(self.package)
            found = self.installed_version(self.packaged_path)
            if major_minor(found) < major_minor(self.version):
                raise RuntimeError(f"Debian's {self.package} is {found}; the project needs {self.version} or later")
        else:
            self._build()
        return self.binary()

    def _build(self) -> None:
        apt_install(*self.build_dependencies)
        ROOT.mkdir(parents=True, exist_ok=True)
        ROOT.chmod(0o755)
        if self.prefix.exists():
            shutil.rmtree(self.prefix)
        with tempfile.TemporaryDirectory(prefix=f"{self.package}-build-") as tmp:
            self.install(Path(tmp), self.prefix)
        _make_readable(self.prefix)
        built = self.installed_version(self.binary())
        if built != self.version:
            raise RuntimeError(f"the build reports {self.package} {built}, not {self.version}")
        (self.prefix / _INSTALLED).write_text(self.version + "\n")

    def main(self) -> None:
        """`python -m workstation.<name>_install`: install when missing, print the binary's path."""
        try:
            print(self.ensure())
        except (OSError, subprocess.CalledProcessError, RuntimeError) as err:
            print(f"error: cannot install {self.package} {self.version}: {err}", file=sys.stderr)
            sys.exit(1)
