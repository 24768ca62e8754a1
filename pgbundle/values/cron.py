"""Cron schedules as Kubernetes' CronJob controller reads them (robfig/cron,
standard five fields): the check of `postgres.backup.schedule`, and the longest
gap between two runs, which the backup alerts allow for."""

from __future__ import annotations

import datetime
import re
from typing import Annotated

from pydantic import AfterValidator

# The macros the parser also accepts, with the fields they stand for.
CRON_MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
               "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}
# name, lowest, highest, names allowed in place of numbers
CRON_FIELDS = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, {m: i + 1 for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"])}),
    # Kubernetes' parser counts Sunday as 0 only (7 is refused, unlike Vixie cron).
    ("day of week", 0, 6, {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}),
)
_CRON_HELP = (
    "use five fields 'minute hour day-of-month month day-of-week' (numbers, *, a-b ranges, "
    "/steps and comma lists, e.g. '0 2 * * *') or one of " + ", ".join(sorted(CRON_MACROS))
)


def _cron_number(text: str, low: int, high: int, names: dict[str, int]) -> int:
    if text.lower() in names:
        return names[text.lower()]
    # ASCII only: str.isdigit() and int() also take other scripts' digits ('٢'), which Kubernetes refuses.
    if not re.fullmatch(r"[0-9]+", text) or not low <= int(text) <= high:
        raise ValueError(text)
    return int(text)


def _cron_schedule(value: str) -> str:
    text = value.strip()
    if text in CRON_MACROS:
        return value
    fields = text.split()
    if len(fields) != 5:
        raise ValueError(f"{value!r} is not a cron expression: it has {len(fields)} fields; {_CRON_HELP}")
    for field, (name, low, high, names) in zip(fields, CRON_FIELDS):
        for part in field.split(","):
            try:
                base, _, step = part.partition("/")
                if step and (not re.fullmatch(r"[0-9]+", step) or int(step) == 0):
                    raise ValueError(step)
                if base == "?" and name in ("day of month", "day of week"):
                    continue  # "no specific value", as '*'
                if base != "*":
                    first, _, last = base.partition("-")
                    start = _cron_number(first, low, high, names)
                    if last and _cron_number(last, low, high, names) < start:
                        raise ValueError(base)
            except ValueError:
                raise ValueError(
                    f"{value!r} is not a cron expression: {part!r} is not a valid {name} "
                    f"({low}-{high}); {_CRON_HELP}"
                ) from None
    never = _never_runs(fields)
    if never:
        raise ValueError(f"{value!r} never runs: {never}; choose days that those months have")
    return value


CronSchedule = Annotated[str, AfterValidator(_cron_schedule)]


def _expand(field: str, low: int, high: int, names: dict[str, int]) -> set[int]:
    """The values one (validated) field matches."""
    found: set[int] = set()
    for part in field.split(","):
        base, _, step = part.partition("/")
        if base in ("*", "?"):
            first, last = low, high
        else:
            start, _, end = base.partition("-")
            first = _cron_number(start, low, high, names)
            last = _cron_number(end, low, high, names) if end else (high if step else first)
        found.update(range(first, last + 1, int(step) if step else 1))
    return found


# Days in each month in the longest year (29 February happens).
_MONTH_DAYS = {1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30, 12: 31}


def _unrestricted(field: str) -> bool:
    """Whether a day field counts as '*' for Kubernetes' parser: some part of it is
    '*' or '?' with no step above 1 ('*/2' is a restriction)."""
    return any(p.partition("/")[0] in ("*", "?") and p.partition("/")[2] in ("", "1") for p in field.split(","))


def _never_runs(fields: list[str]) -> str | None:
    """Why a schedule matches no day at all, or None. A restricted day of week
    makes the days an OR (see longest_interval_seconds), which always matches
    some day."""
    if not _unrestricted(fields[4]):
        return None
    (_, low, high, names), (_, mlow, mhigh, mnames) = CRON_FIELDS[2], CRON_FIELDS[3]
    days, months = _expand(fields[2], low, high, names), _expand(fields[3], mlow, mhigh, mnames)
    if any(day <= _MONTH_DAYS[month] for day in days for month in months):
        return None
    return (f"day of month {','.join(map(str, sorted(days)))} never occurs in month "
            f"{','.join(map(str, sorted(months)))}")


def longest_interval_seconds(schedule: str) -> int:
    """The longest time between two runs of a (validated) cron schedule, found by
    walking four years of days (time-zone changes ignored). An alert on the age
    of the last successful backup should allow this much, times a margin."""
    fields = CRON_MACROS.get(schedule.strip(), schedule).split()
    minutes, hours, days, months, weekdays = (
        _expand(f, low, high, names) for f, (_, low, high, names) in zip(fields, CRON_FIELDS))
    # As Kubernetes' parser: with both day fields restricted, a day matching either runs.
    either = not _unrestricted(fields[2]) and not _unrestricted(fields[4])
    times = sorted(h * 3600 + m * 60 for h in hours for m in minutes)
    within = max([b - a for a, b in zip(times, times[1:])], default=0)
    longest, previous, runs = within, None, 0
    start, window = datetime.date(2025, 1, 1), 4 * 366
    for offset in range(window):
        day = start + datetime.timedelta(days=offset)
        dom, dow = day.day in days, day.isoweekday() % 7 in weekdays
        if day.month in months and ((dom or dow) if either else (dom and dow)):
            if previous is not None:
                longest = max(longest, (offset - previous) * 86400 + times[0] - times[-1])
            previous = offset
            runs += 1
    # A schedule that runs on at most one day in four years (29 February): the whole window.
    return longest if runs > 1 else window * 86400
