"""The parameter check agrees with real PostgreSQL servers, and the shipped lists
are what those servers report (tools/pg-settings)."""

from __future__ import annotations

import csv
import importlib.machinery
import importlib.util
import io
import json
from pathlib import Path

import pytest

from pgbundle.pgconf.conf import _literal
from pgbundle.values import parameters

TOP = Path(__file__).resolve().parent.parent
_loader = importlib.machinery.SourceFileLoader("pg_settings_tool", str(TOP / "tools" / "pg-settings"))
tool = importlib.util.module_from_spec(importlib.util.spec_from_loader(_loader.name, _loader))
_loader.exec_module(tool)


# Every major whose server this machine has: Debian's own (15 on Debian 12, 17 on
# Debian 13) and the wheel's 18.
MAJORS = tool.available()


def test_the_machines_own_major_has_a_shipped_list():
    # The local pod and every real-server test run pg_config's major: its list must ship.
    machine = tool.machine_major()
    assert machine in MAJORS
    assert (parameters.LISTS / f"{machine}.json").is_file(), f"no shipped list for PostgreSQL {machine}"
    assert (machine,) == parameters.LISTS_FOR_MAJOR[machine]


@pytest.mark.parametrize("major", MAJORS)
def test_the_shipped_lists_are_what_the_servers_report(tmp_path, major):
    _, fresh = tool.settings(major)
    shipped = json.loads((parameters.LISTS / f"{major}.json").read_text())
    assert shipped["query"] == tool.QUERY
    assert shipped["parameters"] == fresh, f"run `make pg-settings` and commit {parameters.LISTS}"


# Values a user may write, good and bad, for every type, unit and range edge.
CASES = [
    ("jit", True), ("jit", False), ("jit", "yes"), ("jit", 1), ("jit", 0), ("jit", "maybe"), ("jit", 2), ("jit", 0.5),
    ("max_wal_senders", 20), ("max_wal_senders", 1.5), ("max_wal_senders", "1.5"), ("max_wal_senders", -1),
    ("max_wal_senders", 300000), ("max_wal_senders", "ten"), ("max_wal_senders", True), ("max_wal_senders", "5 kB"),
    ("statement_timeout", "10s"), ("statement_timeout", "10 s"), ("statement_timeout", "10S"),
    ("statement_timeout", "1.5min"), ("statement_timeout", "5 hours"), ("statement_timeout", -1),
    ("statement_timeout", 0), ("statement_timeout", "2d"), ("statement_timeout", "250us"),
    ("temp_buffers", "8MB"), ("temp_buffers", "8mb"), ("temp_buffers", "100kB"), ("temp_buffers", "64kB"),
    ("temp_buffers", "1TB"), ("temp_buffers", "8 MB"), ("temp_buffers", 1000), ("temp_buffers", "1.5MB"),
    ("random_page_cost", 4), ("random_page_cost", "1.5"), ("random_page_cost", -1), ("random_page_cost", 1e309),
    ("vacuum_cost_delay", "2ms"), ("vacuum_cost_delay", 0.5), ("vacuum_cost_delay", "101ms"), ("vacuum_cost_delay", "1s"),
    ("synchronous_commit", "remote_apply"), ("synchronous_commit", True), ("synchronous_commit", "LOCAL"),
    ("synchronous_commit", "sometimes"),
    ("log_min_messages", "WARNING"), ("log_min_messages", "loud"), ("log_statement", "ddl"),
    ("application_name", "app"), ("application_name", 123), ("application_name", "it's"),
    ("default_statistics_target", 10000), ("default_statistics_target", 10001),
    ("checkpoint_timeout", "29s"), ("checkpoint_timeout", "30s"), ("checkpoint_timeout", "1d"), ("checkpoint_timeout", "25h"),
    ("effective_io_concurrency", 1000), ("effective_io_concurrency", 1001),
    ("idle_in_transaction_session_timeout", "1 min"), ("track_io_timing", "on"), ("wal_compression", "pglz"),
    ("pg_stat_statements.max", 10000), ("pg_stat_statements.max", 99), ("pg_stat_statements.track", "all"),
    ("log_rotation_age", "1d"),
]


@pytest.fixture(scope="module", params=MAJORS)
def server(request):
    with tool.running_server(request.param) as psql:
        yield request.param, psql


def test_every_verdict_is_the_servers(server):
    # ALTER SYSTEM parses and range-checks a value exactly as the server reads
    # postgresql.conf, for every context, without applying it.
    major, psql = server
    disagreements = []
    for name, value in CASES:
        if name in parameters.OWNED:
            continue
        ours = parameters.problems(major, {name: value})
        theirs = psql(f"ALTER SYSTEM SET {name} = {_literal(value)}")
        if (not ours) != (theirs.returncode == 0):
            disagreements.append((name, value, ours, theirs.stderr.strip()))
    psql("ALTER SYSTEM RESET ALL")
    assert disagreements == [], "\n".join(map(repr, disagreements))


def test_rendered_strings_read_back_unchanged(server):
    # The server's own config file reader on the lines pgbundle/pgconf/conf.py writes.
    _, psql = server
    values = ["it's", "C:\\new\\table", "naïve ✓", "a # not a comment", "tab\\there"]
    config = Path(psql("COPY (SELECT current_setting('config_file')) TO STDOUT").stdout.strip())
    original = config.read_bytes()
    try:
        config.write_text(original.decode() + "".join(f"application_name = {_literal(v)}\n" for v in values))
        read = psql("COPY (SELECT setting, error FROM pg_file_settings WHERE name = 'application_name' "
                    "ORDER BY seqno) TO STDOUT WITH (FORMAT csv)").stdout
    finally:
        config.write_bytes(original)
    assert [row[0] for row in csv.reader(io.StringIO(read))] == values
