"""The NYC taxi fare data contract: columns in CSV order, allowed values, and a validating CSV loader."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

TARGET = "cost"
"""The fare in dollars that the model predicts."""


@dataclass(frozen=True)
class ColumnSpec:
    """One CSV column: its allowed closed range and whether it must hold whole numbers."""

    name: str
    low: float
    high: float
    whole: bool = False

    @property
    def dtype(self) -> str:
        """int64 for whole numbers, so a model signature says `long` and JSON integers match it."""
        return "int64" if self.whole else "float64"

    def describe(self) -> str:
        """The allowed form, as error messages show it."""
        kind = "whole numbers" if self.whole else "numbers"
        return f"{kind} in [{self.low:g}, {self.high:g}]"


# The bounds are a wide box around New York City (including Newark airport): they catch swapped
# latitude/longitude and the 0,0 coordinates of failed GPS fixes, not unusual but real trips.
_LATITUDE = (40.0, 41.5)
_LONGITUDE = (-74.8, -72.8)

FEATURE_SPECS: tuple[ColumnSpec, ...] = (
    ColumnSpec("distance", 0.0, 200.0),
    ColumnSpec("dropoff_latitude", *_LATITUDE),
    ColumnSpec("dropoff_longitude", *_LONGITUDE),
    ColumnSpec("passengers", 0, 9, whole=True),
    ColumnSpec("pickup_latitude", *_LATITUDE),
    ColumnSpec("pickup_longitude", *_LONGITUDE),
    ColumnSpec("store_forward", 0, 1, whole=True),
    ColumnSpec("vendor", 1, 2, whole=True),
    ColumnSpec("pickup_weekday", 0, 6, whole=True),
    ColumnSpec("pickup_month", 1, 12, whole=True),
    ColumnSpec("pickup_monthday", 1, 31, whole=True),
    ColumnSpec("pickup_hour", 0, 23, whole=True),
    ColumnSpec("pickup_minute", 0, 59, whole=True),
    ColumnSpec("pickup_second", 0, 59, whole=True),
    ColumnSpec("dropoff_weekday", 0, 6, whole=True),
    ColumnSpec("dropoff_month", 1, 12, whole=True),
    ColumnSpec("dropoff_monthday", 1, 31, whole=True),
    ColumnSpec("dropoff_hour", 0, 23, whole=True),
    ColumnSpec("dropoff_minute", 0, 59, whole=True),
    ColumnSpec("dropoff_second", 0, 59, whole=True),
)
"""The 20 model inputs in CSV order; weekdays count from Monday = 0 (pandas' convention)."""

TARGET_SPEC = ColumnSpec(TARGET, 0.0, 1000.0)
FEATURES: tuple[str, ...] = tuple(spec.name for spec in FEATURE_SPECS)

_SHOWN_ROWS = 5
"""How many offending line numbers an error names per column: enough to find them, short to read."""


class TaxiDataError(ValueError):
    """The taxi data does not match the contract; the message names every problem found."""


def load_taxi_csv(path: str | Path, require_target: bool = True) -> tuple[pd.DataFrame, list[str]]:
    """Read a taxi CSV file, or every *.csv in a folder, into `cost` + FEATURES columns (ColumnSpec.dtype).

    Extra columns (such as the unnamed index column `DataFrame.to_csv` writes by default) are dropped
    and reported in the returned notes. Anything else off-contract raises TaxiDataError.
    """
    files = _csv_files(Path(path))
    specs = ((TARGET_SPEC,) if require_target else ()) + FEATURE_SPECS
    frames: list[pd.DataFrame] = []
    notes: list[str] = []
    for file in files:
        frame, file_notes = _load_one(file, specs)
        frames.append(frame)
        notes.extend(file_notes)
    data = pd.concat(frames, ignore_index=True)
    if data.empty:
        raise TaxiDataError(f"{path}: no data rows below the header; the data needs at least one trip")
    return data, notes


def _csv_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(path.glob("*.csv"))
        if not files:
            raise TaxiDataError(
                f"{path}: the folder holds no *.csv file; give a CSV file or a folder of them"
            )
        return files
    raise TaxiDataError(f"{path}: no such file or folder; give a CSV file or a folder of CSV files")


def _load_one(file: Path, specs: tuple[ColumnSpec, ...]) -> tuple[pd.DataFrame, list[str]]:
    try:
        raw = pd.read_csv(file)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise TaxiDataError(f"{file}: not a readable CSV file ({error})") from error
    expected = [spec.name for spec in specs]
    missing = [name for name in expected if name not in raw.columns]
    if missing:
        raise TaxiDataError(
            f"{file}: missing column(s) {', '.join(missing)}; the file needs a header row with "
            f"{', '.join(expected)} (any order, extra columns are ignored)"
        )
    notes = [f"{file}: read {len(raw)} rows"]
    extra = [str(name) for name in raw.columns if name not in expected]
    if extra:
        notes.append(f"{file}: ignored extra column(s) {', '.join(extra)}")
    problems = [problem for spec in specs if (problem := _column_problem(raw[spec.name], spec))]
    if problems:
        raise TaxiDataError(f"{file}: " + "; ".join(problems))
    return raw[expected].astype({spec.name: spec.dtype for spec in specs}), notes


def _column_problem(column: pd.Series, spec: ColumnSpec) -> str | None:
    """Describe what is wrong with one column, naming the first offending file lines, or None."""
    numbers = pd.to_numeric(column, errors="coerce")
    checks = (
        ("has missing values", column.isna()),
        ("has non-numeric values", numbers.isna() & column.notna()),
        (f"has values outside {spec.describe()}", (numbers < spec.low) | (numbers > spec.high)),
        ("has fractional values where whole numbers are required", _fractional(numbers, spec)),
    )
    for what, offending in checks:
        if offending.any():
            return f"column {spec.name} {what} at {_line_numbers(offending, column)}"
    return None


def _fractional(numbers: pd.Series, spec: ColumnSpec) -> pd.Series:
    if not spec.whole:
        return pd.Series(False, index=numbers.index)
    return numbers.notna() & (numbers != numbers.round())


def _line_numbers(offending: pd.Series, column: pd.Series) -> str:
    # Line 1 of the file is the header, so data row i (from 0) is line i + 2.
    positions = [int(i) for i in offending.to_numpy().nonzero()[0]]
    shown = ", ".join(f"line {i + 2} ({_shown(column.iloc[i])})" for i in positions[:_SHOWN_ROWS])
    more = f" and {len(positions) - _SHOWN_ROWS} more" if len(positions) > _SHOWN_ROWS else ""
    return shown + more


def _shown(value: object) -> str:
    # Quote text so '12 ' or 'abc' stand out; numbers print as the user wrote them, without numpy reprs.
    return repr(value) if isinstance(value, str) else str(value)
