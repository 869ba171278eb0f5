"""Pipeline step: register the evaluated model and mark it champion, only when evaluate said so.

The mark is the `champion` alias on MLflow's own registry and the champion=true version tag on Azure ML's,
which does not support aliases (AZURE-FACTS 16).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient

# Siblings in mlops/src: Azure ML uploads this folder as the step's code.
from gate import CHAMPION_ALIAS, CHAMPION_TAG, CHAMPION_TAG_VALUE
from tracking import registry_supports_aliases, step_run

MODEL_ARTIFACT = "model"


def read_evaluation(evaluation_output: Path) -> tuple[int, dict[str, Any]]:
    """The gate's verdict and metrics as evaluate.py wrote them; a flag other than 0/1 is an error."""
    flag_file, metrics_file = evaluation_output / "deploy_flag", evaluation_output / "metrics.json"
    for path in (flag_file, metrics_file):
        if not path.is_file():
            raise SystemExit(f"{path}: missing; pass the evaluate step's evaluation_output folder")
    text = flag_file.read_text().strip()
    if text not in {"0", "1"}:
        raise SystemExit(f"{flag_file}: holds {text!r}; evaluate.py writes 0 or 1")
    return int(text), json.loads(metrics_file.read_text())


def mark_champion(client: MlflowClient, model_name: str, version: str) -> None:
    """Make `version` the champion: move the alias, or tag it and then untag every other version."""
    if registry_supports_aliases():
        client.set_registered_model_alias(model_name, CHAMPION_ALIAS, version)
        return
    # Tag first: if untagging the old champion is lost, the newest tagged version still wins (gate.py).
    client.set_model_version_tag(model_name, version, CHAMPION_TAG, CHAMPION_TAG_VALUE)
    for other in client.search_model_versions(f"name='{model_name}'"):
        if str(other.version) != version and CHAMPION_TAG in (other.tags or {}):
            client.delete_model_version_tag(model_name, str(other.version), CHAMPION_TAG)


def register(model_name: str, model_path: Path, test_metrics: dict[str, Any], run_id: str) -> str:
    """Log the model folder as it is (the bytes evaluate scored), register it, mark it champion."""
    if not (model_path / "MLmodel").is_file():
        raise SystemExit(f"{model_path}: no MLmodel file; pass the train step's model_output folder")
    mlflow.log_artifacts(str(model_path), MODEL_ARTIFACT)
    version = mlflow.register_model(
        f"runs:/{run_id}/{MODEL_ARTIFACT}",
        model_name,
        # The evaluation record promotion requires: the test scores and the gate's reason.
        tags={f"test_{name}": str(test_metrics[name]) for name in ("r2", "rmse", "mae")}
        | {"deploy_reason": str(test_metrics.get("reason", ""))},
    ).version
    mark_champion(MlflowClient(), model_name, str(version))
    return str(version)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The step's CLI, as the Azure ML pipeline spec calls it."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model_name", required=True)
    parser.add_argument("--model_path", type=Path, required=True, help="folder of the MLflow model")
    parser.add_argument("--evaluation_output", type=Path, required=True, help="the evaluate step's output")
    parser.add_argument(
        "--model_info_output_path", type=Path, required=True, help="folder for model_info.json"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Register when deploy_flag is 1; always write model_info.json."""
    args = parse_args(argv)
    flag, metrics = read_evaluation(args.evaluation_output)
    with step_run("register") as run:
        version = register(args.model_name, args.model_path, metrics, run.info.run_id) if flag == 1 else None
        mlflow.log_params({"model_name": args.model_name, "deploy_flag": flag})
        mlflow.set_tag("registered_version", version or "none")
    info = {
        "model_name": args.model_name,
        "model_version": version,
        "registered": version is not None,
        "deploy_flag": flag,
    }
    args.model_info_output_path.mkdir(parents=True, exist_ok=True)
    (args.model_info_output_path / "model_info.json").write_text(json.dumps(info, indent=2) + "\n")
    print(
        f"registered {args.model_name} version {version}"
        if version
        else f"not registered: {metrics.get('reason', 'deploy_flag is 0')}"
    )


if __name__ == "__main__":
    main()
