"""Shared test helpers: synthesize values in-process and pick objects by kind and name."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent
# jsii needs Node >= 22: use the pinned one from node_modules. Set before cdk8s is
# imported: the import starts jsii's Node process.
os.environ["PATH"] = f"{TOP / 'node_modules' / '.bin'}{os.pathsep}{os.environ['PATH']}"

import cdk8s  # noqa: E402
import psycopg  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402
if str(TOP) not in sys.path:
    sys.path.insert(0, str(TOP))

import main  # noqa: E402
from pgbundle import contract  # noqa: E402
from pgbundle.manifests import Manifests, container  # noqa: E402,F401 - shared with the test modules
from pgbundle.values.load import load_values, parse_values  # noqa: E402
from workstation.localpod import LocalPod  # noqa: E402


def deep_merge(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def construct_chart() -> cdk8s.Chart:
    """A chart for construct-level tests. cdk8s.Testing.chart() makes a folder in the
    temporary directory for every chart and never removes it; cdk8s.Testing.synth
    writes nothing, so a chart of a plain App does the same without leaving one."""
    return cdk8s.Chart(cdk8s.App(), "test")


_LEFT_BY_CDK8S = "cdk8s.outdir.*"


# `make test` runs the suite in two worker processes (pytest-xdist, `-n 2`). A module
# is one unit of work, so its module-scoped servers start once. The real-cluster
# modules (`pytestmark = pytest.mark.ha`) are one unit together and go first: they
# spend most of their time waiting for Patroni's loops, which the other worker fills
# with the rest of the suite, and two clusters at once on two cores starve each other.
# The modules of minutes (`pytest.mark.slow`) come next and the quick ones last, so
# that the run does not end with one worker alone on a long module. Units go out in
# collection order: xdist would otherwise order them by their number of tests, which
# put the real-cluster unit tenth and the longest module (two tests) last.
# (xdist's own `xdist_group` does not work with pytest 9: it rewrites an attribute
# pytest no longer reads. Hence a scheduler of our own.)
_CLUSTER_MARK = "pytestmark = pytest.mark.ha\n"
_CLUSTERS = "real-clusters"


def _cluster_modules() -> frozenset[str]:
    here = Path(__file__).resolve().parent
    return frozenset(f"{here.name}/{path.name}" for path in here.glob("test_*.py") if _CLUSTER_MARK in path.read_text())


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    clusters = _cluster_modules()
    config.option.loadscopereorder = False  # collection order, as pytest_collection_modifyitems sorts it

    class ModulesClustersTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return _CLUSTERS if module in clusters else module

    return ModulesClustersTogether(config, log)


def pytest_collection_modifyitems(config, items):
    # Stable: each module keeps its order.
    items.sort(key=lambda item: (item.get_closest_marker("ha") is None, item.get_closest_marker("slow") is None))


@pytest.fixture(scope="session", autouse=True)
def no_cdk8s_folders_left():
    # The suite cleans up what it creates: no cdk8s output folders are left behind.
    tmp = Path(tempfile.gettempdir())
    before = set(tmp.glob(_LEFT_BY_CDK8S))
    yield
    left = set(tmp.glob(_LEFT_BY_CDK8S)) - before
    assert not left, f"the tests left {len(left)} cdk8s output folders in {tmp}"


@pytest.fixture
def synth(tmp_path_factory):
    """synth(values_dict) -> Manifests, synthesized in-process from the given values."""

    def run(values: dict | None = None) -> Manifests:
        out = tmp_path_factory.mktemp("dist")
        main.synthesize(parse_values(values or {}), out)
        return Manifests(out)

    return run


@pytest.fixture(scope="session")
def source_dist(tmp_path_factory) -> Manifests:
    """values.yaml synthesized from the source as it is now, i.e. what `make synth`
    writes to dist/ (tests/test_synth.py proves the committed dist/ is exactly this):
    tests of dist/ read this one, so they see a change in the source at once."""
    out = tmp_path_factory.mktemp("source-dist")
    main.synthesize(load_values(TOP / "values.yaml"), out)
    return Manifests(out)


@pytest.fixture
def synth_file(tmp_path_factory):
    """synth_file(path) -> Manifests for a values file such as examples/production.yaml."""

    def run(path: Path) -> Manifests:
        out = tmp_path_factory.mktemp("dist")
        main.synthesize(parse_values(yaml.safe_load(path.read_text()), str(path)), out)
        return Manifests(out)

    return run


# --- the synthesized pod on real PostgreSQL (workstation/localpod.py) ----------


@pytest.fixture(scope="module")
def pods():
    """pods(name, values=None, start=True) -> LocalPod; the same name returns the
    same pod within a module; every pod is stopped at the end."""
    # pytest's own temp folders are private to root; the pod runs as the postgres user.
    base = Path(tempfile.mkdtemp(prefix="localpods-"))
    base.chmod(0o711)
    started: list[LocalPod] = []
    made: dict[str, tuple[LocalPod, dict | None]] = {}

    def make(name: str, values: dict | None = None, start: bool = True) -> LocalPod:
        if name in made:
            pod, made_with = made[name]
            assert made_with == values, f"pod {name!r} already exists with other values"
            return pod
        pod = LocalPod(base / name)
        pod.prepare(parse_values(values or {}), main.synthesize)
        started.append(pod)
        made[name] = (pod, values)
        if start:
            pod.start()
        return pod

    yield make
    for pod in started:
        pod.stop()
    shutil.rmtree(base)


@pytest.fixture(scope="module")
def pod(pods) -> LocalPod:
    return pods("default")


def connect(pod: LocalPod, user: str, dbname: str | None = None, **options) -> psycopg.Connection:
    """A TLS connection as an application in the cluster makes it (verify-full, the pod's CA)."""
    info = pod.connection_info()
    params = {"sslmode": "verify-full", "sslrootcert": info["sslrootcert"], "password": info["passwords"].get(user)}
    params.update(options)
    return psycopg.connect(host=info["host"], port=info["port"], dbname=dbname or info["database"], user=user,
                           autocommit=True, connect_timeout=10, **params)


def connect_socket(pod: LocalPod, user: str, password: str, dbname: str | None = None) -> psycopg.Connection:
    """A connection over the pod's Unix socket (its run folder), as the exporter sidecar makes it."""
    info = pod.connection_info()
    return psycopg.connect(host=str(pod.host_path(contract.RUN_DIR)), port=info["port"], dbname=dbname or info["database"],
                           user=user, password=password, autocommit=True, connect_timeout=10)


def log_records(pod: LocalPod) -> list[dict]:
    return [json.loads(line) for line in pod.log_file.read_text().splitlines()]


def restart(pod: LocalPod) -> None:
    assert pod.stop() == 0
    pod.start()
