#!/usr/bin/env python3
"""Load the values, compose the charts, write the manifests.

`cdk8s synth` runs this with no arguments. Sub-commands (`local`, ...) are
thin entry points to modules under constructs/.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

TOP = Path(__file__).resolve().parent
# jsii starts `node` from PATH when cdk8s is imported: the Node pinned in
# package.json comes first, whatever the caller's PATH (an older one prints an
# end-of-life banner on every run, or fails).
os.environ["PATH"] = os.pathsep.join([str(TOP / "node_modules" / ".bin"), os.environ.get("PATH", "")])

import cdk8s  # noqa: E402

from constructs import certificate, layout
from constructs.backup import Backup, BackupProps
from constructs.database import Database, DatabaseProps
from constructs.gitops import apply_sync_waves
from constructs.metrics import Metrics, MetricsProps
from constructs.namespace import Namespace, NamespaceProps
from constructs.network import NetworkIsolation, NetworkIsolationProps
from constructs.output import OutputError, replace_folder
from constructs.policy import apply_policy_annotations
from constructs.values import ChartValues, ValuesError, load_values, values_warnings


def compose(app: cdk8s.App, values: ChartValues) -> None:
    """Add one chart per concern; kubectl applies dist/ in file-name order, so
    the Namespace file sorts first."""
    pg = values.postgres
    namespace = values.global_.namespace
    if values.global_.create_namespace:
        Namespace(cdk8s.Chart(app, layout.NAMESPACE_CHART, disable_resource_name_hashes=True), "namespace",
                  props=NamespaceProps(name=namespace))
    chart = cdk8s.Chart(app, layout.DATABASE_CHART, disable_resource_name_hashes=True)
    database = Database(chart, "database", props=DatabaseProps(
        namespace=namespace, image_pull_policy=values.global_.image_pull_policy, postgres=pg))
    if pg.tls.enabled and pg.tls.cert_manager.enabled:
        certificate.add_server_certificate(chart, namespace, database.labels, pg)
    if pg.network_policy.enabled:
        NetworkIsolation(chart, "network", props=NetworkIsolationProps(
            namespace=namespace, labels=database.labels, database_selector=database.selector,
            replicas=pg.replicas, policy=pg.network_policy,
            scrapers=pg.metrics.scrapers if pg.metrics.enabled else []))
    if pg.backup.enabled:
        # Applied after the database: the job needs its Service, PVC and scripts.
        Backup(cdk8s.Chart(app, layout.BACKUP_CHART, disable_resource_name_hashes=True), "backup",
               props=BackupProps(namespace=namespace, image_pull_policy=values.global_.image_pull_policy, postgres=pg))
    if pg.metrics.enabled:
        # Its own file: the ServiceMonitor and PrometheusRule need the Prometheus
        # Operator's CRDs, so an operator can see and skip them at a glance.
        Metrics(cdk8s.Chart(app, layout.METRICS_CHART, disable_resource_name_hashes=True), "metrics",
                props=MetricsProps(namespace=namespace, database_selector=database.selector, postgres=pg))
    # Cross-cutting annotations, last, so they cover every object of every chart.
    apply_sync_waves(app)
    apply_policy_annotations(app)


def synthesize(values: ChartValues, outdir: Path) -> None:
    """Write every chart's YAML into `outdir`, replacing it only on success."""

    def write(staging: Path) -> None:
        app = cdk8s.App(outdir=str(staging), yaml_output_type=cdk8s.YamlOutputType.FILE_PER_CHART)
        compose(app, values)
        app.synth()

    replace_folder(outdir, write, ours=layout.CHART_FILES)


def _values_path(arg: str | None) -> Path:
    return Path(arg or os.environ.get("VALUES") or TOP / "values.yaml")


def main(argv: list[str]) -> int:
    if argv[:1] == ["restore-manifest"]:
        from constructs import restore

        return restore.cli(argv[1:], values_path=_values_path)
    if argv[:2] in (["local", "backup"], ["local", "restore"]):
        from constructs import backup_local

        return backup_local.cli(argv[1:], values_path=_values_path)
    if argv and argv[0] == "local":
        from constructs import localpod  # sub-commands load their modules (and cryptography) only when used

        return localpod.cli(argv[1:], synthesize=synthesize, values_path=_values_path)
    if argv and argv[0] == "secrets":
        from constructs import secretgen

        return secretgen.cli(argv[1:], values_path=_values_path, default_out=TOP / "secrets", forbidden=(TOP / "dist",))
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="sub-commands: local up|down|status|backup|restore (the database and its backups without a "
        "cluster), secrets (generate the Secrets), restore-manifest --backup NAME (print the restore Job); "
        "each has --help")
    parser.add_argument("--values", help="values file (default: $VALUES, else values.yaml)")
    parser.add_argument("--out", help="output folder (default: $CDK8S_OUTDIR, else dist/)")
    parser.add_argument("--check", action="store_true", help="validate the values and write nothing")
    args = parser.parse_args(argv)
    try:
        values = load_values(_values_path(args.values))
    except ValuesError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for warning in values_warnings(values):
        print(f"warning: {warning}", file=sys.stderr)
    if not args.check:
        try:
            synthesize(values, Path(args.out or os.environ.get("CDK8S_OUTDIR") or TOP / "dist"))
        except OutputError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
