"""init.sql is run by one script, run-init.sh, which start.sh and (in a Patroni
cluster) patroni-hook.sh both call: a psql variable init.sql gains is passed in
one place, and this test fails until it is."""

from __future__ import annotations

import re
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent.parent / "constructs" / "scripts"
INIT_FILES = ("init.sql", "init-temporal.sql")


def variables_read() -> set[str]:
    """psql variables the init files read (`:name`, `:'name'`, `:"name"`; not `::cast`),
    less those they define themselves (`\\set name`, `... AS name \\gset`)."""
    text = "\n".join((SCRIPTS / name).read_text() for name in INIT_FILES)
    read = set(re.findall(r"(?<![:\w]):['\"]?([a-z_]+)", text))
    defined = set(re.findall(r"^\\set ([a-z_]+)", text, re.M)) | set(re.findall(r"AS ([a-z_]+) \\gset", text))
    return read - defined


def test_run_init_passes_exactly_the_variables_init_sql_reads():
    passed = set(re.findall(r"-v ([a-z_]+)=", (SCRIPTS / "run-init.sh").read_text()))
    assert {"secrets_dir", "database", "app_user", "temporal_previous_user"} <= passed
    assert passed == variables_read()


def test_every_caller_of_init_sql_goes_through_run_init():
    callers = {p.relative_to(SCRIPTS).as_posix() for p in SCRIPTS.rglob("*.sh") if "run-init.sh" in p.read_text()}
    assert callers == {"start.sh", "ha/patroni-hook.sh"}
    direct = {p.name for p in SCRIPTS.rglob("*.sh") if "init.sql" in p.read_text().replace("run-init.sh", "")
              and p.name != "run-init.sh" and re.search(r"-f \S*init\.sql", p.read_text())}
    assert direct == set()
