"""Benchmark: the Locust load test against bench_endpoint's client on one server, and the drift report on 20k rows."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_endpoint import SCORE_SCRIPT, burst, percentile, request_body  # noqa: E402

from mlops.data import generate_trips  # noqa: E402
from mlops.monitor_report import compare, load_production_csv, write_report  # noqa: E402
from mlops.serving import InferenceServer  # noqa: E402
from tests._ml_model import make_tiny_model  # noqa: E402


def locust_run(uri: str, users: int, seconds: float, rows: int, scratch: Path, round_: int) -> dict:
    """One `python -m mlops loadtest` run (its own process: Locust patches it with gevent)."""
    payload = scratch / "payload.json"
    payload.write_bytes(request_body(rows))
    figures = scratch / f"locust-{round_}.json"
    subprocess.run(
        [sys.executable, "-m", "mlops", "loadtest", "--uri", uri, "--users", str(users), "--seconds", str(seconds),
         "--payload", str(payload), "--out", str(scratch / f"locust-{round_}"), "--json", str(figures)],
        cwd=REPO, check=True, capture_output=True, text=True, timeout=seconds + 120,
    )  # fmt: skip
    return json.loads(figures.read_text())


def compare_load_generators(args: argparse.Namespace, scratch: Path) -> None:
    """Alternate the two load generators against the same server so shared-machine noise hits both."""
    model_dir = make_tiny_model(scratch).parent
    with InferenceServer(SCORE_SCRIPT, model_dir, scratch / "server.log") as server:
        body = request_body(args.rows)
        burst(server.port, server.pid, body, args.users, 200, 10)  # warm-up
        ours, theirs = [], []
        for round_ in range(args.rounds):
            ours.append(locust_run(server.scoring_uri, args.users, args.seconds, args.rows, scratch, round_))
            theirs.append(burst(server.port, server.pid, body, args.users, 10**9, args.seconds))
    latencies = [value for run in theirs for value in run.latencies_ms]
    bench_rps = sum(len(run.latencies_ms) for run in theirs) / sum(run.seconds for run in theirs)
    locust_rps = sum(run["requests"] for run in ours) / sum(run["seconds"] for run in ours)
    print(f"same server (aml-server, tiny model), {args.users} users/clients, {args.rows}-row requests, "
          f"{args.rounds} alternating rounds of {args.seconds:g} s")  # fmt: skip
    print(f"{'load generator':<36}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'errors':>8}")
    print(
        f"{'bench_endpoint (http.client threads)':<36}{bench_rps:>8.0f}{percentile(latencies, 0.5):>9.1f}"
        f"{percentile(latencies, 0.95):>9.1f}{percentile(latencies, 0.99):>9.1f}{sum(r.errors for r in theirs):>8}"
    )
    print(
        f"{'mlops loadtest (Locust FastHttpUser)':<36}{locust_rps:>8.0f}"
        f"{statistics.median(r['p50_ms'] for r in ours):>9.1f}{statistics.median(r['p95_ms'] for r in ours):>9.1f}"
        f"{statistics.median(r['p99_ms'] for r in ours):>9.1f}{sum(r['failures'] for r in ours):>8}"
    )
    print(
        f"throughput ratio Locust / bench_endpoint: {locust_rps / bench_rps:.2f} (Locust rounds to whole ms)"
    )


def time_drift_report(rows: int, repeats: int, scratch: Path) -> None:
    """Wall time of the statistics alone and of the whole report (figures included) on `rows` rows each."""
    reference, production = scratch / "train.csv", scratch / "traffic.csv"
    generate_trips(rows, seed=1).to_csv(reference, index=False)
    generate_trips(rows, seed=2).rename(columns={"cost": "prediction"}).to_csv(production, index=False)
    frame, traffic = generate_trips(rows, seed=1), load_production_csv(production)
    stats, reports = [], []
    for number in range(repeats):
        started = time.perf_counter()
        compare(frame, traffic)
        stats.append(time.perf_counter() - started)
        reports.append(write_report(reference, production, scratch / f"report-{number}").seconds)
    print(f"drift on {rows:,} reference + {rows:,} production rows, 21 columns, median of {repeats}:")
    print(f"  statistics (scipy): {statistics.median(stats):.2f} s; whole report with PNGs: "
          f"{statistics.median(reports):.2f} s")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rows", type=int, default=2, help="rows per request")
    parser.add_argument("--drift-rows", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-monitor-") as name:
        scratch = Path(name)
        compare_load_generators(args, scratch)
        time_drift_report(args.drift_rows, args.repeats, scratch)
    print(f"load average before/after: {load_before:.1f} / {os.getloadavg()[0]:.1f} (shared 2-core machine)")


if __name__ == "__main__":
    main()
