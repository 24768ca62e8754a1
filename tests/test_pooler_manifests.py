"""The pooler's values, its pgbouncer.ini and its objects: off by default, the
connection budget refused with its numbers, TLS and SCRAM on both sides in the
file, and a Deployment that is restricted, spread, probed and rolled on change."""

from __future__ import annotations

import pytest

from conftest import Manifests
from netpol import Pod, allowed, pod_from_template
from chart.gitops import SYNC_WAVE_ANNOTATION
from chart.policy import pod_template
from pgbundle import contract
from pgbundle.pgconf import pgbouncer
from pgbundle.values.load import ValuesError, parse_values
from pss import violations
from variants import synth_variant

NAMESPACE = "api-forge-prod"
ON = {"postgres": {"pooler": {"enabled": True}}}


def pooler_values(**pooler) -> dict:
    return {"postgres": {"pooler": {"enabled": True, **pooler}}}


def ini(values: dict) -> dict[str, str]:
    """The [pgbouncer] section of the pod's pgbouncer.ini, parsed."""
    text = pgbouncer.render_pgbouncer_ini(parse_values(values).postgres, pgbouncer.pod_site(NAMESPACE))
    section = text.split("[pgbouncer]\n", 1)[1]
    return dict(line.split(" = ", 1) for line in section.splitlines() if " = " in line)


def databases(values: dict) -> list[str]:
    text = pgbouncer.render_pgbouncer_ini(parse_values(values).postgres, pgbouncer.pod_site(NAMESPACE))
    block = text.split("[databases]\n", 1)[1].split("\n\n", 1)[0]
    return block.splitlines()


@pytest.fixture(scope="module")
def production(tmp_path_factory) -> Manifests:
    return synth_variant("production", tmp_path_factory.mktemp("production"))


@pytest.fixture(scope="module")
def ha(tmp_path_factory) -> Manifests:
    return synth_variant("ha", tmp_path_factory.mktemp("ha"))


# --- values ----------------------------------------------------------------------------


def test_off_by_default(source_dist):
    assert parse_values({}).postgres.pooler.enabled is False
    assert not [d for d in source_dist.docs if d["metadata"]["name"] == contract.POOLER]


def test_budget_error_names_the_numbers():
    with pytest.raises(ValuesError) as err:
        parse_values(pooler_values(maxDbConnections=70))
    text = str(err.value)
    assert "postgres.pooler.maxDbConnections: 3 pooler pods (replicas 2 + 1 during a rolling update)" in text
    assert "x 1 database(s) x 70 server connections = 210, above the 194 the database admits" in text
    assert "config.maxConnections 200 - 3 superuser_reserved_connections - 0 reserved_connections" in text
    assert "use maxDbConnections 64 or less" in text


def test_budget_counts_temporal_databases_reserved_slots_and_patroni():
    # 64 fits one database; Temporal's two more do not.
    parse_values(pooler_values(maxDbConnections=64))
    with pytest.raises(ValuesError, match=r"x 3 database\(s\) x 64 server connections = 576"):
        parse_values({"postgres": {"pooler": {"enabled": True, "maxDbConnections": 64}, "temporal": {"enabled": True}}})
    with pytest.raises(ValuesError, match=r"- 10 superuser_reserved_connections"):
        parse_values({"postgres": {"pooler": {"enabled": True, "maxDbConnections": 64},
                                   "config": {"parameters": {"superuser_reserved_connections": 10}}}})


def test_budget_is_not_checked_while_the_pooler_is_off():
    assert parse_values({"postgres": {"pooler": {"maxDbConnections": 1000}}}).postgres.pooler.max_db_connections == 1000


def test_pooler_needs_tls():
    with pytest.raises(ValuesError, match=r"postgres\.pooler\.enabled: true needs tls\.enabled: true"):
        parse_values({"postgres": {"pooler": {"enabled": True}, "tls": {"enabled": False}}})


@pytest.mark.parametrize(("pooler", "message"), [
    ({"poolMode": "statement"}, r"poolMode"),
    ({"minPoolSize": 30}, r"minPoolSize: 30 is above defaultPoolSize 20"),
    ({"replicas": 0}, r"replicas"),
    ({"podDisruptionBudget": {"minAvailable": 3}}, r"minAvailable: 3 is above replicas \(2\)"),
    ({"image": {"tag": "latest"}}, r"latest"),
])
def test_bad_pooler_values(pooler, message):
    with pytest.raises(ValuesError, match=message):
        parse_values(pooler_values(**pooler))


def test_no_role_may_take_the_auth_roles_name():
    with pytest.raises(ValuesError, match=r"postgres\.readOnlyUsername: 'pgbouncer_auth' is the pooler's auth role"):
        parse_values({"postgres": {"readOnlyUsername": "pgbouncer_auth"}})


# --- pgbouncer.ini ---------------------------------------------------------------------


def test_ini_authenticates_with_scram_through_the_auth_function():
    settings = ini(ON)
    assert settings["auth_type"] == "hba"
    assert settings["auth_hba_file"] == f"{contract.POOLER_CONFIG_DIR}/{contract.POOLER_HBA_FILE}"
    assert settings["auth_user"] == contract.POOLER_AUTH_ROLE
    assert settings["auth_query"] == f"SELECT usename, passwd FROM {contract.POOLER_AUTH_FUNCTION}($1)"
    assert settings["auth_dbname"] == "appdb"
    assert settings["auth_file"] == f"{contract.POOLER_RUN_DIR}/{contract.POOLER_AUTH_FILE}"


def test_ini_requires_tls_on_both_sides():
    settings = ini(ON)
    assert settings["client_tls_sslmode"] == "require"
    assert settings["server_tls_sslmode"] == "verify-full"
    for side in ("client", "server"):
        assert settings[f"{side}_tls_protocols"] == "tlsv1.2,tlsv1.3"
        # The database's own suites: AEAD only.
        assert all("GCM" in c or "CHACHA20" in c for c in settings[f"{side}_tls_ciphers"].split(":"))
    assert "server_tls_cert_file" not in settings


def test_ini_verifies_clients_and_presents_a_certificate_when_the_database_does():
    settings = ini({"postgres": {"pooler": {"enabled": True}, "ca": {"verifyClients": True}}})
    assert settings["client_tls_sslmode"] == "verify-ca"
    assert settings["server_tls_cert_file"] == settings["client_tls_cert_file"]
    assert settings["server_tls_key_file"] == settings["client_tls_key_file"]


def test_ini_follows_the_pool_values():
    settings = ini(pooler_values(poolMode="session", defaultPoolSize=7, maxDbConnections=9, maxClientConn=321,
                                 maxPreparedStatements=0, queryWaitTimeout=15))
    assert (settings["pool_mode"], settings["default_pool_size"], settings["max_db_connections"],
            settings["max_client_conn"], settings["max_prepared_statements"], settings["query_wait_timeout"]) == (
        "session", "7", "9", "321", "0", "15")


def test_ini_reaches_the_primary_by_a_name_its_certificate_holds():
    assert databases(ON) == [f"appdb = host=postgres.{NAMESPACE}.svc port=5432 dbname=appdb"]
    assert f"postgres.{NAMESPACE}.svc" in contract.server_dns_names(NAMESPACE, 1)
    temporal = databases({"postgres": {"pooler": {"enabled": True, "maxDbConnections": 20}, "temporal": {"enabled": True}}})
    assert [line.split(" ")[0] for line in temporal] == ["appdb", "temporal", "temporal_visibility"]


# --- objects ---------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["production", "ha"])
def test_objects_of_the_examples(request, variant):
    m = request.getfixturevalue(variant)
    deployment = m.get("Deployment", contract.POOLER)
    assert deployment["spec"]["replicas"] == 2
    assert m.get("Service", contract.POOLER)["spec"]["ports"] == [
        {"name": "postgresql", "port": 5432, "targetPort": "postgresql"}]
    assert m.get("PodDisruptionBudget", contract.POOLER)["spec"]["minAvailable"] == 1
    config = m.get("ConfigMap", contract.POOLER)["data"]
    assert "auth_query" in config[contract.POOLER_CONFIG_FILE]
    template = pod_template(deployment)
    assert violations(template) == []
    # PgBouncer, and the exporter beside it (metrics are on in the examples).
    container, exporter = template["spec"]["containers"]
    assert exporter["name"] == contract.POOLER_EXPORTER_CONTAINER
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["image"] == f"ghcr.io/cloudnative-pg/pgbouncer:{contract.POOLER_VERSION}"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["exec"]["command"] == ["bash", f"{contract.POOLER_SCRIPTS_DIR}/pooler-probe.sh"]
    assert template["spec"]["automountServiceAccountToken"] is False


def test_checkov_skips_name_the_poolers_image(production):
    skips = production.get("Deployment", contract.POOLER)["metadata"]["annotations"]
    reasons = {v.split("=", 1)[0]: v.split("=", 1)[1] for k, v in skips.items() if k.startswith("checkov.io/skip")}
    # uid 10002 and no token: only the image pinning applies to the pooler.
    assert set(reasons) == {"CKV_K8S_43", "CKV_K8S_15"}
    for reason in reasons.values():
        assert "postgres.pooler.image.digest" in reason
        assert "database" not in reason and "postgres.image.digest" not in reason


def test_anti_affinity_preferred_or_required(production, ha):
    assert "preferredDuringSchedulingIgnoredDuringExecution" in pod_template(
        production.get("Deployment", contract.POOLER))["spec"]["affinity"]["podAntiAffinity"]
    required = pod_template(ha.get("Deployment", contract.POOLER))["spec"]["affinity"]["podAntiAffinity"]
    assert required["requiredDuringSchedulingIgnoredDuringExecution"][0]["topologyKey"] == "kubernetes.io/hostname"


def test_a_config_change_rolls_the_pods(synth):
    def checksum(values: dict) -> str:
        return pod_template(synth(values).get("Deployment", contract.POOLER))["metadata"]["annotations"]["checksum/config"]

    assert checksum(ON) != checksum(pooler_values(defaultPoolSize=5))
    assert checksum(ON) == checksum(pooler_values(replicas=3))


def test_the_pooler_comes_after_the_database(production):
    def wave(kind: str, name: str) -> int:
        return int(production.get(kind, name)["metadata"]["annotations"][SYNC_WAVE_ANNOTATION])

    assert wave("Deployment", contract.POOLER) > wave("StatefulSet", contract.STATEFULSET)
    assert wave("ConfigMap", contract.POOLER) < wave("Deployment", contract.POOLER)


def test_network_application_to_pooler_to_database(production):
    rules = [d for d in production.docs if d["kind"] == "NetworkPolicy"]
    pooler = pod_from_template(NAMESPACE, pod_template(production.get("Deployment", contract.POOLER)))
    db = pod_from_template(NAMESPACE, pod_template(production.get("StatefulSet", contract.STATEFULSET)))
    app = Pod(NAMESPACE, {"app.kubernetes.io/component": "application"})
    unrelated = Pod(NAMESPACE, {"app.kubernetes.io/name": "something-else"})
    dns = Pod("kube-system", {"k8s-app": "kube-dns"})
    assert allowed(rules, app, pooler, 5432)
    assert not allowed(rules, unrelated, pooler, 5432)
    assert not allowed(rules, app, pooler, 6432)
    assert allowed(rules, pooler, db, 5432)
    assert not allowed(rules, pooler, db, contract.METRICS_PORT)
    assert allowed(rules, pooler, dns, 53, "UDP")
    assert not allowed(rules, pooler, unrelated, 5432)
    assert not allowed(rules, pooler, app, 8080)


# --- secrets and certificates ------------------------------------------------------------


def test_secrets_generate_writes_the_auth_password_and_the_pooler_certificate():
    import base64

    import yaml
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    from workstation import secretgen

    plan = secretgen.plan_all(parse_values(ON))
    passwords = yaml.safe_load(plan.files["postgres-secrets.yaml"])["data"]
    assert contract.POOLER_PASSWORD_KEY in passwords
    tls = yaml.safe_load(plan.files["postgres-pooler-tls.yaml"])
    assert tls["type"] == "kubernetes.io/tls"
    cert = x509.load_pem_x509_certificate(base64.b64decode(tls["data"]["tls.crt"]))
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert names == contract.pooler_dns_names(NAMESPACE)
    assert "postgres-pooler" in names and f"postgres-pooler.{NAMESPACE}.svc" in names
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(usages) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    # Without the pooler, neither.
    off = secretgen.plan_all(parse_values({}))
    assert "postgres-pooler-tls.yaml" not in off.files
    assert contract.POOLER_PASSWORD_KEY not in yaml.safe_load(off.files["postgres-secrets.yaml"])["data"]


def test_cert_manager_issues_the_pooler_certificate(synth):
    m = synth({"postgres": {"pooler": {"enabled": True}, "tls": {"certManager": {
        "enabled": True, "issuerRef": {"name": "internal-ca", "kind": "ClusterIssuer"}}}}})
    spec = m.get("Certificate", "postgres-pooler-tls")["spec"]
    assert spec["secretName"] == "postgres-pooler-tls"
    assert spec["dnsNames"] == contract.pooler_dns_names(NAMESPACE)
    assert set(spec["usages"]) == {"server auth", "client auth", "digital signature"}
    # The CA comes from the TLS Secret's ca.crt, as the database's clients get it.
    volumes = {v["name"]: v for v in pod_template(m.get("Deployment", contract.POOLER))["spec"]["volumes"]}
    assert volumes["ca"]["secret"]["secretName"] == "postgres-tls"


def test_the_database_checks_the_auth_password_only_with_the_pooler(synth):
    def required(values: dict) -> str:
        env = pod_template(synth(values).get("StatefulSet", "postgres"))["spec"]["containers"][0]["env"]
        return {e["name"]: e.get("value") for e in env}["PG_REQUIRED_KEYS"]

    assert contract.POOLER_PASSWORD_KEY in required(ON).split()
    assert contract.POOLER_PASSWORD_KEY not in required({}).split()


# --- metrics: the exporter sidecar ------------------------------------------------------


def test_exporter_sidecar_pinned_restricted_and_reading_the_admin_console_over_the_socket(production):
    template = pod_template(production.get("Deployment", contract.POOLER))
    assert violations(template) == []
    bouncer, exporter = template["spec"]["containers"]
    assert exporter["image"] == f"quay.io/prometheuscommunity/pgbouncer-exporter:{contract.POOLER_EXPORTER_VERSION}"
    assert exporter["securityContext"]["readOnlyRootFilesystem"] is True
    # PgBouncer's uid: the pgpass file pooler.sh writes is that user's, mode 0600.
    assert exporter["securityContext"]["runAsUser"] == contract.POOLER_UID
    assert exporter["ports"] == [{"name": "metrics", "containerPort": 9127, "protocol": "TCP"}]
    env = {e["name"]: e for e in exporter["env"]}
    dsn = dict(part.split("=", 1) for part in env["PGBOUNCER_EXPORTER_CONNECTION_STRING"]["value"].split())
    assert dsn == {"host": contract.POOLER_SOCKET_DIR, "port": "5432", "dbname": "pgbouncer",
                   "user": contract.POOLER_STATS_USER, "sslmode": "disable"}
    # The password: a file pooler.sh writes from the Secret, never a value in the manifest.
    assert set(env) == {"PGBOUNCER_EXPORTER_CONNECTION_STRING", "PGPASSFILE"}
    assert env["PGPASSFILE"]["value"] == f"{contract.POOLER_SOCKET_DIR}/pgpass"
    # The exporter shares the socket's folder only: never the auth file, the Secrets or the keys.
    assert [m["mountPath"] for m in exporter["volumeMounts"]] == [contract.POOLER_SOCKET_DIR]
    assert {"mountPath": contract.POOLER_SOCKET_DIR, "name": "socket"} in bouncer["volumeMounts"]
    volumes = {v["name"]: v for v in template["spec"]["volumes"]}
    assert volumes["socket"]["emptyDir"]["medium"] == "Memory"
    assert [i["key"] for i in volumes["secrets"]["secret"]["items"]] == [
        contract.POOLER_PASSWORD_KEY, contract.POOLER_STATS_PASSWORD_KEY]
    ini_text = production.get("ConfigMap", contract.POOLER)["data"][contract.POOLER_CONFIG_FILE]
    assert f"unix_socket_dir = {contract.POOLER_SOCKET_DIR}" in ini_text
    assert f"stats_users = {contract.POOLER_STATS_USER}" in ini_text


def test_metrics_off_leaves_the_pooler_without_exporter_socket_or_stats_user(synth):
    m = synth({"postgres": {"pooler": {"enabled": True}, "metrics": {"enabled": False}}})
    template = pod_template(m.get("Deployment", contract.POOLER))
    assert [c["name"] for c in template["spec"]["containers"]] == [contract.POOLER_CONTAINER]
    assert "socket" not in {v["name"] for v in template["spec"]["volumes"]}
    config = m.get("ConfigMap", contract.POOLER)["data"]
    assert "unix_socket_dir = \n" in config[contract.POOLER_CONFIG_FILE]
    assert "stats_users" not in config[contract.POOLER_CONFIG_FILE]
    assert contract.POOLER_STATS_USER not in config[contract.POOLER_HBA_FILE]
    assert m.find("Service", contract.POOLER_METRICS_SERVICE) is None


def test_pooler_metrics_service_is_scraped_by_the_service_monitor(synth):
    m = synth({"postgres": {"pooler": {"enabled": True}, "metrics": {"serviceMonitor": {"enabled": True}}}})
    service = m.get("Service", contract.POOLER_METRICS_SERVICE)
    assert service["spec"]["selector"] == m.get("Deployment", contract.POOLER)["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 9127, "targetPort": "metrics"}]
    monitor = m.get("ServiceMonitor", contract.SERVICE_MONITOR)
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert {e["port"] for e in monitor["spec"]["endpoints"]} == {"metrics"}
    # ...and not the pooler's own Service, which would be scraped on 5432.
    assert not monitor["spec"]["selector"]["matchLabels"].items() <= m.get(
        "Service", contract.POOLER)["metadata"]["labels"].items()


def test_network_admits_scrapers_to_the_pooler_exporter_only(production):
    rules = [d for d in production.docs if d["kind"] == "NetworkPolicy"]
    pooler = pod_from_template(NAMESPACE, pod_template(production.get("Deployment", contract.POOLER)))
    prometheus = Pod("monitoring", {"app.kubernetes.io/name": "prometheus"},
                     {"kubernetes.io/metadata.name": "monitoring"})
    app = Pod(NAMESPACE, {"app.kubernetes.io/component": "application"})
    assert allowed(rules, prometheus, pooler, contract.POOLER_METRICS_PORT)
    assert not allowed(rules, app, pooler, contract.POOLER_METRICS_PORT)
    assert not allowed(rules, prometheus, pooler, 5432)


def test_the_stats_password_key_only_with_pooler_and_metrics():
    keys = contract.password_keys
    assert contract.POOLER_STATS_PASSWORD_KEY in keys(temporal=False, metrics=True, pooler=True)
    assert contract.POOLER_STATS_PASSWORD_KEY not in keys(temporal=False, metrics=False, pooler=True)
    assert contract.POOLER_STATS_PASSWORD_KEY not in keys(temporal=False, metrics=True, pooler=False)


def test_the_stats_login_name_is_reserved():
    with pytest.raises(ValuesError, match=r"postgres\.username: 'pgbouncer_stats' is the pooler's metrics login"):
        parse_values({"postgres": {"username": "pgbouncer_stats", "pooler": {"enabled": True}}})


# --- the read-only pooler -----------------------------------------------------------------

HA_IMAGE = {"repository": "ghcr.io/example/api-forge-postgres/postgres-patroni", "tag": "v1.0.0"}


def read_only_values(pooler: dict | None = None, **read_only) -> dict:
    return {"postgres": {"replicas": 3, "ha": {"image": HA_IMAGE},
                         "pooler": {"enabled": True, **(pooler or {}), "readOnly": {"enabled": True, **read_only}}}}


@pytest.fixture(scope="module")
def ha_ro(tmp_path_factory) -> Manifests:
    return synth_variant("ha-pooler-ro", tmp_path_factory.mktemp("ha-pooler-ro"))


def test_read_only_pooler_is_off_by_default_and_needs_replicas(ha):
    assert parse_values({}).postgres.pooler.read_only.enabled is False
    assert ha.find("Deployment", contract.POOLER_RO) is None
    with pytest.raises(ValuesError) as err:
        parse_values({"postgres": {"pooler": {"enabled": True, "readOnly": {"enabled": True}}}})
    assert str(err.value).splitlines()[1:] == [
        "  - postgres.pooler.readOnly.enabled: true needs postgres.replicas 2 or more (it is 1: without standbys "
        "there is no Service postgres-replicas to read from)"]


@pytest.mark.parametrize(("values", "message"), [
    ({"postgres": {"pooler": {"readOnly": {"enabled": True}}}},
     r"postgres\.pooler\.readOnly\.enabled: true needs enabled: true"),
    (read_only_values(replicas=0), r"readOnly\.replicas"),
    (read_only_values({"podDisruptionBudget": {"minAvailable": 2}}, replicas=1),
     r"minAvailable: 2 is above readOnly\.replicas \(1\)"),
    (read_only_values(poolMode="session"), r"readOnly\.poolMode"),
])
def test_bad_read_only_pooler_values(values, message):
    with pytest.raises(ValuesError, match=message):
        parse_values(values)


def test_read_only_budget_error_names_the_numbers():
    # The main pooler fits (3 x 40 = 120); the read-only one's 5 pods may all land on one replica.
    with pytest.raises(ValuesError) as err:
        parse_values(read_only_values({"maxDbConnections": 40}, replicas=4))
    text = str(err.value)
    assert ("postgres.pooler.maxDbConnections: 5 read-only pooler pods (readOnly.replicas 4 + 1 during a rolling "
            "update) x 1 database(s) x 40 server connections = 200, above the 192 each replica admits "
            "(config.maxConnections 200 - 3 superuser_reserved_connections - 0 reserved_connections - "
            "1 backup job - 1 migration job - 1 exporter - 2 Patroni); use maxDbConnections 38 or less, "
            "fewer readOnly.replicas, or raise config.maxConnections") in text
    parse_values(read_only_values({"maxDbConnections": 38}, replicas=4))


def test_read_only_ini_routes_to_the_replicas_with_the_same_settings():
    pg = parse_values(read_only_values()).postgres
    main_ini = pgbouncer.render_pgbouncer_ini(pg, pgbouncer.pod_site(NAMESPACE))
    ro_ini = pgbouncer.render_pgbouncer_ini(pg, pgbouncer.pod_site(NAMESPACE, read_only=True))
    assert f"appdb = host=postgres-replicas.{NAMESPACE}.svc port=5432 dbname=appdb" in ro_ini.splitlines()
    assert ro_ini.replace("postgres-replicas.", "postgres.") == main_ini
    # verify-full against postgres-replicas: the server certificate names it when there are replicas.
    assert f"postgres-replicas.{NAMESPACE}.svc" in contract.server_dns_names(NAMESPACE, 3)
    assert not [n for n in contract.server_dns_names(NAMESPACE, 1) if "replicas" in n]


def test_read_only_objects(ha_ro):
    deployment = ha_ro.get("Deployment", contract.POOLER_RO)
    assert deployment["spec"]["replicas"] == 2
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector["app.kubernetes.io/component"] == contract.POOLER_RO_COMPONENT
    # Disjoint from the main pooler's: neither Deployment adopts the other's pods, nor Service reaches them.
    assert selector != ha_ro.get("Deployment", contract.POOLER)["spec"]["selector"]["matchLabels"]
    assert ha_ro.get("Service", contract.POOLER_RO)["spec"]["selector"] == selector
    assert ha_ro.get("Service", contract.POOLER_RO)["spec"]["ports"] == [
        {"name": "postgresql", "port": 5432, "targetPort": "postgresql"}]
    assert ha_ro.get("PodDisruptionBudget", contract.POOLER_RO)["spec"]["selector"]["matchLabels"] == selector
    ha_ro.get("ServiceAccount", contract.POOLER_RO)
    config = ha_ro.get("ConfigMap", contract.POOLER_RO)["data"][contract.POOLER_CONFIG_FILE]
    assert f"host=postgres-replicas.{NAMESPACE}.svc" in config
    assert f"host=postgres.{NAMESPACE}.svc" in ha_ro.get("ConfigMap", contract.POOLER)["data"][contract.POOLER_CONFIG_FILE]
    template = pod_template(deployment)
    assert violations(template) == []
    assert template["spec"]["serviceAccountName"] == contract.POOLER_RO
    assert {v["configMap"]["name"] for v in template["spec"]["volumes"] if "configMap" in v} == {contract.POOLER_RO}
    assert [c["name"] for c in template["spec"]["containers"]] == [contract.POOLER_CONTAINER,
                                                                   contract.POOLER_EXPORTER_CONTAINER]
    skips = {v.split("=", 1)[0]: v.split("=", 1)[1] for k, v in deployment["metadata"]["annotations"].items()
             if k.startswith("checkov.io/skip")}
    assert set(skips) == {"CKV_K8S_43", "CKV_K8S_15"}
    assert all("postgres.pooler.image.digest" in reason for reason in skips.values())
    assert "lets the read-only pooler restart" in skips["CKV_K8S_15"]
    # Both poolers serve the one certificate, which names both Services.
    assert {v["secret"]["secretName"] for v in template["spec"]["volumes"] if v["name"] == "tls"} == {
        "postgres-pooler-tls"}
    assert f"{contract.POOLER_RO}.{NAMESPACE}.svc" in contract.pooler_dns_names(NAMESPACE, read_only=True)
    assert contract.POOLER_RO not in " ".join(contract.pooler_dns_names(NAMESPACE))


def test_read_only_pooler_network_and_metrics(ha_ro):
    rules = [d for d in ha_ro.docs if d["kind"] == "NetworkPolicy"]
    ro = pod_from_template(NAMESPACE, pod_template(ha_ro.get("Deployment", contract.POOLER_RO)))
    db = pod_from_template(NAMESPACE, pod_template(ha_ro.get("StatefulSet", contract.STATEFULSET)))
    app = Pod(NAMESPACE, {"app.kubernetes.io/component": "application"})
    unrelated = Pod(NAMESPACE, {"app.kubernetes.io/name": "something-else"})
    prometheus = Pod("monitoring", {"app.kubernetes.io/name": "prometheus"},
                     {"kubernetes.io/metadata.name": "monitoring"})
    assert ha_ro.get("NetworkPolicy", contract.POOLER_RO)["spec"]["podSelector"]["matchLabels"][
        "app.kubernetes.io/component"] == contract.POOLER_RO_COMPONENT
    assert allowed(rules, app, ro, 5432)
    assert not allowed(rules, unrelated, ro, 5432)
    assert allowed(rules, ro, db, 5432)
    assert not allowed(rules, ro, db, contract.PATRONI_API_PORT)
    assert not allowed(rules, ro, unrelated, 5432)
    assert allowed(rules, prometheus, ro, contract.POOLER_METRICS_PORT)
    assert not allowed(rules, app, ro, contract.POOLER_METRICS_PORT)
    service = ha_ro.get("Service", contract.POOLER_RO_METRICS_SERVICE)
    assert service["spec"]["selector"] == ha_ro.get("Deployment", contract.POOLER_RO)["spec"]["selector"]["matchLabels"]
    monitor = ha_ro.get("ServiceMonitor", contract.SERVICE_MONITOR)
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()


def test_secrets_generate_names_the_read_only_pooler_in_its_certificate():
    import base64

    import yaml
    from cryptography import x509

    from workstation import secretgen

    plan = secretgen.plan_all(parse_values(read_only_values()))
    tls = yaml.safe_load(plan.files["postgres-pooler-tls.yaml"])
    cert = x509.load_pem_x509_certificate(base64.b64decode(tls["data"]["tls.crt"]))
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert names == contract.pooler_dns_names(NAMESPACE, read_only=True)
    assert f"postgres-pooler-ro.{NAMESPACE}.svc" in names and f"postgres-pooler.{NAMESPACE}.svc" in names
