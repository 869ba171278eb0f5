"""Load test of a scoring URI with Locust as a library: bounded users, time and requests; budgets gate CI.

Locust's FastHttpUser (geventhttpclient) sends the requests; the figures are Locust's own (rps, p50/p95/p99
in its millisecond buckets, failures: any non-2xx or connection error), and so are the CSV and HTML reports.
Plain HTTP is only for loopback (the local endpoint) unless --insecure says a private network is meant;
anything else needs https. Importing Locust monkey-patches the process with gevent, so only the `loadtest`
command imports this module's runner, in a process of its own.
"""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd

MAX_USERS = 64
MAX_SECONDS = 600.0
MAX_REQUESTS = 200_000
MAX_PAYLOADS = 1000
PERCENTILES = (0.5, 0.95, 0.99)
LOCAL_HOSTS = frozenset({"localhost"})
STOP_GRACE_S = 30.0
CSV_FLUSH_S = 1.2
"""Locust rewrites its CSV files every second: wait one more round after the run so they hold the end."""


class LoadTestError(ValueError):
    """A load test that must not run as asked; the message names the flag and the allowed form."""


@dataclass(frozen=True)
class Budget:
    """What a run must meet to pass: a p99 latency and a number of failed requests."""

    p99_ms: float | None = None
    max_errors: int | None = 0


@dataclass(frozen=True)
class LoadResult:
    """Locust's figures for one run, and where its reports are."""

    requests: int
    failures: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    users: int
    csv_prefix: Path
    html: Path

    @property
    def rps(self) -> float:
        """Requests per second over the run's wall time."""
        return self.requests / self.seconds if self.seconds else 0.0

    def missed(self, budget: Budget) -> list[str]:
        """Each budget this run missed, as a sentence."""
        problems = []
        if budget.p99_ms is not None and self.p99_ms > budget.p99_ms:
            problems.append(f"p99 {self.p99_ms:.0f} ms is over the budget of {budget.p99_ms:g} ms")
        if budget.max_errors is not None and self.failures > budget.max_errors:
            problems.append(f"{self.failures} failed requests exceed the budget of {budget.max_errors}")
        if self.requests == 0:
            problems.append("no request completed")
        return problems

    def lines(self) -> list[str]:
        """The summary printed at the end."""
        return [
            f"loadtest: {self.requests} requests in {self.seconds:.1f} s with {self.users} users: "
            f"{self.rps:.1f} req/s, p50 {self.p50_ms:.0f} ms, p95 {self.p95_ms:.0f} ms, "
            f"p99 {self.p99_ms:.0f} ms, {self.failures} errors",
            f"loadtest: reports {self.csv_prefix}_stats.csv (and _stats_history, _failures) and {self.html}",
        ]

    def as_json(self) -> dict[str, float | int | str]:
        """The figures as a JSON-ready mapping (for CI artifacts and benchmarks)."""
        return {
            "requests": self.requests,
            "failures": self.failures,
            "seconds": round(self.seconds, 3),
            "rps": round(self.rps, 2),
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "p99_ms": self.p99_ms,
            "users": self.users,
        }


def is_loopback(host: str) -> bool:
    """Whether a URI host is this machine (127.0.0.0/8, ::1 or localhost)."""
    if host.lower() in LOCAL_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_uri(uri: str, *, insecure: bool = False) -> tuple[str, str]:
    """(base URL, path with query) of a scoring URI; plain HTTP only to loopback unless `insecure`."""
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LoadTestError(f"--uri {uri!r}: give a scoring URI such as http://127.0.0.1:PORT/score")
    if parts.scheme == "http" and not is_loopback(parts.hostname) and not insecure:
        raise LoadTestError(
            f"--uri {uri}: plain HTTP is only for the local endpoint (127.0.0.1); use the https scoring URI, "
            "or add --insecure for an internal load balancer without TLS inside the VNet"
        )
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return f"{parts.scheme}://{parts.netloc}", path


def check_bounds(users: int, seconds: float, max_requests: int) -> None:
    """Refuse runs beyond what this command allows (it is a gate, not a stress tool)."""
    problems = []
    if not 1 <= users <= MAX_USERS:
        problems.append(f"--users {users}: give 1-{MAX_USERS}")
    if not 1 <= seconds <= MAX_SECONDS:
        problems.append(f"--seconds {seconds:g}: give 1-{MAX_SECONDS:g}")
    if not 1 <= max_requests <= MAX_REQUESTS:
        problems.append(f"--max-requests {max_requests}: give 1-{MAX_REQUESTS}")
    if problems:
        raise LoadTestError("; ".join(problems))


def payloads_from_csv(path: Path, rows_per_request: int, limit: int = MAX_PAYLOADS) -> list[bytes]:
    """Request bodies of `rows_per_request` consecutive feature rows each, in CSV feature order."""
    from mlops.src.taxi_schema import FEATURE_SPECS

    features = [spec.name for spec in FEATURE_SPECS]
    frame = pd.read_csv(path)
    missing = [name for name in features if name not in frame.columns]
    if missing:
        raise LoadTestError(f"--data {path}: lacks feature columns {missing}")
    if not 1 <= rows_per_request <= 5000:
        raise LoadTestError(f"--rows-per-request {rows_per_request}: give 1-5000")
    rows = frame[features].to_numpy().tolist()
    bodies = [
        json.dumps({"input_data": rows[start : start + rows_per_request]}).encode()
        for start in range(0, len(rows) - rows_per_request + 1, rows_per_request)
    ]
    if not bodies:
        raise LoadTestError(f"--data {path}: has {len(rows)} rows, fewer than --rows-per-request")
    return bodies[:limit]


def run_load(
    base: str,
    path: str,
    payloads: Sequence[bytes],
    *,
    users: int,
    seconds: float,
    max_requests: int,
    out_dir: Path,
    headers: Mapping[str, str] | None = None,
) -> LoadResult:
    """Run Locust in this process until `seconds` pass or `max_requests` were sent; write its reports."""
    check_bounds(users, seconds, max_requests)
    import gevent
    from locust import FastHttpUser, constant, task
    from locust.env import Environment
    from locust.html import get_html_report
    from locust.stats import StatsCSVFileWriter, stats_history

    request_headers = {"Content-Type": "application/json", **(headers or {})}
    sent = [0]

    class ScoringUser(FastHttpUser):
        """One client POSTing the payloads in turn, back to back."""

        host = base
        wait_time = constant(0)

        @task
        def score(self) -> None:
            if sent[0] >= max_requests:
                self.stop()
                return
            body = payloads[sent[0] % len(payloads)]
            sent[0] += 1
            self.client.post(path, data=body, headers=request_headers, name="score")

    out_dir.mkdir(parents=True, exist_ok=True)
    csv_prefix = out_dir / "loadtest"
    # Stopping lets each user finish the request it has in flight (bounded by STOP_GRACE_S): a request the
    # server answered but Locust killed mid-flight would be missing from the figures.
    environment = Environment(user_classes=[ScoringUser], host=base, stop_timeout=STOP_GRACE_S)
    runner = environment.create_local_runner()
    writer = StatsCSVFileWriter(environment, list(PERCENTILES), str(csv_prefix), full_history=False)
    greenlets = [gevent.spawn(writer.stats_writer), gevent.spawn(stats_history, runner)]
    started = time.perf_counter()
    runner.start(users, spawn_rate=users)
    while time.perf_counter() - started < seconds and sent[0] < max_requests:
        gevent.sleep(0.05)
    runner.quit()
    elapsed = time.perf_counter() - started
    gevent.sleep(CSV_FLUSH_S)
    gevent.killall(greenlets)
    writer.close_files()
    html = out_dir / "loadtest.html"
    html.write_text(get_html_report(environment, show_download_link=False), encoding="utf-8")
    total = environment.stats.total
    return LoadResult(
        requests=total.num_requests,
        failures=total.num_failures,
        seconds=elapsed,
        p50_ms=float(total.get_response_time_percentile(0.5) or 0),
        p95_ms=float(total.get_response_time_percentile(0.95) or 0),
        p99_ms=float(total.get_response_time_percentile(0.99) or 0),
        users=users,
        csv_prefix=csv_prefix,
        html=html,
    )
