"""Benchmark: held-out RMSE with and without the hyperparameter sweep, what the sweep costs, and local promotion.

Run: .venv/bin/python bench/bench_sweep.py [--rows 20000] [--trials N]
Generates `rows` trips (the demo's data), then runs the real pipeline twice through the local runner
on the same data and seed (so the same 70/15/15 split): once with the single train step, once with the
sweep step (the spec's search space, sampling and concurrency; `--trials` overrides max_total_trials).
Both test RMSEs come from the evaluate step on the same test split. Then promotes the swept model from
that workdir into a prod workdir through a local registry folder, twice (the second is the no-op), and
times each. The steps run one OpenMP thread each, as the local backend runs them.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from mlops import data as taxi_data  # noqa: E402
from mlops.local_runner import run_pipeline  # noqa: E402
from mlops.promote import LocalRegistry, LocalWorkdir, promote  # noqa: E402

PIPELINE = REPO / "mlops" / "azureml" / "train" / "pipeline.yml"
MODEL = "taxi-fare-model"


def spec_with_trials(root: Path, trials: int | None) -> Path:
    """The repository's pipeline, code paths made absolute, optionally with another trial limit."""
    raw = yaml.safe_load(PIPELINE.read_text())
    for job in raw["jobs"].values():
        for holder in (job, job.get("trial") or {}):
            if "code" in holder:
                holder["code"] = str((PIPELINE.parent / holder["code"]).resolve())
    if trials is not None:
        limits = raw["jobs"]["sweep"]["limits"]
        limits["max_total_trials"] = trials
        limits["max_concurrent_trials"] = min(limits["max_concurrent_trials"], trials)
    path = root / "pipeline.yml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def train(spec: Path, data: Path, workdir: Path, sweep: bool) -> dict[str, Any]:
    env = {
        "MLFLOW_TRACKING_URI": f"sqlite:///{workdir / 'mlflow.db'}",
        "MLFLOW_EXPERIMENT_NAME": "bench",
        "OMP_NUM_THREADS": "1",
    }
    started = time.perf_counter()
    run = run_pipeline(
        spec, {"raw_data": str(data), "model_name": MODEL, "seed": 42}, workdir, env=env, sweep=sweep
    )
    seconds = time.perf_counter() - started
    metrics = json.loads((run.output("evaluate", "evaluation_output") / "metrics.json").read_text())
    steps = {step.name: round(step.seconds, 1) for step in run.steps}
    return {
        "seconds": seconds,
        "rmse": metrics["rmse"],
        "r2": metrics["r2"],
        "val_rmse": chosen_val_rmse(workdir),
        "steps": steps,
        "run": run,
    }


def chosen_val_rmse(workdir: Path) -> float:
    """The val RMSE of the model the run kept: the lowest of its train runs (one, or the sweep's trials)."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{workdir / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("bench")
    runs = client.search_runs([experiment.experiment_id], filter_string="tags.step = 'train'")
    return min(run.data.metrics["val_rmse"] for run in runs if "val_rmse" in run.data.metrics)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--trials", type=int, help="override the spec's max_total_trials")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as scratch:
        root = Path(scratch)
        spec = spec_with_trials(root, args.trials)
        data = root / "taxi.csv"
        taxi_data.write_csv(taxi_data.generate_trips(args.rows, seed=42), data)
        plain = train(spec, data, root / "plain", sweep=False)
        swept = train(spec, data, root / "swept", sweep=True)
        trials = json.loads((root / "swept" / "steps" / "sweep" / "trials.json").read_text())
        best = min((t for t in trials if t["status"] == "completed"), key=lambda t: (t["metric"], t["index"]))
        print(
            f"rows {args.rows:,}; sweep: {len(trials)} trials ({sum(t['status'] == 'completed' for t in trials)} completed)"
        )
        print(
            f"val RMSE without sweep {plain['val_rmse']:.4f} $, with sweep (best trial) {swept['val_rmse']:.4f} $"
        )
        print(
            f"test RMSE without sweep: {plain['rmse']:.4f} $ (R2 {plain['r2']:.4f}); pipeline {plain['seconds']:.1f} s {plain['steps']}"
        )
        print(
            f"test RMSE with sweep:    {swept['rmse']:.4f} $ (R2 {swept['r2']:.4f}); pipeline {swept['seconds']:.1f} s {swept['steps']}"
        )
        change = (swept["rmse"] - plain["rmse"]) / plain["rmse"]
        print(
            f"RMSE change {change:+.1%}; sweep time cost {swept['seconds'] - plain['seconds']:.1f} s ({swept['seconds'] / plain['seconds']:.1f}x)"
        )
        print(f"best trial {best['index']}: {best['params']} val_rmse {best['metric']:.4f}")
        # Promotion: the swept run registered version 1 (first model of its workdir, so the champion).
        source, registry, target = (
            LocalWorkdir(root / "swept"),
            LocalRegistry(root / "registry"),
            LocalWorkdir(root / "prod"),
        )
        try:
            for attempt in ("first", "again"):
                started = time.perf_counter()
                result = promote(source, registry, target, MODEL, "1")
                took = time.perf_counter() - started
                copies = ", ".join(f"{copy.store.split(':')[0]} {copy.action}" for copy in result.copies)
                print(f"promote {attempt}: {took:.2f} s ({copies})")
        finally:
            source.close()
            target.close()
    print("(the machine was shared with other jobs: compare the figures of one run side by side)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
