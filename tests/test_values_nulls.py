"""The null rule (pgbundle/values/nulls.py): null is a value only where the model
takes none, and means none there; anywhere else it is refused, naming the key,
what it takes and how to say "the default" or "off"."""

from __future__ import annotations

import pytest

import main
from pgbundle import contract
from pgbundle.values.load import ValuesError, parse_values
from pgbundle.values.reference import sections


def refused(data: dict) -> list[str]:
    with pytest.raises(ValuesError) as caught:
        parse_values(data)
    return str(caught.value).splitlines()[1:]


@pytest.mark.parametrize(("data", "message"), [
    ({"postgres": None},
     "postgres: null is not allowed (allowed: a mapping): leave the key out to keep its defaults"),
    ({"postgres": {"tls": None}},
     "postgres.tls: null is not allowed (allowed: a mapping): leave the key out to keep its defaults, "
     "or set postgres.tls.enabled: false to turn it off"),
    ({"postgres": {"resources": None}},
     "postgres.resources: null is not allowed (allowed: a mapping): leave the key out to keep its defaults"),
    ({"postgres": {"resources": {"limits": {"memory": None}}}},
     "postgres.resources.limits.memory: null is not allowed (allowed: memory quantity (Kubernetes)): "
     "leave the key out for the default \"4Gi\""),
    ({"postgres": {"replicas": None}},
     "postgres.replicas: null is not allowed (allowed: integer (>= 1)): leave the key out for the default 1"),
    ({"postgres": {"allowedCidrs": None}},
     "postgres.allowedCidrs: null is not allowed (allowed: list of CIDR (at least 1 item)): leave the key out "
     "for the default [\"0.0.0.0/0\", \"::/0\"]"),
    ({"postgres": {"ha": {"image": {"repository": None, "tag": "v1"}}}},
     "postgres.ha.image.repository: null is not allowed (allowed: image repository): give one"),
    ({"postgres": {"networkPolicy": {"ingress": [{"from": [{"podSelector": {"matchLabels": None}}]}]}}},
     "postgres.networkPolicy.ingress[0].from[0].podSelector.matchLabels: null is not allowed "
     "(allowed: map of label key to label value): leave the key out for the default {}"),
], ids=lambda v: v if isinstance(v, str) and len(v) < 40 else None)
def test_a_null_the_model_does_not_take_is_one_clear_error(data, message):
    assert refused(data) == [f"  - {message}"]


def test_every_refused_null_is_listed_beside_the_other_problems():
    assert refused({"postgres": {"tls": None, "replicas": None, "database": "Bad"}}) == [
        "  - postgres.database: 'Bad' is not a plain PostgreSQL name: use at most 63 lower-case letters, digits "
        "and '_', starting with a letter or '_'",
        "  - postgres.tls: null is not allowed (allowed: a mapping): leave the key out to keep its defaults, "
        "or set postgres.tls.enabled: false to turn it off",
        "  - postgres.replicas: null is not allowed (allowed: integer (>= 1)): leave the key out for the default 1",
    ]


def test_every_section_with_an_on_switch_names_it_in_the_refusal():
    switched = [s.path for s in sections() if any(k.name == "enabled" for k in s.keys) and "[]" not in s.path]
    assert "postgres.tls" in switched and "postgres.pitr.repos.s3" in switched
    for path in switched:
        data: dict = {}
        *parents, leaf = path.split(".")
        place = data
        for key in parents:
            place = place.setdefault(key, {})
        place[leaf] = None
        (line,) = refused(data)
        assert line.endswith(f"or set {path}.enabled: false to turn it off"), line


def test_null_where_the_model_takes_none_means_none():
    pitr = {"ha": {"image": {"repository": "registry.example/postgres-patroni", "tag": "v1"}},
            "pitr": {"enabled": True, "schedules": {"differential": None}}}
    values = parse_values({"postgres": pitr})
    assert values.postgres.pitr.schedules.differential is None
    assert parse_values({"postgres": {"ha": {"image": None}}}).postgres.ha.image is None
    assert parse_values({"postgres": {"config": {"sharedBuffers": None}}}).postgres.config.shared_buffers is None


def test_differential_null_synthesizes_full_backups_only(synth):
    pitr = {"ha": {"image": {"repository": "registry.example/postgres-patroni", "tag": "v1"}}, "pitr": {"enabled": True}}
    kept = synth({"postgres": pitr})
    assert kept.find("CronJob", contract.PITR_DIFF_CRONJOB) is not None
    pitr["pitr"]["schedules"] = {"differential": None}
    full_only = synth({"postgres": pitr})
    assert full_only.find("CronJob", contract.PITR_DIFF_CRONJOB) is None
    assert full_only.find("CronJob", contract.PITR_FULL_CRONJOB) is not None


def test_the_cli_refuses_a_null_with_status_2_and_writes_nothing(tmp_path, capsys):
    values = tmp_path / "values.yaml"
    values.write_text("postgres:\n  tls: null\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "kept.yaml").write_text("kept\n")
    assert main.main(["--values", str(values), "--out", str(out)]) == 2
    assert capsys.readouterr().err == (
        f"error: {values} is not valid:\n  - postgres.tls: null is not allowed (allowed: a mapping): leave the key "
        "out to keep its defaults, or set postgres.tls.enabled: false to turn it off\n")
    assert [(p.name, p.read_text()) for p in out.iterdir()] == [("kept.yaml", "kept\n")]
    assert main.main(["--check", "--values", str(values)]) == 2
