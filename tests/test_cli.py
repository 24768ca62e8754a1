"""One command line: every sub-command reads --values the same way and fails
with the same exit status on bad values."""

from __future__ import annotations

import pytest

import main

COMMANDS = [
    [],
    ["secrets", "generate"],
    ["restore-manifest", "--backup", "20260101T020000Z"],
    ["migrate-manifest", "--image", "registry.example/api:1"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]) or "synth")
def test_a_missing_values_file_is_bad_input_everywhere(command, tmp_path, capsys):
    missing = tmp_path / "nope.yaml"
    assert main.main([*command, "--values", str(missing)]) == 2
    assert capsys.readouterr().err == f"error: values file {missing} does not exist: pass --values FILE or set VALUES\n"


def test_local_up_reads_values_like_the_others(tmp_path, capsys):
    missing = tmp_path / "nope.yaml"
    assert main.main(["local", "up", "--state", str(tmp_path / "db"), "--values", str(missing)]) == 2
    assert "error: values file" in capsys.readouterr().err
    assert not (tmp_path / "db").exists()


def test_values_given_before_the_sub_command_count(tmp_path, capsys):
    missing = tmp_path / "nope.yaml"
    assert main.main(["--values", str(missing), "restore-manifest", "--backup", "20260101T020000Z"]) == 2
    assert str(missing) in capsys.readouterr().err


def test_a_bad_request_is_bad_input_and_a_failed_one_is_not(tmp_path, capsys):
    assert main.main(["restore-manifest", "--backup", "latest"]) == 2
    out = tmp_path / "secrets"
    assert main.main(["secrets", "generate", "--out", str(out)]) == 0
    assert main.main(["secrets", "generate", "--out", str(out)]) == 1  # files exist: refused, not bad input
    assert "error: " in capsys.readouterr().err
