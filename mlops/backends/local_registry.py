"""The local backend's MLflow registry calls, run in a process forked from the warm interpreter.

The orchestrating process never imports MLflow (seconds of start-up on two cores); these functions
run through mlops.prefork.ForkLauncher.call, so their arguments and results are plain JSON values.
Expected failures come back as {"error": message} for the caller to turn into its own exception.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

# get_model_version_by_alias raises these when the model or its alias does not exist yet.
NOT_FOUND = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")


def _client(tracking_uri: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def ensure_experiment(tracking_uri: str, name: str, artifact_location: str) -> dict[str, Any]:
    """Create the experiment with its artifacts under `artifact_location` unless it exists."""
    client = _client(tracking_uri)
    if client.get_experiment_by_name(name) is None:
        client.create_experiment(name, artifact_location=artifact_location)
        return {"created": True}
    return {"created": False}


def alias_version(tracking_uri: str, model_name: str, alias: str) -> dict[str, Any]:
    """{"version": "N"} for the version `alias` points to, {"version": None} without one, or {"error"}."""
    from mlflow.exceptions import MlflowException

    try:
        return {"version": str(_client(tracking_uri).get_model_version_by_alias(model_name, alias).version)}
    except MlflowException as error:
        # No such model, or no such alias on it (MLflow reports the latter as a bad parameter).
        if error.error_code in NOT_FOUND:
            return {"version": None}
        return {"error": f"reading {model_name}@{alias} from {tracking_uri}: {error}"}


def model_version(tracking_uri: str, model_name: str, version: str) -> dict[str, Any]:
    """{"model": {"tags", "run_id"}} of a registered version, {"model": None} if there is none, or {"error"}."""
    from mlflow.exceptions import MlflowException

    try:
        found = _client(tracking_uri).get_model_version(model_name, version)
    except MlflowException as error:
        if error.error_code in NOT_FOUND:
            return {"model": None}
        return {"error": f"reading {model_name}:{version} from {tracking_uri}: {error}"}
    return {"model": {"tags": dict(found.tags), "run_id": found.run_id}}


def download_model(tracking_uri: str, model_name: str, version: str, target: str) -> dict[str, Any]:
    """Lay the registered version out at `target` as AML mounts it: {"path"}, or {"missing"}/{"error"}."""
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    # A progress bar per download would interleave with the step lines on stderr.
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    try:
        source = _client(tracking_uri).get_model_version_download_uri(model_name, version)
    except MlflowException as error:
        return {"missing": error.message}
    destination = Path(target)
    scratch = destination.with_name(f"{destination.name}.partial")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=str(scratch), tracking_uri=tracking_uri)
    model_file = next(scratch.rglob("MLmodel"), None)
    if model_file is None:
        return {"error": f"model {model_name}:{version} at {source} holds no MLmodel file"}
    shutil.rmtree(destination, ignore_errors=True)
    model_file.parent.rename(destination)
    shutil.rmtree(scratch, ignore_errors=True)
    return {"path": str(destination)}
