"""Benchmark: the local lifecycle's wall time and the peak memory of its process tree.

Run: .venv/bin/python bench/bench_lifecycle.py [--rows 20000] [--demo]

- `python -m mlops deploy --target local` on a fresh workdir (generated data, 20k rows by default): from
  data to a smoke-tested endpoint, then the same command again (nothing changed: it must register and
  redeploy nothing). Targets: <= 20 s and <= 10 s on this 2-core machine with a warm venv.
- Peak memory: the largest sum of RSS over the command's whole process tree (steps, fork server, the
  inference server and its workers), sampled every 50 ms; and, with --demo, the same for `make demo`.
PSS would be fairer to forked children that share pages with their parent; RSS overstates them, so the
figures are an upper bound.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
TARGET_FIRST_S = 20.0
TARGET_RERUN_S = 10.0


def tree_rss_mb(root: psutil.Process) -> float:
    """Sum of RSS (MB) of `root` and every descendant alive now."""
    total = 0
    for process in [root, *root.children(recursive=True)]:
        try:
            total += process.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total / 2**20


def run_measured(argv: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """(wall seconds, peak tree RSS in MB, exit code) of one command."""
    start = time.perf_counter()
    child = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    root = psutil.Process(child.pid)
    peak = 0.0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            try:
                peak = max(peak, tree_rss_mb(root))
            except psutil.NoSuchProcess:
                return
            stop.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, errors = child.communicate()
    elapsed = time.perf_counter() - start
    stop.set()
    sampler.join()
    if child.returncode != 0:
        sys.stderr.write(errors.decode(errors="replace")[-3000:])
    return elapsed, peak, child.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--demo", action="store_true", help="also measure `make demo` (a few minutes)")
    args = parser.parse_args()
    # Where PYTHONDONTWRITEBYTECODE is set (this sandbox), cache bytecode under .work as `make` does: a
    # user's machine writes __pycache__, so recompiling every import would measure the sandbox, not the code.
    sys.path.insert(0, str(REPO))
    from mlops.prefork import bytecode_cache_environment

    env = bytecode_cache_environment(os.environ)
    print(f"load average before: {os.getloadavg()[0]:.1f} (2 cores; figures above it share the machine)")
    with tempfile.TemporaryDirectory(prefix="bench-lifecycle-") as scratch:
        workdir = Path(scratch) / "local"
        deploy = [sys.executable, "-m", "mlops", "deploy", "--target", "local", "--workdir", str(workdir)]
        deploy += ["--rows", str(args.rows)]
        first, first_peak, code = run_measured(deploy, env)
        print(
            f"deploy --target local, fresh workdir, {args.rows} rows: {first:.1f} s (target <= "
            f"{TARGET_FIRST_S:.0f} s), peak tree RSS {first_peak:.0f} MB, exit {code}"
        )
        again, again_peak, code = run_measured(deploy, env)
        print(
            f"the same again (nothing changed): {again:.1f} s (target <= {TARGET_RERUN_S:.0f} s), "
            f"peak tree RSS {again_peak:.0f} MB, exit {code}"
        )
    if args.demo:
        with tempfile.TemporaryDirectory(prefix="bench-demo-") as scratch:
            wall, peak, code = run_measured(["make", "demo", f"WORKDIR={scratch}"], env)
            print(f"make demo (warm venv): {wall:.1f} s, peak tree RSS {peak:.0f} MB, exit {code}")
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
