"""Every alert's runbook_url lands on a heading of the runbook page
(contract.RUNBOOK_PAGE), whichever page that is."""

from __future__ import annotations

import pytest
from mdpages import anchors, slug

from conftest import TOP
from pgbundle import contract
from pgbundle.monitoring.alerts import AlertScope, alerts, rule_groups
from pgbundle.values.load import parse_values

SCOPES = [
    AlertScope(namespace="ns", replicas=1, backups_volume=True),
    AlertScope(namespace="ns", replicas=3, backups_volume=True, synchronous_mode=True, wal_archiving=True,
               pitr_backups=((contract.PITR_FULL_CRONJOB, 7 * 86400), (contract.PITR_DIFF_CRONJOB, 86400)),
               pitr_drill_interval_seconds=7 * 86400),
]


def every_alert_url() -> dict[str, str]:
    base = parse_values({}).postgres.metrics.prometheus_rule.runbook_base_url
    return {rule["alert"]: rule["annotations"]["runbook_url"]
            for scope in SCOPES for rule in rule_groups(scope, base)[0]["rules"]}


def test_the_default_runbook_base_is_the_runbook_page():
    assert parse_values({}).postgres.metrics.prometheus_rule.runbook_base_url == contract.RUNBOOK_PAGE


def test_every_alert_url_points_at_a_heading_of_the_runbook_page():
    urls = every_alert_url()
    assert set(urls) == {a.name for scope in SCOPES for a in alerts(scope)}
    assert len(urls) >= 17
    headings = anchors((TOP / contract.RUNBOOK_PAGE).read_text())
    for name, url in urls.items():
        page, _, anchor = url.partition("#")
        assert page == contract.RUNBOOK_PAGE, name
        assert anchor in headings, f"{contract.RUNBOOK_PAGE} has no heading for {name} (#{anchor})"


@pytest.mark.parametrize(("heading", "anchor"), [
    ("PostgresDown", "postgresdown"),
    ("Runbook: restore to a point in time", "runbook-restore-to-a-point-in-time"),
    ("From `replicas: 1`", "from-replicas-1"),
    ("Major-version upgrades", "major-version-upgrades"),
    ("What to expect (RPO, RTO)", "what-to-expect-rpo-rto"),
    ("Point-in-time recovery (pgBackRest)", "point-in-time-recovery-pgbackrest"),
])
def test_anchors_follow_githubs_rules(heading, anchor):
    assert slug(heading) == anchor


def test_a_repeated_heading_gets_a_numbered_anchor_and_fenced_lines_are_no_headings():
    page = "## Runbook\n\n```sh\n# not a heading\n```\n\n### Runbook\n"
    assert anchors(page) == {"runbook", "runbook-1"}
