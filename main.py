#!/usr/bin/env python3
"""Load the values, compose the charts, write the manifests.

`cdk8s synth` runs this with no arguments. Every argument, and every
sub-command (`local`, `secrets`, `restore-manifest`), goes to the one command
line tree in pgbundle/cli.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cdk8s

from pgbundle import cli
from pgbundle.app import compose
from pgbundle.synth.output import replace_folder
from pgbundle.values.models import ChartValues

TOP = Path(__file__).resolve().parent


def synthesize(values: ChartValues, outdir: Path) -> None:
    """Write every chart's YAML into `outdir`, replacing it only on success."""

    def write(staging: Path) -> None:
        app = cdk8s.App(outdir=str(staging), yaml_output_type=cdk8s.YamlOutputType.FILE_PER_CHART)
        compose(app, values)
        app.synth()

    replace_folder(outdir, write)


def main(argv: list[str]) -> int:
    return cli.main(argv, top=TOP, synthesize=synthesize)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
