"""Benchmark: throughput and p50/p99 latency of our scoring server against plain FastAPI, on loopback."""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import joblib
import pandas as pd
import psutil
from fastapi import FastAPI
from pydantic import BaseModel

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mlops.serving import DEFAULT_THREADS, DEFAULT_WORKERS, InferenceServer, free_loopback_port  # noqa: E402
from tests._ml_model import FEATURES, make_tiny_model, synthetic_features  # noqa: E402

SCORE_SCRIPT = REPO / "mlops" / "azureml" / "deploy" / "online" / "score.py"
TARGET_SPEEDUP = 1.5
TARGET_P99_MS = 10.0
BASELINE = "fastapi+uvicorn (1 process)"


class ScoreRequest(BaseModel):
    """The FastAPI baseline's request body: positional rows in CSV feature order."""

    input_data: list[list[float]]


def fastapi_app(model_path: Path) -> FastAPI:
    """The baseline as commonly written: pydantic body, a DataFrame, predict, JSON."""
    model = joblib.load(model_path)
    app = FastAPI()

    @app.get("/")
    def health() -> str:
        """Liveness, like the AML server's GET /."""
        return "Healthy"

    @app.post("/score")
    def score(request: ScoreRequest) -> dict[str, list[float]]:
        """Predict the posted rows."""
        frame = pd.DataFrame(request.input_data, columns=list(FEATURES))
        return {"predictions": model.predict(frame).tolist()}

    return app


def serve_fastapi(model_path: Path, port: int) -> None:
    """Run the baseline with uvicorn's defaults (one process) on loopback."""
    import uvicorn

    uvicorn.run(fastapi_app(model_path), host="127.0.0.1", port=port)


@dataclass(frozen=True)
class Run:
    """The raw outcome of one burst of requests."""

    latencies_ms: list[float]
    errors: int
    seconds: float
    server_cpu_seconds: float


@dataclass(frozen=True)
class Measurement:
    """One load level against one server, summed over the rounds."""

    server: str
    clients: int
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    server_cpu_seconds: float

    @property
    def throughput(self) -> float:
        """Requests per second over the measured wall time."""
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms_per_request(self) -> float:
        """Server CPU time (all its processes) per request: what caps throughput on dedicated cores."""
        return self.server_cpu_seconds * 1000 / self.requests if self.requests else 0.0


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of values (fraction in 0..1)."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1))
    return ordered[rank]


def summarize(server: str, clients: int, runs: list[Run]) -> Measurement:
    """Pool the rounds of one load level into throughput and latency percentiles."""
    latencies = [value for run in runs for value in run.latencies_ms]
    return Measurement(
        server,
        clients,
        len(latencies),
        sum(run.errors for run in runs),
        sum(run.seconds for run in runs),
        percentile(latencies, 0.5),
        percentile(latencies, 0.99),
        sum(run.server_cpu_seconds for run in runs),
    )


def client_loop(
    port: int, body: bytes, stop_at: float, quota: int, latencies: list[float], errors: list[int]
) -> None:
    """One client: POST back to back until its quota or the time is used up."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Content-Type": "application/json"}
    for _ in range(quota):
        if time.monotonic() >= stop_at:
            break
        started = time.perf_counter()
        try:
            connection.request("POST", "/score", body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            ok = response.status == 200
            if response.will_close:
                connection.close()
        except (OSError, http.client.HTTPException):
            ok = False
            connection.close()
        latencies.append((time.perf_counter() - started) * 1000)
        if not ok:
            errors.append(1)
    connection.close()


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and all its children (gunicorn master + workers)."""
    root = psutil.Process(pid)
    return sum(sum(process.cpu_times()[:2]) for process in [root, *root.children(recursive=True)])


def burst(port: int, pid: int, body: bytes, clients: int, total: int, max_seconds: float) -> Run:
    """`clients` concurrent clients sending `total` requests between them (or until max_seconds)."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[int] = []
    stop_at = time.monotonic() + max_seconds
    threads = [
        threading.Thread(
            target=client_loop, args=(port, body, stop_at, total // clients, latencies[index], errors)
        )
        for index in range(clients)
    ]
    cpu_before, started = tree_cpu_seconds(pid), time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds, cpu = time.perf_counter() - started, tree_cpu_seconds(pid) - cpu_before
    return Run([value for client in latencies for value in client], len(errors), seconds, cpu)


def run_rounds(servers: dict[str, tuple[int, int]], args: argparse.Namespace) -> list[Measurement]:
    """Alternate the servers (name -> port, pid) in short rounds, so other load hits both alike."""
    body = request_body(args.rows)
    for port, pid in servers.values():
        burst(port, pid, body, max(args.clients), args.warmup, args.max_seconds)
    runs: dict[tuple[str, int], list[Run]] = {
        (name, clients): [] for name in servers for clients in args.clients
    }
    for _ in range(args.rounds):
        for clients in args.clients:
            for name, (port, pid) in servers.items():
                quota, seconds = args.requests // args.rounds, args.max_seconds / args.rounds
                runs[name, clients].append(burst(port, pid, body, clients, quota, seconds))
    return [summarize(name, clients, runs[name, clients]) for name, clients in runs]


def wait_healthy(port: int, process: subprocess.Popen[bytes], deadline_s: float = 60.0) -> None:
    """Block until GET / answers 200; raise if the process dies or the deadline passes."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the FastAPI baseline exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the FastAPI baseline was not healthy within {deadline_s:.0f} s")


def start_fastapi(model_dir: Path, scratch: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Serve the same model file (the MLflow model's pickle, read with joblib.load) from a child process."""
    model_path = model_dir / "model.pkl"
    port = free_loopback_port()
    with (scratch / "fastapi.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, __file__, "serve-fastapi", "--model", str(model_path), "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            # Same threading as our workers, so the comparison is about the serving stack.
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
    try:
        wait_healthy(port, process)
    except RuntimeError:
        stop_process(process)
        raise
    return process, port


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Terminate a child we started, by its pid, and reap it."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def request_body(rows: int) -> bytes:
    """A positional request of `rows` synthetic trips."""
    return json.dumps({"input_data": synthetic_features(rows, seed=7).values.tolist()}).encode()


def print_table(results: list[Measurement]) -> None:
    """One line per server and client count."""
    print(
        f"{'server':<28}{'clients':>8}{'requests':>10}{'errors':>8}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'server CPU ms/req':>19}"
    )
    for row in results:
        print(
            f"{row.server:<28}{row.clients:>8}{row.requests:>10}{row.errors:>8}{row.throughput:>8.0f}"
            f"{row.p50_ms:>9.2f}{row.p99_ms:>9.2f}{row.cpu_ms_per_request:>19.2f}"
        )


def print_verdict(ours: list[Measurement], baseline: list[Measurement]) -> None:
    """Compare against the targets (throughput at the last, i.e. highest, client count)."""
    top_ours, top_base = ours[-1], baseline[-1]
    speedup = top_ours.throughput / top_base.throughput if top_base.throughput else float("inf")
    worst_p99 = max(row.p99_ms for row in ours)
    errors = sum(row.errors for row in ours + baseline)
    checks = [
        (f"throughput at {top_ours.clients} clients vs FastAPI", f"{speedup:.2f}x", speedup >= TARGET_SPEEDUP,
         f">= {TARGET_SPEEDUP}x"),
        ("our worst p99", f"{worst_p99:.2f} ms", worst_p99 <= TARGET_P99_MS, f"<= {TARGET_P99_MS} ms"),
        ("errors (all runs)", str(errors), errors == 0, "0"),
    ]  # fmt: skip
    for name, value, met, target in checks:
        print(f"{name:<42}{value:>10}   target {target:<10} {'met' if met else 'MISSED'}")


def benchmark(args: argparse.Namespace) -> None:
    """Run our server and the FastAPI baseline on the same model and requests; print the table."""
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-endpoint-") as scratch_name:
        scratch = Path(scratch_name)
        model_dir = args.model_dir or make_tiny_model(scratch).parent
        mlflow_dir = next(path.parent for path in sorted(model_dir.rglob("MLmodel")))
        label = f"aml-server ({args.workers}w x {args.threads}t)"
        server = InferenceServer(
            SCORE_SCRIPT, model_dir, scratch / "server.log", workers=args.workers, threads=args.threads
        )
        with server:
            baseline_process, port = start_fastapi(mlflow_dir, scratch)
            try:
                servers = {label: (server.port, server.pid), BASELINE: (port, baseline_process.pid)}
                results = run_rounds(servers, args)
            finally:
                stop_process(baseline_process)
    ours = [row for row in results if row.server == label]
    baseline = [row for row in results if row.server == BASELINE]
    model = args.model_dir or "tiny boosted trees (tests/_ml_model.py)"
    print(f"{args.rows}-row requests on loopback, {os.cpu_count()} cores, model {model}")
    print(f"load average before/after: {load_before:.1f} / {os.getloadavg()[0]:.1f} (shared machine)")
    print_table(results)
    print_verdict(ours, baseline)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The benchmark's options (bounded by request count and seconds per load level)."""
    parser = argparse.ArgumentParser(description=__doc__)
    commands = parser.add_subparsers(dest="command")
    serve = commands.add_parser("serve-fastapi", help="internal: run the FastAPI baseline")
    serve.add_argument("--model", type=Path, required=True)
    serve.add_argument("--port", type=int, required=True)
    parser.add_argument("--model-dir", type=Path, help="AZUREML_MODEL_DIR of a model (default: a tiny one)")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--requests", type=int, default=2000, help="requests per server and load level")
    parser.add_argument("--max-seconds", type=float, default=15.0, help="time cap per server and load level")
    parser.add_argument("--rounds", type=int, default=4, help="alternations between the servers")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--rows", type=int, default=2, help="rows per request")
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS)
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS)
    return parser.parse_args(argv)


def main() -> None:
    """Benchmark, or (internally) serve the FastAPI baseline in this child process."""
    args = parse_args()
    if args.command == "serve-fastapi":
        serve_fastapi(args.model, args.port)
    else:
        benchmark(args)


if __name__ == "__main__":
    main()
