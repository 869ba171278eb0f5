"""Online scoring entry for the Azure ML inference server: taxi fares from JSON rows, bad input as 4xx."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from itertools import chain
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
BODY_BYTES_PER_ROW = 2048
"""Body size allowed per row of the row limit: a records row with every name and indentation is ~1 KiB."""
MODEL_SEARCH_DEPTH = 4
PROBE_ROWS = 256
"""In-bounds rows on which init() proves the numpy path predicts exactly what the model predicts."""
SHOWN_CHARS = 40
SPLIT_KEYS = frozenset({"columns", "data", "index"})
NUMBER_TYPES = frozenset({int, float})
PAYLOAD_FORMS = (
    '{"input_data": [[<20 numbers>], ...]} (positional, CSV feature order), '
    '{"input_data": {"columns": [...], "data": [[...], ...]}} (pandas split) or '
    '{"input_data": [{"<feature>": <number>, ...}, ...]} (records)'
)

Predict = Callable[[np.ndarray], np.ndarray]
"""Fares for a finite float matrix whose columns are the model's features in signature order."""

_predict: Predict | None = None
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


# ---- the model -----------------------------------------------------------------------------------


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


class CompiledTrees:
    """A fitted HistGradientBoostingRegressor as flat numpy arrays: every tree descends one level per step.

    sklearn walks its trees one by one (a Cython call each, ~25 us apiece with input checks on top), which
    for a few rows costs far more than the comparisons themselves; here all rows x trees move together,
    so a 2-row request over ~100 trees takes about a dozen vectorised steps. Comparisons (x <= threshold
    goes left) and the order of summation (baseline, then tree by tree) are sklearn's, so the results
    are the same to the last bit; init() checks that before it uses this.
    """

    def __init__(self, regressor: Any) -> None:
        """ValueError when the regressor has a part this does not reproduce (categories, a preprocessor)."""
        if type(regressor).__name__ != "HistGradientBoostingRegressor":
            raise ValueError(f"{type(regressor).__name__} is not a HistGradientBoostingRegressor")
        if getattr(regressor, "_preprocessor", None) is not None or regressor.n_trees_per_iteration_ != 1:
            raise ValueError("categorical features or several trees per iteration")
        trees = [iteration[0].nodes for iteration in regressor._predictors]
        nodes = np.concatenate(trees)
        if nodes["is_categorical"].any():
            raise ValueError("categorical splits")
        offsets = np.cumsum([0, *(len(tree) for tree in trees[:-1])])
        owner_offset = np.repeat(offsets, [len(tree) for tree in trees])
        index = np.arange(len(nodes))
        leaf = nodes["is_leaf"].astype(bool)
        left = np.where(leaf, index, nodes["left"].astype(np.intp) + owner_offset)
        right = np.where(leaf, index, nodes["right"].astype(np.intp) + owner_offset)
        # Row-major pairs: child = children[2 * node + (x > threshold)]. A leaf points at itself with an
        # infinite threshold, so rows that reached their leaf early stay there.
        self.children = np.column_stack([left, right]).ravel()
        self.feature = np.where(leaf, 0, nodes["feature_idx"]).astype(np.intp)
        self.threshold = np.where(leaf, np.inf, nodes["num_threshold"])
        self.value = nodes["value"].astype(np.float64)
        self.roots = offsets.astype(np.intp)
        self.steps = int(nodes["depth"][leaf].max())
        self.width = int(regressor.n_features_in_)
        self.baseline = 0.0 + float(np.ravel(regressor._baseline_prediction)[0])
        self.inverse_link = regressor._loss.link.inverse

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        """Predictions for a float matrix of the regressor's features (no NaN: those take sklearn's path)."""
        rows = matrix.shape[0]
        flat = np.ascontiguousarray(matrix, dtype=np.float64).ravel()
        row_start = (np.arange(rows, dtype=np.intp) * self.width)[:, None]
        node = np.repeat(self.roots[None, :], rows, axis=0)
        for _ in range(self.steps):
            values = flat[row_start + self.feature[node]]
            node = self.children[2 * node + (values > self.threshold[node])]
        leaves = np.concatenate([np.full((rows, 1), self.baseline), self.value[node]], axis=1)
        # add.accumulate is a strictly left-to-right sum: sklearn's order (baseline + tree 1 + tree 2 ...).
        return np.asarray(self.inverse_link(np.add.accumulate(leaves, axis=1)[:, -1]))


def numpy_predictor(model: Any, features: Sequence[str]) -> Predict:
    """The model's prediction as numpy only, for a bare regressor or a [feature step, regressor] Pipeline.

    ValueError when the model has another shape, or its feature step no matrix form (see taxi_features).
    """
    steps = [step for _, step in model.steps] if type(model).__name__ == "Pipeline" else [model]
    trees = CompiledTrees(steps[-1])
    if len(steps) == 1:
        return trees.predict
    if len(steps) != 2 or type(steps[0]).__name__ != "FunctionTransformer" or steps[0].kw_args:
        raise ValueError("the pipeline is not [FunctionTransformer, HistGradientBoostingRegressor]")
    matrix_form = getattr(steps[0].func, "matrix_form", None)
    if matrix_form is None:
        raise ValueError("the feature step has no matrix form (a model trained before it existed)")
    columns = tuple(features)

    def predict(matrix: np.ndarray) -> np.ndarray:
        return trees.predict(matrix_form(matrix, columns))

    return predict


def probe_rows(bounds: tuple[np.ndarray, np.ndarray], count: int = PROBE_ROWS) -> np.ndarray:
    """Seeded rows inside the bounds, half of them whole numbers (like dates and counts are)."""
    low, high = bounds
    spread = np.random.default_rng(0).uniform(low, high, size=(count, len(low)))
    spread[: count // 2] = np.clip(np.round(spread[: count // 2]), low, high)
    return np.vstack([low, high, spread])


def choose_predictor(
    model: Any, features: Sequence[str], bounds: tuple[np.ndarray, np.ndarray] | None
) -> tuple[Predict, str]:
    """The numpy path when it predicts the probe rows exactly as the model does, else the model itself."""
    columns = pd.Index(features, dtype=object)

    def through_model(matrix: np.ndarray) -> np.ndarray:
        # Object dtype on purpose: with pandas 3's string dtype, sklearn's per-call column-name check on
        # the frame is several times slower (measured 6.5 ms vs 3.9 ms per 2-row predict).
        return np.ravel(model.predict(pd.DataFrame(matrix, columns=columns, copy=False)))

    if bounds is None:
        return through_model, "the model's own predict (no feature bounds to draw probe rows from)"
    try:
        fast = numpy_predictor(model, features)
    except (ValueError, AttributeError, IndexError, TypeError) as reason:
        return through_model, f"the model's own predict ({reason})"
    probes = probe_rows(bounds)
    if not np.array_equal(fast(probes), through_model(probes)):
        return through_model, "the model's own predict (the numpy path disagreed on the probe rows)"

    def predict(matrix: np.ndarray) -> np.ndarray:
        predictions = fast(matrix)
        # In-bounds rows never give NaN features; anything else is left to sklearn's missing-value rules.
        return predictions if np.isfinite(predictions).all() else through_model(matrix)

    return predict, f"numpy (matches the model exactly on {len(probes)} probe rows)"


# ---- the request ---------------------------------------------------------------------------------


def max_rows_from_env(environ: Mapping[str, str]) -> int:
    """The row limit per request from SCORE_MAX_ROWS (a positive integer), or the default."""
    raw = environ.get(MAX_ROWS_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_ROWS
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{MAX_ROWS_ENV} must be a positive integer, got {raw!r}")
    return int(raw)


def max_body_bytes(max_rows: int) -> int:
    """The largest request body read: the row limit's worth of generously formatted rows."""
    return max_rows * BODY_BYTES_PER_ROW


def shown(value: object) -> str:
    """A value as an error message quotes it: JSON scalars as JSON, long strings cut, containers by kind."""
    if isinstance(value, list):
        return "a JSON array"
    if isinstance(value, dict):
        return "a JSON object"
    if isinstance(value, str) and len(value) > SHOWN_CHARS:
        return json.dumps(value[:SHOWN_CHARS]) + f" (cut from {len(value)} characters)"
    return json.dumps(value)


def _check_number(value: object, row: int, feature: str) -> None:
    # bool is a subclass of int in Python, but JSON true/false is not a measurement.
    if type(value) is not float and type(value) is not int:
        raise PayloadError(
            f"row {row}, feature {feature!r}: {shown(value)} is not a number; send JSON numbers"
        )


def _check_positional_rows(rows: list[Any], width: int, features: Sequence[str]) -> None:
    # One pass in C for the common, valid request; the loop below only runs to name a problem.
    if all(type(row) is list and len(row) == width for row in rows) and NUMBER_TYPES.issuperset(
        map(type, chain.from_iterable(rows))
    ):
        return
    for index, row in enumerate(rows):
        if not isinstance(row, list):
            raise PayloadError(f"row {index} must be a list of {width} numbers, got {shown(row)}")
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
        problems.append(f"unknown columns {[name[:SHOWN_CHARS] for name in unknown[:5]]}")
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
        keys = [shown(key) for key in sorted(frame)[:10]]
        raise PayloadError(
            f"input_data as an object must hold 'columns' and 'data' (and optionally 'index'), got keys {keys}"
        )
    columns, data = frame["columns"], frame["data"]
    if not isinstance(columns, list) or not all(isinstance(column, str) for column in columns):
        raise PayloadError("input_data.columns must be a list of feature names (strings)")
    if not isinstance(data, list):
        raise PayloadError(f"input_data.data must be a list of rows, got {shown(data)}")
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
                f"row {index} is {shown(record)} but row 0 is an object; use one row form throughout"
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


def _check_bounds(matrix: np.ndarray, features: Sequence[str], bounds: tuple[np.ndarray, np.ndarray]) -> None:
    low, high = bounds
    outside = (matrix < low) | (matrix > high)
    if outside.any():
        row, column = (int(axis[0]) for axis in np.nonzero(outside))
        raise PayloadError(
            f"row {row}, feature {features[column]!r}: {matrix[row, column]:g} is outside the allowed range "
            f"[{low[column]:g}, {high[column]:g}]"
        )


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last of duplicated keys silently; two values for one feature is ambiguous.
    found = dict(pairs)
    if len(found) != len(pairs):
        names = [key for key, _ in pairs]
        duplicated = next(key for key in found if names.count(key) > 1)
        raise PayloadError(f"key {shown(duplicated)} appears twice in one object; send each key once")
    return found


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
        body = json.loads(raw, object_pairs_hook=_unique_keys)
    except PayloadError:
        raise
    except RecursionError:
        raise PayloadError("the request body is nested too deeply; rows are lists of numbers") from None
    except (ValueError, TypeError) as problem:
        detail = str(problem)[:200]
        raise PayloadError(f"the request body is not valid JSON ({detail}); send {PAYLOAD_FORMS}") from None
    if not isinstance(body, dict) or "input_data" not in body:
        raise PayloadError(f"the request body must be a JSON object with key 'input_data': {PAYLOAD_FORMS}")
    extra = sorted(set(body) - {"input_data"})
    if extra:
        raise PayloadError(f"unknown top-level keys {[shown(key) for key in extra[:5]]}; only 'input_data'")
    rows = _input_rows(body["input_data"], features, max_rows)
    matrix = _as_finite_matrix(rows, features)
    if bounds is not None:
        _check_bounds(matrix, features, bounds)
    return matrix


def read_body(request: AMLRequest, limit: int) -> bytes:
    """The request body, refused with 413 before it is read when it is larger than `limit` bytes."""
    length = request.content_length
    if length is not None and length > limit:
        raise PayloadError(f"the request body has {length} bytes, over the limit of {limit}; split it", 413)
    # A body without Content-Length (chunked) is read up to the limit and one byte more, never whole.
    body = request.stream.read(limit + 1)
    if len(body) > limit:
        raise PayloadError(f"the request body is over the limit of {limit} bytes; split the request", 413)
    return body


def error_response(problem: PayloadError) -> AMLResponse:
    """The inference server passes a returned Response through unchanged: our status, our JSON message."""
    return AMLResponse({"message": str(problem)}, problem.status, json_str=True)


# ---- the AML entry points ------------------------------------------------------------------------


def init() -> None:
    """Load the model once per worker, fix the feature order from its signature, pick the prediction path."""
    global _predict, _features, _columns, _max_rows, _bounds, _collection
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
    _features, _max_rows = features, max_rows_from_env(os.environ)
    _bounds = feature_bounds(model_dir, features)
    _predict, path = choose_predictor(model, features, _bounds)
    print(f"score.py: {model_dir.name} predicts through {path}")
    _columns = pd.Index(features, dtype=object)
    _collection = data_collection.start(os.environ)


# @rawhttp hands run() the request itself: we read the body whatever its Content-Type (undecorated, the
# server passes form-encoded bodies, curl's default, as ""), bound its size, and answer other methods 405.
@rawhttp
def run(request: AMLRequest) -> dict[str, list[float]] | AMLResponse:
    """Score one request: {"predictions": [...]} or a 4xx JSON message naming the problem."""
    started = time.perf_counter()
    if request.method != "POST":
        return error_response(PayloadError(f"{request.method} is not supported; POST a JSON body", 405))
    assert _predict is not None, "init() runs before the server routes any request to run()"
    try:
        matrix = parse_payload(read_body(request, max_body_bytes(_max_rows)), _features, _max_rows, _bounds)
    except PayloadError as problem:
        return error_response(problem)
    predictions = _predict(matrix).tolist()
    # The frame is built only for a collector: the numpy path needs none.
    if not isinstance(_collection, data_collection.NoCollection):
        _collection.collect(pd.DataFrame(matrix, columns=_columns, copy=False), predictions, started)
    return {"predictions": predictions}
