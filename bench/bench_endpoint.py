"""Benchmark: our scoring server against plain FastAPI on the same champion, side by side on loopback.

Run: .venv/bin/python bench/bench_endpoint.py [--model-dir DIR] [--before-ref main] [--clients 1 4]

Servers, all serving one MLflow model (default: the champion of .work/local, else one trained here by
the taxi pipeline on 20k generated rows):
- ours: the Azure ML inference server (gunicorn, preloaded) with mlops/azureml/deploy/online/score.py;
- "fastapi async (plain)": one async handler, JSON rows -> DataFrame -> MLflow pyfunc predict, uvicorn
  at log level warning, one process: the fastest common form of a FastAPI model server;
- "fastapi sync+pydantic": the form the first version of this benchmark compared against: a sync
  handler, a pydantic body, uvicorn's default access log, the model's pickle read with joblib;
- with --before-ref, also our server as it was at that git ref (its score.py, its worker settings).
The load generator (bench/loadgen.py) is one asyncio thread over keep-alive connections; servers take
turns in short rounds so that other load on this shared machine hits them alike. Each line reports
throughput, p50/p99 latency, server CPU per request and the generator's own CPU per request.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
from fastapi import FastAPI, Request
from pydantic import BaseModel

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import loadgen  # noqa: E402

from mlops.prefork import ForkLauncher  # noqa: E402
from mlops.serving import DEFAULT_THREADS, DEFAULT_WORKERS, InferenceServer, free_loopback_port  # noqa: E402

SCORE_SCRIPT = REPO / "mlops" / "azureml" / "deploy" / "online" / "score.py"
REQUEST_SAMPLE = REPO / "mlops" / "data" / "request-sample.json"
LOCAL_MODELS = REPO / ".work" / "local" / "models" / "azureml-models" / "taxi-fare-model"
TARGET_SPEEDUP = 1.5
TARGET_P99_MS = 10.0
OURS = "aml-server (ours)"
PLAIN = "fastapi async (plain)"
PYDANTIC = "fastapi sync+pydantic"
BEFORE = "aml-server @{ref}"
FEATURES = json.loads((REPO / "mlops" / "data" / "request-sample.json").read_text()) and [
    "distance", "dropoff_latitude", "dropoff_longitude", "passengers", "pickup_latitude", "pickup_longitude",
    "store_forward", "vendor", "pickup_weekday", "pickup_month", "pickup_monthday", "pickup_hour",
    "pickup_minute", "pickup_second", "dropoff_weekday", "dropoff_month", "dropoff_monthday", "dropoff_hour",
    "dropoff_minute", "dropoff_second",
]  # fmt: skip


# ---- the baselines (run in a child process: `bench_endpoint.py serve-fastapi ...`) ----------------


class ScoreRequest(BaseModel):
    """The pydantic form's body: positional rows in CSV feature order (module level: FastAPI resolves
    the handler's annotation by name here)."""

    input_data: list[list[float]]


def plain_app(model_dir: Path) -> FastAPI:
    """The plain async form: one async handler, rows to a DataFrame, the MLflow pyfunc model."""
    import mlflow.pyfunc
    import pandas as pd

    model = mlflow.pyfunc.load_model(str(model_dir))
    app = FastAPI()

    @app.get("/")
    async def health() -> str:
        return "Healthy"

    @app.post("/score")
    async def score(request: Request) -> dict[str, list[float]]:
        body = await request.json()
        frame = pd.DataFrame(body["input_data"], columns=FEATURES)
        return {"predictions": model.predict(frame).tolist()}

    return app


def pydantic_app(model_dir: Path) -> FastAPI:
    """The common sync form: pydantic body, a DataFrame, the pickled model's predict."""
    import joblib
    import pandas as pd

    model = joblib.load(model_dir / "model.pkl")
    app = FastAPI()

    @app.get("/")
    def health() -> str:
        return "Healthy"

    @app.post("/score")
    def score(request: ScoreRequest) -> dict[str, list[float]]:
        frame = pd.DataFrame(request.input_data, columns=FEATURES)
        return {"predictions": model.predict(frame).tolist()}

    return app


def serve_fastapi(form: str, model_dir: Path, port: int) -> None:
    """Run one baseline with uvicorn, one process, on loopback."""
    import uvicorn

    if form == "plain":
        uvicorn.run(plain_app(model_dir), host="127.0.0.1", port=port, log_level="warning")
    else:
        uvicorn.run(pydantic_app(model_dir), host="127.0.0.1", port=port)


# ---- measuring -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    """A server under test: its name, port and the pid leading its processes."""

    name: str
    port: int
    pid: int


@dataclass
class Measurement:
    """One server at one client count, summed over rounds."""

    server: str
    clients: int
    latencies_ms: list[float]
    errors: int = 0
    seconds: float = 0.0
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0

    @property
    def requests(self) -> int:
        return len(self.latencies_ms)

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, fraction: float) -> float:
        """Nearest-rank percentile of the latencies."""
        ordered = sorted(self.latencies_ms)
        return (
            ordered[max(0, min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1))] if ordered else 0.0
        )

    def per_request_ms(self, seconds: float) -> float:
        return seconds * 1000 / self.requests if self.requests else 0.0


def tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and all its descendants (gunicorn master + workers)."""
    return sum(sum(process.cpu_times()[:2]) for process in tree(pid))


def tree_memory_mb(pid: int) -> tuple[float, float]:
    """(RSS, PSS) summed over the process tree, MB; PSS counts pages shared after fork once."""
    rss = pss = 0.0
    for process in tree(pid):
        info = process.memory_full_info()
        rss, pss = rss + info.rss, pss + info.pss
    return rss / 2**20, pss / 2**20


def run_rounds(servers: list[Server], args: argparse.Namespace) -> tuple[list[Measurement], dict[str, float]]:
    """Alternate the servers in short rounds; return the measurements and each server's peak PSS."""
    request = loadgen.post_request("/score", request_body(args.rows))
    for server in servers:
        loadgen.burst(server.port, request, max(args.clients), args.warmup, args.max_seconds)
    results = {
        (server.name, clients): Measurement(server.name, clients, [])
        for server in servers
        for clients in args.clients
    }
    peak_pss = {server.name: 0.0 for server in servers}
    for _ in range(args.rounds):
        for clients in args.clients:
            for server in servers:
                cpu_before, client_before = tree_cpu_seconds(server.pid), time.process_time()
                started = time.perf_counter()
                tally = loadgen.burst(
                    server.port,
                    request,
                    clients,
                    args.requests // args.rounds,
                    args.max_seconds / args.rounds,
                )
                result = results[server.name, clients]
                result.seconds += time.perf_counter() - started
                result.server_cpu_s += tree_cpu_seconds(server.pid) - cpu_before
                result.client_cpu_s += time.process_time() - client_before
                result.latencies_ms += tally.latencies_ms
                result.errors += tally.errors
                peak_pss[server.name] = max(peak_pss[server.name], tree_memory_mb(server.pid)[1])
    return list(results.values()), peak_pss


def request_body(rows: int) -> bytes:
    """The request sample's rows, repeated to `rows` rows (positional form)."""
    sample = json.loads(REQUEST_SAMPLE.read_text())["input_data"]
    return json.dumps({"input_data": (sample * rows)[:rows]}).encode()


# ---- starting the servers ------------------------------------------------------------------------


def wait_healthy(port: int, process: subprocess.Popen[bytes], deadline_s: float = 300.0) -> None:
    """Block until GET / answers 200; raise if the process dies or the deadline passes."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"a FastAPI baseline exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"a FastAPI baseline was not healthy within {deadline_s:.0f} s")


@contextmanager
def fastapi_server(form: str, name: str, model_dir: Path, scratch: Path) -> Iterator[Server]:
    """A baseline in a child process, with one OpenMP thread like our workers."""
    port = free_loopback_port()
    with (scratch / f"fastapi-{form}.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, __file__, "serve-fastapi", form, str(model_dir), str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
    try:
        wait_healthy(port, process)
        yield Server(name, port, process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)


def score_script_at(ref: str, scratch: Path) -> Path:
    """score.py as it was at a git ref, with the rest of its code folder (the deployment's code)."""
    folder = scratch / f"at-{ref.replace('/', '-')}"
    folder.mkdir()
    archive = subprocess.run(
        ["git", "archive", "--format=tar", ref, "mlops/azureml/deploy/online"],
        cwd=REPO,
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    return folder / "mlops" / "azureml" / "deploy" / "online" / "score.py"


def champion_dir(scratch: Path) -> tuple[Path, str]:
    """AZUREML_MODEL_DIR of the champion: the newest version in .work/local, else trained here."""
    versions = sorted(LOCAL_MODELS.glob("*/MLmodel"), key=lambda path: int(path.parent.name))
    if versions:
        return versions[-1].parent, f"champion {versions[-1].parent} (from make demo)"
    from mlops import data as taxi_data
    from mlops.local_runner import run_pipeline

    data = scratch / "taxi.csv"
    taxi_data.write_csv(taxi_data.generate_trips(20_000, seed=42), data)
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{scratch / 'mlflow.db'}", "OMP_NUM_THREADS": "1"}
    pipeline = REPO / "mlops" / "azureml" / "train" / "pipeline.yml"
    run = run_pipeline(pipeline, {"raw_data": str(data)}, scratch / "training", env=env)
    return run.output(
        "train", "model_output"
    ), "model trained here by the taxi pipeline on 20k generated rows"


# ---- reporting -----------------------------------------------------------------------------------


def print_table(results: list[Measurement], peak_pss: dict[str, float]) -> None:
    print(
        f"{'server':<28}{'clients':>8}{'requests':>9}{'errors':>7}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}"
        f"{'srv CPU ms/req':>15}{'gen CPU us/req':>15}{'peak PSS MB':>12}"
    )
    for row in results:
        print(
            f"{row.server:<28}{row.clients:>8}{row.requests:>9}{row.errors:>7}{row.throughput:>8.0f}"
            f"{row.percentile(0.5):>8.2f}{row.percentile(0.99):>8.2f}{row.per_request_ms(row.server_cpu_s):>15.2f}"
            f"{row.per_request_ms(row.client_cpu_s) * 1000:>15.0f}{peak_pss[row.server]:>12.0f}"
        )


def print_verdict(results: list[Measurement], clients: int) -> None:
    """Targets: at the highest client count, >= 1.5x the plain async FastAPI form, p99 <= 10 ms, 0 errors."""
    top = {row.server: row for row in results if row.clients == clients}
    ours = top[OURS]
    worst_p99 = max(row.percentile(0.99) for row in results if row.server == OURS)
    errors = sum(row.errors for row in results)
    checks = [
        (f"vs {PLAIN} at {clients} clients", ours.throughput / top[PLAIN].throughput, TARGET_SPEEDUP, "x"),
        (f"vs {PYDANTIC} at {clients} clients", ours.throughput / top[PYDANTIC].throughput, None, "x"),
        ("our worst p99", worst_p99, TARGET_P99_MS, " ms"),
        ("errors (all servers)", float(errors), 0.0, ""),
    ]
    for name, value, target, unit in checks:
        if target is None:
            print(f"{name:<44}{value:>9.2f}{unit}")
            continue
        met = value >= target if unit == "x" else value <= target
        print(
            f"{name:<44}{value:>9.2f}{unit:<3} target {'>=' if unit == 'x' else '<='} {target:g}{unit}  {'met' if met else 'MISSED'}"
        )


def benchmark(args: argparse.Namespace) -> None:
    load_before = os.getloadavg()
    with (
        tempfile.TemporaryDirectory(prefix="bench-endpoint-") as scratch_name,
        ForkLauncher(log=Path(scratch_name) / "forkserver.log") as launcher,
    ):
        scratch = Path(scratch_name)
        model_dir, model_note = (
            (args.model_dir, str(args.model_dir)) if args.model_dir else champion_dir(scratch)
        )
        mlflow_dir = next(path.parent for path in sorted(Path(model_dir).rglob("MLmodel")))
        ours = InferenceServer(
            SCORE_SCRIPT,
            model_dir,
            scratch / "ours.log",
            workers=args.workers,
            threads=args.threads,
            launcher=launcher,
        )
        before = None
        if args.before_ref:
            before = InferenceServer(
                score_script_at(args.before_ref, scratch), model_dir, scratch / "before.log",
                workers=args.before_workers, threads=args.before_threads, preload=False,
            )  # fmt: skip
        started = time.monotonic()
        with ours:
            startup = time.monotonic() - started
            with (
                fastapi_server("plain", PLAIN, mlflow_dir, scratch) as plain,
                fastapi_server("pydantic", PYDANTIC, mlflow_dir, scratch) as pydantic,
            ):
                servers = [Server(OURS, ours.port, ours.pid), plain, pydantic]
                if before is not None:
                    before.start()
                    servers.append(Server(BEFORE.format(ref=args.before_ref), before.port, before.pid))
                try:
                    results, peak_pss = run_rounds(servers, args)
                finally:
                    if before is not None:
                        before.stop()
    print(f"{args.rows}-row requests on loopback, {os.cpu_count()} cores; model: {model_note}")
    print(f"ours: {args.workers} workers x {args.threads} threads, preloaded, started in {startup:.1f} s")
    if args.before_ref:
        print(
            f"@{args.before_ref}: {args.before_workers} workers x {args.before_threads} threads, not preloaded"
        )
    print(f"load average before: {load_before[0]:.1f}, after: {os.getloadavg()[0]:.1f} (shared machine)")
    print_table(results, peak_pss)
    print_verdict(results, max(args.clients))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command")
    serve = commands.add_parser("serve-fastapi", help="internal: run a FastAPI baseline")
    serve.add_argument("form", choices=("plain", "pydantic"))
    serve.add_argument("model_dir", type=Path)
    serve.add_argument("port", type=int)
    parser.add_argument(
        "--model-dir", type=Path, help="AZUREML_MODEL_DIR of the model (default: the champion)"
    )
    parser.add_argument("--before-ref", help="also serve score.py as it was at this git ref (e.g. main)")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--requests", type=int, default=4000, help="requests per server and client count")
    parser.add_argument(
        "--max-seconds", type=float, default=20.0, help="time cap per server and client count"
    )
    parser.add_argument("--rounds", type=int, default=4, help="alternations between the servers")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--rows", type=int, default=2, help="rows per request")
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS)
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS)
    parser.add_argument("--before-workers", type=int, default=2)
    parser.add_argument("--before-threads", type=int, default=2)
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    if args.command == "serve-fastapi":
        serve_fastapi(args.form, args.model_dir, args.port)
    else:
        benchmark(args)


if __name__ == "__main__":
    main()
