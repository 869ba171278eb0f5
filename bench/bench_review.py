"""Wall time a PR job adds: offline plan + diff + policy check of dev and prod (target <= 6 s warm)."""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
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


def _has_commit() -> bool:
    return (
        subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--verify", "HEAD"], capture_output=True
        ).returncode
        == 0
    )


def plan_heads(scratch: Path) -> float:
    """The workflow's first step: both head plans in one process."""
    stack_args = [arg for stack in STACKS for arg in ("--stack", stack)]
    return _run("plan", *stack_args, "--quiet", "--json", str(scratch / "plan-{stack}.json"))


def review_stack(stack: str, scratch: Path, base_ref: str | None) -> dict[str, float]:
    """One stack's diff and policy check as the workflow runs them, on the head plan; seconds per step."""
    plan = scratch / f"plan-{stack}.json"
    times: dict[str, float] = {}
    if base_ref:
        times["diff"] = _run(
            "diff",
            "--stack",
            stack,
            "--base-ref",
            base_ref,
            "--head-plan",
            str(plan),
            "--markdown",
            str(scratch / f"diff-{stack}.md"),
        )
    else:
        times["diff"] = _run("diff", str(plan), str(plan), "--markdown", str(scratch / f"diff-{stack}.md"))
    times["check"] = _run("check", "--plan", str(plan), "--markdown", str(scratch / f"check-{stack}.md"))
    return times


def one_round(base_ref: str | None, parallel: bool) -> tuple[float, dict[str, dict[str, float]]]:
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        heads = plan_heads(Path(folder))
        with ThreadPoolExecutor(max_workers=len(STACKS) if parallel else 1) as pool:
            results = dict(zip(STACKS, pool.map(lambda s: review_stack(s, Path(folder), base_ref), STACKS)))
        results["dev+prod"] = {"head plans (one process)": heads}
        return time.perf_counter() - start, results


def _warm_up() -> str | None:
    """One round to warm caches; the base ref to diff against, or None when HEAD cannot be planned."""
    base_ref = "HEAD" if _has_commit() else None
    try:
        one_round(base_ref, parallel=False)
    except StepFailed as error:
        if base_ref is None:
            raise SystemExit(str(error)) from None
        print(f"HEAD cannot be planned, diffing the head plan against itself instead:\n{error}")
        one_round(None, parallel=False)
        return None
    return base_ref


def main() -> None:
    base_ref = _warm_up()
    source = "git HEAD via a worktree (plans the base too)" if base_ref else "the head plan itself"
    print(f"diff base: {source}")
    for parallel in (False, True):
        rounds = [one_round(base_ref, parallel) for _ in range(REPEATS)]
        walls = [wall for wall, _ in rounds]
        label = "both stacks in parallel" if parallel else "stacks one after the other (the workflow loop)"
        print(
            f"{label}: median {statistics.median(walls):.2f} s, min {min(walls):.2f} s "
            f"over {REPEATS} warm runs (target <= {TARGET_SECONDS:.0f} s)"
        )
        for stack, steps in rounds[-1][1].items():
            print(
                "   " + stack + ": " + ", ".join(f"{step} {seconds:.2f} s" for step, seconds in steps.items())
            )


if __name__ == "__main__":
    main()
