"""Test helper: a tiny taxi-fare MLflow model laid out the way Azure ML mounts a registered model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mlops.src.taxi_schema import FEATURE_SPECS

FEATURES: tuple[str, ...] = (
    "distance",
    "dropoff_latitude",
    "dropoff_longitude",
    "passengers",
    "pickup_latitude",
    "pickup_longitude",
    "store_forward",
    "vendor",
    "pickup_weekday",
    "pickup_month",
    "pickup_monthday",
    "pickup_hour",
    "pickup_minute",
    "pickup_second",
    "dropoff_weekday",
    "dropoff_month",
    "dropoff_monthday",
    "dropoff_hour",
    "dropoff_minute",
    "dropoff_second",
)
MODEL_NAME = "taxi-fare-model"
MODEL_VERSION = "1"


def synthetic_features(rows: int, seed: int = 0) -> pd.DataFrame:
    """Plausible NYC taxi trips (coordinates, times, flags) in the CSV feature order."""
    rng = np.random.default_rng(seed)
    columns = {
        "distance": rng.gamma(2.0, 1.6, rows).round(2),
        "dropoff_latitude": rng.uniform(40.60, 40.85, rows),
        "dropoff_longitude": rng.uniform(-74.02, -73.77, rows),
        "passengers": rng.integers(1, 7, rows),
        "pickup_latitude": rng.uniform(40.60, 40.85, rows),
        "pickup_longitude": rng.uniform(-74.02, -73.77, rows),
        "store_forward": rng.integers(0, 2, rows),
        "vendor": rng.integers(1, 3, rows),
        "pickup_weekday": rng.integers(0, 7, rows),
        "pickup_month": rng.integers(1, 13, rows),
        "pickup_monthday": rng.integers(1, 29, rows),
        "pickup_hour": rng.integers(0, 24, rows),
        "pickup_minute": rng.integers(0, 60, rows),
        "pickup_second": rng.integers(0, 60, rows),
    }
    for unit in ("weekday", "month", "monthday", "hour", "minute", "second"):
        columns[f"dropoff_{unit}"] = columns[f"pickup_{unit}"]
    return pd.DataFrame(columns)[list(FEATURES)].astype("float64")


def synthetic_fares(features: pd.DataFrame, seed: int = 0) -> pd.Series:
    """A metered fare: flag drop plus a per-mile rate, a night surcharge and a little noise (dollars)."""
    rng = np.random.default_rng(seed + 1)
    night = ((features["pickup_hour"] >= 20) | (features["pickup_hour"] < 6)).astype(float)
    fare = 2.5 + 2.5 * features["distance"] + 0.5 * night + rng.normal(0.0, 0.5, len(features))
    return fare.clip(lower=2.5).rename("cost")


def make_tiny_model(dest: Path, rows: int = 500, seed: int = 0) -> Path:
    """Train a small boosted-trees model, save it as an MLflow model, return the folder holding `MLmodel`.

    The layout is dest/azureml-models/taxi-fare-model/1/model/, so the returned path's parent is what
    Azure ML passes as AZUREML_MODEL_DIR.
    """
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.ensemble import HistGradientBoostingRegressor

    features = synthetic_features(rows, seed)
    fares = synthetic_fares(features, seed)
    # The regressor train.py uses, kept small: tests and benchmarks measure the serving path, not the fit.
    model = HistGradientBoostingRegressor(max_iter=50, random_state=seed).fit(features, fares)
    model_dir = dest / "azureml-models" / MODEL_NAME / MODEL_VERSION / "model"
    mlflow.sklearn.save_model(
        model,
        str(model_dir),
        serialization_format="cloudpickle",
        signature=infer_signature(features, model.predict(features)),
        input_example=features.head(2),
        metadata={"feature_bounds": {spec.name: [spec.low, spec.high] for spec in FEATURE_SPECS}},
    )
    return model_dir


def make_pipeline_model(dest: Path, rows: int = 800, seed: int = 0) -> Path:
    """train.py's model shape, kept small: the taxi feature step (pickled by value) + boosted trees.

    Saved like make_tiny_model (dest/azureml-models/taxi-fare-model/1/model/); returns the MLmodel folder.
    """
    import cloudpickle
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    from mlops.src import taxi_features

    features = synthetic_features(rows, seed)
    fares = synthetic_fares(features, seed)
    model = Pipeline(
        [
            ("features", FunctionTransformer(taxi_features.engineer_features)),
            ("regressor", HistGradientBoostingRegressor(max_iter=60, random_state=seed)),
        ]
    ).fit(features, fares)
    cloudpickle.register_pickle_by_value(taxi_features)
    model_dir = dest / "azureml-models" / MODEL_NAME / MODEL_VERSION / "model"
    mlflow.sklearn.save_model(
        model,
        str(model_dir),
        serialization_format="cloudpickle",
        signature=infer_signature(features, model.predict(features)),
        metadata={"feature_bounds": {spec.name: [spec.low, spec.high] for spec in FEATURE_SPECS}},
    )
    return model_dir
