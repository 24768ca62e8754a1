"""postgres.config.parameters: owned settings, unknown names and bad values are
refused, each on its own line naming the setting, the value and what to do."""

from __future__ import annotations

import pytest

from pgbundle.values.load import ValuesError, parse_values
from pgbundle.values import parameters
from pgbundle.values.fields import SUPPORTED_MAJORS, tag_major


def problems(params: dict, tag: str | None = None) -> list[str]:
    postgres: dict = {"config": {"parameters": params}}
    if tag:
        postgres["image"] = {"tag": tag}
    try:
        parse_values({"postgres": postgres})
    except ValuesError as err:
        return [line.removeprefix("  - ") for line in str(err).splitlines()[1:]]
    return []


@pytest.mark.parametrize("name", sorted(parameters.OWNED))
def test_every_owned_setting_is_refused_with_what_to_do_instead(name):
    assert problems({name: "x"}) == [f"postgres.config.parameters.{name}: set by the product: {parameters.OWNED[name]}"]


@pytest.mark.parametrize(("name", "key"), [
    ("ssl", "postgres.tls.enabled"), ("shared_buffers", "postgres.config.sharedBuffers"),
    ("max_connections", "postgres.config.maxConnections"), ("work_mem", "postgres.config.workMem"),
    ("hba_file", "postgres.allowedCidrs"), ("log_destination", "postgres.logging"),
])
def test_the_key_to_use_instead_is_named(name, key):
    assert key in problems({name: "on"})[0]


@pytest.mark.parametrize(("name", "value"), [
    ("ssl_min_protocol_version", "TLSv1.1"), ("ssl_min_protocol_version", "TLSv1"),
    ("ssl_max_protocol_version", "TLSv1.2"), ("wal_level", "minimal"),
])
def test_a_weaker_security_or_durability_setting_is_refused(name, value):
    found = problems({name: value})
    assert len(found) == 1 and found[0].startswith(f"postgres.config.parameters.{name}: {value!r} is not allowed: ")


@pytest.mark.parametrize(("name", "value"), [
    ("ssl_min_protocol_version", "TLSv1.3"), ("ssl_max_protocol_version", ""), ("wal_level", "logical"),
    ("log_min_duration_statement", "250ms"), ("jit", False), ("random_page_cost", 1.1),
    ("pg_stat_statements.track", "all"), ("statement_timeout", "30s"), ("synchronous_commit", "off"),
])
def test_ordinary_settings_pass(name, value):
    assert problems({name: value}) == []


def test_a_typo_is_an_unknown_name_with_a_suggestion():
    assert problems({"shared_bufer": "1GB"}) == [
        "postgres.config.parameters.shared_bufer: not a parameter of PostgreSQL 17; did you mean shared_buffers?"]
    assert problems({"shared_bufer": "1GB"}, "16.4") == [
        "postgres.config.parameters.shared_bufer: not a parameter known to both PostgreSQL 15 and 17, the lists "
        "that stand for 16; did you mean shared_buffers?"]


@pytest.mark.parametrize("name", ["jit ", "jit\n", "Jit", "work-mem", "include", "include_dir", "a.b.c", ""])
def test_a_name_outside_the_grammar_or_the_list_is_refused(name):
    found = problems({name: "on"})
    assert len(found) == 1 and (repr(name) in found[0] or "not a parameter" in found[0]), found


@pytest.mark.parametrize(("value", "why"), [
    ("a\nb", "control character"), ("tab\there", "control character"), ("nul\x00", "control character"),
    (float("inf"), "not a finite number"), (float("-inf"), "not a finite number"), (float("nan"), "not a finite number"),
])
def test_values_postgresql_conf_cannot_hold_are_refused(value, why):
    name = "application_name" if isinstance(value, str) else "random_page_cost"
    found = problems({name: value})
    assert len(found) == 1 and found[0].startswith(f"postgres.config.parameters.{name}: {value!r} ") and why in found[0]


@pytest.mark.parametrize(("name", "value", "why"), [
    ("jit", "maybe", "must be on or off"),
    ("max_wal_senders", -1, "must be from 0 to 262143"),
    ("max_wal_senders", "5 kB", "takes no unit"),
    ("statement_timeout", "5 hours", "needs one of the units us, ms, s, min, h, d"),
    ("temp_buffers", "8mb", "needs one of the units B, kB, MB, GB, TB (case matters)"),
    ("checkpoint_timeout", "25h", "must be from 30 to 86400 s"),
    ("synchronous_commit", "sometimes", "must be one of"),
    ("effective_io_concurrency", 1001, "must be from 0 to 1000"),
    ("random_page_cost", True, "must be a number"),
    ("block_size", 8192, "a read-only property of the server"),
])
def test_a_value_outside_the_type_or_range_is_refused(name, value, why):
    found = problems({name: value})
    assert len(found) == 1 and found[0].startswith(f"postgres.config.parameters.{name}: ") and why in found[0], found


def test_every_problem_gets_its_own_line():
    assert len(problems({"shared_bufer": "1GB", "ssl": False, "jit": "maybe", "port": 5433})) == 4


@pytest.mark.parametrize(("tag", "name", "accepted"), [
    ("15.10-bookworm", "promote_trigger_file", True),   # removed in 16
    ("17.6-bookworm", "promote_trigger_file", False),
    ("18.1-trixie", "transaction_timeout", True),       # new in 17
    ("17.6-bookworm", "transaction_timeout", True),     # the 17 list, from a real 17 server
    ("16.4", "transaction_timeout", False),             # not in the 15 list, which also stands for 16
    ("17.6-bookworm", "old_snapshot_threshold", False),  # removed in 17
    ("16.4", "old_snapshot_threshold", False),          # not in the 17 list, which also stands for 16
    ("15.10-bookworm", "old_snapshot_threshold", True),
])
def test_names_follow_the_image_major(tag, name, accepted):
    value = "1min" if name != "promote_trigger_file" else "/tmp/promote"
    assert (problems({name: value}, tag) == []) == accepted


@pytest.mark.parametrize("tag", ["19.0", "9.6", "14.12-bookworm"])
def test_an_unsupported_major_is_refused_once_whatever_the_parameters(tag):
    refused = [f"postgres.image.tag: {tag!r} is PostgreSQL {tag_major(tag)}, which the product does not run: "
               "use a major from 15 to 18"]
    assert problems({"jit": False}, tag) == refused
    assert problems({}, tag) == refused


def test_a_stated_major_chooses_the_parameter_list():
    digest = "sha256:" + "a" * 64
    image = {"tag": "bookworm", "digest": digest, "major": 15}
    parse_values({"postgres": {"image": image, "config": {"parameters": {"promote_trigger_file": "/tmp/p"}}}})
    with pytest.raises(ValuesError, match=r"promote_trigger_file: not a parameter of PostgreSQL 18"):
        parse_values({"postgres": {"image": {**image, "major": 18},
                                   "config": {"parameters": {"promote_trigger_file": "/tmp/p"}}}})


def test_a_list_value_is_one_error_line():
    assert problems({"random_page_cost": [1]}) == [
        "postgres.config.parameters.random_page_cost: [1] is a list: a setting takes a string, a number or a boolean"]


def test_every_supported_major_has_its_lists():
    # The majors the values accept are exactly those the parameter check can check.
    assert set(parameters.LISTS_FOR_MAJOR) == {str(m) for m in SUPPORTED_MAJORS}
    assert all((parameters.LISTS / f"{name}.json").is_file() for names in parameters.LISTS_FOR_MAJOR.values()
               for name in names)
