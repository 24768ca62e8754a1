"""Synthesis: deterministic, committed dist/ is current, and bad input never damages dist/."""

from __future__ import annotations

import filecmp
import re
import os
import subprocess
import sys
from pathlib import Path

import pytest

import main
from chart.output import replace_folder
from pgbundle import contract
from pgbundle.values.load import parse_values

pytestmark = pytest.mark.slow

TOP = Path(__file__).resolve().parent.parent


def run_main(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOP / "main.py"), *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=TOP, timeout=120)


def same_tree(a: Path, b: Path) -> bool:
    cmp = filecmp.dircmp(a, b)
    if cmp.left_only or cmp.right_only:
        return False
    _, mismatch, errors = filecmp.cmpfiles(a, b, cmp.common_files, shallow=False)
    return not mismatch and not errors


def test_two_synths_are_byte_identical(tmp_path):
    values = parse_values({"postgres": {"temporal": {"enabled": True}, "networkPolicy": {"enabled": True}}})
    main.synthesize(values, tmp_path / "a")
    main.synthesize(values, tmp_path / "b")
    assert same_tree(tmp_path / "a", tmp_path / "b")


def test_committed_dist_is_a_fresh_synth_of_values_yaml(tmp_path):
    result = run_main("--values", str(TOP / "values.yaml"), "--out", str(tmp_path / "dist"))
    assert result.returncode == 0, result.stderr
    assert same_tree(TOP / "dist", tmp_path / "dist"), "dist/ is stale: run `make synth` and commit dist/"


def test_values_from_environment_variable(tmp_path):
    values = tmp_path / "v.yaml"
    values.write_text("global:\n  namespace: from-env\n")
    result = run_main("--out", str(tmp_path / "out"), env={"VALUES": str(values)})
    assert result.returncode == 0, result.stderr
    assert "namespace: from-env" in (tmp_path / "out" / "10-postgres.k8s.yaml").read_text()


BAD_INPUT = {
    "unknown key": ("postgres:\n  replica: 2\n", r"postgres\.replica: unknown key"),
    "zero replicas": ("postgres:\n  replicas: 0\n", r"postgres\.replicas"),
    "size with GB": ("postgres:\n  persistence:\n    data:\n      size: 20GB\n", r"postgres\.persistence\.data\.size: '20GB'"),
    "negative size": ("postgres:\n  persistence:\n    data:\n      size: -1Gi\n", r"postgres\.persistence\.data\.size: '-1Gi'"),
    "requests above limits": ("postgres:\n  resources:\n    requests: {cpu: '4', memory: 1Gi}\n", r"postgres\.resources\.requests\.cpu"),
    "pdb above replicas": ("postgres:\n  podDisruptionBudget:\n    minAvailable: 3\n", r"postgres\.podDisruptionBudget\.minAvailable: 3"),
    "bad name": ("global:\n  namespace: Prod_DB\n", r"global\.namespace: 'Prod_DB' is not a DNS-1123 label"),
    "malformed yaml": ("postgres: [\n", r"is not valid YAML: line 2, column 1: "),
}


def parameter(name: str, value: str) -> str:
    return f"postgres:\n  config:\n    parameters:\n      {name}: {value}\n"


def pg_key(path: str, value: str) -> str:
    """YAML setting one nested key below postgres: (path 'a.b')."""
    *parents, last = path.split(".")
    lines = ["postgres:"] + [f"{'  ' * (i + 1)}{key}:" for i, key in enumerate(parents)]
    return "\n".join(lines + [f"{'  ' * (len(parents) + 1)}{last}: {value}"]) + "\n"


OWNED = r"postgres\.config\.parameters\.{}: set by the product: .*"
# Settings that would undo a promise of the product or stop the server.
BAD_INPUT |= {
    f"parameter {name}": (parameter(name, value), OWNED.format(name) + hint)
    for name, value, hint in [
        ("ssl", "off", "use postgres\\.tls\\.enabled"),
        ("password_encryption", "md5", "every password is stored as a SCRAM-SHA-256 verifier"),
        ("hba_file", "/tmp/hba", "pg_hba\\.conf is generated"),
        ("listen_addresses", "localhost", "use postgres\\.networkPolicy"),
        ("port", "5433", "the port is 5432"),
        ("unix_socket_directories", "/tmp", "the probes and the exporter use"),
        ("ssl_cert_file", "/x.crt", "the certificate comes from the Secret"),
        ("ssl_key_file", "/x.key", "the key comes from the Secret"),
        ("ssl_ca_file", "/ca.crt", "the CA comes from postgres\\.ca\\.existingSecret"),
        ("data_directory", "/data", "the data folder is the PVC's"),
        ("config_file", "/x.conf", "the start script passes"),
        ("shared_preload_libraries", "auto_explain", "the product preloads pg_stat_statements"),
        ("log_destination", "stderr", "use postgres\\.logging"),
        ("shared_buffers", "1GB", "use postgres\\.config\\.sharedBuffers"),
    ]
}
BAD_INPUT |= {
    "parameter ssl_min_protocol_version below 1.2": (
        parameter("ssl_min_protocol_version", "TLSv1.1"),
        r"ssl_min_protocol_version: 'TLSv1\.1' is not allowed: TLS below 1\.2 is refused"),
    "parameter name typo": (parameter("shared_bufer", "1GB"), r"shared_bufer: not a parameter .*did you mean shared_buffers\?"),
    "parameter name with trailing space": (parameter('"work_mem "', "4MB"), r"parameters: 'work_mem ' is not a PostgreSQL parameter name"),
    "parameter value with newline": (parameter("application_name", '"a\\nb"'), r"application_name: 'a\\nb' contains a control character"),
    "parameter value with control character": (parameter("application_name", '"bell\\a"'), r"application_name: 'bell\\x07' contains a control character"),
    "parameter value .inf": (parameter("random_page_cost", ".inf"), r"random_page_cost: inf is not a finite number"),
    "parameter value out of range": (parameter("max_wal_senders", "-1"), r"max_wal_senders: -1 must be from 0 to 262143"),
    "parameter value of the wrong type": (parameter("jit", "maybe"), r"jit: 'maybe' must be on or off"),
    "parameter value with a wrong unit": (parameter("statement_timeout", "5 hours"), r"statement_timeout: '5 hours' needs one of the units"),
    "memory limit too large for shared_buffers": (
        pg_key("resources.limits.memory", "64Ti"), r"postgres\.resources\.limits\.memory: 64Ti makes shared_buffers"),
    "backup that never runs": (pg_key("backup.schedule", "'0 2 31 2 *'"), r"'0 2 31 2 \*' never runs"),
    "backup schedule with non-ASCII digits": (pg_key("backup.schedule", "'٠ ٢ * * *'"), r"'٠ ٢ \* \* \*' is not a cron expression"),
    "duplicate key": ("postgres:\n  replicas: 1\n  database: appdb\n  replicas: 1\n",
                      r"postgres\.replicas: the key appears twice, at lines 2 and 4"),
    "duplicate key deep": ("postgres:\n  resources:\n    limits:\n      memory: 8Gi\n      memory: 4Gi\n",
                           r"postgres\.resources\.limits\.memory: the key appears twice, at lines 4 and 5"),
    "image repository": (pg_key("image.repository", "Registry.example/PG"), r"postgres\.image\.repository: 'Registry\.example/PG' is not an image repository"),
    "image tag": (pg_key("image.tag", "'17.6 bookworm'"), r"postgres\.image\.tag: '17\.6 bookworm' is not an image tag"),
    "label value": (pg_key("metrics.serviceMonitor.labels.release", '"prom\\n"'), r"labels\.release: 'prom\\n' is not a Kubernetes label value"),
    "label key": (pg_key("metrics.dashboard.labels", "{'team name': x}"), r"'team name' is not a Kubernetes label key"),
    "storageClass": (pg_key("persistence.data.storageClass", "Fast_SSD"), r"storageClass: 'Fast_SSD' is not a StorageClass name"),
    "ipBlock cidr": (pg_key("networkPolicy.dns", "{podSelector: null, namespaceSelector: null, ipBlock: {cidr: 10.0.0.0/33}}"),
                     r"dns\.ipBlock\.cidr: '10\.0\.0\.0/33' is not a network"),
}
# A trailing newline in every kind of name.
BAD_INPUT |= {
    f"trailing newline in {path}": (
        "global:\n  namespace: \"api-forge-prod\\n\"\n" if path == "global.namespace" else pg_key(path, f'"{value}\\n"'),
        re.escape(f"{path if path.startswith('global.') else 'postgres.' + path}: {value + chr(10)!r} is not"))
    for path, value in [
        ("global.namespace", "api-forge-prod"), ("database", "appdb"), ("schema", "app"), ("username", "appuser"),
        ("ownerUsername", "appowner"), ("readOnlyUsername", "backupuser"), ("migratorUsername", "appmigrator"),
        ("temporal.username", "temporaluser"), ("temporal.ownerUsername", "temporalowner"),
        ("secrets.existingSecret", "postgres-secrets"), ("tls.existingSecret", "postgres-tls"),
        ("ca.existingSecret", "postgres-ca"), ("persistence.backups.storageClass", "standard"),
        ("metrics.dashboard.namespace", "monitoring"),
    ]
}


def _symlink_loop(folder: Path) -> Path:
    (folder / "loop.yaml").symlink_to(folder / "loop.yaml")
    return folder / "loop.yaml"


def _folder(folder: Path) -> Path:
    (folder / "values.d").mkdir()
    return folder / "values.d"


# Files that are not a values file at all; each gets one clean error line, from every command that reads values.
BAD_FILES = {
    "binary": (b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)), r"is binary \(it holds NUL bytes\), not YAML text"),
    "UTF-16": ("postgres:\n  replicas: 1\n".encode("utf-16"), r"is UTF-16 text: save it as UTF-8"),
    "Latin-1": ("postgres:\n  database: caf\u00e9\n".encode("latin-1"), r"is not UTF-8 text \(byte 0xe9 at offset 25\)"),
    "control character": (b"postgres:\n  database: a\x07b\n", r"is not valid YAML: .*special characters are not allowed"),
    "folder": (_folder, r"values file .*values\.d is a folder"),
    "symlink loop": (_symlink_loop, r"values file .*loop\.yaml is a symbolic link that leads back to itself"),
    "/dev/zero": (lambda folder: Path("/dev/zero"), r"values file /dev/zero is larger than 1 MiB"),
    "deep nesting": (("[" * 20000 + "]" * 20000).encode(), r"(nests too deeply|is not valid YAML)"),
}


def values_file(folder: Path, source) -> Path:
    if callable(source):
        return source(folder)
    path = folder / "values.yaml"
    path.write_bytes(source.encode() if isinstance(source, str) else source)
    return path


def one_error_line(stderr: str) -> bool:
    return len([line for line in stderr.splitlines() if line.startswith("error:")]) == 1 and "Traceback" not in stderr


@pytest.fixture
def existing_dist(tmp_path) -> Path:
    """An earlier synth's output folder (one file of the names a synth writes)."""
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "10-postgres.k8s.yaml").write_text("kind: Sentinel\n")
    return dist


def unchanged(dist: Path) -> bool:
    return ([p.name for p in dist.iterdir()] == ["10-postgres.k8s.yaml"]
            and (dist / "10-postgres.k8s.yaml").read_text() == "kind: Sentinel\n"
            and not [p for p in dist.parent.iterdir() if "staging" in p.name or "-old-" in p.name])


@pytest.mark.parametrize("case", sorted(BAD_INPUT) + [f"file: {c}" for c in sorted(BAD_FILES)])
def test_bad_input_fails_clearly_and_leaves_dist_untouched(tmp_path, existing_dist, case):
    source, message = BAD_FILES[case.removeprefix("file: ")] if case.startswith("file: ") else BAD_INPUT[case]
    values = values_file(tmp_path, source)
    result = run_main("--values", str(values), "--out", str(existing_dist))
    assert result.returncode == 2
    assert one_error_line(result.stderr), result.stderr
    assert re.search(message, result.stderr), result.stderr
    assert unchanged(existing_dist)


@pytest.mark.parametrize("case", sorted(BAD_FILES) + ["parameter ssl", "duplicate key"])
def test_secrets_generate_refuses_a_bad_values_file_cleanly(tmp_path, case):
    source, message = BAD_FILES[case] if case in BAD_FILES else BAD_INPUT[case]
    values = values_file(tmp_path, source)
    result = run_main("secrets", "generate", "--values", str(values), "--out", str(tmp_path / "secrets"))
    assert result.returncode != 0
    assert one_error_line(result.stderr), result.stderr
    assert re.search(message, result.stderr), result.stderr
    assert not (tmp_path / "secrets").exists()


def test_missing_values_file_fails_and_leaves_dist_untouched(tmp_path, existing_dist):
    result = run_main("--values", str(tmp_path / "missing.yaml"), "--out", str(existing_dist))
    assert result.returncode != 0
    assert "missing.yaml does not exist" in result.stderr
    assert unchanged(existing_dist)


@pytest.mark.parametrize("path", ["/usr/bin:/bin", "/nonexistent"], ids=["older-node-first", "no-node"])
def test_default_synth_prints_nothing_on_stderr_whatever_the_callers_path(tmp_path, path):
    # The CLI starts the Node pinned in package.json itself: an older one on the
    # caller's PATH would print its end-of-life banner, none at all would fail.
    result = run_main("--values", str(TOP / "values.yaml"), "--out", str(tmp_path / "out"), env={"PATH": path})
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert same_tree(TOP / "dist", tmp_path / "out")


def test_a_warning_still_reaches_the_console(tmp_path):
    values = tmp_path / "v.yaml"
    values.write_text("postgres:\n  tls:\n    enabled: false\n")
    result = run_main("--values", str(values), "--out", str(tmp_path / "out"))
    assert result.returncode == 0
    assert result.stderr.startswith("warning: postgres.tls.enabled is false")


def test_check_writes_nothing(tmp_path):
    result = run_main("--check", "--out", str(tmp_path / "out"))
    assert result.returncode == 0
    assert not (tmp_path / "out").exists()


def test_failure_during_synth_keeps_the_previous_output(existing_dist):
    def explode(staging: Path) -> None:
        (staging / "half.k8s.yaml").write_text("kind: Half\n")
        raise RuntimeError("synth failed half-way")

    with pytest.raises(RuntimeError):
        replace_folder(existing_dist, explode, ours=contract.CHART_FILES)
    assert unchanged(existing_dist)
    assert sorted(p.name for p in existing_dist.parent.iterdir()) == ["dist"]


def test_successful_synth_replaces_an_earlier_output(existing_dist):
    (existing_dist / "20-metrics.k8s.yaml").write_text("kind: Stale\n")  # metrics were on before
    main.synthesize(parse_values({"postgres": {"metrics": {"enabled": False}}}), existing_dist)
    assert sorted(p.name for p in existing_dist.iterdir()) == [
        "00-namespace.k8s.yaml", "10-postgres.k8s.yaml", "20-backup.k8s.yaml"]
    assert "Sentinel" not in (existing_dist / "10-postgres.k8s.yaml").read_text()


def test_a_writer_of_unknown_files_is_a_defect_and_changes_nothing(existing_dist):
    def stray(staging: Path) -> None:
        (staging / "10-postgres.k8s.yaml").write_text("kind: New\n")
        (staging / "notes.txt").write_text("not a chart\n")

    with pytest.raises(RuntimeError, match="notes.txt"):
        replace_folder(existing_dist, stray, ours=contract.CHART_FILES)
    assert unchanged(existing_dist)


# --- --out never replaces what a synth did not write ------------------------------

def _checkout_like(folder: Path) -> dict[str, bytes]:
    """A folder that is not a synth's output: a checkout with .git, sources and a manifest."""
    (folder / ".git").mkdir(parents=True)
    (folder / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (folder / "main.py").write_text("print('mine')\n")
    (folder / "10-postgres.k8s.yaml").write_text("kind: Mine\n")
    return _contents(folder)


def _contents(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("spelling", ["absolute", "dot"])
def test_out_refuses_a_folder_with_other_content(tmp_path, spelling):
    checkout = tmp_path / "checkout"
    before = _checkout_like(checkout)
    out = "." if spelling == "dot" else str(checkout)
    result = subprocess.run([sys.executable, str(TOP / "main.py"), "--out", out], capture_output=True, text=True,
                            cwd=checkout, timeout=120)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert f"--out: {checkout} holds .git, main.py, which a synth did not write: refusing to replace it" in errors[0]
    assert _contents(checkout) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkout"]  # no staging folder left beside it


def test_out_refuses_a_file(tmp_path):
    target = tmp_path / "manifest.yaml"
    target.write_text("kind: Mine\n")
    result = run_main("--out", str(target))
    assert result.returncode == 2
    assert f"error: --out: {target} is not a folder" in result.stderr
    assert target.read_text() == "kind: Mine\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.yaml"]


def test_out_refuses_a_folder_where_a_chart_file_would_go(existing_dist):
    (existing_dist / "20-backup.k8s.yaml").mkdir()
    (existing_dist / "20-backup.k8s.yaml" / "mine").write_text("x\n")
    result = run_main("--out", str(existing_dist))
    assert result.returncode == 2
    assert "20-backup.k8s.yaml is a folder" in result.stderr
    assert (existing_dist / "20-backup.k8s.yaml" / "mine").read_text() == "x\n"


def test_out_fills_an_empty_folder(tmp_path):
    (tmp_path / "out").mkdir()
    result = run_main("--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert {p.name for p in (tmp_path / "out").iterdir()} <= contract.CHART_FILES


def test_make_synth_runs_the_cli_without_its_upgrade_check(tmp_path):
    # The CLI version is pinned in package.json; its upgrade check needs the internet
    # and prints a stack trace without it. Run the Makefile's own command line.
    planned = subprocess.run(["make", "-n", "synth"], cwd=TOP, capture_output=True, text=True, check=True).stdout
    command = [line for line in planned.splitlines() if line.startswith("cdk8s synth")]
    assert command == ["cdk8s synth --no-check-upgrade"]
    result = subprocess.run(f"{command[0]} --output {tmp_path / 'out'}", shell=True, cwd=TOP, capture_output=True,
                            text=True, timeout=120, env={**os.environ, "PATH": f"{TOP / 'node_modules' / '.bin'}:/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert same_tree(TOP / "dist", tmp_path / "out")
