"""Synthetic NYC taxi trips for training and the shipped request/batch samples (`python -m mlops.data`)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mlops.src.taxi_features import (
    AIRPORTS,
    MANHATTAN_NORTH,
    MANHATTAN_SOUTH,
    haversine_miles,
    in_manhattan,
    near,
)
from mlops.src.taxi_schema import FEATURE_SPECS, FEATURES, TARGET, TaxiDataError, load_taxi_csv

SAMPLES_DIR = Path(__file__).parent / "data"
REQUEST_SAMPLE = "request-sample.json"
BATCH_SAMPLE = "batch-sample.csv"
_REQUEST_SEED, _BATCH_SEED = 2015_01, 2015_02
_BATCH_ROWS = 100

# Fares follow the NYC TLC yellow-taxi rate of fare in force from 4 Sep 2012 to 19 Dec 2022, with the
# 30-cent Improvement Surcharge that started 1 Jan 2015 (so trips are dated 2015, before the 2019
# congestion surcharge): $2.50 on entry, 50 cents per 1/5 mile, or per 60 seconds while slower than
# 12 mph; 50-cent night surcharge 8 pm-6 am; $1 weekday peak surcharge 4-8 pm; 50-cent MTA State
# Surcharge; JFK <-> Manhattan flat fare $52 plus MTA and Improvement Surcharges and a $4.50 weekday
# 4-8 pm surcharge. Tips and tolls are not part of `cost`.
YEAR = 2015
INITIAL_CHARGE = 2.50
UNIT_FARE = 0.50
UNIT_MILES = 0.2
SLOW_MPH = 12.0
NIGHT_SURCHARGE = 0.50
PEAK_SURCHARGE = 1.00
MTA_TAX = 0.50
IMPROVEMENT_SURCHARGE = 0.30
JFK_FLAT_FARE = 52.00
JFK_PEAK_SURCHARGE = 4.50

# Relative pickup counts per hour of day (midnight first): quiet before dawn, busiest in the evening.
# fmt: off
_HOURLY_DEMAND = np.array([5.5, 4.0, 3.0, 2.2, 1.7, 1.6, 2.8, 4.3, 5.0, 4.9, 4.7, 4.9,
                           5.2, 5.2, 5.4, 5.3, 4.8, 5.6, 6.6, 6.8, 6.3, 6.2, 6.2, 5.9])
# fmt: on
# Typical street speed (mph) per hour of day: free-flowing at night, crawling in the rush hours.
_HOURLY_MPH = np.array(
    [18, 19, 19, 20, 20, 18, 15, 11, 9.5, 9.5, 10, 10, 10, 10, 10, 9.5, 9, 9, 9.5, 10.5, 12, 13, 14, 16],
    dtype="float64",
)
_PASSENGERS = (np.arange(7), np.array([0.01, 0.70, 0.14, 0.04, 0.02, 0.06, 0.03]))
# Centres of the Brooklyn and Queens neighbourhoods where most outer-borough yellow-cab trips start or end.
_OUTER_BOROUGHS = ((40.680, -73.965), (40.745, -73.905))


def generate_trips(rows: int, seed: int) -> pd.DataFrame:
    """`rows` synthetic trips (`cost` + the 20 features, CSV order); the same seed gives the same trips."""
    if rows < 1:
        raise ValueError(f"rows must be at least 1, got {rows}")
    rng = np.random.default_rng(seed)
    pickup = _places(rng, rows, manhattan=0.78, outer=0.14, airports={"jfk": 0.05, "lga": 0.03})
    dropoff = _places(rng, rows, manhattan=0.78, outer=0.12, airports={"jfk": 0.05, "lga": 0.04, "ewr": 0.01})
    straight = haversine_miles(pickup[0], pickup[1], dropoff[0], dropoff[1])
    # Streets are longer than the straight line; the Manhattan grid adds roughly 30%.
    road_factor = np.maximum(rng.lognormal(np.log(1.3), 0.08, rows), 1.05)
    distance = np.round(np.maximum(straight * road_factor, 0.1), 2)
    start = _pickup_times(rng, rows)
    mph = _trip_mph(rng, start, distance)
    seconds = np.round(distance / mph * 3600 + rng.uniform(30, 150, rows))
    end = start + pd.to_timedelta(seconds, unit="s")
    cost = _fare(rng, pickup, dropoff, distance, seconds / 60, mph, start)
    columns = {
        TARGET: cost,
        "distance": distance,
        "dropoff_latitude": np.round(dropoff[0], 6),
        "dropoff_longitude": np.round(dropoff[1], 6),
        "passengers": rng.choice(_PASSENGERS[0], size=rows, p=_PASSENGERS[1]),
        "pickup_latitude": np.round(pickup[0], 6),
        "pickup_longitude": np.round(pickup[1], 6),
        "store_forward": (rng.random(rows) < 0.01).astype("int64"),
        "vendor": np.where(rng.random(rows) < 0.47, 1, 2),
        **_time_parts("pickup", start),
        **_time_parts("dropoff", end),
    }
    return pd.DataFrame(columns)[[TARGET, *FEATURES]]


def _places(
    rng: np.random.Generator, rows: int, manhattan: float, outer: float, airports: dict[str, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Trip ends drawn from a mix of Manhattan, Brooklyn/Queens and the airports."""
    kinds = ["manhattan", "outer", *airports]
    kind = rng.choice(len(kinds), size=rows, p=[manhattan, outer, *airports.values()])
    latitude, longitude = _manhattan_points(rng, rows)
    borough = rng.integers(0, len(_OUTER_BOROUGHS), rows)
    for index, (centre_latitude, centre_longitude) in enumerate(_OUTER_BOROUGHS):
        chosen = (kind == 1) & (borough == index)
        latitude[chosen] = centre_latitude + rng.normal(0, 0.025, chosen.sum())
        longitude[chosen] = centre_longitude + rng.normal(0, 0.03, chosen.sum())
    for index, name in enumerate(airports, start=2):
        chosen = kind == index
        latitude[chosen] = AIRPORTS[name].latitude + rng.normal(0, 0.002, chosen.sum())
        longitude[chosen] = AIRPORTS[name].longitude + rng.normal(0, 0.002, chosen.sum())
    return latitude, longitude


def _manhattan_points(rng: np.random.Generator, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Points along the island, denser in Midtown and Downtown than uptown."""
    along = rng.beta(2.0, 3.2, rows)
    across = np.clip(rng.normal(0, 0.012, rows), -0.018, 0.018)
    d_lat, d_lon = MANHATTAN_NORTH[0] - MANHATTAN_SOUTH[0], MANHATTAN_NORTH[1] - MANHATTAN_SOUTH[1]
    # Offsets across the island go perpendicular to its axis (in degrees, close enough at this scale).
    return (
        MANHATTAN_SOUTH[0] + along * d_lat - across * d_lon / np.hypot(d_lat, d_lon),
        MANHATTAN_SOUTH[1] + along * d_lon + across * d_lat / np.hypot(d_lat, d_lon),
    )


def _pickup_times(rng: np.random.Generator, rows: int) -> pd.DatetimeIndex:
    day = rng.integers(0, 365, rows)
    hour = rng.choice(24, size=rows, p=_HOURLY_DEMAND / _HOURLY_DEMAND.sum())
    second_of_hour = rng.integers(0, 3600, rows)
    offsets = pd.to_timedelta(day * 86_400 + hour * 3600 + second_of_hour, unit="s")
    return pd.Timestamp(f"{YEAR}-01-01") + offsets


def _trip_mph(rng: np.random.Generator, start: pd.DatetimeIndex, distance: np.ndarray) -> np.ndarray:
    """Average speed: time-of-day traffic, lighter weekends, and highways on long trips."""
    weekend = np.asarray(start.day_of_week >= 5)
    mph = _HOURLY_MPH[np.asarray(start.hour)] * np.where(weekend, 1.2, 1.0)
    highway = 1 + 0.8 * (1 - np.exp(-distance / 6))
    return mph * highway * rng.lognormal(0, 0.18, len(distance))


def _fare(
    rng: np.random.Generator,
    pickup: tuple[np.ndarray, np.ndarray],
    dropoff: tuple[np.ndarray, np.ndarray],
    distance: np.ndarray,
    minutes: np.ndarray,
    mph: np.ndarray,
    start: pd.DatetimeIndex,
) -> np.ndarray:
    hour, weekday = np.asarray(start.hour), np.asarray(start.day_of_week)
    night = (hour >= 20) | (hour < 6)
    peak = (weekday < 5) & (hour >= 16) & (hour < 20)
    # The meter counts time only while the cab is slower than 12 mph; slower trips spend more of it so.
    slow_share = np.clip(1.25 - mph / 14 + rng.normal(0, 0.12, len(mph)), 0.05, 0.95)
    slow_minutes = slow_share * minutes
    slow_miles = np.minimum(slow_minutes / 60 * 4.0, 0.9 * distance)
    units = np.floor((distance - slow_miles) / UNIT_MILES) + np.floor(slow_minutes)
    # The noise stands for what the columns do not record: waits at pickup, detours, meter quirks.
    metered = (
        INITIAL_CHARGE
        + UNIT_FARE * units
        + NIGHT_SURCHARGE * night
        + PEAK_SURCHARGE * peak
        + rng.normal(0, 0.50, len(mph))
    )
    jfk_flat = _jfk_manhattan(pickup, dropoff)
    fare = np.where(jfk_flat, JFK_FLAT_FARE + JFK_PEAK_SURCHARGE * peak, metered)
    return np.round(np.maximum(fare, INITIAL_CHARGE) + MTA_TAX + IMPROVEMENT_SURCHARGE, 2)


def _jfk_manhattan(
    pickup: tuple[np.ndarray, np.ndarray], dropoff: tuple[np.ndarray, np.ndarray]
) -> np.ndarray:
    jfk = AIRPORTS["jfk"]
    return ((near(*pickup, jfk) > 0) & (in_manhattan(*dropoff) > 0)) | (
        (near(*dropoff, jfk) > 0) & (in_manhattan(*pickup) > 0)
    )


def _time_parts(prefix: str, times: pd.DatetimeIndex) -> dict[str, np.ndarray]:
    parts = {
        "weekday": times.day_of_week,
        "month": times.month,
        "monthday": times.day,
        "hour": times.hour,
        "minute": times.minute,
        "second": times.second,
    }
    return {f"{prefix}_{name}": np.asarray(values, dtype="int64") for name, values in parts.items()}


def write_csv(trips: pd.DataFrame, out: Path) -> None:
    """Write trips without an index column, byte-for-byte reproducibly."""
    out.parent.mkdir(parents=True, exist_ok=True)
    trips.to_csv(out, index=False, lineterminator="\n")


def write_samples(folder: Path = SAMPLES_DIR) -> list[Path]:
    """Write the request sample (2 rows, positional, CSV order) and the batch sample (features only)."""
    request_rows = generate_trips(2, _REQUEST_SEED)[list(FEATURES)]
    request = folder / REQUEST_SAMPLE
    folder.mkdir(parents=True, exist_ok=True)
    lines = ",\n".join(f"    {json.dumps(_row_values(row))}" for row in request_rows.itertuples(index=False))
    request.write_text(f'{{\n  "input_data": [\n{lines}\n  ]\n}}\n', encoding="utf-8")
    batch = folder / BATCH_SAMPLE
    write_csv(generate_trips(_BATCH_ROWS, _BATCH_SEED)[list(FEATURES)], batch)
    return [request, batch]


def _row_values(row: tuple[float, ...]) -> list[float | int]:
    return [
        int(value) if spec.whole else float(value) for spec, value in zip(FEATURE_SPECS, row, strict=False)
    ]


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of rows >= 1, got {text!r}")
    return int(text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mlops.data", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    generate = commands.add_parser("generate", help="write N synthetic trips (cost + 20 features) to a CSV")
    generate.add_argument("--rows", type=_positive_int, required=True)
    generate.add_argument("--seed", type=int, required=True)
    generate.add_argument("--out", type=Path, required=True)
    commands.add_parser("samples", help=f"rewrite {REQUEST_SAMPLE} and {BATCH_SAMPLE} in {SAMPLES_DIR}")
    validate = commands.add_parser("validate", help="check a CSV file or folder against the taxi schema")
    validate.add_argument("path", type=Path)
    validate.add_argument(
        "--features-only", action="store_true", help="scoring input: the 20 features without the cost column"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code (1 when validation finds a problem)."""
    args = _parser().parse_args(argv)
    if args.command == "generate":
        write_csv(generate_trips(args.rows, args.seed), args.out)
        print(f"wrote {args.rows} trips to {args.out}")
    elif args.command == "samples":
        for path in write_samples():
            print(f"wrote {path}")
    else:
        try:
            data, notes = load_taxi_csv(args.path, require_target=not args.features_only)
        except TaxiDataError as error:
            print(f"invalid: {error}", file=sys.stderr)
            return 1
        print("\n".join(notes))
        print(f"valid: {len(data)} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
