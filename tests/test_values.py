"""Values validation: each rule has one test, and the message names the field and the fix."""

from __future__ import annotations

import re

from pathlib import Path

import pytest

from pgbundle.values.load import ValuesError, load_values, parse_values, values_warnings


def pg(**postgres) -> dict:
    return {"postgres": postgres}


def test_defaults_follow_the_old_chart():
    values = parse_values({})
    p = values.postgres
    assert values.global_.namespace == "api-forge-prod"
    assert (p.replicas, p.database, p.username, p.owner_username, p.read_only_username) == (
        1, "appdb", "appuser", "appowner", "backupuser")
    assert (p.persistence.data.size, p.persistence.backups.size) == ("20Gi", "40Gi")
    assert (p.resources.requests.cpu, p.resources.requests.memory) == ("500m", "1Gi")
    assert (p.resources.limits.cpu, p.resources.limits.memory) == ("2000m", "4Gi")
    assert (p.tls.existing_secret, p.ca.existing_secret, p.secrets.existing_secret) == (
        "postgres-tls", "postgres-ca", "postgres-secrets")
    assert p.ca.verify_clients is False
    assert p.network_policy.enabled is False
    assert p.image.reference == "postgres:17.6-bookworm"


def test_role_defaults_are_api_forges():
    p = parse_values({}).postgres
    assert (p.migrator_username, p.temporal.username, p.temporal.owner_username, p.temporal.previous_username) == (
        "appmigrator", "temporaluser", "temporalowner", None)


def test_migrator_name_must_differ_from_the_others():
    with pytest.raises(ValuesError, match=r"postgres\.migratorUsername: 'appowner' is also ownerUsername: every role"):
        parse_values(pg(migratorUsername="appowner"))


def test_migrator_cannot_take_the_exporters_role():
    with pytest.raises(ValuesError, match=r"postgres\.migratorUsername: 'monitoring' is the metrics exporter's role"):
        parse_values(pg(migratorUsername="monitoring"))


def test_one_temporal_role_may_own_and_log_in():
    p = parse_values(pg(temporal={"enabled": True, "username": "temporal", "ownerUsername": "temporal"})).postgres
    assert p.temporal.username == p.temporal.owner_username == "temporal"


def test_temporal_roles_must_differ_from_the_application_roles():
    with pytest.raises(ValuesError, match=r"postgres\.temporal\.ownerUsername: 'appowner' is also ownerUsername"):
        parse_values(pg(temporal={"enabled": True, "ownerUsername": "appowner"}))


def test_previous_temporal_owner_must_be_another_role():
    with pytest.raises(ValuesError, match=r"postgres\.temporal\.previousUsername: 'temporaluser' is a current Temporal role"):
        parse_values(pg(temporal={"enabled": True, "previousUsername": "temporaluser"}))


def test_shipped_values_file_equals_the_defaults():
    assert load_values(Path(__file__).parent.parent / "values.yaml") == parse_values({})


def test_unknown_key_is_an_error():
    with pytest.raises(ValuesError, match=r"postgres\.replica: unknown key"):
        parse_values(pg(replica=2))


def test_retired_chart_key_explains_why():
    with pytest.raises(ValuesError, match=r"global\.namePrefix: object names are fixed"):
        parse_values({"global": {"namePrefix": "api-forge"}})


def test_zero_replicas():
    with pytest.raises(ValuesError, match=r"postgres\.replicas: .*greater than or equal to 1.*received 0"):
        parse_values(pg(replicas=0))


def test_more_than_one_replica_needs_an_image_with_patroni():
    with pytest.raises(ValuesError, match=r"postgres\.ha\.image: required with replicas: 2"):
        parse_values(pg(replicas=2))


@pytest.mark.parametrize("size", ["20GB", "-1Gi", "lots"])
def test_size_must_be_a_kubernetes_quantity(size):
    with pytest.raises(ValuesError, match=rf"postgres\.persistence\.data\.size: '{size}' is not a Kubernetes quantity.*for example 20Gi"):
        parse_values(pg(persistence={"data": {"size": size}}))


def test_size_must_be_positive():
    with pytest.raises(ValuesError, match=r"postgres\.persistence\.backups\.size: '0Gi' must be larger than zero"):
        parse_values(pg(persistence={"backups": {"size": "0Gi"}}))


def test_data_volume_cannot_be_switched_off():
    with pytest.raises(ValuesError, match=r"postgres\.persistence\.data\.enabled: false would keep the database on an emptyDir"):
        parse_values(pg(persistence={"data": {"enabled": False}}))


def test_cpu_request_above_limit():
    with pytest.raises(ValuesError, match=r"postgres\.resources\.requests\.cpu: 3 is above limits\.cpu 2000m"):
        parse_values(pg(resources={"requests": {"cpu": "3", "memory": "1Gi"}}))


def test_memory_request_above_limit():
    with pytest.raises(ValuesError, match=r"postgres\.resources\.requests\.memory: 8Gi is above limits\.memory 4Gi"):
        parse_values(pg(resources={"requests": {"cpu": "1", "memory": "8Gi"}}))


def test_pdb_min_available_above_replicas():
    with pytest.raises(ValuesError, match=r"postgres\.podDisruptionBudget\.minAvailable: 2 is above replicas \(1\)"):
        parse_values(pg(podDisruptionBudget={"minAvailable": 2}))


def test_the_defaults_warn_about_nothing():
    # A warning on every run trains users to ignore warnings.
    assert values_warnings(parse_values({})) == []


def test_tls_off_is_a_warning():
    assert any("unencrypted" in w for w in values_warnings(parse_values(pg(tls={"enabled": False}))))
    assert not any("unencrypted" in w for w in values_warnings(parse_values({})))


@pytest.mark.parametrize("name", ["API_Forge", "-prod", "a" * 64])
def test_namespace_must_be_a_dns_label(name):
    with pytest.raises(ValuesError, match=r"global\.namespace: .* is not a DNS-1123 label"):
        parse_values({"global": {"namespace": name}})


def test_secret_name_must_be_a_dns_label():
    with pytest.raises(ValuesError, match=r"postgres\.secrets\.existingSecret: 'Postgres_Secrets' is not a DNS-1123 label"):
        parse_values(pg(secrets={"existingSecret": "Postgres_Secrets"}))


def test_role_name_must_be_a_plain_identifier():
    with pytest.raises(ValuesError, match=r"postgres\.username: 'app-user' is not a plain PostgreSQL name"):
        parse_values(pg(username="app-user"))


def test_role_name_must_not_be_reserved():
    with pytest.raises(ValuesError, match=r"postgres\.readOnlyUsername: 'pg_reader' is reserved"):
        parse_values(pg(readOnlyUsername="pg_reader"))


def test_role_names_must_differ():
    with pytest.raises(ValuesError, match=r"postgres\.ownerUsername: 'appowner' is also username"):
        parse_values(pg(username="appowner"))


def test_latest_tag_is_refused():
    with pytest.raises(ValuesError, match=r"postgres\.image\.tag: 'latest' is not reproducible"):
        parse_values(pg(image={"tag": "latest"}))


def test_digest_format():
    with pytest.raises(ValuesError, match=r"postgres\.image\.digest: 'sha256:abc' must look like sha256:<64 hex digits>"):
        parse_values(pg(image={"digest": "sha256:abc"}))


def test_digest_wins_over_tag():
    digest = "sha256:" + "a" * 64
    assert parse_values(pg(image={"digest": digest})).postgres.image.reference == f"postgres@{digest}"


def test_postgres_memory_setting_uses_postgres_units():
    with pytest.raises(ValuesError, match=r"postgres\.config\.sharedBuffers: '1Gi' is not a PostgreSQL memory setting"):
        parse_values(pg(config={"sharedBuffers": "1Gi"}))


def test_parameter_names():
    with pytest.raises(ValuesError, match=r"postgres\.config\.parameters: 'Work-Mem' is not a PostgreSQL parameter name"):
        parse_values(pg(config={"parameters": {"Work-Mem": "4MB"}}))


def test_network_policy_opens_only_the_database_port():
    rule = {"from": [{"podSelector": {}}], "ports": [{"port": 80}]}
    with pytest.raises(ValuesError, match=r"postgres\.networkPolicy\.ingress\[0\]\.ports: 80 is not the database port"):
        parse_values(pg(networkPolicy={"ingress": [rule]}))


def test_client_certificates_need_tls():
    with pytest.raises(ValuesError, match=r"postgres\.ca\.verifyClients: true needs tls\.enabled: true"):
        parse_values(pg(tls={"enabled": False}, ca={"verifyClients": True}))


def test_every_problem_is_listed_at_once():
    with pytest.raises(ValuesError) as raised:
        parse_values(pg(replicas=0, database="App DB"))
    assert "postgres.replicas" in str(raised.value) and "postgres.database" in str(raised.value)


def test_missing_values_file(tmp_path):
    with pytest.raises(ValuesError, match=r"values file .*nope\.yaml does not exist: pass --values FILE or set VALUES"):
        load_values(tmp_path / "nope.yaml")


def test_malformed_yaml(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("postgres:\n  replicas: [1\n")
    with pytest.raises(ValuesError, match=r"bad\.yaml is not valid YAML"):
        load_values(bad)


def test_top_level_must_be_a_mapping(tmp_path):
    bad = tmp_path / "list.yaml"
    bad.write_text("- postgres\n")
    with pytest.raises(ValuesError, match=r"the top level must be a mapping"):
        load_values(bad)


# --- the values file is merged into the defaults, as Helm does ---------------------


def test_a_partial_override_keeps_the_other_defaults():
    values = parse_values(pg(resources={"limits": {"memory": "8Gi"}}))
    assert (values.postgres.resources.limits.cpu, values.postgres.resources.limits.memory) == ("2000m", "8Gi")
    assert values.postgres.resources.requests.memory == "1Gi"
    exporter = parse_values(pg(metrics={"resources": {"requests": {"cpu": "20m"}}})).postgres.metrics.resources
    assert (exporter.requests.cpu, exporter.requests.memory, exporter.limits.memory) == ("20m", "32Mi", "128Mi")


def test_mappings_merge_at_any_depth_and_lists_replace():
    values = parse_values(pg(allowedCidrs=["10.0.0.0/8"], backup={"retention": {"days": 30}},
                             networkPolicy={"dns": {"podSelector": {"matchLabels": {"k8s-app": "coredns"}}}}))
    pg_ = values.postgres
    assert pg_.allowed_cidrs == ["10.0.0.0/8"]  # not appended to the default two
    assert (pg_.backup.retention.count, pg_.backup.retention.days) == (7, 30)
    dns = pg_.network_policy.dns
    assert dns.pod_selector.match_labels == {"k8s-app": "coredns"}
    assert dns.namespace_selector.match_labels == {"kubernetes.io/metadata.name": "kube-system"}


def test_null_means_none_where_the_model_takes_none():
    dns = {"namespaceSelector": None, "podSelector": None, "ipBlock": {"cidr": "10.96.0.10/32"}}
    values = parse_values(pg(networkPolicy={"dns": dns}))
    assert values.postgres.network_policy.dns.ip_block.cidr == "10.96.0.10/32"
    assert values.postgres.network_policy.dns.pod_selector is None


def test_null_for_an_unknown_key_is_still_an_unknown_key():
    with pytest.raises(ValuesError, match=r"postgres\.replica: unknown key"):
        parse_values(pg(replica=None))


def test_a_scalar_cannot_replace_a_mapping():
    with pytest.raises(ValuesError, match=r"postgres\.resources: Input should be a valid dictionary"):
        parse_values(pg(resources="big"))


# --- names: every character outside the grammar is refused, a trailing newline too -----

NAME_FIELDS = {
    "global.namespace": "api-forge-prod",
    "postgres.database": "appdb", "postgres.schema": "app", "postgres.username": "appuser",
    "postgres.ownerUsername": "appowner", "postgres.readOnlyUsername": "backupuser",
    "postgres.temporal.username": "temporaluser", "postgres.temporal.ownerUsername": "temporalowner",
    "postgres.migratorUsername": "appmigrator",
    "postgres.tls.existingSecret": "postgres-tls", "postgres.ca.existingSecret": "postgres-ca",
    "postgres.secrets.existingSecret": "postgres-secrets",
    "postgres.backup.clientCertificate.existingSecret": "postgres-backup-tls",
    "postgres.metrics.dashboard.namespace": "monitoring",
    "postgres.persistence.data.storageClass": "fast-ssd", "postgres.persistence.backups.storageClass": "standard",
    "postgres.image.repository": "registry.example.com:5000/team/postgres", "postgres.image.tag": "17.6-bookworm",
    "postgres.metrics.image.repository": "quay.io/prometheuscommunity/postgres-exporter",
    "postgres.metrics.image.tag": "v0.17.1",
}


def at(path: str, value: object) -> dict:
    data: dict = {}
    node = data
    *parents, last = path.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return data


@pytest.mark.parametrize("path", sorted(NAME_FIELDS))
def test_a_good_name_is_accepted(path):
    parse_values(at(path, NAME_FIELDS[path]))


@pytest.mark.parametrize("suffix", ["\n", " ", "\t", "\u00a0", "é", "/x", "$(id)"], ids=repr)
@pytest.mark.parametrize("path", sorted(NAME_FIELDS))
def test_a_name_with_a_character_outside_its_grammar_is_refused(path, suffix):
    bad = NAME_FIELDS[path] + suffix
    if path.endswith("repository") and suffix == "/x":
        bad = NAME_FIELDS[path] + "/X"  # a path component is lower case
    with pytest.raises(ValuesError, match=rf"{re.escape(path)}: {re.escape(repr(bad))} "):
        parse_values(at(path, bad))


@pytest.mark.parametrize(("value", "why"), [
    ("Postgres", "is not an image repository"), ("postgres:17", "is not an image repository"),
    ("-registry.example/pg", "is not an image repository"), ("registry.example//pg", "is not an image repository"),
    ("a" * 256, "is not an image repository"),
])
def test_image_repository_follows_the_oci_grammar(value, why):
    with pytest.raises(ValuesError, match=rf"postgres\.image\.repository: .* {why}"):
        parse_values(pg(image={"repository": value}))


@pytest.mark.parametrize("value", ["-17", ".17", "17:6", "a" * 129, "17.6@sha"])
def test_image_tag_follows_the_oci_grammar(value):
    with pytest.raises(ValuesError, match=r"postgres\.image\.tag: .* is not an image tag"):
        parse_values(pg(image={"tag": value}))


@pytest.mark.parametrize(("labels", "why"), [
    ({"release": "prom\n"}, "is not a Kubernetes label value"),
    ({"release": "a" * 64}, "is not a Kubernetes label value"),
    ({"release": "-prom"}, "is not a Kubernetes label value"),
    ({"team name": "x"}, "is not a Kubernetes label key"),
    ({"Example.com/team": "x"}, "is not a Kubernetes label key"),
    ({"example.com/": "x"}, "is not a Kubernetes label key"),
])
def test_labels_follow_kubernetes_rules(labels, why):
    for owner in ("serviceMonitor", "prometheusRule", "dashboard"):
        with pytest.raises(ValuesError, match=rf"postgres\.metrics\.{owner}\.labels\..*{why}"):
            parse_values(pg(metrics={owner: {"labels": labels}}))


def test_good_labels_are_accepted():
    labels = {"release": "kube-prometheus-stack", "example.com/team": "db", "empty": ""}
    assert parse_values(pg(metrics={"serviceMonitor": {"labels": labels}})).postgres.metrics.service_monitor.labels == labels


@pytest.mark.parametrize(("expression", "message"), [
    ({"key": "app", "operator": "In"}, r"operator In needs at least one value"),
    ({"key": "app", "operator": "Exists", "values": ["x"]}, r"operator Exists takes no values"),
    ({"key": "app", "operator": "Near", "values": ["x"]}, r"operator: Input should be 'In', 'NotIn', 'Exists' or 'DoesNotExist'"),
    ({"key": "app\n", "operator": "Exists"}, r"is not a Kubernetes label key"),
    ({"key": "app", "operator": "In", "values": ["a b"]}, r"is not a Kubernetes label value"),
])
def test_selector_expressions_follow_the_api_servers_rules(expression, message):
    ingress = [{"from": [{"podSelector": {"matchExpressions": [expression]}}]}]
    with pytest.raises(ValuesError, match=rf"postgres\.networkPolicy\.ingress\[0\]\.from\[0\]\.podSelector\.matchExpressions\[0\].*{message}"):
        parse_values(pg(networkPolicy={"ingress": ingress}))


@pytest.mark.parametrize(("block", "message"), [
    ({"cidr": "10.0.0.0/33"}, r"cidr: '10\.0\.0\.0/33' is not a network"),
    ({"cidr": "10.0.0.0/8\n"}, r"cidr: .* is not a network"),
    ({"cidr": "10.0.0.0/8", "except": ["192.168.0.0/16"]}, r"except: 192\.168\.0\.0/16 is not inside cidr 10\.0\.0\.0/8"),
])
def test_ip_blocks_are_networks(block, message):
    with pytest.raises(ValuesError, match=rf"postgres\.networkPolicy\.ingress\[0\]\.from\[0\]\.ipBlock\.{message}"):
        parse_values(pg(networkPolicy={"ingress": [{"from": [{"ipBlock": block}]}]}))


def test_runbook_url_is_one_printable_line():
    with pytest.raises(ValuesError, match=r"postgres\.metrics\.prometheusRule\.runbookBaseUrl: .* printable ASCII"):
        parse_values(pg(metrics={"prometheusRule": {"runbookBaseUrl": "https://wiki/\nrunbook"}}))


# --- reading the file -----------------------------------------------------------------


def test_every_duplicate_key_is_listed_with_both_lines(tmp_path):
    values = tmp_path / "values.yaml"
    values.write_text("global:\n  namespace: a\npostgres:\n  database: x\n  temporal:\n    enabled: true\n"
                      "    enabled: false\n  database: y\nglobal: {}\n")
    with pytest.raises(ValuesError) as raised:
        load_values(values)
    assert str(raised.value).splitlines()[1:] == [
        "  - postgres.temporal.enabled: the key appears twice, at lines 6 and 7; YAML would keep only the last: remove one",
        "  - postgres.database: the key appears twice, at lines 4 and 8; YAML would keep only the last: remove one",
        "  - global: the key appears twice, at lines 1 and 9; YAML would keep only the last: remove one",
    ]


def test_the_same_key_in_different_mappings_is_fine(tmp_path):
    values = tmp_path / "values.yaml"
    values.write_text("postgres:\n  resources:\n    requests: {cpu: 100m, memory: 1Gi}\n    limits: {cpu: '2', memory: 4Gi}\n")
    assert load_values(values).postgres.resources.requests.cpu == "100m"


def test_a_utf8_byte_order_mark_is_fine(tmp_path):
    values = tmp_path / "values.yaml"
    values.write_bytes(b"\xef\xbb\xbfpostgres:\n  database: bom\n")
    assert load_values(values).postgres.database == "bom"


# --- values that would pass and break the database (issue 19) -----------------------

HA_IMAGE = {"repository": "ghcr.io/example/postgres-patroni", "tag": "v1.0.0"}


@pytest.mark.parametrize(("postgres", "message"), [
    ({"replicas": True}, r"postgres\.replicas: Input should be a valid integer \(received True\)"),
    ({"replicas": "2"}, r"postgres\.replicas: Input should be a valid integer \(received '2'\)"),
    ({"replicas": 1.0}, r"postgres\.replicas: Input should be a valid integer"),
    ({"config": {"maxConnections": True}}, r"postgres\.config\.maxConnections: Input should be a valid integer"),
    ({"backup": {"retention": {"count": True}}}, r"postgres\.backup\.retention\.count: Input should be a valid integer"),
    ({"backup": {"compression": False}}, r"postgres\.backup\.compression: Input should be a valid integer"),
    ({"tls": {"enabled": "yes"}}, r"postgres\.tls\.enabled: Input should be a valid boolean"),
    ({"podDisruptionBudget": {"minAvailable": True}}, r"postgres\.podDisruptionBudget\.minAvailable: Input should be a valid integer"),
    ({"replicas": 100000, "ha": {"image": HA_IMAGE}}, r"postgres\.replicas: 100000 is above 10: .*WAL senders"),
    ({"replicas": 11, "ha": {"image": HA_IMAGE}}, r"postgres\.replicas: 11 is above 10"),
    ({"username": "replicator"}, r"postgres\.username: 'replicator' is also Patroni's replication role"),
    ({"ownerUsername": "rewinder"}, r"postgres\.ownerUsername: 'rewinder' is also Patroni's rewind role"),
    ({"migratorUsername": "replicator", "replicas": 2, "ha": {"image": HA_IMAGE}},
     r"postgres\.migratorUsername: 'replicator' is also Patroni's replication role"),
    ({"readOnlyUsername": "appmigrator"}, r"postgres\.migratorUsername: 'appmigrator' is also readOnlyUsername"),
    ({"temporal": {"enabled": True, "username": "appuser"}}, r"postgres\.temporal\.username: 'appuser' is also username"),
    ({"temporal": {"enabled": True, "previousUsername": "replicator"}},
     r"postgres\.temporal\.previousUsername: 'replicator' is also Patroni's replication role"),
    ({"database": "temporal", "temporal": {"enabled": True}}, r"postgres\.database: 'temporal' is a Temporal database"),
    ({"database": "temporal_visibility", "temporal": {"enabled": True}}, r"postgres\.database: 'temporal_visibility' is a Temporal database"),
    ({"database": "template1"}, r"postgres\.database: 'template1' is a PostgreSQL template database"),
    ({"image": {"tag": "9.6"}}, r"postgres\.image\.tag: '9\.6' is PostgreSQL 9, which the product does not run: use a major from 15 to 18"),
    ({"image": {"tag": "19.0-trixie"}}, r"postgres\.image\.tag: '19\.0-trixie' is PostgreSQL 19"),
    ({"image": {"tag": "bookworm", "digest": "sha256:" + "a" * 64}}, r"postgres\.image\.major: required: the tag 'bookworm' names no PostgreSQL major"),
    ({"image": {"tag": "bookworm", "major": 14}}, r"postgres\.image\.major: 14 is PostgreSQL 14, which the product does not run"),
    ({"image": {"major": 16}}, r"postgres\.image\.major: 16 contradicts tag '17\.6-bookworm'"),
    ({"image": {"tag": "bookworm", "major": True}}, r"postgres\.image\.major: Input should be a valid integer"),
    ({"config": {"parameters": {"random_page_cost": {"a": 1}}}}, r"postgres\.config\.parameters\.random_page_cost: \{'a': 1\} is a dict"),
])
def test_values_that_would_break_the_database_are_refused(postgres, message):
    with pytest.raises(ValuesError, match=message) as raised:
        parse_values(pg(**postgres))
    assert len(str(raised.value).splitlines()) == 2  # one problem, one line


def test_a_list_parameter_value_is_one_line_naming_key_value_and_type():
    with pytest.raises(ValuesError) as raised:
        parse_values(pg(config={"parameters": {"random_page_cost": [1]}}))
    assert str(raised.value).splitlines()[1:] == [
        "  - postgres.config.parameters.random_page_cost: [1] is a list: a setting takes a string, a number or a boolean"]


def test_a_digest_with_a_tag_naming_no_major_takes_the_stated_major():
    digest = "sha256:" + "b" * 64
    image = parse_values(pg(image={"tag": "bookworm", "digest": digest, "major": 16})).postgres.image
    assert (image.reference, image.major_version) == (f"postgres@{digest}", "16")
