"""Local model serving: the Azure ML inference server on loopback, its smoke test, and batch scoring runs."""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import math
import os
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

from mlops.backends.base import BackendError, SmokeResult
from mlops.prefork import Launcher, ProcessSpec, RunningProcess, SubprocessLauncher, stop

SERVER_APP = "azureml_inference_server_http.server.entry:app"
# One worker process per core (2 here): predict is CPU-bound and holds the GIL, so only processes
# score in parallel; more processes than cores add context switches and model copies, not throughput.
# gthread workers with 2 threads each, not sync: gunicorn's sync worker serves one connection at a
# time, closes it after every response and lingers until the client closes too (gunicorn 26
# close_graceful), so the worker idles for a client round trip per request. Measured on loopback with
# 4 clients: sync 2 workers 66 req/s, sync 3 workers 72, gthread 2x1 82, gthread 2x2 183 (p50 10 ms).
DEFAULT_WORKERS = 2
DEFAULT_THREADS = 2
LOG_TAIL_LINES = 40
WORKER_READY = b"ready for serving traffic"  # logged by the AML server once a worker's init() returned
WORKER_BOOTED = b"Booting worker with pid"  # logged by gunicorn's master for each worker it forks
HEALTH_POLL_S = 0.05
BATCH_MINI_BATCH_SIZE = 10


class ServingError(BackendError):
    """The local inference server or a batch scoring run failed; the message carries the log tail."""


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def log_tail(log_file: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of a log file, or a note that there is none."""
    if not log_file.is_file():
        return f"(no log at {log_file})"
    return "\n".join(log_file.read_text(errors="replace").splitlines()[-lines:])


def server_environment(entry_script: Path, model_dir: Path, extra: Mapping[str, str]) -> dict[str, str]:
    """The variables the AML inference server reads, as Azure ML sets them in its container."""
    env = dict(os.environ)
    env.update(
        AZUREML_ENTRY_SCRIPT=str(entry_script),
        # The server puts AML_APP_ROOT on sys.path, as AML does with the deployment's code folder.
        AML_APP_ROOT=str(entry_script.parent),
        AZUREML_MODEL_DIR=str(model_dir),
        # One BLAS/OpenMP thread per worker: the workers already use every core.
        OMP_NUM_THREADS="1",
        OPENBLAS_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


class InferenceServer:
    """The AML inference server (gunicorn + Flask) for one entry script and model, on 127.0.0.1."""

    def __init__(
        self,
        entry_script: Path,
        model_dir: Path,
        log_file: Path,
        *,
        workers: int = DEFAULT_WORKERS,
        threads: int = DEFAULT_THREADS,
        env: Mapping[str, str] | None = None,
        startup_deadline_s: float = 120.0,
        preload: bool = True,
        launcher: Launcher | None = None,
    ) -> None:
        """`preload`: init() once in gunicorn's master before it forks the workers (the AML server's
        WORKER_PRELOAD=true), so the model loads once and its memory is shared; `launcher` starts the
        master (default: a fresh interpreter; the local backend forks it from its warm one).
        """
        if not entry_script.is_file():
            raise ServingError(f"entry script {entry_script} does not exist; pass the path to score.py")
        if not model_dir.is_dir():
            raise ServingError(
                f"model folder {model_dir} does not exist; pass .../azureml-models/<name>/<version>"
            )
        if workers < 1 or threads < 1:
            raise ServingError(f"workers and threads must be at least 1, got {workers} and {threads}")
        self.entry_script = entry_script.resolve()
        self.model_dir = model_dir.resolve()
        self.log_file = log_file
        self.workers = workers
        self.threads = threads
        self.extra_env = dict(env or {})
        self.startup_deadline_s = startup_deadline_s
        self.preload = preload
        self.launcher = launcher or SubprocessLauncher()
        self.port = 0
        self._process: RunningProcess | None = None

    @property
    def pid(self) -> int:
        """The gunicorn master's pid (also its process group id)."""
        if self._process is None:
            raise ServingError("the inference server is not running; call start() first")
        return self._process.pid

    @property
    def base_uri(self) -> str:
        """http://127.0.0.1:PORT (GET / is the health probe)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def scoring_uri(self) -> str:
        """Where to POST scoring requests."""
        return f"{self.base_uri}/score"

    def command(self) -> list[str]:
        """The gunicorn command line; `azmlinfsrv` cannot bind loopback only, gunicorn can."""
        return [
            sys.executable, "-m", "gunicorn",
            "-b", f"127.0.0.1:{self.port}",
            "-w", str(self.workers),
            "--worker-class", "gthread",
            "--threads", str(self.threads),
            "--timeout", "300",
            "--error-logfile", "-",
            *(["--preload"] if self.preload else []),
            SERVER_APP,
        ]  # fmt: skip

    def start(self) -> InferenceServer:
        """Launch the server; return once every worker has loaded the model and the probe answers."""
        if self._process is not None:
            raise ServingError(f"the inference server already runs as pid {self._process.pid}")
        self.port = free_loopback_port()
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.write_bytes(b"")
        # A session of its own (every launcher gives one) lets stop() signal the master and workers at once.
        self._process = self.launcher.start(
            ProcessSpec(
                tuple(self.command()),
                self.entry_script.parent,
                server_environment(self.entry_script, self.model_dir, self.extra_env),
                self.log_file,
            )
        )
        try:
            self._wait_until_healthy()
        except ServingError:
            self.stop()
            raise
        return self

    def _wait_until_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_deadline_s
        while time.monotonic() < deadline:
            code = None if self._process is None else self._process.wait(0)
            if code is not None:
                raise ServingError(
                    f"the inference server exited with code {code} while starting "
                    f"(entry script {self.entry_script}, model {self.model_dir}); log {self.log_file}:\n"
                    f"{log_tail(self.log_file)}"
                )
            if self._workers_ready() and self._healthy():
                return
            time.sleep(HEALTH_POLL_S)
        raise ServingError(
            f"the inference server did not become healthy within {self.startup_deadline_s:.0f} s; "
            f"log {self.log_file}:\n{log_tail(self.log_file)}"
        )

    def _workers_ready(self) -> bool:
        # The probe answers as soon as one worker is up; waiting for every worker means the first
        # requests are not slowed by model loading and a worker whose init fails is caught here. With
        # preload, init() ran once in the master before it booted the workers.
        if not self.log_file.is_file():
            return False
        log = self.log_file.read_bytes()
        if self.preload:
            return log.count(WORKER_READY) >= 1 and log.count(WORKER_BOOTED) >= self.workers
        return log.count(WORKER_READY) >= self.workers

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base_uri}/", timeout=5) as response:
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM the process group, SIGKILL it after the grace period; the master is reaped."""
        process, self._process = self._process, None
        if process is not None:
            stop(process, grace_s)

    def __enter__(self) -> InferenceServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()


def sample_row_count(payload: Any) -> int:
    """How many rows a request payload carries (positional/records list or pandas split object)."""
    input_data = payload.get("input_data") if isinstance(payload, dict) else None
    if isinstance(input_data, dict) and isinstance(input_data.get("data"), list):
        return len(input_data["data"])
    if isinstance(input_data, list) and input_data:
        return len(input_data)
    raise ValueError('the request sample must be {"input_data": [[...], ...]} or a split object with rows')


def check_predictions(body: Any, rows: int, expected_range: tuple[float, float]) -> tuple[list[float], str]:
    """The predictions of a scoring response and what is wrong with them ("" when nothing is)."""
    predictions = body.get("predictions") if isinstance(body, dict) else None
    if not isinstance(predictions, list):
        return [], f'the response is not {{"predictions": [...]}}: {json.dumps(body)[:200]}'
    if len(predictions) != rows:
        return [], f"{len(predictions)} predictions for {rows} rows"
    low, high = expected_range
    for index, value in enumerate(predictions):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return [], f"prediction {index} is {value!r}, not a finite number"
        if not low <= value <= high:
            return [], f"prediction {index} is {value}, outside the expected range [{low}, {high}]"
    return [float(value) for value in predictions], ""


def _post(uri: str, body: bytes, headers: Mapping[str, str], timeout_s: float) -> tuple[int, bytes]:
    request = urllib.request.Request(uri, data=body, headers=dict(headers), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read()


def smoke_test(
    scoring_uri: str,
    request_sample: Path,
    *,
    key: str | None = None,
    headers: Mapping[str, str] | None = None,
    expected_range: tuple[float, float] = (0.0, 500.0),
    deadline_s: float = 60.0,
) -> SmokeResult:
    """POST the request sample until the deadline; ok when every row gets one finite, in-range prediction.

    Connection errors and 5xx are retried (a deployment may still be warming up); 4xx is final.
    """
    payload_text = request_sample.read_text()
    rows = sample_row_count(json.loads(payload_text))
    request_headers = {"Content-Type": "application/json", **(headers or {})}
    if key:
        request_headers["Authorization"] = f"Bearer {key}"
    deadline = time.monotonic() + deadline_s
    status: int | None = None
    detail = "no attempt was made"
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return SmokeResult(False, status, f"gave up after {deadline_s:.0f} s: {detail}")
        try:
            status, body = _post(scoring_uri, payload_text.encode(), request_headers, min(30.0, remaining))
        except (OSError, urllib.error.URLError) as error:
            status, detail = None, f"cannot reach {scoring_uri}: {getattr(error, 'reason', error)}"
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
            continue
        if status >= 500:
            detail = f"HTTP {status}: {body[:300].decode(errors='replace')}"
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
            continue
        return verdict(status, body, rows, expected_range)


def verdict(status: int, body: bytes, rows: int, expected_range: tuple[float, float]) -> SmokeResult:
    """The smoke-test verdict on one scoring response (shared by the local and Azure backends)."""
    text = body.decode(errors="replace")
    if status != 200:
        return SmokeResult(False, status, f"HTTP {status}: {text[:300]}")
    try:
        parsed = json.loads(text)
    except ValueError:
        return SmokeResult(False, status, f"the response is not JSON: {text[:200]}")
    predictions, problem = check_predictions(parsed, rows, expected_range)
    if problem:
        return SmokeResult(False, status, problem)
    return SmokeResult(True, status, f"{rows} rows scored", tuple(predictions))


FAILED_FILES = "failed_files"
"""DataFrame.attrs key where a batch entry's run() names the files it skipped: {file: problem}."""


@dataclass(frozen=True)
class BatchScoring:
    """What a batch scoring run did: rows written, the input files it could not score and why, its log."""

    rows: int
    failed: dict[str, str] = field(default_factory=dict)
    log: Path | None = None


def run_batch_scoring(
    script: Path,
    model_dir: Path,
    inputs: Sequence[Path],
    output: Path,
    *,
    timeout_s: float = 900.0,
    launcher: Launcher | None = None,
) -> BatchScoring:
    """Run a batch entry script in a process of its own, as AML does; rows go to `output` (CSV).

    The driver's log and summary sit beside `output`. ServingError when the run fails or times out.
    """
    missing = [str(path) for path in inputs if not path.is_file()]
    if missing or not inputs:
        raise ServingError(f"batch inputs must be existing files, missing: {missing or 'no inputs given'}")
    output = output.resolve()
    log, summary = output.with_name("batch-driver.log"), output.with_name("batch-summary.json")
    summary.unlink(missing_ok=True)
    command = [
        sys.executable, "-m", "mlops.serving", "batch-driver",
        "--script", str(script.resolve()), "--output", str(output), "--summary", str(summary),
        *(str(path.resolve()) for path in inputs),
    ]  # fmt: skip
    env = {**os.environ, "AZUREML_MODEL_DIR": str(model_dir.resolve()), "OMP_NUM_THREADS": "1"}
    # The driver lives in this package: put the repository root on the child's path.
    repo_root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [repo_root, env.get("PYTHONPATH")]))
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    process = (launcher or SubprocessLauncher()).start(
        ProcessSpec(tuple(command), script.resolve().parent, env, log)
    )
    code = process.wait(timeout_s)
    if code is None:
        stop(process, grace_s=1.0)
        raise ServingError(f"batch scoring with {script} ran over its {timeout_s:.0f} s deadline; log {log}")
    if code != 0 or not summary.is_file():
        raise ServingError(f"batch scoring with {script} failed (exit {code}); log {log}:\n{log_tail(log)}")
    result = json.loads(summary.read_text())
    return BatchScoring(int(result["rows"]), dict(result["failed"]), log)


def mini_batches(paths: Sequence[str], size: int) -> Iterator[list[str]]:
    """The inputs in the consecutive groups AML hands to run() (mini_batch_size files each)."""
    for start in range(0, len(paths), size):
        yield list(paths[start : start + size])


def load_entry_script(script: Path) -> ModuleType:
    """Import a scoring script from its file, as AML does (it is not part of a package)."""
    spec = importlib.util.spec_from_file_location("batch_entry", script)
    if spec is None or spec.loader is None:
        raise ServingError(f"cannot import {script}; it must be a Python file")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def batch_driver(script: Path, inputs: Sequence[str], output: Path, mini_batch_size: int) -> BatchScoring:
    """init() once, run() per mini-batch, rows appended to the output CSV, skipped files collected."""
    module = load_entry_script(script)
    module.init()
    rows, failed = 0, {}
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("w", newline="") as handle:
        writer = csv.writer(handle)
        for number, batch in enumerate(mini_batches(inputs, mini_batch_size)):
            result = module.run(batch)
            if number == 0:
                writer.writerow(result.columns)
            writer.writerows(result.itertuples(index=False, name=None))
            rows += len(result)
            failed.update(result.attrs.get(FAILED_FILES, {}))
    return BatchScoring(rows, failed)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m mlops.serving batch-driver ...`: the process side of run_batch_scoring."""
    parser = argparse.ArgumentParser(prog="python -m mlops.serving")
    commands = parser.add_subparsers(dest="command", required=True)
    driver = commands.add_parser("batch-driver", help="run a batch entry script over input files")
    driver.add_argument("--script", type=Path, required=True)
    driver.add_argument("--output", type=Path, required=True)
    driver.add_argument("--summary", type=Path, required=True, help="JSON file for rows and skipped files")
    driver.add_argument("--mini-batch-size", type=int, default=BATCH_MINI_BATCH_SIZE)
    driver.add_argument("inputs", nargs="+")
    args = parser.parse_args(argv)
    done = batch_driver(args.script, args.inputs, args.output, args.mini_batch_size)
    for name, problem in done.failed.items():
        print(f"skipped {name}: {problem}", file=sys.stderr)
    args.summary.write_text(json.dumps({"rows": done.rows, "failed": done.failed}))
    print(f"{done.rows} rows -> {args.output}; {len(done.failed)} file(s) skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
