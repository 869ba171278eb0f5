"""MLflow run handling shared by the step scripts: join the run Azure ML opened, or start one locally."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import mlflow


@contextmanager
def step_run(step: str) -> Iterator[mlflow.ActiveRun]:
    """The active MLflow run, starting one named after the step only when none is active.

    The tracking URI is never set here: the environment provides it (a sqlite URI from the local
    runner, the workspace's URI inside an Azure ML job).
    """
    active = mlflow.active_run()
    if active is not None:
        yield active
        return
    # Inside an Azure ML job MLFLOW_RUN_ID names the job's run; start_run() resumes it, and renaming
    # it after the step would overwrite the job's display name.
    run_name = None if os.environ.get("MLFLOW_RUN_ID") else step
    with mlflow.start_run(run_name=run_name) as run:
        mlflow.set_tag("step", step)
        yield run


def registry_supports_aliases() -> bool:
    """Whether the model registry keeps aliases: MLflow's own does; Azure ML's (an azureml:// URI) keeps tags only."""
    return not mlflow.get_registry_uri().startswith("azureml")
