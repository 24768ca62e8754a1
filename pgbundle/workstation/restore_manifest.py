"""`python main.py restore-manifest`: the restore Job for one backup set, as YAML.

The Job is printed, never written to dist/: a GitOps sync must not restore by
accident. Apply it by hand (`... | kubectl apply -f -`), see README.md, "Backups and restores".
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

import cdk8s

from constructs.backup import DEFAULT_RESTORE_JOBS, SET_NAME, RestoreJob, RestoreJobProps
from pgbundle.values.load import ValuesError, load_values
from pgbundle.values.models import ChartValues

_DATABASE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class RestoreError(Exception):
    """The restore request cannot be turned into a Job; the message says why."""


def check_request(backup: str, databases: list[str], jobs: int) -> None:
    """Refuse names that are not a backup set or a database, before any YAML is made."""
    if not SET_NAME.match(backup):
        raise RestoreError(
            f"--backup: {backup!r} is not a backup set name: use the directory name of a set "
            "on the backup volume, such as 20260101T020000Z (see README.md, 'Backups and restores')"
        )
    for database in databases:
        if not _DATABASE.match(database):
            raise RestoreError(f"--database: {database!r} is not a database name (lower-case letters, digits, '_')")
    if jobs < 1:
        raise RestoreError(f"--jobs: {jobs} is not allowed: use 1 or more parallel jobs")


def restore_manifest(values: ChartValues, *, backup: str, databases: list[str],
                     jobs: int = DEFAULT_RESTORE_JOBS) -> str:
    """YAML of the Job restoring `databases` (all in the set when empty) from `backup`."""
    check_request(backup, databases, jobs)
    app = cdk8s.App()
    chart = cdk8s.Chart(app, "restore", disable_resource_name_hashes=True)
    RestoreJob(chart, "restore", props=RestoreJobProps(
        namespace=values.global_.namespace, image_pull_policy=values.global_.image_pull_policy,
        postgres=values.postgres, backup=backup, databases=databases, jobs=jobs))
    text = app.synth_yaml()
    return text if text.endswith("\n") else text + "\n"


def cli(argv: list[str], *, values_path: Callable[[str | None], Path]) -> int:
    """`restore-manifest --backup NAME [--database DB ...] [--jobs N]`: print the restore Job."""
    parser = argparse.ArgumentParser(prog="main.py restore-manifest",
                                     description="Print the Job that restores a backup set (see README.md, 'Backups and restores').")
    parser.add_argument("--values", help="values file (default: $VALUES, else values.yaml)")
    parser.add_argument("--backup", required=True, help="backup set name, e.g. 20260101T020000Z")
    parser.add_argument("--database", action="append", default=[], help="database to restore (repeatable; default: all in the set)")
    parser.add_argument("--jobs", type=int, default=DEFAULT_RESTORE_JOBS, help=f"parallel pg_restore jobs (default {DEFAULT_RESTORE_JOBS})")
    args = parser.parse_args(argv)
    try:
        values = load_values(values_path(args.values))
        sys.stdout.write(restore_manifest(values, backup=args.backup, databases=args.database, jobs=args.jobs))
    except (ValuesError, RestoreError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
