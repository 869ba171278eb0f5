"""Benchmark: wall time, CPU time and peak memory of `python -m stacks plan` per stack and isolation design."""

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


def run_once(root: Path, stack: str, overrides: tuple[str, ...], out: Path) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system) and peak RSS (MB) of one plan in a fresh interpreter.

    CPU time is the figure to compare on a shared machine: wall time grows with everyone else's load.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    flags = [flag for override in overrides for flag in ("--config", override)]
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "stacks", "plan", "--stack", stack, "--quiet", "--json", str(out), *flags],
        cwd=root,
        check=True,
        capture_output=True,
    )
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # ru_maxrss of children is the max over all children so far; runs are similar, so this is the peak.
    return elapsed, cpu, max(after.ru_maxrss, before.ru_maxrss) / 1024


def measure(root: Path, label: str, stack: str, overrides: tuple[str, ...], runs: int, scratch: Path) -> None:
    out = scratch / f"plan-{stack}-{label}.json"
    run_once(root, stack, overrides, out)  # warm the OS file cache and .pyc files
    walls, cpus, peaks = zip(*(run_once(root, stack, overrides, out) for _ in range(runs)))
    median = statistics.median(walls)
    verdict = "ok" if median <= TARGET_SECONDS and max(peaks) <= TARGET_MB else "MISSED"
    resources = out.read_text().count('"urn"')
    print(
        f"{stack:5} {label:14} resources={resources:3}  cpu median={statistics.median(cpus):.2f}s  "
        f"wall median={median:.2f}s min={min(walls):.2f}s max={max(walls):.2f}s  peak RSS={max(peaks):.0f} MB  "
        f"(target <= {TARGET_SECONDS}s, <= {TARGET_MB} MB: {verdict})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--design", choices=[*DESIGN_OVERRIDES, "all"], default="all")
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--baseline", metavar="REF", help="also plan the shipped stack files at this git ref")
    args = parser.parse_args()
    designs = list(DESIGN_OVERRIDES) if args.design == "all" else [args.design]
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"python -m stacks plan, {args.runs} warm runs each, {os.cpu_count()} cores, load average {load}")
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        baseline = scratch / "baseline"
        if args.baseline:
            baseline.mkdir()
            archive = subprocess.run(
                ["git", "archive", args.baseline], cwd=ROOT, check=True, capture_output=True
            )
            subprocess.run(["tar", "-x", "-C", str(baseline)], input=archive.stdout, check=True)
            (baseline / ".venv").symlink_to(ROOT / ".venv")
        for stack in ("dev", "prod"):
            if args.baseline:
                measure(baseline, args.baseline[:14], stack, (), args.runs, scratch)
            for design in designs:
                measure(ROOT, design, stack, DESIGN_OVERRIDES[design], args.runs, scratch)


if __name__ == "__main__":
    main()
