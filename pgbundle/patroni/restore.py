"""A Patroni cluster brought up from a pgBackRest repository: the `bootstrap`
section its first member reads, with Patroni's custom bootstrap method instead of
initdb. One renderer for `local restore --from` (a local cluster) and
`pitr-restore-manifest` (the ConfigMap a platform engineer applies).

The method runs pitr-replica.sh with these settings (`no_params`: no --scope or
--datadir; every other key reaches it as `--key=value`), then Patroni writes
`recovery_conf`: WAL from the repository up to the target, a promotion there,
and the post-bootstrap hook once the member is the primary.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from pgbundle.pgconf.pgbackrest import RestoreType

# Patroni's name of the custom bootstrap method, its key in the bootstrap section.
METHOD = "pgbackrest"


@dataclass(frozen=True)
class Target:
    """What the cluster is restored to."""

    kind: RestoreType
    value: str | None = None
    """The time (as pgBackRest takes it: with a space, not a `T`) or the restore point's name; None for latest and immediate."""
    label: str | None = None
    """The backup restored from; None: pgBackRest picks (see bootstrap_method)."""


def recovery_target(kind: RestoreType, target: str | None) -> dict[str, str]:
    """PostgreSQL's recovery target settings for a restore target, as pitr-restore.sh
    has pgBackRest write them for a single instance; none for the latest point."""
    if kind == "latest":
        return {}
    setting = {"time": "recovery_target_time", "name": "recovery_target_name"}.get(kind, "recovery_target")
    value = target if kind in ("time", "name") else "immediate"
    assert value is not None, f"a {kind} target needs its value"
    return {setting: value, "recovery_target_action": "promote"}


def bootstrap_method(*, command: str, restore_command: str, target: Target) -> dict:
    """The method's settings. Without a label, pgBackRest picks the backup: for a
    time, the newest that ended before it (`--type=time --target`; Patroni drops
    the recovery settings pgBackRest then writes into postgresql.auto.conf and
    writes its own), otherwise the newest."""
    settings: dict = {"command": command, "no_params": True}
    if target.label is not None:
        settings["set"] = target.label
    elif target.kind == "time":
        settings.update({"type": "time", "target": target.value})
    settings["recovery_conf"] = {"restore_command": restore_command, "recovery_target_timeline": "latest",
                                 **recovery_target(target.kind, target.value)}
    return settings


def with_method(bootstrap: dict, settings: dict) -> dict:
    """A copy of the bootstrap document (`{"bootstrap": ...}`, as bootstrap.yaml holds it)
    that initializes the cluster with the method instead of initdb."""
    document = copy.deepcopy(bootstrap)
    document["bootstrap"].update({"method": METHOD, METHOD: settings})
    return document
