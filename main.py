#!/usr/bin/env python3
"""Load the values, compose the charts, write the manifests.

`cdk8s synth` runs this with no arguments. Every argument, and every
sub-command (`local`, `secrets`, `restore-manifest`), goes to the one command
line tree in workstation/cli.py.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

TOP = Path(__file__).resolve().parent
# jsii starts `node` from PATH when cdk8s is imported: the Node pinned in
# package.json comes first, whatever the caller's PATH (an older one prints an
# end-of-life banner on every run, or fails).
os.environ["PATH"] = os.pathsep.join([str(TOP / "node_modules" / ".bin"), os.environ.get("PATH", "")])

from chart.output import replace_folder  # noqa: E402
from pgbundle import contract  # noqa: E402
from pgbundle.values.models import ChartValues  # noqa: E402
from workstation import cli  # noqa: E402


def synthesize(values: ChartValues, outdir: Path) -> None:
    """Write every chart's YAML into `outdir`, replacing it only on success."""
    # Imported here: cdk8s starts Node (about 2 s), which a command refusing its
    # values, or one that synthesizes nothing, never needs.
    import cdk8s

    from chart.compose import compose

    def write(staging: Path) -> None:
        app = cdk8s.App(outdir=str(staging), yaml_output_type=cdk8s.YamlOutputType.FILE_PER_CHART)
        compose(app, values)
        app.synth()

    replace_folder(outdir, write, ours=contract.CHART_FILES)


def main(argv: list[str]) -> int:
    return cli.main(argv, top=TOP, synthesize=synthesize)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
