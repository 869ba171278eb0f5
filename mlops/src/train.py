"""Pipeline step: fit the fare model on the train split, early-stopped on val; save it as an MLflow model.

Model: one sklearn Pipeline of a FunctionTransformer (taxi_features.engineer_features) and a
HistGradientBoostingRegressor, so scoring needs only the 20 raw columns, by name in any order.
- Why these features: a taxi fare is a formula of distance, time spent slower than 12 mph, surcharges
  by hour and weekday, and the JFK flat fare. The raw columns hide the trip time (split over ten date
  parts) and the places; computing trip minutes, mean speed, straight-line miles, night/peak flags and
  airport/Manhattan flags hands the trees those quantities directly instead of making them
  approximate differences of date parts with hundreds of splits.
- Why gradient boosting over the reference's 500-tree random forest: the fare is additive (base +
  distance + time + surcharges), which boosting's sum of shallow trees fits well, while a depth-10
  forest on sqrt(20) random columns per split averages coarse piecewise-constant fits. Histogram
  binning keeps training fast on two cores.
- Honest validation: the val split is used only for early stopping (X_val/y_val, so boosting stops
  when val loss stops improving); the test split is read only by evaluate.py.
- Reproducible: no subsampling, and random_state is the step's seed, so the same data and seed
  give the same model (the deploy gate relies on this to register nothing on a re-run).
- Tunable: the boosting parameters a sweep searches are flags (defaults below); boosting runs in
  chunks of CHUNK_ITERATIONS with warm_start, logging val_rmse after each, so a sweep's early
  termination policy sees the trial's progress (a warm-started fit grows the same trees as one fit).
- Lineage: the saved model's metadata holds the SHA-256 of the data it was fitted on and of this
  code folder, so reports and promotions can name exactly what produced it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import cloudpickle
import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
import sklearn
from mlflow.models import infer_signature
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

# Siblings in mlops/src: Azure ML uploads this folder as the step's code.
import taxi_features
from fingerprint import code_sha256, data_sha256
from gate import Metrics
from taxi_schema import FEATURE_SPECS, FEATURES, TARGET, TaxiDataError, load_taxi_csv
from tracking import step_run

SCORING_PACKAGES = {
    "mlflow": mlflow,
    "scikit-learn": sklearn,
    "pandas": pd,
    "numpy": np,
    "cloudpickle": cloudpickle,
}
"""What loading and running the saved model needs (pip name: module, pinned to the versions trained with)."""

HYPERPARAMETERS: dict[str, Any] = {
    "learning_rate": 0.1,
    "max_iter": 2000,
    "max_leaf_nodes": 31,
    "min_samples_leaf": 20,
    "l2_regularization": 1.0,
    "early_stopping": True,
    "n_iter_no_change": 30,
    "scoring": "loss",
}
TUNABLE: dict[str, type] = {
    "learning_rate": float,
    "max_leaf_nodes": int,
    "min_samples_leaf": int,
    "l2_regularization": float,
}
"""The parameters a sweep may set (flags of the same name), with their types."""
CHUNK_ITERATIONS = 50
"""Boosting iterations between two val_rmse reports (what an early termination policy evaluates)."""
PRIMARY_METRIC = "val_rmse"
"""The metric a sweep optimises (minimised): RMSE in dollars on the val split."""

Progress = Callable[[int, float], None]
"""Called after each chunk with (boosting iterations so far, val RMSE)."""


def fit_model(
    train: pd.DataFrame,
    val: pd.DataFrame,
    seed: int,
    params: Mapping[str, Any] | None = None,
    on_progress: Progress | None = None,
) -> Pipeline:
    """Fit features + boosting on `train`, stopping early on `val`; both hold `cost` + FEATURES.

    `params` override HYPERPARAMETERS (only TUNABLE keys); `on_progress` hears each chunk's val RMSE.
    """
    unknown = sorted(set(params or {}) - set(TUNABLE))
    if unknown:
        raise ValueError(f"not tunable: {unknown}; tunable parameters are {sorted(TUNABLE)}")
    settings = {**HYPERPARAMETERS, **(params or {})}
    features = FunctionTransformer(taxi_features.engineer_features)
    train_features = features.fit_transform(train[list(FEATURES)])
    val_features = features.transform(val[list(FEATURES)])
    regressor = HistGradientBoostingRegressor(
        **{**settings, "max_iter": CHUNK_ITERATIONS}, warm_start=True, random_state=seed
    )
    target = min(CHUNK_ITERATIONS, settings["max_iter"])
    while True:
        regressor.set_params(max_iter=target)
        regressor.fit(train_features, train[TARGET], X_val=val_features, y_val=val[TARGET])
        if on_progress is not None:
            predicted = regressor.predict(val_features)
            on_progress(regressor.n_iter_, Metrics.of(val[TARGET].to_numpy(), predicted).rmse)
        # Fewer iterations than asked for: early stopping ended the boosting inside this chunk.
        if regressor.n_iter_ < target or target >= settings["max_iter"]:
            break
        target = min(target + CHUNK_ITERATIONS, settings["max_iter"])
    # The steps are fitted one by one so that val reaches the regressor as engineered features;
    # Pipeline.fit would pass X_val through untransformed.
    return Pipeline([("features", features), ("regressor", regressor)])


def save_model(
    model: Pipeline, train: pd.DataFrame, output: Path, lineage: Mapping[str, str] | None = None
) -> None:
    """Save as an MLflow sklearn model that loads without this folder on sys.path; `lineage` goes into its metadata."""
    # The feature function lives in a sibling module; by reference, loading it would need
    # `import taxi_features` in the scoring server. By value, the model is self-contained.
    cloudpickle.register_pickle_by_value(taxi_features)
    example = train[list(FEATURES)].head(2)
    mlflow.sklearn.save_model(
        model,
        path=str(output),
        serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
        signature=infer_signature(train[list(FEATURES)], model.predict(example)),
        input_example=example,
        # Named, not inferred: inference loads the model in a subprocess (slow) and picks up
        # whatever else happens to be imported.
        pip_requirements=[f"{name}=={module.__version__}" for name, module in SCORING_PACKAGES.items()],
        # The scorers refuse values outside these (a month of 13 would otherwise crash the features).
        metadata={
            "feature_bounds": {spec.name: [spec.low, spec.high] for spec in FEATURE_SPECS},
            "lineage": dict(lineage or {}),
        },
    )


def lineage(train_data: Path, val_data: Path) -> dict[str, str]:
    """What the model is made of: the data it was fitted on (train + val splits) and this code folder."""
    return {
        "data_sha256": data_sha256(train_data, val_data),
        "code_sha256": code_sha256(Path(__file__).resolve().parent),
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The step's CLI, as the Azure ML pipeline spec calls it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train_data", type=Path, required=True, help="folder holding train.csv")
    parser.add_argument("--val_data", type=Path, required=True, help="folder holding val.csv")
    parser.add_argument("--model_output", type=Path, required=True, help="folder for the MLflow model")
    parser.add_argument("--seed", type=int, default=42)
    for name, kind in TUNABLE.items():
        parser.add_argument(f"--{name}", type=kind, default=HYPERPARAMETERS[name], help="boosting parameter")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Train, log params and val metrics, and write the model folder."""
    args = parse_args(argv)
    train, train_notes = load_taxi_csv(args.train_data)
    val, val_notes = load_taxi_csv(args.val_data)
    print("\n".join(train_notes + val_notes))
    params = {name: getattr(args, name) for name in TUNABLE}
    with step_run("train"):
        model = fit_model(
            train,
            val,
            args.seed,
            params,
            on_progress=lambda iterations, rmse: mlflow.log_metric(PRIMARY_METRIC, rmse, step=iterations),
        )
        val_metrics = Metrics.of(val[TARGET].to_numpy(), model.predict(val[list(FEATURES)]))
        mlflow.log_params(
            {
                **HYPERPARAMETERS,
                **params,
                "model": "HistGradientBoostingRegressor",
                "seed": args.seed,
                "train_rows": len(train),
                "val_rows": len(val),
            }
        )
        iterations = model.named_steps["regressor"].n_iter_
        # At the last chunk's step, so the primary metric's latest value is the final model's.
        mlflow.log_metrics(
            {f"val_{name}": value for name, value in val_metrics.as_dict().items()}
            | {"boosting_iterations": iterations},
            step=iterations,
        )
        save_model(model, train, args.model_output, lineage(args.train_data, args.val_data))
    print(f"val {val_metrics}; model saved to {args.model_output}")


if __name__ == "__main__":
    try:
        main()
    except TaxiDataError as error:
        sys.exit(f"train.py: {error}")
