"""What a point-in-time restore restores to, checked once for `local restore`
and `pitr-restore-manifest`: a time, the latest archived point, a named restore
point (`pg_create_restore_point`), or a backup label (its own end, or combined
with a time, a name or --latest: replayed from that backup)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

from pgbundle.pgconf.pgbackrest import RESTORE_POINT_NAME, RestoreType

# pgBackRest's labels: a full backup's, or a differential/incremental one's after its full's.
LABEL = re.compile(r"^[0-9]{8}-[0-9]{6}F(_[0-9]{8}-[0-9]{6}[DI])?$")


class TargetError(Exception):
    """The target cannot be right; the message names the option and what is allowed."""


@dataclass(frozen=True)
class RestoreTarget:
    kind: RestoreType
    value: str | None = None
    """The time (ISO 8601) or the restore point's name; None for latest and immediate."""
    label: str | None = None
    """The backup to restore from; None: pgBackRest picks (for a time, the newest that ended before it)."""
    moment: datetime | None = None
    """The time, parsed (kind time)."""

    def recovery_target(self) -> str | None:
        """The time or name as pgBackRest takes it: a time with a space, not a `T`
        (2.45 selects no backup for an ISO 8601 `T` time)."""
        return self.moment.isoformat(sep=" ") if self.moment is not None else self.value

    def describe(self) -> str:
        """The option as given, for error lines."""
        return {"time": f"--time {self.value}", "name": f"--name {self.value}", "latest": "--latest",
                "immediate": f"--label {self.label}"}[self.kind]

    def slug(self) -> str:
        """A DNS-label-safe name part (lower case, at most 41 characters) for the objects a restore makes."""
        if self.kind == "time":
            assert self.moment is not None
            part = "time-" + self.moment.astimezone(timezone.utc).strftime("%Y%m%dt%H%M%Sz")
        elif self.kind == "name":
            part = "name-" + re.sub(r"[^a-z0-9]+", "-", (self.value or "").lower()).strip("-")[:36].strip("-")
        elif self.kind == "latest":
            part = "latest"
        else:  # the backup's own end; elsewhere the label is the starting point, left out of the name
            part = "set-" + (self.label or "").lower().replace("_", "-")
        return part[:41]


def parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise TargetError(f"--time {text!r} is not a time: use ISO 8601 with a zone, such as "
                          "2026-12-05T14:03:00+00:00") from None
    if moment.tzinfo is None:
        raise TargetError(f"--time {text!r} has no time zone: add one, such as +00:00")
    if moment > datetime.now(timezone.utc):
        raise TargetError(f"--time {text} is in the future: the archive ends now; use --latest")
    return moment


def check_name(name: str) -> str:
    if not RESTORE_POINT_NAME.match(name):
        raise TargetError(f"--name {name!r} is not a restore point name: use 1 to 63 letters, digits, '.', '_' or '-', "
                          "starting with a letter or digit, such as before-migration-42")
    return name


def check_label(label: str) -> str:
    if not LABEL.match(label):
        raise TargetError(f"--label {label!r} is not a pgBackRest backup label: use one `pgbackrest info` (or "
                          "`local backup`) shows, such as 20261205-010000F or 20261205-010000F_20261206-011500D")
    return label


def target(*, time: str | None = None, latest: bool = False, name: str | None = None,
           label: str | None = None) -> RestoreTarget:
    """The target the options name: at most one of time, latest and name, with or without a label; at least one."""
    given = [option for option, on in (("--time", time is not None), ("--latest", latest), ("--name", name is not None))
             if on]
    if len(given) > 1:
        raise TargetError(f"{' and '.join(given)} exclude each other: give one target (with --label, "
                          "the backup to start from)")
    if not given and label is None:
        raise TargetError("no restore target: give --time TIMESTAMP, --latest, --name RESTORE_POINT or --label BACKUP")
    if label is not None:
        check_label(label)
    if time is not None:
        return RestoreTarget("time", time, label, parse_time(time))
    if name is not None:
        return RestoreTarget("name", check_name(name), label)
    if latest:
        return RestoreTarget("latest", None, label)
    return RestoreTarget("immediate", None, label)
