"""Benchmark: wall time and peak memory of `python -m stacks plan --stack prod` in a warm venv."""

from __future__ import annotations

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


def run_once(stack: str, out: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one plan run in a fresh interpreter."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "stacks", "plan", "--stack", stack, "--quiet", "--json", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    elapsed = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the max over all children so far; runs are similar, so this is the peak.
    return elapsed, max(peak_kb, before) / 1024


def main() -> None:
    print(f"python -m stacks plan, {RUNS} warm runs per stack, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as scratch:
        for stack in ("dev", "prod"):
            out = Path(scratch) / f"plan-{stack}.json"
            run_once(stack, out)  # warm the OS file cache and .pyc files
            times, peaks = zip(*(run_once(stack, out) for _ in range(RUNS)))
            median = statistics.median(times)
            verdict = "ok" if median <= TARGET_SECONDS and max(peaks) <= TARGET_MB else "MISSED"
            resources = out.read_text().count('"urn"')
            print(
                f"{stack:5} resources={resources:3}  wall median={median:.2f}s min={min(times):.2f}s "
                f"max={max(times):.2f}s  peak RSS={max(peaks):.0f} MB  "
                f"(target <= {TARGET_SECONDS}s, <= {TARGET_MB} MB: {verdict})"
            )


if __name__ == "__main__":
    main()
