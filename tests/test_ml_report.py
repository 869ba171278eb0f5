"""The PR metrics report: table, verdict and distance bins as pure pieces, then on two real local runs."""

from __future__ import annotations

import json
import shutil
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from mlops.cli import main
from mlops.report import (
    COMMENT_MARKER,
    PLOTS,
    BinError,
    MetricRow,
    ReportError,
    RunFolder,
    errors_by_distance,
    gate_verdict,
    lineage_check,
    metric_rows,
    metric_table,
    write_report,
)
from tests._local_training import train_locally

RECORD = {
    "r2": 0.95,
    "rmse": 2.0,
    "mae": 1.5,
    "champion": {"version": "3", "r2": 0.9, "rmse": 2.5, "mae": 1.0},
    "deploy_flag": 1,
    "reason": "better: candidate RMSE 2.0000 vs champion 2.5000",
}


def test_metric_rows_take_candidate_and_champion_and_judge_each_direction() -> None:
    rows = {row.label: row for row in metric_rows(RECORD)}
    assert rows["RMSE ($)"] == MetricRow("RMSE ($)", 2.0, 2.5, higher_is_better=False)
    assert (rows["RMSE ($)"].delta, rows["RMSE ($)"].better) == (-0.5, True)
    assert (rows["MAE ($)"].delta, rows["MAE ($)"].better) == (0.5, False)
    assert rows["R²"].better is True and rows["R²"].delta == pytest.approx(0.05)


@pytest.mark.parametrize(
    ("record", "champions"),
    [
        ({**RECORD, "champion": None}, [None, None, None]),
        ({k: v for k, v in RECORD.items() if k != "champion"}, [None, None, None]),
        ({**RECORD, "champion": {"version": "1", "rmse": 2.0}}, [2.0, None, None]),
    ],
)
def test_metric_rows_without_a_full_champion(record: dict, champions: list[float | None]) -> None:
    rows = metric_rows(record)
    assert [row.champion for row in rows] == champions
    assert all(row.better is None for row in rows if row.champion is None)


def test_metric_rows_refuse_a_record_without_candidate_scores() -> None:
    with pytest.raises(ReportError, match=r"lacks \['rmse'\].*evaluate\.py"):
        metric_rows({"r2": 0.9, "mae": 1.0})


def test_metric_table_shows_values_deltas_and_marks() -> None:
    table = metric_table(metric_rows(RECORD), "3")
    assert table.splitlines()[0] == "| metric | candidate | champion (v3) | delta | |"
    assert "| RMSE ($) | 2.0000 | 2.5000 | -0.5000 | better |" in table
    assert "| MAE ($) | 1.5000 | 1.0000 | +0.5000 | worse |" in table
    no_champion = metric_table(metric_rows({**RECORD, "champion": None}), None)
    assert "| RMSE ($) | 2.0000 | n/a | n/a |  |" in no_champion


@pytest.mark.parametrize(
    ("flag", "expected"),
    [(1, "deploy_flag=1, registers the candidate"), (0, "deploy_flag=0, keeps the champion")],
)
def test_gate_verdict_names_flag_and_reason(flag: int, expected: str) -> None:
    verdict = gate_verdict({**RECORD, "deploy_flag": flag})
    assert expected in verdict and RECORD["reason"] in verdict


def test_gate_verdict_refuses_an_unknown_flag() -> None:
    with pytest.raises(ReportError, match="deploy_flag '1'"):
        gate_verdict({**RECORD, "deploy_flag": "1"})


def test_errors_by_distance_bins_trips_and_skips_empty_bins() -> None:
    # A trip of exactly 1 mile belongs to the 1-2 bin: bins are [low, high).
    distance = np.array([0.5, 1.0, 3.0, 25.0])
    actual = np.array([5.0, 6.0, 10.0, 60.0])
    predicted = np.array([6.0, 5.0, 13.0, 56.0])
    bins = errors_by_distance(distance, actual, predicted, edges=(0.0, 1.0, 2.0, 5.0, 10.0, math.inf))
    assert bins == [
        BinError(0.0, 1.0, 1, 1.0, 1.0),
        BinError(1.0, 2.0, 1, 1.0, 1.0),
        BinError(2.0, 5.0, 1, 3.0, 3.0),
        BinError(10.0, math.inf, 1, 4.0, 4.0),
    ]
    assert [b.label for b in bins] == ["0-1 mi", "1-2 mi", "2-5 mi", "10+ mi"]


HASHES = {"training data (train + val splits)": "d1", "test data": "t1", "code (mlops/src snapshot)": "c1"}


@pytest.mark.parametrize(
    ("recorded", "expected"),
    [
        ({}, "records no lineage"),
        ({"data_sha256": "d1", "code_sha256": "c1"}, "matches this run's data and code"),
        ({"data_sha256": "d2", "code_sha256": "c1"}, "recorded data_sha256 differ"),
    ],
)
def test_lineage_check(recorded: dict[str, str], expected: str) -> None:
    assert expected in lineage_check(recorded, HASHES)


def test_a_folder_that_is_no_run_is_refused_naming_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match=r"missing .*metrics\.json.*runs/run-NNN"):
        RunFolder.locate(tmp_path)
    assert main(["report", "--run", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- on real local runs


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two trainings in one workdir: the first becomes the champion, the second is scored against it."""
    workdir = tmp_path_factory.mktemp("report")
    first = train_locally(workdir, seed=1)
    second = train_locally(workdir, seed=2)
    return Path(str(first.url)), Path(str(second.url))


def _is_png(path: Path) -> bool:
    with Image.open(path) as image:
        image.verify()
        return image.format == "PNG" and image.size[0] > 100 and image.size[1] > 100


def test_report_on_a_real_run_writes_valid_pngs_and_the_runs_own_metrics(
    runs: tuple[Path, Path], tmp_path: Path
) -> None:
    _, second = runs
    out = tmp_path / "report"
    assert main(["report", "--run", str(second), "--out", str(out)]) == 0
    record = json.loads((second / "steps/evaluate/evaluation_output/metrics.json").read_text())
    markdown = (out / "report.md").read_text()
    assert record["champion"] is not None, "the second run must have been scored against the first"
    for key, label in (("rmse", "RMSE ($)"), ("mae", "MAE ($)"), ("r2", "R²")):
        candidate, champion = record[key], record["champion"][key]
        row = f"| {label} | {candidate:.4f} | {champion:.4f} | {candidate - champion:+.4f} |"
        assert row in markdown
    assert f"champion (v{record['champion']['version']})" in markdown
    assert f"deploy_flag={record['deploy_flag']}" in markdown and record["reason"] in markdown
    for stem in PLOTS:
        assert _is_png(out / f"{stem}.png"), stem
        assert f"]({stem}.png)" in markdown


def test_report_hashes_match_what_train_stamped_into_the_model(
    runs: tuple[Path, Path], tmp_path: Path
) -> None:
    first, _ = runs
    report = write_report(first, tmp_path / "report")
    mlmodel = yaml.safe_load((first / "steps/train/model_output/MLmodel").read_text())
    lineage = mlmodel["metadata"]["lineage"]
    text = report.markdown.read_text()
    assert f"`{lineage['data_sha256']}`" in text and f"`{lineage['code_sha256']}`" in text
    assert "matches this run's data and code" in text


def test_comment_is_marked_for_in_place_updates_and_has_no_images(
    runs: tuple[Path, Path], tmp_path: Path
) -> None:
    _, second = runs
    report = write_report(second, tmp_path / "report", against="none")
    comment = report.comment.read_text()
    assert comment.splitlines()[0] == COMMENT_MARKER
    assert "![" not in comment and "| RMSE ($) |" in comment
    assert "| n/a | n/a |" in comment, "--against none shows the candidate alone"


def test_a_changed_split_is_flagged_against_the_models_lineage(
    runs: tuple[Path, Path], tmp_path: Path
) -> None:
    first, _ = runs
    copy = tmp_path / "run"

    shutil.copytree(first, copy)
    train_csv = copy / "steps/prep/train_data/train.csv"
    train_csv.write_text(train_csv.read_text() + train_csv.read_text().splitlines()[1] + "\n")
    text = write_report(copy, tmp_path / "report").markdown.read_text()
    assert "**Warning:** the model's recorded data_sha256 differ" in text
