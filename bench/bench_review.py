"""Wall time a PR job adds: offline plans + diff + policy check of dev and prod (target <= 6 s warm).

Runs the steps exactly as .github/workflows/pull-request.yml does: one `diff --base-ref` call that plans
both stacks at the base ref (in a git worktree) and in the working tree, in parallel, keeping the head
plans; then one `check` per stack on those plans.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STACKS = ("dev", "prod")
REPEATS = 3
TARGET_SECONDS = 6.0


class StepFailed(Exception):
    """A `python -m stacks` step exited with an error."""


def _run(*args: str) -> float:
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "stacks", *args], cwd=ROOT, capture_output=True, text=True)
    if result.returncode not in (0, 1):
        raise StepFailed(f"`python -m stacks {' '.join(args)}` failed:\n{result.stderr.strip()[-600:]}")
    return time.perf_counter() - start


def one_round(base_ref: str, scratch: Path) -> dict[str, float]:
    """Seconds per step of one PR review of both stacks."""
    stack_args = [arg for stack in STACKS for arg in ("--stack", stack)]
    times = {
        "plan base+head and diff": _run(
            "diff",
            *stack_args,
            "--base-ref",
            base_ref,
            "--save-head",
            str(scratch / "plan-{stack}.json"),
            "--markdown",
            str(scratch / "diff-{stack}.md"),
        )
    }
    for stack in STACKS:
        times[f"check {stack}"] = _run(
            "check",
            "--plan",
            str(scratch / f"plan-{stack}.json"),
            "--markdown",
            str(scratch / f"check-{stack}.md"),
        )
    return times


def main() -> None:
    base_ref = "HEAD"
    print(
        f"PR review of {', '.join(STACKS)} against git {base_ref} (planned in a worktree), {REPEATS} warm runs"
    )
    with tempfile.TemporaryDirectory() as folder:
        one_round(base_ref, Path(folder))  # warm-up: file cache, .pyc files
        rounds = [one_round(base_ref, Path(folder)) for _ in range(REPEATS)]
    totals = [sum(steps.values()) for steps in rounds]
    median = statistics.median(totals)
    verdict = "met" if median <= TARGET_SECONDS else "MISSED"
    print(
        f"total: median {median:.2f} s, min {min(totals):.2f} s, max {max(totals):.2f} s "
        f"(target <= {TARGET_SECONDS:.0f} s: {verdict})"
    )
    for step in rounds[0]:
        print(f"   {step}: median {statistics.median(r[step] for r in rounds):.2f} s")


if __name__ == "__main__":
    main()
