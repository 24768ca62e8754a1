"""Nothing in dist/ may hold key material or a password: no PEM block, no
Secret object, no literal value in a password-like field (a mapping key, an
environment variable, or a setting inside a shipped config file or script),
and none of the locally generated secrets (secrets/, never committed)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import yaml

from conftest import TOP, Manifests
from variants import POLICY_VARIANTS, synth_variant

PEM = re.compile(r"-----BEGIN [A-Z0-9 ]+-----")
PASSWORD_LIKE = re.compile(r"(?i)(passw(or)?d|pwd|secret|token|api_?key|private_?key|credential)")
# Fields that name or point at a secret rather than hold one (secretName, PASSWORD_FILE, ...).
REFERENCE = re.compile(r"(?i)(file|path|dir|name|ref|mode)$")
# A password-like name inside a shipped file (config, script, SQL) and what follows it.
# Not inside a path or a variable reference (`$PG_SECRETS_DIR/postgres_password`).
PASSWORD_NAME = re.compile(r"(?i)(?<![\w./$-])([\w.]*(?:password|passwd|pwd))\b[ \t]*(.*)$", re.M)
# Values read at run time: shell `$VAR`/`$(...)`, psql `:'var'`, and the same quoted.
RUN_TIME = re.compile(r"""^['"]?[$:]""")


def literal_assignments(text: str) -> list[str]:
    """Names set to a literal: `PGPASSWORD=x`, `password: x`, SQL `PASSWORD 'x'`.
    Prose ("the password from the Secret") and run-time reads are not."""
    found = []
    for m in PASSWORD_NAME.finditer(text):
        rest = m.group(2).strip()
        if rest.startswith(":") and RUN_TIME.match(rest[1:].lstrip()) is None and rest[1:2] in (" ", "\t", ""):
            value = rest[1:].strip()  # `password: x`
        elif rest.startswith("="):
            value = rest[1:].strip()  # `PGPASSWORD=x`, `password = x`
        elif re.match(r"^'[^']+'", rest):
            value = rest  # SQL `PASSWORD 'x'`
        else:
            continue  # prose, or a psql variable `PASSWORD :'pw'`
        if value and not RUN_TIME.match(value):
            found.append(m.group(1))
    return found


def _mappings(node, path: str) -> Iterator[tuple[str, dict]]:
    """Every mapping in a document, with its path."""
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _mappings(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _mappings(item, f"{path}[{i}]")


def findings(docs: list[dict], text: str, known_secrets: list[str] = ()) -> list[str]:
    found = [f"PEM block: {m.group(0)}" for m in PEM.finditer(text)]
    found += [f"known secret value found ({len(s)} characters)" for s in known_secrets if s in text]
    for doc in docs:
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] == "Secret":
            found.append(f"{where}: a Secret object")
        for path, mapping in _mappings(doc, ""):
            # An environment variable: {name: PGPASSWORD, value: ...}.
            name = mapping.get("name")
            if isinstance(name, str) and mapping.get("value") and PASSWORD_LIKE.search(name) and not REFERENCE.search(name):
                found.append(f"{where}{path}: {name} has a literal value")
            for key, value in mapping.items():
                if not isinstance(value, str):
                    continue
                if value and PASSWORD_LIKE.search(str(key)) and not REFERENCE.search(str(key)):
                    found.append(f"{where}{path}.{key}: literal value")
                for name in literal_assignments(value):
                    found.append(f"{where}{path}.{key}: sets {name} to a literal")
    return found


def generated_secrets() -> list[str]:
    """Values written by the local secret generator, if it ran on this machine."""
    folder = TOP / "secrets"
    if not folder.is_dir():
        return []
    values = [p.read_text(errors="replace").strip() for p in folder.rglob("*") if p.is_file()]
    return [v for v in values if len(v) >= 8]


@pytest.fixture(params=["dist", *POLICY_VARIANTS])
def output(request, tmp_path) -> Manifests:
    if request.param == "dist":
        return Manifests(TOP / "dist")
    return synth_variant(request.param, tmp_path)


def test_no_key_material_or_password(output):
    assert output.docs
    assert findings(output.docs, output.text(), generated_secrets()) == []


CASES = {
    "PEM block": ({"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"ca.crt": "-----BEGIN CERTIFICATE-----\nMII\n"}}, "PEM block"),
    "Secret object": ({"kind": "Secret", "metadata": {"name": "s"}}, "a Secret object"),
    "password key": ({"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"postgres_password": "hunter22"}}, "literal value"),
    "env var": (
        {"kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"env": [{"name": "PGPASSWORD", "value": "hunter22"}]}]}},
        "PGPASSWORD has a literal value",
    ),
    "config file": ({"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"start.sh": "export PGPASSWORD=hunter22\n"}}, "sets PGPASSWORD"),
    "SQL literal": (
        {"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"init.sql": "ALTER ROLE app PASSWORD 'hunter22';\n"}},
        "sets PASSWORD",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_scanner_catches(case):
    doc, expected = CASES[case]
    result = findings([doc], yaml.safe_dump(doc))
    assert len(result) == 1 and expected in result[0], result


def test_scanner_accepts_references_and_run_time_reads():
    doc = {
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {
            "automountServiceAccountToken": False,
            "volumes": [{"name": "secrets", "secret": {"secretName": "postgres-secrets"}}],
            "containers": [{"env": [{"name": "POSTGRES_PASSWORD_FILE", "value": "/etc/postgres/secrets/postgres_password"}]}],
        },
        "data": {
            "start.sh": 'PGPASSWORD="$(cat "$file")"\n# the password comes from the Secret\n',
            "postgresql.conf": "password_encryption = 'scram-sha-256'\n",
            "init.sql": "ALTER ROLE app\n    PASSWORD :'app_pw';\nALTER ROLE postgres PASSWORD :'superuser_pw';\n",
        },
    }
    assert findings([doc], "") == []


def test_known_secret_values_are_found():
    assert findings([], "data: s3cr3t-value-123", ["s3cr3t-value-123"]) == ["known secret value found (16 characters)"]
