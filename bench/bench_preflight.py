"""Benchmark: wall time of `python -m stacks preflight`, offline and with the ARM checks on intercepted HTTP."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = 5
# The ARM checks against `responses` (tests/_fake_preflight_arm.py), in a fresh interpreter like the CLI: imports of
# the Azure SDK clients included, network latency excluded (a real subscription adds its round trips).
INTERCEPTED = """
import sys, time, responses
from stacks.preflight import run_preflight
from tests._fake_preflight_arm import Arm, FakeCredential, SUBSCRIPTION
start = time.perf_counter()
with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
    Arm().register(mock)
    report = run_preflight("prod", credential=FakeCredential(), subscription_id=SUBSCRIPTION)
    calls = len(mock.calls)
print(f"{time.perf_counter() - start:.3f} {calls} {len(report.findings)}", file=sys.stderr)
"""


def _timed(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env)
    return time.perf_counter() - start, result.stderr.strip().splitlines()[-1]


def main() -> None:
    print(
        f"python -m stacks preflight --stack prod, {RUNS} runs each after one warm-up, {os.cpu_count()} cores"
    )
    offline = [sys.executable, "-m", "stacks", "preflight", "--stack", "prod", "--offline"]
    intercepted = [sys.executable, "-c", INTERCEPTED]
    # Bytecode goes to a scratch prefix, as a user's own venv keeps it: a shared venv that forbids .pyc
    # (PYTHONDONTWRITEBYTECODE) would compile the Azure SDK's sources on every run instead.
    scratch = tempfile.mkdtemp(prefix="bench-pycache-")
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env.update(PYTHONPYCACHEPREFIX=scratch, PYTHONPATH=str(ROOT))
    for label, command in (("offline", offline), ("ARM checks, intercepted HTTP", intercepted)):
        _timed(command, env)
        runs = [_timed(command, env) for _ in range(RUNS)]
        times = [seconds for seconds, _ in runs]
        detail = ""
        if command is intercepted:
            inside, calls, findings = runs[-1][1].split()
            detail = f"  (in-process {float(inside):.2f}s, {calls} HTTP requests, {findings} findings)"
        print(
            f"{label:29} wall median={statistics.median(times):.2f}s min={min(times):.2f}s "
            f"max={max(times):.2f}s{detail}"
        )


if __name__ == "__main__":
    main()
