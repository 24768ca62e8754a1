"""`python main.py upgrade-manifest --to-image IMAGE`: the Job that upgrades the
database's data to the new image's PostgreSQL major in place, as YAML.

Printed, never written to dist/: a GitOps sync must not run it. The values are
the ones deployed now: their image is the one the data was written by, so this is
where the values know the data's major (the synth-time check of the upgrade).
docs/upgrading.md is the procedure around it.
"""

from __future__ import annotations

import cdk8s

from chart.compose import upgrade_job_props
from constructs.upgrade_job import UpgradeJob
from pgbundle.values.fields import SUPPORTED_MAJORS, image_reference, tag_major
from pgbundle.values.models import ChartValues


class UpgradeError(Exception):
    """The upgrade request cannot be turned into a Job; the message says why."""


def _suite(tag: str) -> str | None:
    """The Debian release a tag names (`17.6-bookworm` -> bookworm), or None."""
    _, dash, rest = tag.partition("-")
    return rest if dash else None


def check_request(values: ChartValues, to_image: str) -> tuple[str, int]:
    """The new image's tag and major; refuses anything the Job cannot upgrade to."""
    pg = values.postgres
    try:
        image = image_reference(to_image)
    except ValueError as err:
        raise UpgradeError(f"--to-image: {to_image!r}: {err}") from None
    if image.tag is None:
        raise UpgradeError(f"--to-image: {to_image!r} has no tag: name the new major in the tag, e.g. postgres:18.1-bookworm")
    new_major = tag_major(image.tag)
    old_major = int(pg.image.major_version)
    if new_major not in SUPPORTED_MAJORS:
        raise UpgradeError(f"--to-image: tag {image.tag!r} names no PostgreSQL major the product runs: use "
                           f"{SUPPORTED_MAJORS[0]} to {SUPPORTED_MAJORS[-1]}, e.g. postgres:18.1-bookworm")
    if new_major <= old_major:
        raise UpgradeError(f"--to-image: {to_image!r} is PostgreSQL {new_major}, but postgres.image ({pg.image.tag}) says "
                           f"the data is {old_major}: the target must be a newer major (give the values deployed now)")
    # The old binaries run inside the new image, on its libraries (ICU, OpenSSL, glibc).
    old_suite, new_suite = _suite(pg.image.tag), _suite(image.tag)
    if old_suite != new_suite:
        raise UpgradeError(f"--to-image: tag {image.tag!r} is Debian {new_suite or '(unnamed)'} but postgres.image.tag "
                           f"{pg.image.tag!r} is {old_suite or '(unnamed)'}: the old binaries run inside the new image, "
                           f"so both must be the same Debian release, e.g. {new_major}.x-{old_suite or 'bookworm'}")
    return image.tag, new_major


def upgrade_manifest(values: ChartValues, *, to_image: str) -> str:
    """YAML of the Job upgrading pod 0's data from the values' image to `to_image`
    (in a Patroni cluster the last leader's: docs/upgrading.md's runbook makes it postgres-0)."""
    tag, new_major = check_request(values, to_image)
    app = cdk8s.App()
    chart = cdk8s.Chart(app, "upgrade", disable_resource_name_hashes=True)
    UpgradeJob(chart, "upgrade", props=upgrade_job_props(values, new_image=to_image, new_tag=tag, new_major=new_major))
    text = app.synth_yaml()
    return text if text.endswith("\n") else text + "\n"
