"""Test helper: real trainings through the local backend (subprocess pipeline, sqlite MLflow) in a workdir."""

from __future__ import annotations

from pathlib import Path

from mlops import data as taxi_data
from mlops.backends.base import DataSpec, EnvironmentSpec, TrainingRequest, TrainingResult
from mlops.backends.local import LocalBackend
from mlops.cli import (
    CONDA_FILE,
    DATA_NAME,
    ENVIRONMENT_IMAGE,
    ENVIRONMENT_NAME,
    EXPERIMENT,
    MODEL_NAME,
    PIPELINE,
)

ROWS = 1500
"""Enough trips for a 70/15/15 split with stable metrics; small enough for a test on two cores."""


def train_locally(workdir: Path, seed: int, *, rows: int = ROWS) -> TrainingResult:
    """One pipeline run in `workdir` on generated trips (the same trips for every run of that workdir)."""
    backend = LocalBackend(workdir)
    try:
        return _train(backend, workdir, seed, rows)
    finally:
        backend.close()


def _train(backend: LocalBackend, workdir: Path, seed: int, rows: int) -> TrainingResult:
    trips = workdir / f"taxi-{rows}.csv"
    if not trips.is_file():
        workdir.mkdir(parents=True, exist_ok=True)
        taxi_data.write_csv(taxi_data.generate_trips(rows, seed=42), trips)
    environment = backend.ensure_environment(EnvironmentSpec(ENVIRONMENT_NAME, ENVIRONMENT_IMAGE, CONDA_FILE))
    data = backend.ensure_data(DataSpec(DATA_NAME, trips))
    request = TrainingRequest(
        pipeline=PIPELINE,
        experiment=EXPERIMENT,
        data=data,
        environment=environment,
        compute="cpu-cluster",
        model_name=MODEL_NAME,
        seed=seed,
        deadline_s=900,
    )
    result = backend.run_training(request)
    assert result.status == "Completed", result.metrics
    return result
