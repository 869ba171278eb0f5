"""Production data collection for score.py: Azure ML's data collector on Azure, bounded JSON lines locally.

On Azure the deployment's `data_collector` (model_inputs, model_outputs) is served by the
`azureml-ai-monitoring` package's Collector (Learn: how-to-collect-production-data.md, "custom logging":
collections named model_inputs/model_outputs are registered as data assets the model monitor reads).
Locally, with MLOPS_COLLECT_DIR set, the same two collections are written as JSON lines in the envelope
Azure's collector uses (id, time, correlationid, data rows as records) under
`<dir>/<collection>/<yyyy>/<MM>/<dd>/<HH>/<pid>-<n>.jsonl`; model_outputs records also carry the request's
scoring latency. The directory is held to MLOPS_COLLECT_MAX_BYTES plus at most one segment (1/8 of it) per file being
written: when a file is full the oldest files are deleted first.
Collection never fails a request: an error is logged and the prediction is returned all the same.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

COLLECT_DIR_ENV = "MLOPS_COLLECT_DIR"
MAX_BYTES_ENV = "MLOPS_COLLECT_MAX_BYTES"
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
SEGMENTS = 8
"""A process starts a new file at 1/SEGMENTS of the budget, so pruning removes at most that much at once."""
INPUTS, OUTPUTS = "model_inputs", "model_outputs"
PREDICTION_COLUMN = "prediction"

_log = logging.getLogger(__name__)


class Collection(Protocol):
    """What score.py calls: one record of inputs and outputs per scored request."""

    def collect(self, inputs: pd.DataFrame, predictions: Sequence[float], started: float) -> None:
        """Record one request; `started` is its time.perf_counter() at arrival."""


class NoCollection:
    """Collection switched off (no data collector on the deployment, no local directory)."""

    def collect(self, inputs: pd.DataFrame, predictions: Sequence[float], started: float) -> None:
        return None


def max_bytes_from_env(environ: Mapping[str, str]) -> int:
    """The local collection budget in bytes from MLOPS_COLLECT_MAX_BYTES (at least 64 KiB), or 64 MiB."""
    raw = environ.get(MAX_BYTES_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_BYTES
    if not raw.isdigit() or int(raw) < 65536:
        raise ValueError(f"{MAX_BYTES_ENV} must be a whole number of bytes of at least 65536, got {raw!r}")
    return int(raw)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return json.loads(frame.to_json(orient="records"))


class JsonLinesCollection:
    """Both collections as JSON lines under one directory, held under a byte budget (thread-safe)."""

    def __init__(self, root: Path, max_bytes: int = DEFAULT_MAX_BYTES, clock: Any = time.time) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self._clock = clock
        self._lock = threading.Lock()
        self._files: dict[str, tuple[str, Path]] = {}
        """Collection -> (hour folder, file) this process appends to."""
        self._serial = 0

    def collect(self, inputs: pd.DataFrame, predictions: Sequence[float], started: float) -> None:
        latency_ms = (time.perf_counter() - started) * 1000
        now = datetime.fromtimestamp(self._clock(), timezone.utc)
        correlation = str(uuid.uuid4())
        stamp = now.isoformat().replace("+00:00", "Z")
        envelope = {"time": stamp, "correlationid": correlation}
        outputs = pd.DataFrame({PREDICTION_COLUMN: list(predictions)})
        lines = {
            INPUTS: {"id": str(uuid.uuid4()), **envelope, "data": _records(inputs)},
            OUTPUTS: {
                "id": str(uuid.uuid4()),
                **envelope,
                "data": _records(outputs),
                "latency_ms": round(latency_ms, 3),
            },
        }
        with self._lock:
            for collection, record in lines.items():
                self._append(collection, now, json.dumps(record, separators=(",", ":")) + "\n")

    def _append(self, collection: str, now: datetime, line: str) -> None:
        hour = now.strftime("%Y/%m/%d/%H")
        current = self._files.get(collection)
        if current is None or current[0] != hour or _size(current[1]) >= self.max_bytes // SEGMENTS:
            path = self._next_file(collection, hour)
        else:
            path = current[1]
        with path.open("a", encoding="utf-8") as handle:
            handle.write(line)

    def _next_file(self, collection: str, hour: str) -> Path:
        self._serial += 1
        folder = self.root / collection / hour
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{os.getpid()}-{self._serial}.jsonl"
        self._files[collection] = (hour, path)
        self._prune()
        return path

    def _prune(self) -> None:
        """Delete the oldest files until the directory fits its budget (other workers prune too)."""
        files = []
        for file in self.root.rglob("*.jsonl"):
            try:
                stat = file.stat()
            except FileNotFoundError:
                continue
            files.append((stat.st_mtime, file, stat.st_size))
        total = sum(size for _, _, size in files)
        open_files = {path for _, path in self._files.values()}
        for _, file, size in sorted(files):
            if total <= self.max_bytes - self.max_bytes // SEGMENTS:
                break
            if file in open_files:
                continue
            file.unlink(missing_ok=True)
            total -= size


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


class AzureCollection:
    """Azure ML's data collector (azureml-ai-monitoring), as the deployment's data_collector configures it."""

    def __init__(self, collector_class: Any) -> None:
        self._inputs = collector_class(name=INPUTS, on_error=_log_failure)
        self._outputs = collector_class(name=OUTPUTS, on_error=_log_failure)

    def collect(self, inputs: pd.DataFrame, predictions: Sequence[float], started: float) -> None:
        # The context returned for the inputs correlates the outputs with them in the collected data.
        context = self._inputs.collect(inputs)
        self._outputs.collect(pd.DataFrame({PREDICTION_COLUMN: list(predictions)}), context)


def _log_failure(error: BaseException) -> None:
    _log.warning("data collection failed: %s", error)


class SafeCollection:
    """Wraps a collection so that a failure to record never fails the request it records."""

    def __init__(self, inner: Collection) -> None:
        self.inner = inner

    def collect(self, inputs: pd.DataFrame, predictions: Sequence[float], started: float) -> None:
        try:
            self.inner.collect(inputs, predictions, started)
        except Exception as error:  # noqa: BLE001 - collection is best effort by design
            _log_failure(error)


def start(environ: Mapping[str, str]) -> Collection:
    """The collection for this server: local JSON lines when MLOPS_COLLECT_DIR is set, else Azure's
    collector when its package is installed (the deployment image), else none."""
    directory = environ.get(COLLECT_DIR_ENV, "").strip()
    if directory:
        return SafeCollection(JsonLinesCollection(Path(directory), max_bytes_from_env(environ)))
    try:
        from azureml.ai.monitoring import Collector
    except ImportError:
        return NoCollection()
    try:
        return SafeCollection(AzureCollection(Collector))
    except Exception as error:  # noqa: BLE001 - a collector that cannot start must not stop the model serving
        _log_failure(error)
        return NoCollection()
