"""Batch scoring entry for Azure ML batch endpoints: one taxi fare prediction per row of each CSV file."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

MODEL_SEARCH_DEPTH = 4
OUTPUT_COLUMNS = ["file", "row", "prediction"]
FAILED_FILES = "failed_files"
"""Key in the returned frame's attrs naming the files run() skipped ({path: problem}); AML ignores attrs."""

_model: Any = None
_features: tuple[str, ...] = ()
_bounds: dict[str, list[float]] = {}


class BatchInputError(ValueError):
    """An input file the caller must fix; the message names the file and the problem."""


def find_model_dir(root: Path, max_depth: int = MODEL_SEARCH_DEPTH) -> Path:
    """The shallowest directory holding an `MLmodel` file under root (AML nests it under the version)."""
    if not root.is_dir():
        raise FileNotFoundError(f"model folder {root} does not exist; point AZUREML_MODEL_DIR at the model")
    level = [root]
    for _ in range(max_depth + 1):
        for directory in sorted(level):
            if (directory / "MLmodel").is_file():
                return directory
        level = [child for directory in level for child in directory.iterdir() if child.is_dir()]
    raise FileNotFoundError(
        f"no MLflow model (a directory holding 'MLmodel') within {max_depth} levels under {root}"
    )


def signature_features(model_dir: Path) -> tuple[str, ...]:
    """The input column names, in order, from the MLflow model signature."""
    from mlflow.models import Model

    signature = Model.load(str(model_dir / "MLmodel")).signature
    if signature is None or not signature.inputs.has_input_names():
        raise ValueError(f"{model_dir / 'MLmodel'} has no named-column input signature")
    return tuple(signature.inputs.input_names())


def feature_bounds(model_dir: Path) -> dict[str, list[float]]:
    """Allowed [low, high] per feature from the model's metadata (train.py writes it); {} when absent."""
    from mlflow.models import Model

    return dict((Model.load(str(model_dir / "MLmodel")).metadata or {}).get("feature_bounds") or {})


def read_features(
    path: Path, features: Sequence[str], bounds: dict[str, list[float]] | None = None
) -> np.ndarray:
    """The file's features as a finite float matrix in model order; extra columns (e.g. cost) are ignored."""
    try:
        frame = pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, OSError) as problem:
        raise BatchInputError(f"{path}: not a readable CSV file ({problem})") from None
    missing = [feature for feature in features if feature not in frame.columns]
    if missing:
        raise BatchInputError(
            f"{path}: missing columns {missing}; the header must name all of {list(features)}"
        )
    if frame.empty:
        raise BatchInputError(f"{path}: has a header but no rows")
    selected = frame[list(features)]
    numeric = selected.apply(pd.to_numeric, errors="coerce")
    matrix = numeric.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(matrix)
    if bad.any():
        row, column = (int(axis[0]) for axis in np.nonzero(bad))
        value = selected.iat[row, column]
        raise BatchInputError(
            f"{path}: row {row} (after the header), column {features[column]!r}: {value!r} is not a "
            "finite number"
        )
    for column, feature in enumerate(features):
        low, high = (bounds or {}).get(feature, (-np.inf, np.inf))
        outside = np.nonzero((matrix[:, column] < low) | (matrix[:, column] > high))[0]
        if outside.size:
            raise BatchInputError(
                f"{path}: row {int(outside[0])} (after the header), column {feature!r}: "
                f"{matrix[outside[0], column]:g} is outside the allowed range [{low:g}, {high:g}]"
            )
    return matrix


def init() -> None:
    """Load the model once per worker process and fix the feature order from its signature."""
    global _model, _features, _bounds
    import mlflow.sklearn

    model_dir = find_model_dir(Path(os.environ.get("AZUREML_MODEL_DIR", ".")))
    _features = signature_features(model_dir)
    _bounds = feature_bounds(model_dir)
    _model = mlflow.sklearn.load_model(str(model_dir))


def run(mini_batch: list[str]) -> pd.DataFrame:
    """Score every row of every readable file: one output row per input row (file, row index, prediction).

    A file that is not valid input is skipped and named (stderr, and attrs[FAILED_FILES]) rather than
    raised: Azure ML fails the whole mini-batch when run() raises, and the good files with it.
    """
    frames, failed = [], {}
    for name in mini_batch:
        path = Path(name)
        try:
            matrix = read_features(path, _features, _bounds)
        except BatchInputError as problem:
            failed[name] = str(problem)
            print(f"batch_score.py: skipped {problem}", file=sys.stderr)
            continue
        predictions = np.ravel(_model.predict(pd.DataFrame(matrix, columns=list(_features))))
        rows = np.arange(len(matrix))
        frames.append(pd.DataFrame({"file": path.name, "row": rows, "prediction": predictions}))
    result = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=OUTPUT_COLUMNS)
    result.attrs[FAILED_FILES] = failed
    return result
