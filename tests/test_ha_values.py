"""postgres.replicas >= 2 and the postgres.ha block: validation, errors and warnings."""

from __future__ import annotations

import pytest

from pgbundle.values.load import ValuesError, parse_values, values_warnings

IMAGE = {"repository": "ghcr.io/example/postgres-patroni", "tag": "v1.0.0"}


def ha(replicas: int = 3, **settings) -> dict:
    return {"postgres": {"replicas": replicas, "ha": {"image": IMAGE, **settings}}}


def test_three_replicas_with_an_image_are_valid_and_quiet():
    values = parse_values(ha())
    assert values.postgres.replicas == 3
    assert values.postgres.ha.image.reference == "ghcr.io/example/postgres-patroni:v1.0.0"
    assert values_warnings(values) == []


def test_defaults():
    defaults = parse_values({}).postgres.ha
    assert defaults.image is None
    assert (defaults.ttl, defaults.loop_wait, defaults.retry_timeout) == (20, 4, 5)
    assert (defaults.synchronous_mode, defaults.synchronous_mode_strict) == (True, False)
    assert (defaults.primary_start_timeout, defaults.maximum_lag_on_failover) == (0, 1048576)
    assert defaults.anti_affinity == "preferred"


def test_replicas_without_an_image_say_how_to_build_one():
    with pytest.raises(ValuesError, match=r"postgres\.ha\.image: required with replicas: 3: .*image/Dockerfile"):
        parse_values({"postgres": {"replicas": 3}})


@pytest.mark.parametrize(("image", "error"), [
    ({"tag": "latest"}, r"postgres\.ha\.image\.tag: 'latest' is not reproducible"),
    ({"tag": "v1.0.0\n"}, r"postgres\.ha\.image\.tag: 'v1\.0\.0\\n' is not an image tag"),
    ({"repository": "Example/Postgres"}, r"postgres\.ha\.image\.repository: 'Example/Postgres' is not an image repository"),
    ({"digest": "sha256:" + "a" * 64 + "\n"}, r"postgres\.ha\.image\.digest: .* must look like sha256:<64 hex digits>"),
])
def test_the_ha_image_is_checked_like_the_database_image(image, error):
    with pytest.raises(ValuesError, match=error):
        parse_values({"postgres": {"replicas": 3, "ha": {"image": {**IMAGE, **image}}}})


def test_two_replicas_warn_about_what_they_cannot_do():
    (warning,) = values_warnings(parse_values(ha(replicas=2)))
    assert "postgres.replicas is 2" in warning and "use 3" in warning


@pytest.mark.parametrize("settings, message", [
    ({"ttl": 10}, r"postgres\.ha\.ttl: Input should be greater than or equal to 20"),
    ({"loopWait": 10, "retryTimeout": 10}, r"postgres\.ha\.loopWait: 10 \+ 2 x retryTimeout 10 exceeds ttl 20"),
    ({"loopWait": 0}, r"postgres\.ha\.loopWait: Input should be greater than or equal to 1"),
    ({"primaryStartTimeout": -1}, r"postgres\.ha\.primaryStartTimeout"),
    ({"antiAffinity": "sometimes"}, r"postgres\.ha\.antiAffinity"),
    ({"apiServerCidrs": ["10.0.0.300/32"]}, r"postgres\.ha\.apiServerCidrs\[0\]"),
    ({"image": {"repository": "x", "tag": "latest"}}, r"postgres\.ha\.image\.tag: 'latest'"),
    ({"quorum": True}, r"postgres\.ha\.quorum: unknown key"),
])
def test_bad_ha_settings_name_the_field(settings, message):
    with pytest.raises(ValuesError, match=message):
        parse_values(ha(**settings))


def test_ha_needs_tls():
    values = ha()
    values["postgres"]["tls"] = {"enabled": False}
    with pytest.raises(ValuesError, match=r"postgres\.tls\.enabled: false cannot run replicas: 3"):
        parse_values(values)


def test_network_policy_needs_the_api_server_addresses():
    values = ha()
    values["postgres"]["networkPolicy"] = {"enabled": True}
    with pytest.raises(ValuesError, match=r"postgres\.ha\.apiServerCidrs: required"):
        parse_values(values)
    values["postgres"]["ha"]["apiServerCidrs"] = ["10.96.0.1/32"]
    assert parse_values(values).postgres.ha.api_server_cidrs == ["10.96.0.1/32"]



def test_the_ha_image_may_be_pinned_by_digest_alone():
    digest = "sha256:" + "c" * 64
    image = {"repository": "ghcr.io/example/postgres-patroni", "digest": digest}
    values = parse_values({"postgres": {"replicas": 3, "ha": {"image": image}}})
    assert values.postgres.ha.image.reference == f"ghcr.io/example/postgres-patroni@{digest}"


def test_an_image_with_neither_tag_nor_digest_is_refused():
    with pytest.raises(ValuesError, match=r"postgres\.ha\.image\.tag: required unless digest is set"):
        parse_values({"postgres": {"replicas": 3, "ha": {"image": {"repository": "ghcr.io/example/pg"}}}})


@pytest.mark.parametrize("settings, message", [
    ({"ttl": 99999999999999999999}, r"postgres\.ha\.ttl: Input should be less than or equal to 3600"),
    ({"ttl": 3601}, r"postgres\.ha\.ttl: Input should be less than or equal to 3600"),
    ({"ttl": True}, r"postgres\.ha\.ttl: Input should be a valid integer"),
    ({"ttl": "30"}, r"postgres\.ha\.ttl: Input should be a valid integer"),
    ({"retryTimeout": 2}, r"postgres\.ha\.retryTimeout: Input should be greater than or equal to 3"),
    ({"primaryStartTimeout": 3601}, r"postgres\.ha\.primaryStartTimeout: Input should be less than or equal to 3600"),
    ({"maximumLagOnFailover": 2**63}, r"postgres\.ha\.maximumLagOnFailover: Input should be less than or equal to 9223372036854775807"),
    ({"apiServerPort": True}, r"postgres\.ha\.apiServerPort: Input should be a valid integer"),
    ({"synchronousMode": False, "synchronousModeStrict": True},
     r"postgres\.ha\.synchronousModeStrict: true needs synchronousMode: true"),
    ({"synchronousMode": 1}, r"postgres\.ha\.synchronousMode: Input should be a valid boolean"),
])
def test_ha_counts_and_durations_are_bounded_by_what_patroni_takes(settings, message):
    with pytest.raises(ValuesError, match=message):
        parse_values(ha(**settings))


def test_the_application_role_cannot_be_the_replication_role():
    with pytest.raises(ValuesError, match=r"postgres\.username: 'replicator' is also Patroni's replication role: "
                                          r"every role needs its own name"):
        parse_values({"postgres": {"replicas": 2, "username": "replicator", "ha": {"image": IMAGE}}})
