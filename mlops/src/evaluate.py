"""Pipeline step: score the candidate and the current champion on the same test set; decide deployment."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: pipeline steps have no display

import matplotlib.pyplot as plt
import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

# Siblings in mlops/src: Azure ML uploads this folder as the step's code.
from gate import CHAMPION_ALIAS, Decision, Metrics, decide, pick_champion
from taxi_schema import FEATURES, TARGET, TaxiDataError, load_taxi_csv
from tracking import registry_supports_aliases, step_run

# get_model_version_by_alias raises these when the model or its alias does not exist yet.
_NO_CHAMPION_ERRORS = {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}


def champion_version(client: MlflowClient, model_name: str) -> ModelVersion | None:
    """The champion (alias locally, champion tag on Azure ML), or None before the first registration."""
    try:
        if registry_supports_aliases():
            # get_model_version_by_alias, not search_model_versions: on sqlite the latter returns no aliases.
            return client.get_model_version_by_alias(model_name, CHAMPION_ALIAS)
        versions = client.search_model_versions(f"name='{model_name}'")
        picked = pick_champion((str(version.version), version.tags) for version in versions)
        return None if picked is None else client.get_model_version(model_name, picked)
    except MlflowException as error:
        if error.error_code in _NO_CHAMPION_ERRORS:
            return None
        raise


def predict(model_uri: str, test: pd.DataFrame) -> np.ndarray:
    """Predict through pyfunc, so the model's own signature contract is enforced on the test set."""
    model = mlflow.pyfunc.load_model(model_uri)
    return np.asarray(model.predict(test[list(FEATURES)]), dtype="float64")


def plot_predictions(actual: np.ndarray, predicted: np.ndarray, out: Path) -> None:
    """Scatter of predicted vs actual fares with the ideal diagonal."""
    figure, axes = plt.subplots(figsize=(6, 6))
    axes.scatter(actual, predicted, s=4, alpha=0.4)
    limits = [0.0, float(max(actual.max(), predicted.max())) * 1.05]
    axes.plot(limits, limits, color="black", linewidth=1, label="predicted = actual")
    axes.set(
        xlabel="actual fare ($)",
        ylabel="predicted fare ($)",
        xlim=limits,
        ylim=limits,
        title="Test set: predicted vs actual fare",
    )
    axes.legend(loc="upper left")
    figure.savefig(out, dpi=100, bbox_inches="tight")
    plt.close(figure)


def evaluation_record(
    candidate: Metrics, champion: tuple[str, Metrics] | None, decision: Decision
) -> dict[str, Any]:
    """The content of metrics.json."""
    return {
        **candidate.as_dict(),
        "champion": None if champion is None else {"version": champion[0], **champion[1].as_dict()},
        "deploy_flag": decision.flag,
        "reason": decision.reason,
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The step's CLI, as the Azure ML pipeline spec calls it."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model_name", required=True, help="registered model name to compare with")
    parser.add_argument(
        "--model_input", type=Path, required=True, help="folder of the candidate MLflow model"
    )
    parser.add_argument("--test_data", type=Path, required=True, help="folder holding test.csv")
    parser.add_argument(
        "--evaluation_output",
        type=Path,
        required=True,
        help="folder for metrics.json, deploy_flag and the plot",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Score, compare, and write metrics.json + deploy_flag; log both and the plot to MLflow."""
    args = parse_args(argv)
    test, notes = load_taxi_csv(args.test_data)
    print("\n".join(notes))
    actual = test[TARGET].to_numpy()
    args.evaluation_output.mkdir(parents=True, exist_ok=True)
    with step_run("evaluate"):
        predicted = predict(str(args.model_input), test)
        candidate = Metrics.of(actual, predicted)
        version = champion_version(MlflowClient(), args.model_name)
        champion = None
        if version is not None:
            uri = f"models:/{args.model_name}/{version.version}"
            champion = (str(version.version), Metrics.of(actual, predict(uri, test)))
        decision = decide(candidate, None if champion is None else champion[1])
        record = evaluation_record(candidate, champion, decision)
        (args.evaluation_output / "metrics.json").write_text(json.dumps(record, indent=2) + "\n")
        (args.evaluation_output / "deploy_flag").write_text(str(decision.flag))
        plot = args.evaluation_output / "predicted_vs_actual.png"
        plot_predictions(actual, predicted, plot)
        mlflow.log_metrics(
            {f"test_{name}": value for name, value in candidate.as_dict().items()}
            | {"deploy_flag": decision.flag}
        )
        if champion is not None:
            mlflow.log_metrics(
                {f"champion_test_{name}": value for name, value in champion[1].as_dict().items()}
            )
        mlflow.set_tag("deploy_reason", decision.reason)
        mlflow.log_artifact(str(plot))
        mlflow.log_artifact(str(args.evaluation_output / "metrics.json"))
    print(f"test {candidate}; deploy_flag={decision.flag}: {decision.reason}")


if __name__ == "__main__":
    try:
        main()
    except TaxiDataError as error:
        sys.exit(f"evaluate.py: {error}")
