"""Median wall time of `cdk8s synth` for values.yaml next to a bare one-object
cdk8s app, interleaved in one run so both see the same machine load.

Target (issue 2): ratio <= 1.5."""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent
CDK8S = TOP / "node_modules" / ".bin" / "cdk8s"


def timed_synth(app: str | None, outdir: Path) -> float:
    command = [str(CDK8S), "synth", "--output", str(outdir)]
    if app:
        command += ["--app", app]
    start = time.perf_counter()
    subprocess.run(command, cwd=TOP, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    rounds = parser.parse_args().rounds
    ours: list[float] = []
    bare: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        bare_app = f"{sys.executable} {TOP / 'bench' / 'bare_app.py'}"
        timed_synth(None, Path(tmp) / "warm")  # first run pays for cold caches
        for _ in range(rounds):
            ours.append(timed_synth(None, Path(tmp) / "ours"))
            bare.append(timed_synth(bare_app, Path(tmp) / "bare"))
    ours_median, bare_median = statistics.median(ours), statistics.median(bare)
    print(f"cdk8s synth, median of {rounds} interleaved rounds")
    print(f"  values.yaml      {ours_median:.3f} s")
    print(f"  bare one-object  {bare_median:.3f} s")
    print(f"  ratio            {ours_median / bare_median:.2f} (target <= 1.5)")


if __name__ == "__main__":
    main()
