"""Backup values: defaults, and one test per validation rule naming field, value and what is allowed."""

from __future__ import annotations

import re

import pytest

from pgbundle.values.load import ValuesError, parse_values


def backup(**settings) -> dict:
    return {"postgres": {"backup": settings}}


def test_defaults():
    values = parse_values({})
    b = values.postgres.backup
    assert (b.enabled, b.schedule, b.time_zone, b.retention.count, b.retention.days) == (
        True, "0 2 * * *", "Etc/UTC", 7, None)
    assert b.compression == 1
    assert values.postgres.backup_databases == ["appdb"]


def test_temporal_databases_are_backed_up_by_default():
    values = parse_values({"postgres": {"temporal": {"enabled": True}}})
    assert values.postgres.backup_databases == ["appdb", "temporal", "temporal_visibility"]


def test_listed_databases_replace_the_default():
    values = parse_values({"postgres": {"temporal": {"enabled": True}, "backup": {"databases": ["appdb"]}}})
    assert values.postgres.backup_databases == ["appdb"]


@pytest.mark.parametrize("schedule", ["*/15 1-5 * jan-mar MON-FRI", "@daily", "0 0 1,15 * 6", "30 3 ? * 0", "5/10 * * * *"])
def test_valid_schedules(schedule):
    assert parse_values(backup(schedule=schedule)).postgres.backup.schedule == schedule


def test_cron_field_out_of_range():
    with pytest.raises(ValuesError, match=r"postgres\.backup\.schedule: '0 24 \* \* \*' is not a cron expression: "
                                          r"'24' is not a valid hour \(0-23\); use five fields"):
        parse_values(backup(schedule="0 24 * * *"))


def test_cron_wrong_number_of_fields():
    with pytest.raises(ValuesError, match=r"postgres\.backup\.schedule: 'daily' is not a cron expression: "
                                          r"it has 1 fields; use five fields .* or one of @annually"):
        parse_values(backup(schedule="daily"))


def test_cron_sunday_is_0_not_7():
    with pytest.raises(ValuesError, match=r"postgres\.backup\.schedule: '0 2 \* \* 7' .* '7' is not a valid day of week \(0-6\)"):
        parse_values(backup(schedule="0 2 * * 7"))


def test_cron_zero_step():
    with pytest.raises(ValuesError, match=r"postgres\.backup\.schedule: '\*/0 \* \* \* \*' .* '\*/0' is not a valid minute"):
        parse_values(backup(schedule="*/0 * * * *"))


@pytest.mark.parametrize(("schedule", "days", "months"), [
    ("0 2 31 2 *", "31", "2"), ("0 2 30,31 2 *", "30,31", "2"), ("0 2 31 4,6,9,11 *", "31", "4,6,9,11"),
    ("0 2 31 feb ?", "31", "2"), ("0 2 31 2 */1", "31", "2"),
])
def test_a_schedule_that_never_runs_is_refused(schedule, days, months):
    with pytest.raises(ValuesError, match=rf"postgres\.backup\.schedule: '{re.escape(schedule)}' never runs: day of month "
                                          rf"{days} never occurs in month {months}"):
        parse_values(backup(schedule=schedule))


@pytest.mark.parametrize("schedule", [
    "0 2 29 2 *",    # leap years
    "0 2 31 2 1",    # both day fields restricted: either matches, so every Monday in February
    "0 2 31 2 */2",  # a stepped day of week is restricted too (Kubernetes' parser)
    "0 2 31 */2 *",  # January has a 31st
])
def test_a_rare_but_possible_schedule_is_accepted(schedule):
    assert parse_values(backup(schedule=schedule)).postgres.backup.schedule == schedule


@pytest.mark.parametrize("schedule", ["٠ ٢ * * *", "0 ２ * * *", "*/٥ * * * *", "0 2 ¹ * *"])
def test_non_ascii_digits_are_refused(schedule):
    with pytest.raises(ValuesError, match=r"postgres\.backup\.schedule: .* is not a cron expression"):
        parse_values(backup(schedule=schedule))


def test_unknown_time_zone():
    with pytest.raises(ValuesError, match=r"postgres\.backup\.timeZone: 'Europe/Atlantis' is not a time zone of the "
                                          r"IANA database: use a name such as Etc/UTC"):
        parse_values(backup(timeZone="Europe/Atlantis"))


def test_retention_count_zero():
    with pytest.raises(ValuesError, match=r"postgres\.backup\.retention\.count: 0 is not allowed: keep 1 to 1000 "
                                          r"backup sets"):
        parse_values(backup(retention={"count": 0}))


def test_retention_days_zero():
    with pytest.raises(ValuesError, match=r"postgres\.backup\.retention\.days: 0 is not allowed: use 1 to 3650 days"):
        parse_values(backup(retention={"days": 0}))


def test_compression_zero_is_refused():
    with pytest.raises(ValuesError, match=r"postgres\.backup\.compression: .*greater than or equal to 1.*received 0"):
        parse_values(backup(compression=0))


def test_database_listed_twice():
    with pytest.raises(ValuesError, match=r"postgres\.backup\.databases: \['appdb', 'appdb'\] lists a database twice"):
        parse_values(backup(databases=["appdb", "appdb"]))


def test_backup_needs_the_backup_volume():
    with pytest.raises(ValuesError, match=r"postgres\.backup\.enabled: true needs persistence\.backups\.enabled: true"):
        parse_values({"postgres": {"persistence": {"backups": {"enabled": False}}}})


def test_no_backup_volume_is_fine_without_backups():
    values = parse_values({"postgres": {"persistence": {"backups": {"enabled": False}}, "backup": {"enabled": False}}})
    assert values.postgres.backup.enabled is False


@pytest.mark.parametrize(("schedule", "seconds"), [
    ("0 2 * * *", 86400),
    ("@hourly", 3600),
    ("*/15 * * * *", 900),
    ("0 2 * * 1-5", 3 * 86400),          # Friday 02:00 to Monday 02:00
    ("0 1,13 * * *", 12 * 3600),
    ("0 0 1 * *", 31 * 86400),
    ("0 0 1,15 * 0", 7 * 86400),          # either day field matches
    ("0 0 13 * */2", 2 * 86400),          # a step restricts the day of week: the 13th or Sun/Tue/Thu/Sat
    ("0 0 */10 * 1", 7 * 86400),          # likewise the day of month: 1/11/21/31 or a Monday
    ("0 3 29 2 *", 4 * 366 * 86400),      # leap days only: the whole four-year walk
])
def test_longest_interval_between_runs(schedule, seconds):
    from pgbundle.values.cron import longest_interval_seconds

    assert longest_interval_seconds(parse_values(backup(schedule=schedule)).postgres.backup.schedule) == seconds
