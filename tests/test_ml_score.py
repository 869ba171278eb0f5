"""Tests of the scoring scripts and the local inference server: parsing tables, a real server, batch runs."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlops.serving import (
    InferenceServer,
    ServingError,
    check_predictions,
    free_loopback_port,
    mini_batches,
    run_batch_scoring,
    sample_row_count,
    smoke_test,
)
from mlops.prefork import ForkLauncher
from tests._ml_model import FEATURES, synthetic_features

REPO = Path(__file__).resolve().parents[1]
SCORE_SCRIPT = REPO / "mlops" / "azureml" / "deploy" / "online" / "score.py"
BATCH_SCRIPT = REPO / "mlops" / "azureml" / "deploy" / "batch" / "batch_score.py"
REQUEST_SAMPLE = REPO / "mlops" / "data" / "request-sample.json"

TRIP = dict(zip(FEATURES, synthetic_features(1, seed=3).iloc[0].tolist()))
ROW = [TRIP[feature] for feature in FEATURES]
SHUFFLED = list(reversed(FEATURES))


def load_script(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


score = load_script(SCORE_SCRIPT, "score_under_test")
batch_score = load_script(BATCH_SCRIPT, "batch_score_under_test")


def body(payload: Any) -> str:
    return json.dumps(payload)


def replaced(feature: str, value: Any) -> list[Any]:
    return [value if name == feature else TRIP[name] for name in FEATURES]


# ---- parsing as plain functions ------------------------------------------------------------------

INT_ROW = [int(value) for value in ROW]
SAME_TRIP_PAYLOADS = {
    "positional": {"input_data": [ROW, ROW]},
    "split in order": {"input_data": {"columns": list(FEATURES), "data": [ROW]}},
    "split shuffled with index": {
        "input_data": {"columns": SHUFFLED, "index": [7], "data": [[TRIP[name] for name in SHUFFLED]]}
    },
    "records shuffled": {"input_data": [{name: TRIP[name] for name in SHUFFLED}]},
}
GOOD_PAYLOADS = [
    *[(name, payload, ROW) for name, payload in SAME_TRIP_PAYLOADS.items()],
    ("positional ints", {"input_data": [INT_ROW]}, INT_ROW),
]


@pytest.mark.parametrize(
    ("payload", "first_row"), [case[1:] for case in GOOD_PAYLOADS], ids=[case[0] for case in GOOD_PAYLOADS]
)
def test_good_payloads_become_rows_in_feature_order(payload: dict[str, Any], first_row: list[float]) -> None:
    matrix = score.parse_payload(body(payload), FEATURES)

    rows = payload["input_data"]
    count = len(rows["data"]) if isinstance(rows, dict) else len(rows)
    assert matrix.shape == (count, len(FEATURES))
    assert matrix[0].tolist() == pytest.approx(first_row)


BAD_PAYLOADS: list[tuple[str, str | bytes, int, str]] = [
    ("malformed JSON", "{bad", 400, "not valid JSON"),
    ("empty body", "", 400, "body is empty"),
    ("top-level list", body([ROW]), 400, "JSON object with key 'input_data'"),
    ("no input_data", body({"data": [ROW]}), 400, "key 'input_data'"),
    ("extra top-level key", body({"input_data": [ROW], "params": {}}), 400, "unknown top-level keys"),
    ("input_data a string", body({"input_data": "1,2,3"}), 400, "must be a list of rows"),
    ("no rows", body({"input_data": []}), 400, "no rows"),
    ("short row", body({"input_data": [ROW[:-1]]}), 400, "row 0 has 19 values, expected 20"),
    ("row not a list", body({"input_data": [ROW, 5]}), 400, "row 1 must be a list"),
    ("string value", body({"input_data": [replaced("distance", "2.5")]}), 400, "feature 'distance': \"2.5\""),
    ("boolean value", body({"input_data": [replaced("vendor", True)]}), 400, "feature 'vendor': true is not"),
    ("null value", body({"input_data": [replaced("passengers", None)]}), 400, "'passengers': null is not"),
    ("NaN", '{"input_data": [[NaN' + ", 1" * 19 + "]]}", 400, "'distance': nan is not a finite"),
    ("Infinity", body({"input_data": [replaced("pickup_hour", math.inf)]}), 400, "'pickup_hour': inf"),
    ("huge integer", body({"input_data": [replaced("distance", 10**400)]}), 400, "too large"),
    ("split without data", body({"input_data": {"columns": list(FEATURES)}}), 400, "'columns' and 'data'"),
    (
        "split misspelled column",
        body({"input_data": {"columns": ["distanse", *FEATURES[1:]], "data": [ROW]}}),
        400,
        "unknown columns ['distanse']; missing columns ['distance']",
    ),
    (
        "split duplicated column",
        body({"input_data": {"columns": [*FEATURES[:-1], "distance"], "data": [ROW]}}),
        400,
        "duplicated columns ['distance']",
    ),
    (
        "split index length",
        body({"input_data": {"columns": list(FEATURES), "index": [0, 1], "data": [ROW]}}),
        400,
        "one entry per row (1)",
    ),
    (
        "record missing a feature",
        body({"input_data": [{name: TRIP[name] for name in FEATURES if name != "vendor"}]}),
        400,
        "row 0: missing columns ['vendor']",
    ),
    (
        "record with an unknown key",
        body({"input_data": [{**TRIP, "tip": 1.0}]}),
        400,
        "row 0: unknown columns ['tip']",
    ),
    ("records mixed with rows", body({"input_data": [TRIP, ROW]}), 400, "use one row form throughout"),
    ("too many rows", body({"input_data": [ROW] * 4}), 413, "4 rows exceed the limit of 3"),
]


@pytest.mark.parametrize(
    ("raw", "status", "fragment"), [case[1:] for case in BAD_PAYLOADS], ids=[case[0] for case in BAD_PAYLOADS]
)
def test_bad_payloads_name_the_problem(raw: str, status: int, fragment: str) -> None:
    with pytest.raises(score.PayloadError) as caught:
        score.parse_payload(raw, FEATURES, max_rows=3)

    assert caught.value.status == status
    assert fragment in str(caught.value)


def test_error_response_is_json_with_the_status() -> None:
    response = score.error_response(score.PayloadError("row 0 is wrong", 413))

    assert response.status_code == 413
    assert json.loads(response.get_data()) == {"message": "row 0 is wrong"}


@pytest.mark.parametrize(
    ("environ", "expected"), [({}, score.DEFAULT_MAX_ROWS), ({"SCORE_MAX_ROWS": " 12 "}, 12)]
)
def test_max_rows_comes_from_the_environment(environ: dict[str, str], expected: int) -> None:
    assert score.max_rows_from_env(environ) == expected


@pytest.mark.parametrize("raw", ["0", "-3", "ten", "1.5"])
def test_max_rows_rejects_what_is_not_a_positive_integer(raw: str) -> None:
    with pytest.raises(ValueError, match=f"SCORE_MAX_ROWS must be a positive integer, got '{raw}'"):
        score.max_rows_from_env({"SCORE_MAX_ROWS": raw})


@pytest.mark.parametrize("module", [score, batch_score], ids=["online", "batch"])
def test_model_dir_is_found_a_few_levels_down(module: ModuleType, tmp_path: Path) -> None:
    nested = tmp_path / "taxi-fare-model" / "3" / "model"
    nested.mkdir(parents=True)
    (nested / "MLmodel").write_text("flavors: {}\n")
    (tmp_path / "other").mkdir()

    assert module.find_model_dir(tmp_path) == nested
    with pytest.raises(FileNotFoundError, match="within 1 levels under"):
        module.find_model_dir(tmp_path, max_depth=1)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        module.find_model_dir(tmp_path / "missing")


# ---- serving helpers as plain functions ----------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "rows"),
    [
        ({"input_data": [ROW, ROW, ROW]}, 3),
        ({"input_data": {"columns": list(FEATURES), "data": [ROW, ROW]}}, 2),
        ({"input_data": [TRIP]}, 1),
    ],
)
def test_sample_row_count(payload: dict[str, Any], rows: int) -> None:
    assert sample_row_count(payload) == rows


@pytest.mark.parametrize("payload", [{"input_data": []}, {"rows": [ROW]}, [ROW]])
def test_sample_row_count_rejects_samples_without_rows(payload: Any) -> None:
    with pytest.raises(ValueError, match="request sample must be"):
        sample_row_count(payload)


@pytest.mark.parametrize(
    ("response", "rows", "problem"),
    [
        ({"predictions": [12.5, 3]}, 2, ""),
        ({"predictions": [12.5]}, 2, "1 predictions for 2 rows"),
        ({"predictions": [12.5, None]}, 2, "prediction 1 is None"),
        ({"predictions": [True]}, 1, "prediction 0 is True"),
        ({"predictions": [900.0]}, 1, "prediction 0 is 900.0, outside the expected range [0.0, 500.0]"),
        ({"result": [1.0]}, 1, 'not {"predictions"'),
        ([1.0], 1, 'not {"predictions"'),
    ],
)
def test_check_predictions(response: Any, rows: int, problem: str) -> None:
    predictions, found = check_predictions(response, rows, (0.0, 500.0))

    assert (problem in found) if problem else found == ""
    assert predictions == ([] if problem else [float(value) for value in response["predictions"]])


def test_mini_batches_keep_order_and_size() -> None:
    assert list(mini_batches(["a", "b", "c", "d", "e"], 2)) == [["a", "b"], ["c", "d"], ["e"]]


def test_smoke_test_gives_up_on_an_unreachable_server(tmp_path: Path) -> None:
    sample = tmp_path / "sample.json"
    sample.write_text(body({"input_data": [ROW]}))
    uri = f"http://127.0.0.1:{free_loopback_port()}/score"

    result = smoke_test(uri, sample, key="do-not-leak-me", deadline_s=1.5)

    assert not result.ok and result.status is None
    assert "cannot reach" in result.detail and "do-not-leak-me" not in repr(result)


# ---- the real inference server on loopback -------------------------------------------------------


@pytest.fixture(scope="module")
def model_dir(tiny_model_dir: Path) -> Path:
    """AZUREML_MODEL_DIR of a tiny registered model (.../azureml-models/taxi-fare-model/1)."""
    return tiny_model_dir


@pytest.fixture(scope="module")
def server(
    model_dir: Path, tmp_path_factory: pytest.TempPathFactory, launcher: ForkLauncher
) -> Iterator[InferenceServer]:
    log = tmp_path_factory.mktemp("server") / "server.log"
    env = {"SCORE_MAX_ROWS": "50"}
    running = InferenceServer(SCORE_SCRIPT, model_dir, log, workers=1, env=env, launcher=launcher)
    with running:
        pid = running.pid
        yield running
    assert_process_group_gone(pid)


def logged_master_pid(log: Path) -> int:
    """The gunicorn master pid as logged (a server that failed to start forgets its pid).

    With --preload the master runs init() before gunicorn logs its start, so its AML log lines count.
    """
    for line in log.read_text().splitlines():
        found = re.search(r"\[(\d+)\] (?:\[INFO\] (?:Starting gunicorn|Listening at)|azmlinfsrv)", line)
        if found:
            return int(found.group(1))
    raise AssertionError(f"no gunicorn or AML server line with a pid in {log}")


def assert_process_group_gone(pid: int) -> None:
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)


@pytest.fixture
def request_sample(tmp_path: Path) -> Path:
    if REQUEST_SAMPLE.is_file():
        return REQUEST_SAMPLE
    sample = tmp_path / "request-sample.json"
    sample.write_text(body({"input_data": synthetic_features(2, seed=5).values.tolist()}))
    return sample


def post(
    uri: str, data: bytes | None, content_type: str = "application/json", method: str = "POST"
) -> tuple[int, Any]:
    request = urllib.request.Request(uri, data=data, method=method, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_request_sample_scores(server: InferenceServer, request_sample: Path) -> None:
    result = smoke_test(server.scoring_uri, request_sample, key="do-not-leak-me", deadline_s=30)

    assert result.ok, result.detail
    assert result.status == 200
    assert len(result.predictions) == sample_row_count(json.loads(request_sample.read_text()))
    assert "do-not-leak-me" not in repr(result)


def test_every_row_form_gives_the_same_predictions(server: InferenceServer) -> None:
    answers = [post(server.scoring_uri, body(payload).encode()) for payload in SAME_TRIP_PAYLOADS.values()]

    assert [status for status, _ in answers] == [200] * len(SAME_TRIP_PAYLOADS)
    first_predictions = {answer["predictions"][0] for _, answer in answers}
    assert len(first_predictions) == 1
    assert 2.0 <= first_predictions.pop() <= 60.0


def test_form_encoded_json_is_still_scored(server: InferenceServer) -> None:
    form_encoded = "application/x-www-form-urlencoded"  # curl -d's default

    status, answer = post(server.scoring_uri, body({"input_data": [ROW]}).encode(), form_encoded)

    assert status == 200 and len(answer["predictions"]) == 1


@pytest.mark.parametrize(
    ("feature", "value"), [("pickup_month", 13), ("pickup_month", 0), ("pickup_latitude", 0.0)]
)
def test_values_outside_the_model_bounds_are_refused(model_dir: Path, feature: str, value: float) -> None:
    bounds = score.feature_bounds(score.find_model_dir(model_dir), FEATURES)
    assert bounds is not None, "the model must carry feature_bounds metadata"
    raw = body({"input_data": [ROW, replaced(feature, value)]})

    with pytest.raises(score.PayloadError) as caught:
        score.parse_payload(raw, FEATURES, bounds=bounds)

    assert caught.value.status == 400
    assert f"row 1, feature {feature!r}" in str(caught.value) and "outside the allowed range" in str(
        caught.value
    )
    assert score.parse_payload(body({"input_data": [ROW]}), FEATURES, bounds=bounds).shape == (1, 20)


MALFORMED_OVER_HTTP: list[tuple[str, bytes, str, int]] = [
    *[
        (name, raw.encode() if isinstance(raw, str) else raw, "POST", status)
        for name, raw, status, _ in BAD_PAYLOADS
        if name != "too many rows"
    ],
    ("not UTF-8", b"\xff\xfe\x00garbage", "POST", 400),
    ("more rows than SCORE_MAX_ROWS", body({"input_data": [ROW] * 51}).encode(), "POST", 413),
    (
        "month 13 (outside the model's bounds)",
        body({"input_data": [replaced("pickup_month", 13)]}).encode(),
        "POST",
        400,
    ),
    ("GET", b"", "GET", 405),
    ("PUT", body({"input_data": [ROW]}).encode(), "PUT", 405),
]


@pytest.mark.parametrize(
    ("raw", "method", "status"),
    [case[1:] for case in MALFORMED_OVER_HTTP],
    ids=[case[0] for case in MALFORMED_OVER_HTTP],
)
def test_malformed_requests_get_a_4xx_with_a_message(
    server: InferenceServer, raw: bytes, method: str, status: int
) -> None:
    answer_status, answer = post(server.scoring_uri, raw or None, method=method)

    assert answer_status == status
    assert isinstance(answer.get("message"), str) and answer["message"]


def test_smoke_test_fails_on_predictions_out_of_range(server: InferenceServer, request_sample: Path) -> None:
    result = smoke_test(server.scoring_uri, request_sample, expected_range=(1000.0, 2000.0), deadline_s=30)

    assert not result.ok and result.status == 200
    assert "outside the expected range [1000.0, 2000.0]" in result.detail


def test_smoke_test_reports_a_rejected_sample_at_once(server: InferenceServer, tmp_path: Path) -> None:
    sample = tmp_path / "bad-sample.json"
    sample.write_text(body({"input_data": [ROW[:5]]}))

    result = smoke_test(server.scoring_uri, sample, deadline_s=30)

    assert not result.ok and result.status == 400
    assert "row 0 has 5 values, expected 20" in result.detail


def test_a_server_whose_init_fails_raises_with_the_log_tail(
    model_dir: Path, tmp_path: Path, launcher: ForkLauncher
) -> None:
    broken = tmp_path / "broken_score.py"
    broken.write_text(
        "def init() -> None:\n    raise RuntimeError('model store unreachable')\n\n\n"
        "def run(raw_data: str) -> str:\n    return raw_data\n"
    )

    with pytest.raises(ServingError, match="exited with code") as caught:
        InferenceServer(broken, model_dir, tmp_path / "server.log", workers=1, launcher=launcher).start()

    assert "model store unreachable" in str(caught.value)
    assert_process_group_gone(logged_master_pid(tmp_path / "server.log"))


# ---- batch scoring -------------------------------------------------------------------------------


def write_trips(path: Path, rows: int, seed: int) -> Path:
    frame = synthetic_features(rows, seed)
    frame.insert(0, "cost", 10.0)  # the label may come along; batch scoring ignores it
    frame[list(reversed(frame.columns))].to_csv(path, index=False)
    return path


@pytest.fixture
def batch_model(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(model_dir))
    batch_score.init()
    return batch_score


def test_batch_run_scores_every_row_of_every_file(batch_model: ModuleType, tmp_path: Path) -> None:
    first, second = write_trips(tmp_path / "a.csv", 7, 1), write_trips(tmp_path / "b.csv", 3, 2)

    result = batch_model.run([str(first), str(second)])

    assert list(result.columns) == ["file", "row", "prediction"]
    assert result["file"].tolist() == ["a.csv"] * 7 + ["b.csv"] * 3
    assert result["row"].tolist() == [*range(7), *range(3)]
    assert np.isfinite(result["prediction"]).all()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("", "not a readable CSV file"),
        (",".join(FEATURES) + "\n", "has a header but no rows"),
        (",".join(FEATURES[1:]) + "\n" + ",".join(["1"] * 19) + "\n", "missing columns ['distance']"),
        (
            ",".join(FEATURES) + "\n" + ",".join(["1"] * 19 + ["x"]) + "\n",
            "row 0 (after the header), column 'dropoff_second': 'x' is not a finite number",
        ),
        (
            ",".join(FEATURES) + "\n" + ",".join(["1"] * 20) + "\n" + ",".join(["inf"] + ["1"] * 19) + "\n",
            "row 1 (after the header), column 'distance'",
        ),
        (
            synthetic_features(2, 0).assign(pickup_month=[3, 0]).to_csv(index=False),
            "row 1 (after the header), column 'pickup_month': 0 is outside the allowed range [1, 12]",
        ),
    ],
    ids=["empty", "header only", "missing column", "text value", "infinite value", "month outside bounds"],
)
def test_batch_run_scores_the_good_files_and_names_the_bad_one(
    batch_model: ModuleType, tmp_path: Path, content: str, problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(content)
    good = [write_trips(tmp_path / "good-1.csv", 2, 0), write_trips(tmp_path / "good-2.csv", 3, 1)]

    result = batch_model.run([str(good[0]), str(bad), str(good[1])])

    assert result["file"].tolist() == ["good-1.csv"] * 2 + ["good-2.csv"] * 3
    assert np.isfinite(result["prediction"]).all()
    failed = result.attrs[batch_model.FAILED_FILES]
    assert list(failed) == [str(bad)] and problem in failed[str(bad)]
    assert f"skipped {bad}" in capsys.readouterr().err


def test_batch_run_of_only_bad_files_returns_no_rows_with_the_columns(
    batch_model: ModuleType, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("distance\n1\n")

    result = batch_model.run([str(bad)])

    assert result.empty and list(result.columns) == ["file", "row", "prediction"]
    assert "missing columns" in result.attrs[batch_model.FAILED_FILES][str(bad)]


def test_run_batch_scoring_appends_every_mini_batch(model_dir: Path, tmp_path: Path) -> None:
    inputs = [write_trips(tmp_path / f"part-{index}.csv", 4 + index, index) for index in range(12)]
    output = tmp_path / "out" / "predictions.csv"

    done = run_batch_scoring(BATCH_SCRIPT, model_dir, inputs, output)

    written = pd.read_csv(output)
    assert done.rows == len(written) == sum(4 + index for index in range(12))
    assert done.failed == {}
    assert sorted(set(written["file"])) == sorted(path.name for path in inputs)


def test_run_batch_scoring_with_a_bad_file_scores_the_rest_and_names_it(
    model_dir: Path, tmp_path: Path, launcher: ForkLauncher
) -> None:
    bad = tmp_path / "broken.csv"
    bad.write_text("distance\n1\n")
    # Mini-batches of 10: the bad file shares its mini-batch with good ones, which must still be scored.
    inputs = [write_trips(tmp_path / f"part-{index}.csv", 3, index) for index in range(11)]
    inputs.insert(4, bad)

    output = tmp_path / "out" / "predictions.csv"
    done = run_batch_scoring(BATCH_SCRIPT, model_dir, inputs, output, launcher=launcher)

    written = pd.read_csv(tmp_path / "out" / "predictions.csv")
    assert done.rows == len(written) == 33
    assert sorted(set(written["file"])) == sorted(f"part-{index}.csv" for index in range(11))
    assert (
        list(done.failed) == [str(bad)]
        and "broken.csv: missing columns ['dropoff_latitude'" in (done.failed[str(bad)])
    )
    assert done.log is not None and f"skipped {bad}" in done.log.read_text()


def test_run_batch_scoring_reports_a_crashing_entry_script_with_its_log(
    model_dir: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken_score.py"
    broken.write_text(
        "def init():\n    raise RuntimeError('model store unreachable')\n\n\ndef run(batch):\n    pass\n"
    )

    with pytest.raises(ServingError, match="failed \\(exit 1\\)") as caught:
        # The default launcher: a fresh interpreter, as for callers without a warm one.
        run_batch_scoring(broken, model_dir, [write_trips(tmp_path / "a.csv", 2, 0)], tmp_path / "p.csv")

    assert "model store unreachable" in str(caught.value)


def test_run_batch_scoring_stops_at_its_deadline(
    model_dir: Path, tmp_path: Path, launcher: ForkLauncher
) -> None:
    slow = tmp_path / "slow_score.py"
    slow.write_text(
        "import time\n\n\ndef init():\n    time.sleep(30)\n\n\ndef run(mini_batch):\n    return []\n"
    )
    inputs = [write_trips(tmp_path / "a.csv", 2, 0)]

    with pytest.raises(ServingError, match="ran over its 1 s deadline"):
        run_batch_scoring(slow, model_dir, inputs, tmp_path / "p.csv", timeout_s=1.0, launcher=launcher)
