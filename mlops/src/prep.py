"""Pipeline step: validate the raw taxi data and split it 70/15/15 into train, val and test (seeded)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import mlflow
import pandas as pd
from sklearn.model_selection import train_test_split

# Siblings in mlops/src: Azure ML uploads this folder as the step's code.
from taxi_schema import TaxiDataError, load_taxi_csv
from tracking import step_run

HELD_OUT_SHARE = 0.30
"""Val and test together; each gets half, so the split is 70/15/15."""
MIN_ROWS = 20
"""Fewer rows leave val or test with a handful of trips: metrics on them would be noise."""


def split(data: pd.DataFrame, seed: int) -> dict[str, pd.DataFrame]:
    """Shuffle and split the trips into train/val/test; the same data and seed give the same split."""
    if len(data) < MIN_ROWS:
        raise TaxiDataError(
            f"the raw data has {len(data)} rows; the 70/15/15 split needs at least {MIN_ROWS}"
        )
    train, held_out = train_test_split(data, test_size=HELD_OUT_SHARE, random_state=seed, shuffle=True)
    val, test = train_test_split(held_out, test_size=0.5, random_state=seed, shuffle=True)
    return {"train": train, "val": val, "test": test}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The step's CLI, as the Azure ML pipeline spec calls it."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--raw_data", type=Path, required=True, help="a taxi CSV file or a folder of them")
    parser.add_argument("--train_data", type=Path, required=True, help="folder for train.csv")
    parser.add_argument("--val_data", type=Path, required=True, help="folder for val.csv")
    parser.add_argument("--test_data", type=Path, required=True, help="folder for test.csv")
    parser.add_argument("--seed", type=int, default=42)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Validate, split, write the three CSVs and log the split to MLflow."""
    args = parse_args(argv)
    data, notes = load_taxi_csv(args.raw_data)
    print("\n".join(notes))
    parts = split(data, args.seed)
    folders = {"train": args.train_data, "val": args.val_data, "test": args.test_data}
    with step_run("prep"):
        for name, part in parts.items():
            folders[name].mkdir(parents=True, exist_ok=True)
            part.to_csv(folders[name] / f"{name}.csv", index=False, lineterminator="\n")
        mlflow.log_params(
            {"seed": args.seed, "raw_rows": len(data)}
            | {f"{name}_rows": len(part) for name, part in parts.items()}
        )
        mlflow.log_text("\n".join(notes), "prep_notes.txt")
    print(", ".join(f"{name}: {len(part)} rows" for name, part in parts.items()))


if __name__ == "__main__":
    try:
        main()
    except TaxiDataError as error:
        sys.exit(f"prep.py: {error}")
