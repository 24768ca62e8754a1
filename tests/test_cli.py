"""One command line: every sub-command reads --values the same way and fails
with the same exit status on bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

import main
from workstation import cli

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


# --- bad input on every command: one line, exit 2, nothing changed (issue 19) -----------------


def one_error(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert "Traceback" not in captured.err
    return lines[0]


@pytest.mark.parametrize(("port", "message"), [
    ("70000", "error: --port: 70000 is not allowed: use 1024 to 65535"),
    ("80", "error: --port: 80 is not allowed: use 1024 to 65535 (the pod runs as an unprivileged user)"),
    ("0", "error: --port: 0 is not allowed: use 1024 to 65535"),
    ("-1", "error: --port: -1 is not allowed"),
])
def test_local_up_refuses_a_port_it_cannot_listen_on(port, message, tmp_path, capsys):
    state = tmp_path / "db"
    assert main.main(["local", "up", "--state", str(state), "--port", port]) == 2
    assert one_error(capsys).startswith(message)
    assert not state.exists()


@pytest.mark.parametrize("command", [["up"], ["status"], ["down"], ["backup"]])
def test_a_state_path_that_is_a_file_is_bad_input(command, tmp_path, capsys):
    state = tmp_path / "a file"
    state.write_text("not a folder")
    assert main.main(["local", *command, "--state", str(state)]) == 2
    assert one_error(capsys) == (f"error: --state: '{state}': '{state}' is not a folder: pass a state folder "
                                 "(it is created when missing)")
    assert main.main(["local", *command, "--state", str(state / "db")]) == 2
    assert f"'{state}' is not a folder" in one_error(capsys)
    assert state.read_text() == "not a folder"


def test_an_empty_out_is_an_error_and_dist_is_not_touched(tmp_path, capsys):
    top = tmp_path / "checkout"  # a checkout of its own: today's code would overwrite its dist/
    (top / "dist").mkdir(parents=True)
    (top / "dist" / "10-postgres.k8s.yaml").write_text("committed\n")
    values = str(Path(main.TOP) / "examples" / "ha.yaml")
    assert cli.main(["--out", "", "--values", values], top=top, synthesize=main.synthesize) == 2
    assert one_error(capsys) == (f"error: --out: an empty path names no folder: give a folder, or leave --out out "
                                 f"for {top / 'dist'}")
    assert [p.name for p in (top / "dist").iterdir()] == ["10-postgres.k8s.yaml"]
    assert (top / "dist" / "10-postgres.k8s.yaml").read_text() == "committed\n"


def test_secrets_generate_refuses_an_empty_out(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main.main(["secrets", "generate", "--out", " "]) == 2
    assert one_error(capsys).startswith("error: --out: an empty path names no folder")
    assert list(tmp_path.iterdir()) == []


def test_a_repeated_rotate_is_refused_not_half_applied(tmp_path, capsys):
    out = tmp_path / "secrets"
    assert main.main(["secrets", "generate", "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    assert main.main(["secrets", "generate", "--out", str(out), "--rotate", "tls", "--rotate", "ca"]) == 2
    assert one_error(capsys) == ("error: --rotate: given 2 times (tls, ca): rotate one key per run, "
                                 "e.g. --rotate ca, then --rotate tls")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


@pytest.mark.parametrize(("options", "message"), [
    (["--client-secret", "bad secret"], "error: --client-secret: 'bad secret' is not a DNS-1123 label"),
    (["--image", "registry.example/api:latest"], "error: --image: 'registry.example/api:latest' is not an image "
                                                 "reference: tag: 'latest' is not reproducible"),
    (["--image", "registry.example/api"], "error: --image: 'registry.example/api' is not an image reference: "
                                          "tag: required unless digest is set"),
    (["--image", "registry.example/api@sha256:abc"], "error: --image: 'registry.example/api@sha256:abc' is not an "
                                                     "image reference: 'sha256:abc' must look like sha256:<64 hex"),
])
def test_migrate_manifest_holds_images_and_names_to_the_values_grammar(options, message, capsys):
    argv = ["migrate-manifest", "--image", "registry.example/api:1", *options, "--", "alembic", "upgrade", "head"]
    assert main.main(argv) == 2
    assert one_error(capsys).startswith(message)


@pytest.mark.parametrize(("options", "message"), [
    (["--database", "appdb", "--database", "appdb"], "error: --database: 'appdb' is given twice"),
    (["--jobs", "100000"], "error: --jobs: 100000 is not allowed: use 1"),
])
def test_restore_requests_that_could_lose_data_are_refused(options, message, tmp_path, capsys):
    assert main.main(["restore-manifest", "--backup", "20260101T020000Z", *options]) == 2
    assert one_error(capsys).startswith(message)
    state = tmp_path / "db"
    assert main.main(["local", "restore", "--state", str(state), "--backup", "20260101T020000Z", *options]) == 2
    assert one_error(capsys).startswith(message)
    assert not state.exists()


def test_a_suggested_command_quotes_the_state_path(tmp_path, capsys):
    state = tmp_path / "my state"
    state.mkdir()
    assert main.main(["local", "migrate", "--state", str(state), "--", "true"]) == 1
    assert one_error(capsys).endswith(f"run `python main.py local up --state '{state}'`")


def test_local_migrate_with_a_missing_program_is_one_line(pods, capsys):
    pod = pods("cli-migrate")
    assert main.main(["local", "migrate", "--state", str(pod.state), "--", "/nonexistent/cmd", "upgrade"]) == 2
    assert one_error(capsys) == "error: COMMAND: '/nonexistent/cmd' was not found: give a program on PATH or its path"


def test_a_synth_says_in_one_line_what_it_wrote_where(tmp_path, capsys):
    out = tmp_path / "manifests"
    assert main.main(["--out", str(out)]) == 0
    written = sorted(p.name for p in out.iterdir())
    assert capsys.readouterr().out == f"wrote {len(written)} manifests to {out}\n"
    assert written and all(name.endswith(".yaml") for name in written)


def test_restore_options_of_the_two_kinds_do_not_mix(tmp_path, capsys):
    state = tmp_path / "db"
    with pytest.raises(SystemExit) as exited:
        main.main(["local", "restore", "--state", str(state), "--backup", "20260101T020000Z", "--latest"])
    assert exited.value.code == 2
    assert ("--time, --latest, --name and --label restore a point in time (PITR): leave --backup out"
            in capsys.readouterr().err)
    assert not state.exists()


def test_patronictl_needs_a_cluster_state(tmp_path, capsys):
    assert main.main(["local", "patronictl", "--state", str(tmp_path / "db"), "--", "list"]) == 1
    assert one_error(capsys) == (f"error: --state: {tmp_path / 'db'} holds no cluster: `local patronictl` needs one "
                                 "(postgres.replicas >= 2)")
