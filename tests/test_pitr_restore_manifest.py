"""`main.py pitr-restore-manifest`: the printed point-in-time restore (a PVC and
a Job, or in place only the Job), selected by kind and name, strictly
schema-valid, restricted, without secret material; bad input is one line."""

from __future__ import annotations

import contextlib
import io

import kubernetes_validate
import pytest
import yaml

import main
from conftest import TOP, Manifests, container
from pgbundle import contract
from pgbundle.values.load import load_values
from pss import violations
from variants import VARIANTS
from workstation.secretgen import generate

PITR = TOP / "examples" / "pitr.yaml"
NS = "api-forge-prod"


def run(*args: str, values=PITR) -> tuple[int, str, str]:
    """The command in this process (the synth machinery stays loaded): status, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main.main(["pitr-restore-manifest", "--values", str(values), *args])
    return status, out.getvalue(), err.getvalue()


def printed(*args: str, values=PITR) -> dict[tuple[str, str], dict]:
    status, out, err = run(*args, values=values)
    assert status == 0, err
    return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(out) if d}


def job_env(job: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container(job["spec"]["template"]["spec"],
                                                     contract.PITR_RESTORE_CONTAINER)["env"]}


def volumes(job: dict) -> dict[str, dict]:
    return {v["name"]: v for v in job["spec"]["template"]["spec"]["volumes"]}


def test_a_new_volume_and_the_job_restoring_into_it():
    docs = printed("--time", "2026-12-05T15:02:59+01:00")
    slug = "time-20261205t140259z"  # in UTC
    claim, job = docs[("PersistentVolumeClaim", f"postgres-data-pitr-{slug}")], docs[("Job", f"postgres-pitr-restore-{slug}")]
    assert len(docs) == 2
    values = load_values(PITR).postgres.persistence.data
    assert claim["metadata"]["namespace"] == job["metadata"]["namespace"] == NS
    assert claim["spec"]["resources"]["requests"]["storage"] == values.size
    assert job_env(job).items() >= {"PG_PITR_RESTORE_TYPE": "time", "PG_PITR_RESTORE_TARGET": "2026-12-05 15:02:59+01:00",
                                    "PGDATA": contract.PGDATA}.items()
    assert "PG_PITR_RESTORE_IN_PLACE" not in job_env(job) and "PG_PITR_RESTORE_SET" not in job_env(job)
    spec = job["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m for m in container(spec, contract.PITR_RESTORE_CONTAINER)["volumeMounts"]}
    data = volumes(job)[mounts[contract.DATA_MOUNT]["name"]]
    assert data["persistentVolumeClaim"]["claimName"] == f"postgres-data-pitr-{slug}"
    # The repository is only read.
    assert mounts[contract.BACKUP_DIR]["readOnly"] is True
    assert volumes(job)["backups"]["persistentVolumeClaim"] == {"claimName": contract.BACKUP_CLAIM, "readOnly": True}
    assert job["spec"]["backoffLimit"] == 0 and spec["restartPolicy"] == "Never"
    assert spec["serviceAccountName"] == contract.PITR_BACKUP_SERVICE_ACCOUNT
    # The backup jobs' pod labels: their NetworkPolicy covers it.
    assert job["spec"]["template"]["metadata"]["labels"].items() >= contract.selector_labels(
        contract.PITR_BACKUP_COMPONENT).items()
    # The database runs meanwhile: a ReadWriteOnce repository attaches on its node only.
    assert "podAffinity" in spec["affinity"]


def test_in_place_is_only_the_job_on_the_first_pods_volume():
    docs = printed("--in-place", "--label", "20261205-011500F_20261206-011500D")
    [(kind, name)] = docs
    assert (kind, name) == ("Job", "postgres-pitr-restore-set-20261205-011500f-20261206-011500d")
    job = docs[(kind, name)]
    assert job_env(job).items() >= {"PG_PITR_RESTORE_TYPE": "immediate",
                                    "PG_PITR_RESTORE_SET": "20261205-011500F_20261206-011500D",
                                    "PG_PITR_RESTORE_IN_PLACE": contract.PITR_RESTORE_ASIDE_PREFIX}.items()
    claims = {v["persistentVolumeClaim"]["claimName"] for v in volumes(job).values() if "persistentVolumeClaim" in v}
    assert contract.FIRST_DATA_CLAIM in claims
    # The database pod is gone (scaled to 0): nothing to be near.
    assert "affinity" not in job["spec"]["template"]["spec"]


@pytest.mark.parametrize("args, kind, target, label, slug", [
    (["--latest"], "latest", None, None, "latest"),
    (["--name", "Before_Migration.42"], "name", "Before_Migration.42", None, "name-before-migration-42"),
    (["--name", "n", "--label", "20261205-011500F"], "name", "n", "20261205-011500F", "name-n"),
    (["--latest", "--label", "20261205-011500F"], "latest", None, "20261205-011500F", "latest"),
])
def test_each_target(args, kind, target, label, slug):
    docs = printed(*args)
    job = docs[("Job", f"postgres-pitr-restore-{slug}")]
    env = job_env(job)
    assert (env["PG_PITR_RESTORE_TYPE"], env.get("PG_PITR_RESTORE_TARGET"), env.get("PG_PITR_RESTORE_SET")) == (
        kind, target, label)


def test_a_long_name_still_makes_valid_object_names():
    name = "a" * 63
    docs = printed("--name", name)
    assert all(len(n) <= 63 for _, n in docs)


@pytest.mark.parametrize("version", ["1.27.0", "1.35.0"])
@pytest.mark.parametrize("args", [["--latest"], ["--in-place", "--name", "x"]])
def test_strictly_schema_valid_and_restricted(args, version):
    for (kind, name), doc in printed(*args).items():
        kubernetes_validate.validate(doc, version, strict=True)
        if kind == "Job":
            assert violations(doc["spec"]["template"]) == [], name


def test_no_secret_material_and_no_secret_object(tmp_path):
    """Only Secret names and keys: the values of a real Secret set never appear."""
    written, _ = generate(load_values(PITR), tmp_path / "secrets")
    secrets = [d for path in written if path.suffix == ".yaml" for d in yaml.safe_load_all(path.read_text()) if d]
    material = [v for d in secrets for v in (d.get("stringData") or d.get("data") or {}).values() if len(v) >= 8]
    assert material
    for args in (["--latest"], ["--in-place", "--latest"]):
        text = run(*args)[1]
        assert "kind: Secret\n" not in text
        assert not [v for v in material if v in text]


def test_with_an_s3_repository_its_keys_and_ca_come_from_their_secrets(tmp_path):
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(VARIANTS["pitr"]))
    job = printed("--latest", values=values)[("Job", "postgres-pitr-restore-latest")]
    assert volumes(job)["pitr-s3"]["secret"]["secretName"] == "postgres-pitr-s3"
    assert {i["key"] for i in volumes(job)["pitr-s3"]["secret"]["items"]} == {contract.S3_KEY_ID_KEY,
                                                                             contract.S3_KEY_SECRET_KEY}
    assert volumes(job)["pitr-s3-ca"]["secret"]["secretName"] == "minio-ca"
    # Its own repository volume, only read too.
    assert volumes(job)[f"claim-{contract.PITR_CLAIM}"]["persistentVolumeClaim"] == {
        "claimName": contract.PITR_CLAIM, "readOnly": True}
    mounts = {m["mountPath"]: m for m in container(job["spec"]["template"]["spec"],
                                                   contract.PITR_RESTORE_CONTAINER)["volumeMounts"]}
    assert mounts[contract.PITR_REPO_DIR]["readOnly"] is True and "readOnly" not in mounts[contract.DATA_MOUNT]
    assert job_env(job)["PG_PITR_REPOS"] == "1 2"


@pytest.mark.parametrize("args, message", [
    ([], "error: no restore target: give --time TIMESTAMP, --latest, --name RESTORE_POINT or --label BACKUP"),
    (["--time", "yesterday"], "error: --time 'yesterday' is not a time"),
    (["--time", "2026-01-01T00:00:00"], "error: --time '2026-01-01T00:00:00' has no time zone"),
    (["--time", "2999-01-01T00:00:00+00:00"], "error: --time 2999-01-01T00:00:00+00:00 is in the future"),
    (["--name", "a;b"], "error: --name 'a;b' is not a restore point name"),
    (["--name", "x" * 64], "is not a restore point name"),
    (["--label", "20261205"], "error: --label '20261205' is not a pgBackRest backup label"),
    (["--latest", "--time", "2026-01-01T00:00:00+00:00"], "error: --time and --latest exclude each other"),
])
def test_bad_input_is_one_line_and_prints_nothing(args, message):
    status, out, err = run(*args)
    assert status == 2 and out == ""
    (line,) = err.splitlines()
    assert message in line


def test_values_without_pitr_are_refused():
    status, out, err = run("--latest", values=TOP / "values.yaml")
    assert status == 2 and out == ""
    assert err.startswith("error: postgres.pitr.enabled is false") and len(err.splitlines()) == 1


def test_not_in_dist(source_dist):
    assert contract.PITR_RESTORE_JOB_PREFIX not in source_dist.text()


# --- a Patroni cluster (replicas >= 2): a new cluster bootstrapped from the repository --------------------------

HA = TOP / "examples" / "ha-pitr.yaml"
SCRIPT = f"{contract.SCRIPTS_DIR}/pitr-replica.sh"
RESTORE_COMMAND = 'pgbackrest archive-get %f "%p"'


@pytest.fixture(scope="module")
def ha_dist(tmp_path_factory) -> Manifests:
    out = tmp_path_factory.mktemp("ha-pitr-dist")
    main.synthesize(load_values(HA), out)
    return Manifests(out)


def bootstrap(docs: dict[tuple[str, str], dict]) -> dict:
    return yaml.safe_load(docs[("ConfigMap", contract.PATRONI_CONFIG_MAP)]["data"][contract.PATRONI_BOOTSTRAP_FILE])


@pytest.mark.parametrize("args, method", [
    # No label: pgBackRest picks the newest backup that ended before the time.
    (["--time", "2026-12-05T15:02:59+01:00"],
     {"type": "time", "target": "2026-12-05 15:02:59+01:00",
      "recovery_conf": {"recovery_target_time": "2026-12-05 15:02:59+01:00", "recovery_target_action": "promote"}}),
    (["--time", "2026-12-05T14:02:59+00:00", "--label", "20261205-011500F"],
     {"set": "20261205-011500F",
      "recovery_conf": {"recovery_target_time": "2026-12-05 14:02:59+00:00", "recovery_target_action": "promote"}}),
    (["--name", "before-migration-42"],
     {"recovery_conf": {"recovery_target_name": "before-migration-42", "recovery_target_action": "promote"}}),
    (["--latest"], {"recovery_conf": {}}),
    (["--label", "20261205-011500F_20261206-011500D"],
     {"set": "20261205-011500F_20261206-011500D",
      "recovery_conf": {"recovery_target": "immediate", "recovery_target_action": "promote"}}),
])
def test_a_cluster_is_the_database_chart_bootstrapped_from_the_repository(args, method, ha_dist):
    docs = printed(*args, values=HA)
    # dist/10-postgres.k8s.yaml's objects, to apply instead of it.
    database_chart = {(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(
        (ha_dist.folder / f"{contract.DATABASE_CHART}.k8s.yaml").read_text()) if d}
    assert set(docs) == database_chart
    # The ConfigMap first, so the StatefulSet's first pod reads the restoring bootstrap.
    order = list(docs)
    assert order.index(("ConfigMap", contract.PATRONI_CONFIG_MAP)) < order.index(("StatefulSet", contract.STATEFULSET))
    # Everything else as in dist/: applying dist/ afterwards changes only the bootstrap
    # section, which Patroni reads only when it creates a cluster.
    for key, doc in docs.items():
        if key != ("ConfigMap", contract.PATRONI_CONFIG_MAP):
            assert doc == ha_dist.get(*key), key
    ours, theirs = docs[("ConfigMap", contract.PATRONI_CONFIG_MAP)], ha_dist.get("ConfigMap", contract.PATRONI_CONFIG_MAP)
    assert ours["data"][contract.PATRONI_CONFIG_FILE] == theirs["data"][contract.PATRONI_CONFIG_FILE]
    section = bootstrap(docs)["bootstrap"]
    settings = section.pop(section["method"])
    assert section.pop("method") == "pgbackrest"
    assert section == yaml.safe_load(theirs["data"][contract.PATRONI_BOOTSTRAP_FILE])["bootstrap"]
    assert settings == {"command": SCRIPT, "no_params": True, **method, "recovery_conf": {
        "restore_command": RESTORE_COMMAND, "recovery_target_timeline": "latest", **method["recovery_conf"]}}


def test_a_cluster_restore_is_not_in_dist(ha_dist):
    assert "method: pgbackrest" not in ha_dist.text()


def test_a_cluster_is_never_restored_in_place():
    status, out, err = run("--in-place", "--latest", values=HA)
    assert status == 2 and out == ""
    (line,) = err.splitlines()
    assert line.startswith("error: --in-place: postgres.replicas is 3, and a Patroni cluster is restored as a new cluster")


@pytest.mark.parametrize("args, message", [
    ([], "error: no restore target"),
    (["--time", "2026-01-01T00:00:00"], "has no time zone"),
    (["--label", "latest"], "is not a pgBackRest backup label"),
])
def test_bad_input_for_a_cluster_is_one_line_and_prints_nothing(args, message):
    status, out, err = run(*args, values=HA)
    assert status == 2 and out == ""
    (line,) = err.splitlines()
    assert message in line


@pytest.mark.parametrize("version", ["1.27.0", "1.35.0"])
def test_a_cluster_restore_is_strictly_schema_valid(version):
    for (kind, name), doc in printed("--time", "2026-12-05T14:02:59+00:00", values=HA).items():
        kubernetes_validate.validate(doc, version, strict=True)


def test_a_cluster_restore_holds_no_secret_material(tmp_path):
    written, _ = generate(load_values(HA), tmp_path / "secrets")
    secrets = [d for path in written if path.suffix == ".yaml" for d in yaml.safe_load_all(path.read_text()) if d]
    material = [v for d in secrets for v in (d.get("stringData") or d.get("data") or {}).values() if len(v) >= 8]
    assert material
    text = run("--latest", values=HA)[1]
    assert "kind: Secret\n" not in text
    assert not [v for v in material if v in text]
