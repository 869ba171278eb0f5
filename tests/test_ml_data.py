"""Tests of the taxi data: the schema loader, the synthetic generator, the shipped samples, the features."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops import data as taxi_data
from mlops.src.taxi_features import engineer_features, haversine_miles, in_manhattan, trip_minutes
from mlops.src.taxi_schema import FEATURE_SPECS, FEATURES, TARGET, TaxiDataError, load_taxi_csv

DATA_DIR = Path(taxi_data.__file__).parent / "data"


@pytest.fixture(scope="module")
def trips() -> pd.DataFrame:
    return taxi_data.generate_trips(5000, seed=11)


def write(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


# --- loader -------------------------------------------------------------------------------------------


def test_loader_returns_contract_columns_and_types(trips: pd.DataFrame, tmp_path: Path) -> None:
    shuffled = trips[list(reversed(trips.columns))]
    data, notes = load_taxi_csv(write(shuffled, tmp_path / "t.csv"))
    assert list(data.columns) == [TARGET, *FEATURES]
    assert {spec.name: str(data[spec.name].dtype) for spec in FEATURE_SPECS} == {
        spec.name: ("int64" if spec.whole else "float64") for spec in FEATURE_SPECS
    }
    pd.testing.assert_frame_equal(data, trips, check_dtype=False)
    assert notes == [f"{tmp_path / 't.csv'}: read {len(trips)} rows"]


def test_loader_ignores_and_reports_an_unnamed_index_column(trips: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "indexed.csv"
    trips.head(10).to_csv(path)  # pandas' default writes the index as a leading unnamed column
    data, notes = load_taxi_csv(path)
    assert list(data.columns) == [TARGET, *FEATURES]
    assert any("ignored extra column(s) Unnamed: 0" in note for note in notes)


def test_loader_reads_every_csv_in_a_folder(trips: pd.DataFrame, tmp_path: Path) -> None:
    write(trips.iloc[:30], tmp_path / "a.csv")
    write(trips.iloc[30:50], tmp_path / "b.csv")
    (tmp_path / "readme.txt").write_text("not data")
    data, notes = load_taxi_csv(tmp_path)
    assert len(data) == 50
    assert [note.split(": ")[1] for note in notes] == ["read 30 rows", "read 20 rows"]


def test_features_only_files_load_without_target(trips: pd.DataFrame, tmp_path: Path) -> None:
    path = write(trips[list(FEATURES)].head(5), tmp_path / "batch.csv")
    data, _ = load_taxi_csv(path, require_target=False)
    assert list(data.columns) == list(FEATURES)
    with pytest.raises(TaxiDataError, match=r"missing column\(s\) cost"):
        load_taxi_csv(path)


def corrupt(trips: pd.DataFrame, column: str, rows: list[int], value: object) -> pd.DataFrame:
    bad = trips.head(20).astype({column: "object"})
    for row in rows:
        bad.loc[row, column] = value
    return bad


@pytest.mark.parametrize(
    ("column", "rows", "value", "message"),
    [
        ("vendor", [3], 7, r"column vendor has values outside whole numbers in \[1, 2\] at line 5 \(7\)"),
        (
            "pickup_latitude",
            [0, 4],
            0.0,
            r"column pickup_latitude has values outside .* at line 2 \(0\.0\), line 6",
        ),
        ("distance", [2], "far", r"column distance has non-numeric values at line 4 \('far'\)"),
        ("cost", [1], None, r"column cost has missing values at line 3"),
        ("passengers", [0], 1.5, r"column passengers has fractional values .* at line 2 \(1\.5\)"),
        ("pickup_hour", list(range(7)), 24, r"line 6 \(24\) and 2 more"),
    ],
)
def test_loader_names_column_and_lines(
    trips: pd.DataFrame, tmp_path: Path, column: str, rows: list[int], value: object, message: str
) -> None:
    path = write(corrupt(trips, column, rows, value), tmp_path / "bad.csv")
    with pytest.raises(TaxiDataError, match=message) as error:
        load_taxi_csv(path)
    assert str(path) in str(error.value)


def test_loader_reports_every_bad_column_at_once(trips: pd.DataFrame, tmp_path: Path) -> None:
    bad = corrupt(corrupt(trips, "vendor", [0], 9), "pickup_month", [1], 13)
    with pytest.raises(TaxiDataError, match="column vendor .*; column pickup_month"):
        load_taxi_csv(write(bad, tmp_path / "bad.csv"))


def test_loader_names_all_missing_columns(trips: pd.DataFrame, tmp_path: Path) -> None:
    path = write(trips.drop(columns=["vendor", "pickup_hour"]), tmp_path / "short.csv")
    with pytest.raises(TaxiDataError, match=r"missing column\(s\) vendor, pickup_hour"):
        load_taxi_csv(path)


def blank_file(folder: Path) -> Path:
    (folder / "blank.csv").write_text("")
    return folder / "blank.csv"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: tmp / "absent.csv", "no such file or folder"),
        (lambda tmp: tmp, r"the folder holds no \*\.csv file"),
        (lambda tmp: write(pd.DataFrame(columns=[TARGET, *FEATURES]), tmp / "empty.csv"), "no data rows"),
        (blank_file, "not a readable CSV"),
    ],
)
def test_loader_refuses_unusable_paths(tmp_path: Path, make: Callable[[Path], Path], message: str) -> None:
    with pytest.raises(TaxiDataError, match=message):
        load_taxi_csv(make(tmp_path))


# --- generator ----------------------------------------------------------------------------------------


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    for name, seed in (("a.csv", 5), ("b.csv", 5), ("c.csv", 6)):
        assert (
            taxi_data.main(["generate", "--rows", "500", "--seed", str(seed), "--out", str(tmp_path / name)])
            == 0
        )
    first = (tmp_path / "a.csv").read_bytes()
    assert first == (tmp_path / "b.csv").read_bytes()
    assert first != (tmp_path / "c.csv").read_bytes()


def test_generated_file_passes_the_schema(tmp_path: Path) -> None:
    path = tmp_path / "trips.csv"
    taxi_data.write_csv(taxi_data.generate_trips(2000, seed=3), path)
    data, notes = load_taxi_csv(path)
    assert len(data) == 2000 and notes == [f"{path}: read 2000 rows"]


def test_generating_100k_rows_is_fast() -> None:
    started = time.perf_counter()
    taxi_data.generate_trips(100_000, seed=1)
    assert time.perf_counter() - started < 10


def test_trips_are_plausible(trips: pd.DataFrame) -> None:
    minutes = trip_minutes(trips)
    straight = haversine_miles(
        trips["pickup_latitude"],
        trips["pickup_longitude"],
        trips["dropoff_latitude"],
        trips["dropoff_longitude"],
    )
    mph = trips["distance"] / minutes * 60
    assert (minutes > 0).all() and (mph < 70).all()
    assert (trips["distance"] + 0.01 >= straight).all()  # roads are never shorter than the straight line
    assert (
        in_manhattan(trips["pickup_latitude"].to_numpy(), trips["pickup_longitude"].to_numpy()).mean() > 0.6
    )
    assert set(trips["vendor"]) == {1, 2}
    assert trips["store_forward"].mean() < 0.05
    assert trips["pickup_month"].nunique() == 12


def test_fares_follow_the_tlc_structure(trips: pd.DataFrame) -> None:
    features = engineer_features(trips)
    flat = features["jfk_manhattan"] == 1
    peak = features["weekday_peak"] == 1
    assert flat.sum() > 20
    # JFK <-> Manhattan: $52 + 50c MTA + 30c improvement, plus $4.50 on weekdays 4-8 pm.
    assert set(trips.loc[flat & ~peak, TARGET]) == {52.80}
    assert set(trips.loc[flat & peak, TARGET]) == {57.30}
    metered = trips.loc[~flat]
    assert metered[TARGET].min() >= 3.30  # $2.50 entry + 80c surcharges
    # 50c per 1/5 mile: fares grow about $2.50 a mile (less when time in slow traffic is charged instead).
    slope = np.polyfit(metered["distance"], metered[TARGET], 1)[0]
    assert 2.0 < slope < 3.2


def test_night_and_peak_surcharges_raise_fares(trips: pd.DataFrame) -> None:
    features = engineer_features(trips)
    per_mile = trips[TARGET] / trips["distance"]
    short = (trips["distance"] < 3) & (features["jfk_manhattan"] == 0)
    night = short & (features["night"] == 1)
    late_evening_weekend = short & (features["night"] == 0) & (features["weekday_peak"] == 0)
    assert per_mile[night].median() != per_mile[late_evening_weekend].median()


# --- samples and CLI ----------------------------------------------------------------------------------


def test_shipped_samples_are_what_the_generator_writes(tmp_path: Path) -> None:
    written = taxi_data.write_samples(tmp_path)
    for path in written:
        assert path.read_bytes() == (DATA_DIR / path.name).read_bytes(), "rerun: python -m mlops.data samples"


def test_request_sample_rows_are_positional_in_csv_order() -> None:
    rows = json.loads((DATA_DIR / "request-sample.json").read_text())["input_data"]
    assert len(rows) >= 2 and all(len(row) == len(FEATURES) for row in rows)
    frame = pd.DataFrame(rows, columns=list(FEATURES))
    for spec in FEATURE_SPECS:
        assert frame[spec.name].between(spec.low, spec.high).all(), spec.name


def test_batch_sample_is_features_only_and_valid() -> None:
    data, _ = load_taxi_csv(DATA_DIR / "batch-sample.csv", require_target=False)
    header = (DATA_DIR / "batch-sample.csv").read_text().splitlines()[0]
    assert header.split(",") == list(FEATURES)
    assert len(data) == 100


def test_validate_cli_reports_errors_with_exit_code(
    trips: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write(trips.head(10), tmp_path / "good.csv")
    bad = write(corrupt(trips, "vendor", [0], 3), tmp_path / "bad.csv")
    assert taxi_data.main(["validate", str(good)]) == 0
    assert "valid: 10 rows" in capsys.readouterr().out
    assert taxi_data.main(["validate", str(bad)]) == 1
    assert "column vendor" in capsys.readouterr().err
    assert taxi_data.main(["validate", "--features-only", str(DATA_DIR / "batch-sample.csv")]) == 0


# --- features -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pickup", "dropoff", "minutes"),
    [
        ((1, 1, 0, 0, 0), (1, 1, 0, 10, 30), 10.5),
        ((2, 28, 23, 50, 0), (3, 1, 0, 5, 0), 15.0),
        ((12, 31, 23, 55, 0), (1, 1, 0, 20, 0), 25.0),
    ],
)
def test_trip_minutes_cross_days_months_and_new_year(
    pickup: tuple[int, ...], dropoff: tuple[int, ...], minutes: float
) -> None:
    parts = ("month", "monthday", "hour", "minute", "second")
    row = {f"pickup_{p}": [v] for p, v in zip(parts, pickup, strict=False)} | {
        f"dropoff_{p}": [v] for p, v in zip(parts, dropoff, strict=False)
    }
    assert trip_minutes(pd.DataFrame(row))[0] == pytest.approx(minutes)


@pytest.mark.parametrize(
    ("place", "latitude", "longitude", "inside"),
    [
        ("Times Square", 40.7580, -73.9855, 1.0),
        ("Battery Park", 40.7040, -74.0150, 1.0),
        ("Inwood", 40.8677, -73.9212, 1.0),
        ("Hoboken", 40.7440, -74.0324, 0.0),
        ("Williamsburg", 40.7081, -73.9571, 0.0),
        ("Long Island City", 40.7447, -73.9485, 0.0),
        ("JFK", 40.6413, -73.7781, 0.0),
    ],
)
def test_in_manhattan(place: str, latitude: float, longitude: float, inside: float) -> None:
    assert in_manhattan(np.array([latitude]), np.array([longitude]))[0] == inside, place


def test_haversine_jfk_to_laguardia() -> None:
    miles = haversine_miles(
        np.array([40.6413]), np.array([-73.7781]), np.array([40.7769]), np.array([-73.8740])
    )
    assert miles[0] == pytest.approx(10.63, abs=0.05)


def test_features_select_columns_by_name_not_position(trips: pd.DataFrame) -> None:
    raw = trips[list(FEATURES)].head(50)
    pd.testing.assert_frame_equal(engineer_features(raw), engineer_features(raw[list(reversed(FEATURES))]))
