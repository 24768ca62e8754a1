"""GitOps: Argo CD sync waves order the objects so one sync works, the objects
holding data are never pruned, and the Application syncs dist/ automatically,
ignoring only the fields the API server fills in."""

from __future__ import annotations

import pytest
import yaml

from chart.gitops import KEEP_OPTIONS, SYNC_OPTIONS_ANNOTATION, SYNC_WAVE_ANNOTATION, sync_wave
from conftest import TOP
from pgbundle.values.load import parse_values
from variants import POLICY_VARIANTS, synth_variant

APPLICATION = TOP / "deploy" / "argocd-application.yaml"


def wave(doc: dict) -> int:
    return int(doc["metadata"]["annotations"][SYNC_WAVE_ANNOTATION])


@pytest.mark.parametrize("variant", POLICY_VARIANTS)
def test_every_object_has_a_sync_wave(variant, tmp_path):
    for doc in synth_variant(variant, tmp_path).docs:
        assert SYNC_WAVE_ANNOTATION in (doc["metadata"].get("annotations") or {}), doc["kind"]


def test_waves_put_prerequisites_before_the_database_and_clients_after(tmp_path):
    manifests = synth_variant("production", tmp_path)
    statefulset = wave(manifests.get("StatefulSet", "postgres"))
    namespace = wave(manifests.get("Namespace", "api-forge-prod"))
    for doc in manifests.docs:
        kind = doc["kind"]
        if kind in ("ServiceAccount", "ConfigMap", "PersistentVolumeClaim", "Service", "NetworkPolicy"):
            assert namespace < wave(doc) < statefulset, f"{kind}/{doc['metadata']['name']}"
        if kind in ("CronJob", "Job"):
            assert wave(doc) > statefulset, f"{kind}/{doc['metadata']['name']}"
    # The CronJob's wave is fixed even before the backup issue adds one.
    assert sync_wave("CronJob") > statefulset


def test_an_unplaced_kind_is_an_error():
    with pytest.raises(ValueError, match="no Argo CD sync wave for kind 'Ingress'"):
        sync_wave("Ingress")


def test_objects_holding_data_are_never_pruned(synth):
    manifests = synth()
    for kind, name in (("Namespace", "api-forge-prod"), ("PersistentVolumeClaim", "postgres-backups")):
        assert manifests.get(kind, name)["metadata"]["annotations"][SYNC_OPTIONS_ANNOTATION] == KEEP_OPTIONS
    assert SYNC_OPTIONS_ANNOTATION not in manifests.get("StatefulSet", "postgres")["metadata"]["annotations"]


def test_application_syncs_dist_automatically():
    app = yaml.safe_load(APPLICATION.read_text())
    assert app["apiVersion"] == "argoproj.io/v1alpha1" and app["kind"] == "Application"
    source = app["spec"]["source"]
    assert source["path"] == "dist"
    assert "REPLACE-ME" in source["repoURL"], "the repoURL placeholder must stay visibly a placeholder"
    assert app["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
    assert app["spec"]["destination"]["namespace"] == parse_values({}).global_.namespace


def test_application_ignores_only_api_server_defaults():
    ignored = yaml.safe_load(APPLICATION.read_text())["spec"]["ignoreDifferences"]
    assert [(i["group"], i["kind"]) for i in ignored] == [("apps", "StatefulSet")]
    paths = ignored[0]["jqPathExpressions"]
    assert all(p.startswith(".spec.volumeClaimTemplates[]?.") for p in paths), paths
