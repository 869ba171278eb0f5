"""Local model monitoring: drift statistics, the bounded data collection, and the Markdown/PNG report."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
import types
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlops.data import generate_trips
from mlops.drift import DriftError, Thresholds, column_drift, drift_by_column
from mlops.monitor_report import (
    FEATURES,
    MonitorError,
    Production,
    compare,
    load_collection,
    write_report,
)

ONLINE = Path(__file__).resolve().parents[1] / "mlops" / "azureml" / "deploy" / "online"


def _load_collection_module() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("data_collection_under_test", ONLINE / "data_collection.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


data_collection = _load_collection_module()


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return generate_trips(5000, seed=1)


@pytest.fixture(scope="module")
def unshifted() -> pd.DataFrame:
    return generate_trips(3000, seed=2)


def shifted_trips(trips: pd.DataFrame) -> pd.DataFrame:
    """Longer trips later in the day: what a new airport route or a timetable change would bring."""
    moved = trips.copy()
    moved["distance"] = moved["distance"] * 1.6
    moved["pickup_hour"] = (moved["pickup_hour"] + 4) % 24
    return moved


# ------------------------------------------------------------------ statistics


def test_identical_samples_have_no_drift_by_any_metric() -> None:
    values = np.random.default_rng(0).normal(10, 2, 4000)
    drift = column_drift("x", values, values, "numerical")
    assert drift.metrics["jensen_shannon_distance"] == pytest.approx(0.0, abs=1e-9)
    assert drift.metrics["normalized_wasserstein_distance"] == pytest.approx(0.0, abs=1e-12)
    assert drift.metrics["population_stability_index"] == pytest.approx(0.0, abs=1e-9)
    assert drift.metrics["two_sample_kolmogorov_smirnov_test"] == pytest.approx(1.0)
    assert not drift.drifted


def test_a_one_standard_deviation_shift_is_a_normalized_wasserstein_distance_of_one() -> None:
    rng = np.random.default_rng(1)
    values = rng.normal(50, 5, 20000)
    drift = column_drift("x", values, values + 5, "numerical")
    assert drift.metrics["normalized_wasserstein_distance"] == pytest.approx(1.0, rel=0.01)
    assert drift.drifted


def test_disjoint_samples_have_the_largest_jensen_shannon_distance() -> None:
    drift = column_drift("x", np.zeros(100), np.ones(100), "numerical")
    # Base 2: the distance of two distributions with no common support is exactly 1.
    assert drift.metrics["jensen_shannon_distance"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("production_share", "drifted"),
    [(0.5, False), (0.52, False), (0.9, True)],
)
def test_categorical_drift_follows_the_category_shares(production_share: float, drifted: bool) -> None:
    reference = np.array([1] * 500 + [2] * 500)
    ones = int(1000 * production_share)
    production = np.array([1] * ones + [2] * (1000 - ones))
    drift = column_drift("vendor", reference, production, "categorical")
    assert drift.metric == "jensen_shannon_distance"
    assert drift.drifted is drifted


def test_p_value_tests_alert_when_the_p_value_falls_below_the_threshold() -> None:
    rng = np.random.default_rng(2)
    values = rng.normal(0, 1, 3000)
    by_ks = Thresholds(numerical_metric="two_sample_kolmogorov_smirnov_test", numerical=0.01)
    assert not column_drift("x", values, rng.normal(0, 1, 3000), "numerical", by_ks).drifted
    assert column_drift("x", values, rng.normal(0.5, 1, 3000), "numerical", by_ks).drifted


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"numerical_metric": "euclid"}, "numerical metric 'euclid'"),
        ({"categorical_metric": "normalized_wasserstein_distance"}, "categorical metric"),
        ({"numerical": 0.0}, "numerical threshold must be a positive number"),
        ({"categorical": float("nan")}, "categorical threshold"),
    ],
)
def test_thresholds_refuse_unknown_metrics_and_non_positive_values(kwargs: dict, message: str) -> None:
    with pytest.raises(DriftError, match=message):
        Thresholds(**kwargs)


def test_drift_names_missing_columns_and_too_little_data() -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0]})
    with pytest.raises(DriftError, match=r"production data lacks columns \['b'\]"):
        drift_by_column(frame.assign(b=1.0), frame, ["a", "b"])
    with pytest.raises(DriftError, match="'a': production data has 1 finite values"):
        drift_by_column(frame, pd.DataFrame({"a": [1.0, np.nan, np.inf]}), ["a"])


def test_unshifted_traffic_crosses_no_threshold(reference: pd.DataFrame, unshifted: pd.DataFrame) -> None:
    drift = compare(reference, Production("test", unshifted, unshifted["cost"], None))
    assert {column.name for column in drift} == {*FEATURES, "prediction"}
    assert [column.name for column in drift if column.drifted] == []


def test_shifted_traffic_crosses_the_thresholds_of_the_shifted_features(
    reference: pd.DataFrame, unshifted: pd.DataFrame
) -> None:
    moved = shifted_trips(unshifted)
    drift = compare(reference, Production("test", moved, None, None))
    assert {column.name for column in drift if column.drifted} == {"distance", "pickup_hour"}
    assert drift[0].drifted and drift[0].name == "distance", "the most drifted column comes first"


# ------------------------------------------------------------------ data collection


def collect_trips(collection: Any, trips: pd.DataFrame, per_request: int = 4) -> int:
    features = trips[list(FEATURES)]
    requests = 0
    for start in range(0, len(features), per_request):
        batch = features.iloc[start : start + per_request]
        collection.collect(
            batch, trips["cost"].iloc[start : start + per_request].tolist(), time.perf_counter()
        )
        requests += 1
    return requests


def test_local_collection_writes_both_collections_correlated(tmp_path: Path, unshifted: pd.DataFrame) -> None:
    collection = data_collection.JsonLinesCollection(tmp_path)
    requests = collect_trips(collection, unshifted.head(40))
    inputs = [json.loads(line) for f in (tmp_path / "model_inputs").rglob("*.jsonl") for line in f.open()]
    outputs = [json.loads(line) for f in (tmp_path / "model_outputs").rglob("*.jsonl") for line in f.open()]
    assert len(inputs) == len(outputs) == requests == 10
    assert {r["correlationid"] for r in inputs} == {r["correlationid"] for r in outputs}
    assert list(inputs[0]["data"][0]) == list(FEATURES)
    assert set(outputs[0]["data"][0]) == {"prediction"} and outputs[0]["latency_ms"] >= 0
    # The folder layout of Azure's collector: <collection>/<yyyy>/<MM>/<dd>/<HH>/<file>.jsonl.
    relative = next((tmp_path / "model_inputs").rglob("*.jsonl")).relative_to(tmp_path / "model_inputs")
    assert len(relative.parts) == 5 and all(part.isdigit() for part in relative.parts[:4])
    production = load_collection(tmp_path)
    pd.testing.assert_frame_equal(
        production.features, unshifted.head(40)[list(FEATURES)].reset_index(drop=True), check_dtype=False
    )
    assert production.predictions.tolist() == pytest.approx(unshifted.head(40)["cost"].tolist())
    assert len(production.requests) == 10


def test_local_collection_stays_within_its_byte_budget(tmp_path: Path, unshifted: pd.DataFrame) -> None:
    budget = 65536
    collection = data_collection.JsonLinesCollection(tmp_path, max_bytes=budget)
    collect_trips(collection, pd.concat([unshifted] * 2), per_request=8)
    files = list(tmp_path.rglob("*.jsonl"))
    total = sum(file.stat().st_size for file in files)
    # Budget plus at most one segment per file being written (two collections in one process).
    assert total <= budget + 2 * (budget // data_collection.SEGMENTS) + 4096
    assert total > budget // 2, "pruning keeps recent data, it does not empty the folder"
    assert len(load_collection(tmp_path).features) > 0


@pytest.mark.parametrize(("raw", "ok"), [("", True), ("65536", True), ("100", False), ("1e6", False)])
def test_collection_budget_from_the_environment(raw: str, ok: bool) -> None:
    environ = {data_collection.MAX_BYTES_ENV: raw}
    if ok:
        assert data_collection.max_bytes_from_env(environ) == (int(raw) if raw else 64 * 1024 * 1024)
    else:
        with pytest.raises(ValueError, match="MLOPS_COLLECT_MAX_BYTES"):
            data_collection.max_bytes_from_env(environ)


def test_collection_is_chosen_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    local = data_collection.start({data_collection.COLLECT_DIR_ENV: str(tmp_path)})
    assert isinstance(local.inner, data_collection.JsonLinesCollection)
    assert isinstance(data_collection.start({}), data_collection.NoCollection)
    seen: list[tuple[str, Any]] = []

    class FakeCollector:
        """azureml.ai.monitoring.Collector's interface: collect(frame[, context]) -> context."""

        def __init__(self, *, name: str, on_error: Any) -> None:
            self.name = name

        def collect(self, frame: pd.DataFrame, context: Any = None) -> Any:
            seen.append((self.name, context))
            return f"context-of-{len(frame)}-rows"

    monitoring = types.ModuleType("azureml.ai.monitoring")
    monitoring.Collector = FakeCollector  # type: ignore[attr-defined]
    for name in ("azureml", "azureml.ai"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "azureml.ai.monitoring", monitoring)
    azure = data_collection.start({})
    azure.collect(pd.DataFrame({"distance": [1.0, 2.0]}), [10.0, 12.0], time.perf_counter())
    assert seen == [("model_inputs", None), ("model_outputs", "context-of-2-rows")]


def test_a_collector_that_cannot_start_leaves_the_server_serving(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    class Unconfigured:
        def __init__(self, **kwargs: Any) -> None:
            raise RuntimeError("data collection is not configured for this deployment")

    monitoring = types.ModuleType("azureml.ai.monitoring")
    monitoring.Collector = Unconfigured  # type: ignore[attr-defined]
    for name in ("azureml", "azureml.ai"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "azureml.ai.monitoring", monitoring)
    assert isinstance(data_collection.start({}), data_collection.NoCollection)
    assert "not configured for this deployment" in caplog.text


def test_a_failing_collection_never_fails_the_request(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        def collect(self, *args: Any) -> None:
            raise OSError("disk full")

    data_collection.SafeCollection(Broken()).collect(pd.DataFrame(), [], time.perf_counter())
    assert "data collection failed: disk full" in caplog.text


# ------------------------------------------------------------------ report


def test_report_on_shifted_collected_traffic_alerts_with_figures(
    tmp_path: Path, reference: pd.DataFrame, unshifted: pd.DataFrame
) -> None:
    reference_csv = tmp_path / "train.csv"
    reference.to_csv(reference_csv, index=False)
    collected = tmp_path / "collection"
    collect_trips(data_collection.JsonLinesCollection(collected), shifted_trips(unshifted.head(1500)))
    report = write_report(reference_csv, collected, tmp_path / "report")
    assert {column.name for column in report.drifted} >= {"distance", "pickup_hour"}
    text = report.markdown.read_text()
    assert text.splitlines()[2].startswith("**ALERT:")
    assert "| distance | numerical | normalized_wasserstein_distance |" in text
    assert "requests from" in text and "p99" in text
    assert {f.name for f in report.figures} == {"drift.png", "distributions.png", "latency.png"}
    for figure in report.figures:
        assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((tmp_path / "report" / "report.json").read_text())["drifted"][0] == "distance"


def test_report_on_an_unshifted_csv_is_ok(
    tmp_path: Path, reference: pd.DataFrame, unshifted: pd.DataFrame
) -> None:
    reference_csv, production_csv = tmp_path / "train.csv", tmp_path / "scored.csv"
    reference.to_csv(reference_csv, index=False)
    unshifted.rename(columns={"cost": "prediction"}).to_csv(production_csv, index=False)
    report = write_report(reference_csv, production_csv, tmp_path / "report")
    assert report.drifted == []
    assert report.markdown.read_text().splitlines()[2].startswith("**OK:")
    assert {f.name for f in report.figures} == {"drift.png", "distributions.png"}


def test_report_names_an_empty_collection_and_a_missing_reference(tmp_path: Path) -> None:
    with pytest.raises(MonitorError, match="holds no collected requests"):
        load_collection(tmp_path)
    with pytest.raises(MonitorError, match="reference data .* is not a file"):
        write_report(tmp_path / "absent.csv", tmp_path, tmp_path / "out")
