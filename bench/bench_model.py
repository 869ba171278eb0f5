"""Benchmark: pipeline step wall times, and our fare model against the reference random forest on one split.

Run: .venv/bin/python bench/bench_model.py [--rows 100000] [--seed 42]
Generates `rows` synthetic trips, runs prep/train/evaluate/register as subprocesses (as the local runner
and Azure ML do, MLflow on a scratch sqlite store), then fits our model and the reference's
RandomForestRegressor in this process on the same train split and scores both on the same test split.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sklearn.ensemble import RandomForestRegressor
from threadpoolctl import threadpool_limits

REPO = Path(__file__).resolve().parent.parent
SRC = REPO / "mlops" / "src"
sys.path.insert(0, str(REPO))
# The step scripts import their siblings by bare name (they run with mlops/src as the script folder).
sys.path.insert(0, str(SRC))

from train import fit_model  # noqa: E402

from mlops import data as taxi_data  # noqa: E402
from mlops.src.gate import Metrics  # noqa: E402
from mlops.src.taxi_schema import FEATURES, TARGET, load_taxi_csv  # noqa: E402


def reference_model(seed: int) -> RandomForestRegressor:
    """The reference's model and hyperparameters (n_jobs left at its default, as the reference does)."""
    return RandomForestRegressor(
        n_estimators=500,
        max_depth=10,
        min_samples_leaf=4,
        min_samples_split=5,
        max_features="sqrt",
        random_state=seed,
    )


@dataclass(frozen=True)
class Fit:
    """One model's training cost and test scores."""

    name: str
    wall_seconds: float
    cpu_seconds: float
    test: Metrics


def timed(action: Callable[[], object]) -> tuple[object, float, float]:
    """The action's result, wall seconds and CPU seconds (all threads of this process)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = action()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def run_steps(work: Path, raw: Path, seed: int) -> dict[str, float]:
    """Run the four step scripts as subprocesses; return the wall seconds of each."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("MLFLOW_")}
    env |= {"MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}", "MLFLOW_EXPERIMENT_NAME": "bench"}
    from mlflow import MlflowClient

    MlflowClient(env["MLFLOW_TRACKING_URI"]).create_experiment(
        "bench", artifact_location=(work / "mlruns").as_uri()
    )
    steps = {
        "prep": [
            "prep.py",
            "--raw_data",
            raw,
            "--train_data",
            work / "train",
            "--val_data",
            work / "val",
            "--test_data",
            work / "test",
            "--seed",
            seed,
        ],
        "train": [
            "train.py",
            "--train_data",
            work / "train",
            "--val_data",
            work / "val",
            "--model_output",
            work / "model",
            "--seed",
            seed,
        ],
        "evaluate": [
            "evaluate.py",
            "--model_name",
            "bench",
            "--model_input",
            work / "model",
            "--test_data",
            work / "test",
            "--evaluation_output",
            work / "evaluation",
        ],
        "register": [
            "register.py",
            "--model_name",
            "bench",
            "--model_path",
            work / "model",
            "--evaluation_output",
            work / "evaluation",
            "--model_info_output_path",
            work / "info",
        ],
    }
    seconds: dict[str, float] = {}
    for step, args in steps.items():
        started = time.perf_counter()
        subprocess.run([sys.executable, *map(str, args)], cwd=SRC, env=env, check=True, capture_output=True)
        seconds[step] = time.perf_counter() - started
    return seconds


def compare_models(work: Path, seed: int) -> list[Fit]:
    """Fit ours and the reference on prep's train split; score both on its test split.

    The reference (n_jobs left at default) trains on one thread, so ours is timed on one thread too
    for the like-for-like ratio, and once more with every core (its default, as in the train step).
    """
    train, _ = load_taxi_csv(work / "train")
    val, _ = load_taxi_csv(work / "val")
    test, _ = load_taxi_csv(work / "test")
    actual, features = test[TARGET].to_numpy(), test[list(FEATURES)]
    with threadpool_limits(limits=1):
        ours, wall, cpu = timed(lambda: fit_model(train, val, seed))
    fits = [Fit("ours, 1 thread", wall, cpu, Metrics.of(actual, ours.predict(features)))]
    ours, wall, cpu = timed(lambda: fit_model(train, val, seed))
    fits.append(Fit(f"ours, {os.cpu_count()} threads", wall, cpu, Metrics.of(actual, ours.predict(features))))
    reference = reference_model(seed)
    _, wall, cpu = timed(lambda: reference.fit(train[list(FEATURES)], train[TARGET]))
    fits.append(
        Fit("reference RandomForest, 1 thread", wall, cpu, Metrics.of(actual, reference.predict(features)))
    )
    return fits


def report(
    rows: int,
    seed: int,
    generate_seconds: float,
    steps: dict[str, float],
    fits: list[Fit],
    evaluation: dict[str, object],
) -> str:
    """The figures as printed text."""
    lines = [
        f"data: {rows} generated trips (seed {seed}), generated in {generate_seconds:.2f} s; "
        f"split 70/15/15 by prep.py",
        "",
        "pipeline step wall time (subprocess, incl. Python/MLflow start-up):",
    ]
    lines += [f"  {step:<9} {seconds:7.1f} s" for step, seconds in steps.items()]
    lines += [
        f"  {'total':<9} {sum(steps.values()):7.1f} s",
        f"  evaluate.py: test rmse {evaluation['rmse']:.4f}, deploy_flag {evaluation['deploy_flag']}",
        "",
        f"{'model':<36} {'R2':>8} {'RMSE $':>8} {'MAE $':>8} {'train wall s':>13} {'train CPU s':>12}",
    ]
    lines += [
        f"{fit.name:<36} {fit.test.r2:8.4f} {fit.test.rmse:8.4f} {fit.test.mae:8.4f} "
        f"{fit.wall_seconds:13.1f} {fit.cpu_seconds:12.1f}"
        for fit in fits
    ]
    ours, reference = fits[0], fits[-1]
    wall_ratio, cpu_ratio = (
        ours.wall_seconds / reference.wall_seconds,
        ours.cpu_seconds / reference.cpu_seconds,
    )
    lines += [
        "",
        f"ours / reference training time at 1 thread each: wall {wall_ratio:.3f}x, CPU {cpu_ratio:.3f}x; "
        f"R2 {'higher' if ours.test.r2 > reference.test.r2 else 'NOT higher'} "
        f"({ours.test.r2:.4f} vs {reference.test.r2:.4f})",
        f"load average (1, 5, 15 min) at the end: {', '.join(f'{load:.2f}' for load in os.getloadavg())} "
        "(other processes on the machine slow multi-threaded fits most)",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Generate, run the steps, compare the models, print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-model-") as scratch:
        work = Path(scratch)
        raw = work / "raw.csv"
        _, generate_seconds, _ = timed(
            lambda: taxi_data.write_csv(taxi_data.generate_trips(args.rows, args.seed), raw)
        )
        steps = run_steps(work, raw, args.seed)
        evaluation = json.loads((work / "evaluation" / "metrics.json").read_text())
        fits = compare_models(work, args.seed)
    print(report(args.rows, args.seed, generate_seconds, steps, fits, evaluation))


if __name__ == "__main__":
    main()
