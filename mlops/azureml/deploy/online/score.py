"""Online scoring entry for the Azure ML inference server: taxi fares from JSON rows, bad input as 4xx."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from azureml_inference_server_http.api.aml_request import AMLRequest, rawhttp
from azureml_inference_server_http.api.aml_response import AMLResponse

# data_collection.py sits beside this script: the AML server puts the code folder on sys.path (AML_APP_ROOT);
# this does the same for loaders that import the script by its path (tests, benchmarks).
_CODE_FOLDER = str(Path(__file__).resolve().parent)
if _CODE_FOLDER not in sys.path:
    sys.path.insert(0, _CODE_FOLDER)
import data_collection  # noqa: E402

MAX_ROWS_ENV = "SCORE_MAX_ROWS"
DEFAULT_MAX_ROWS = 5000
MODEL_SEARCH_DEPTH = 4
SPLIT_KEYS = frozenset({"columns", "data", "index"})
PAYLOAD_FORMS = (
    '{"input_data": [[<20 numbers>], ...]} (positional, CSV feature order), '
    '{"input_data": {"columns": [...], "data": [[...], ...]}} (pandas split) or '
    '{"input_data": [{"<feature>": <number>, ...}, ...]} (records)'
)

_model: Any = None
_features: tuple[str, ...] = ()
_columns: pd.Index = pd.Index([])
_max_rows: int = DEFAULT_MAX_ROWS
_bounds: tuple[np.ndarray, np.ndarray] | None = None
_collection: data_collection.Collection = data_collection.NoCollection()


class PayloadError(ValueError):
    """A request the caller must fix; `status` is the HTTP status it is answered with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


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
        f"no MLflow model (a directory holding 'MLmodel') within {max_depth} levels under {root}; "
        "set AZUREML_MODEL_DIR to the registered model's folder"
    )


def signature_features(model_dir: Path) -> tuple[str, ...]:
    """The input column names, in order, from the MLflow model signature."""
    from mlflow.models import Model

    signature = Model.load(str(model_dir / "MLmodel")).signature
    if signature is None or not signature.inputs.has_input_names():
        raise ValueError(
            f"{model_dir / 'MLmodel'} has no named-column input signature; save the model with "
            "signature=infer_signature(<features DataFrame>, ...)"
        )
    return tuple(signature.inputs.input_names())


def feature_bounds(model_dir: Path, features: Sequence[str]) -> tuple[np.ndarray, np.ndarray] | None:
    """Allowed [low, high] per feature, in `features` order, from the model's metadata (train.py writes it).

    None for a model saved without bounds: then only finiteness is checked.
    """
    from mlflow.models import Model

    bounds = (Model.load(str(model_dir / "MLmodel")).metadata or {}).get("feature_bounds")
    if not bounds:
        return None
    return np.array([bounds[f][0] for f in features], float), np.array(
        [bounds[f][1] for f in features], float
    )


def _check_bounds(matrix: np.ndarray, features: Sequence[str], bounds: tuple[np.ndarray, np.ndarray]) -> None:
    low, high = bounds
    outside = (matrix < low) | (matrix > high)
    if outside.any():
        row, column = (int(axis[0]) for axis in np.nonzero(outside))
        raise PayloadError(
            f"row {row}, feature {features[column]!r}: {matrix[row, column]:g} is outside the allowed range "
            f"[{low[column]:g}, {high[column]:g}]"
        )


def max_rows_from_env(environ: Mapping[str, str]) -> int:
    """The row limit per request from SCORE_MAX_ROWS (a positive integer), or the default."""
    raw = environ.get(MAX_ROWS_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_ROWS
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{MAX_ROWS_ENV} must be a positive integer, got {raw!r}")
    return int(raw)


def _check_number(value: object, row: int, feature: str) -> None:
    # bool is a subclass of int in Python, but JSON true/false is not a measurement.
    if type(value) is not float and type(value) is not int:
        raise PayloadError(
            f"row {row}, feature {feature!r}: {json.dumps(value)} is not a number; send JSON numbers"
        )


def _check_positional_rows(rows: list[Any], width: int, features: Sequence[str]) -> None:
    for index, row in enumerate(rows):
        if not isinstance(row, list):
            raise PayloadError(f"row {index} must be a list of {width} numbers, got {type(row).__name__}")
        if len(row) != width:
            raise PayloadError(f"row {index} has {len(row)} values, expected {width} (one per feature)")
        for feature, value in zip(features, row):
            _check_number(value, index, feature)


def _check_columns(columns: Sequence[object], features: Sequence[str]) -> None:
    names = [str(column) for column in columns]
    unknown = sorted(set(names) - set(features))
    missing = [feature for feature in features if feature not in names]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    problems = []
    if unknown:
        problems.append(f"unknown columns {unknown}")
    if missing:
        problems.append(f"missing columns {missing}")
    if duplicated:
        problems.append(f"duplicated columns {duplicated}")
    if problems:
        raise PayloadError("; ".join(problems) + f"; expected exactly these columns: {list(features)}")


def _check_row_count(count: int, max_rows: int) -> None:
    if count == 0:
        raise PayloadError("input_data holds no rows; send at least one row")
    if count > max_rows:
        raise PayloadError(f"{count} rows exceed the limit of {max_rows} per request; split the request", 413)


def _split_rows(frame: dict[str, Any], features: Sequence[str], max_rows: int) -> list[list[Any]]:
    """Rows in feature order from a pandas "split" frame ({"columns", "data", optional "index"})."""
    extra = sorted(set(frame) - SPLIT_KEYS)
    if extra or "columns" not in frame or "data" not in frame:
        raise PayloadError(
            f"input_data as an object must hold 'columns' and 'data' (and optionally 'index'), got keys "
            f"{sorted(frame)}"
        )
    columns, data = frame["columns"], frame["data"]
    if not isinstance(columns, list) or not all(isinstance(column, str) for column in columns):
        raise PayloadError("input_data.columns must be a list of feature names (strings)")
    if not isinstance(data, list):
        raise PayloadError(f"input_data.data must be a list of rows, got {type(data).__name__}")
    _check_row_count(len(data), max_rows)
    _check_columns(columns, features)
    index = frame.get("index")
    if index is not None and (not isinstance(index, list) or len(index) != len(data)):
        raise PayloadError(f"input_data.index must be a list with one entry per row ({len(data)})")
    _check_positional_rows(data, len(columns), columns)
    if list(columns) == list(features):
        return data
    position = {column: place for place, column in enumerate(columns)}
    order = [position[feature] for feature in features]
    return [[row[place] for place in order] for row in data]


def _record_rows(records: list[Any], features: Sequence[str]) -> list[list[Any]]:
    """Rows in feature order from a list of {feature: value} records."""
    rows = []
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise PayloadError(
                f"row {index} is {type(record).__name__} but row 0 is an object; use one row form throughout"
            )
        if len(record) != len(features) or not all(feature in record for feature in features):
            try:
                _check_columns(list(record), features)
            except PayloadError as problem:
                raise PayloadError(f"row {index}: {problem}") from None
        row = [record[feature] for feature in features]
        for feature, value in zip(features, row):
            _check_number(value, index, feature)
        rows.append(row)
    return rows


def _input_rows(input_data: object, features: Sequence[str], max_rows: int) -> list[list[Any]]:
    if isinstance(input_data, dict):
        return _split_rows(input_data, features, max_rows)
    if not isinstance(input_data, list):
        raise PayloadError(f"input_data must be a list of rows or a split object: {PAYLOAD_FORMS}")
    _check_row_count(len(input_data), max_rows)
    if isinstance(input_data[0], dict):
        return _record_rows(input_data, features)
    _check_positional_rows(input_data, len(features), features)
    return input_data


def _as_finite_matrix(rows: list[list[Any]], features: Sequence[str]) -> np.ndarray:
    try:
        matrix = np.array(rows, dtype=np.float64)
    except OverflowError:
        raise PayloadError("a value is too large for a 64-bit float; send plain decimal numbers") from None
    finite = np.isfinite(matrix)
    if not finite.all():
        row, column = (int(axis[0]) for axis in np.nonzero(~finite))
        value = matrix[row, column]
        raise PayloadError(f"row {row}, feature {features[column]!r}: {value} is not a finite number")
    return matrix


def parse_payload(
    raw: str | bytes,
    features: Sequence[str],
    max_rows: int = DEFAULT_MAX_ROWS,
    bounds: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """The request body as a float matrix, columns in `features` order; PayloadError says what is wrong."""
    if not raw:
        raise PayloadError(f"the request body is empty; send {PAYLOAD_FORMS}")
    try:
        body = json.loads(raw)
    except (ValueError, TypeError) as problem:
        raise PayloadError(f"the request body is not valid JSON ({problem}); send {PAYLOAD_FORMS}") from None
    if not isinstance(body, dict) or "input_data" not in body:
        raise PayloadError(f"the request body must be a JSON object with key 'input_data': {PAYLOAD_FORMS}")
    extra = sorted(set(body) - {"input_data"})
    if extra:
        raise PayloadError(f"unknown top-level keys {extra}; only 'input_data' is accepted")
    rows = _input_rows(body["input_data"], features, max_rows)
    matrix = _as_finite_matrix(rows, features)
    if bounds is not None:
        _check_bounds(matrix, features, bounds)
    return matrix


def error_response(problem: PayloadError) -> AMLResponse:
    """The inference server passes a returned Response through unchanged: our status, our JSON message."""
    return AMLResponse({"message": str(problem)}, problem.status, json_str=True)


def init() -> None:
    """Load the model once per worker and fix the feature order from its signature."""
    global _model, _features, _columns, _max_rows, _bounds, _collection
    import mlflow.sklearn
    from threadpoolctl import threadpool_limits

    model_dir = find_model_dir(Path(os.environ.get("AZUREML_MODEL_DIR", ".")))
    features = signature_features(model_dir)
    model = mlflow.sklearn.load_model(str(model_dir))
    fitted_names = getattr(model, "feature_names_in_", None)
    if fitted_names is not None and tuple(fitted_names) != features:
        raise ValueError(
            f"{model_dir}: the model was fitted on columns {list(fitted_names)} but its signature lists "
            f"{list(features)}; re-save the model with a signature inferred from its training frame"
        )
    # One OpenMP/BLAS thread: online requests carry a few rows, where a thread team costs more than it
    # saves (2-row boosted-trees predict: 16 ms CPU with 2 threads vs 3 ms with 1 on a busy 2-core box);
    # throughput comes from one worker process per core instead.
    threadpool_limits(limits=1)
    _model, _features, _max_rows = model, features, max_rows_from_env(os.environ)
    _bounds = feature_bounds(model_dir, features)
    # Object dtype on purpose: with pandas 3's string dtype, sklearn's per-call column-name check on the
    # frame is several times slower (measured 6.5 ms vs 3.9 ms per 2-row predict).
    _columns = pd.Index(features, dtype=object)
    _collection = data_collection.start(os.environ)


# @rawhttp hands run() the request itself: we read the body whatever its Content-Type (undecorated, the
# server passes form-encoded bodies, curl's default, as ""), and answer other methods with 405.
@rawhttp
def run(request: AMLRequest) -> dict[str, list[float]] | AMLResponse:
    """Score one request: {"predictions": [...]} or a 4xx JSON message naming the problem."""
    started = time.perf_counter()
    if request.method != "POST":
        return error_response(PayloadError(f"{request.method} is not supported; POST a JSON body", 405))
    try:
        matrix = parse_payload(request.get_data(), _features, _max_rows, _bounds)
    except PayloadError as problem:
        return error_response(problem)
    # The model contract is a DataFrame with named columns (feature pipelines select columns by name).
    frame = pd.DataFrame(matrix, columns=_columns, copy=False)
    predictions = np.ravel(_model.predict(frame)).tolist()
    _collection.collect(frame, predictions, started)
    return {"predictions": predictions}
