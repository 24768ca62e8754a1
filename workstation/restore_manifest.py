"""`python main.py restore-manifest`: the restore Job for one backup set, as YAML.

The Job is printed, never written to dist/: a GitOps sync must not restore by
accident. Apply it by hand (`... | kubectl apply -f -`), see docs/backups.md.
"""

from __future__ import annotations

import re

import cdk8s

from chart.compose import restore_job_props
from constructs.restore_job import RestoreJob
from pgbundle import contract
from pgbundle.values.models import ChartValues

_DATABASE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# backup.sh names each set by its UTC start time.
SET_NAME = re.compile(r"^[0-9]{8}T[0-9]{6}Z$")


class RestoreError(Exception):
    """The restore request cannot be turned into a Job; the message says why."""


def check_request(backup: str, databases: list[str], jobs: int) -> None:
    """Refuse names that are not a backup set or a database, before any YAML is made."""
    if not SET_NAME.match(backup):
        raise RestoreError(
            f"--backup: {backup!r} is not a backup set name: use the directory name of a set "
            "on the backup volume, such as 20260101T020000Z (see docs/backups.md)"
        )
    for index, database in enumerate(databases):
        if not _DATABASE.match(database):
            raise RestoreError(f"--database: {database!r} is not a database name (lower-case letters, digits, '_')")
        if database in databases[:index]:
            raise RestoreError(f"--database: {database!r} is given twice: name each database once")
    if not 1 <= jobs <= contract.MAX_RESTORE_JOBS:
        raise RestoreError(
            f"--jobs: {jobs} is not allowed: use 1 (the default: each database in one transaction, all or nothing) "
            f"to {contract.MAX_RESTORE_JOBS} (parallel workers, each a connection and a CPU; faster, not atomic)")


def restore_manifest(values: ChartValues, *, backup: str, databases: list[str],
                     jobs: int = contract.DEFAULT_RESTORE_JOBS) -> str:
    """YAML of the Job restoring `databases` (all in the set when empty) from `backup`."""
    check_request(backup, databases, jobs)
    app = cdk8s.App()
    chart = cdk8s.Chart(app, "restore", disable_resource_name_hashes=True)
    RestoreJob(chart, "restore", props=restore_job_props(values, backup=backup, databases=databases, jobs=jobs))
    text = app.synth_yaml()
    return text if text.endswith("\n") else text + "\n"
