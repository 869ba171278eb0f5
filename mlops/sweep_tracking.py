"""The local sweep's MLflow bookkeeping, run in a process forked from the warm interpreter.

The orchestrating process never imports MLflow (mlops.prefork, mlops.backends.local_registry): the sweep
calls these through the launcher (ForkLauncher.call), so arguments and results are plain JSON values.
"""

from __future__ import annotations

from typing import Any


def _client(tracking_uri: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def open_sweep(tracking_uri: str, experiment: str, artifact_location: str, step: str) -> dict[str, Any]:
    """The sweep's own run (the trials' parent), in `experiment` (created with its artifacts if new)."""
    client = _client(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    experiment_id = (
        found.experiment_id
        if found is not None
        else client.create_experiment(experiment, artifact_location=artifact_location)
    )
    parent = client.create_run(experiment_id, run_name=step, tags={"step": step})
    return {"experiment_id": experiment_id, "run_id": parent.info.run_id}


def open_trial(
    tracking_uri: str, experiment_id: str, parent_run_id: str, step: str, index: int
) -> dict[str, Any]:
    """A trial's run, a child of the sweep's, which the trial process resumes (MLFLOW_RUN_ID)."""
    run = _client(tracking_uri).create_run(
        experiment_id,
        run_name=f"{step}-trial-{index:02d}",
        tags={"mlflow.parentRunId": parent_run_id, "step": f"{step}-trial"},
    )
    return {"run_id": run.info.run_id}


def latest_metric(tracking_uri: str, run_id: str, metric: str) -> dict[str, Any]:
    """{"value": the metric's latest logged value} (how Azure ML reads a primary metric), None if never logged."""
    value = _client(tracking_uri).get_run(run_id).data.metrics.get(metric)
    return {"value": None if value is None else float(value)}


def close_run(
    tracking_uri: str, run_id: str, status: str, metrics: dict[str, float], params: dict[str, Any]
) -> dict[str, Any]:
    """Log the run's last metrics and params, then end it with `status` (FINISHED or FAILED)."""
    client = _client(tracking_uri)
    for name, value in metrics.items():
        client.log_metric(run_id, name, value)
    for name, value in params.items():
        client.log_param(run_id, name, value)
    client.set_terminated(run_id, status)
    return {}
