"""Benchmark: wall time and peak memory of `python -m stacks plan` per stack and isolation design, warm venv."""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = 5
TARGET_SECONDS = 2.5
TARGET_MB = 400


# The shipped stack files are customer VNet; the managed VNet cannot host AKS (AZURE-FACTS 1).
DESIGN_OVERRIDES = {
    "customerVnet": ("aml-platform:isolationDesign=customerVnet",),
    "managedVnet": ("aml-platform:isolationDesign=managedVnet", "aml-platform:enableAks=false"),
}


def run_once(stack: str, design: str, out: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one plan run in a fresh interpreter."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    overrides = [flag for override in DESIGN_OVERRIDES[design] for flag in ("--config", override)]
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "stacks", "plan", "--stack", stack, "--quiet", "--json", str(out), *overrides],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    elapsed = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the max over all children so far; runs are similar, so this is the peak.
    return elapsed, max(peak_kb, before) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--design", choices=[*DESIGN_OVERRIDES, "all"], default="all")
    parser.add_argument("--runs", type=int, default=RUNS)
    args = parser.parse_args()
    designs = list(DESIGN_OVERRIDES) if args.design == "all" else [args.design]
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"python -m stacks plan, {args.runs} warm runs each, {os.cpu_count()} cores, load average {load}")
    with tempfile.TemporaryDirectory() as scratch:
        for design in designs:
            for stack in ("dev", "prod"):
                out = Path(scratch) / f"plan-{stack}-{design}.json"
                run_once(stack, design, out)  # warm the OS file cache and .pyc files
                times, peaks = zip(*(run_once(stack, design, out) for _ in range(args.runs)))
                median = statistics.median(times)
                verdict = "ok" if median <= TARGET_SECONDS and max(peaks) <= TARGET_MB else "MISSED"
                resources = out.read_text().count('"urn"')
                print(
                    f"{stack:5} {design:12} resources={resources:3}  wall median={median:.2f}s "
                    f"min={min(times):.2f}s max={max(times):.2f}s  peak RSS={max(peaks):.0f} MB  "
                    f"(target <= {TARGET_SECONDS}s, <= {TARGET_MB} MB: {verdict})"
                )


if __name__ == "__main__":
    main()
