"""`python -m mlops report`: a training run's metrics against the champion, plots and lineage, as Markdown.

The report reads one local pipeline run folder (WORKDIR/runs/run-NNN, as `deploy --target local`
writes it): the evaluate step's metrics.json holds the candidate's and the champion's scores on the
same test set and the gate's verdict, so the table never compares numbers from different splits.
Plots are recomputed from the candidate model and the test split; hashes are recomputed from the
run's data splits and code snapshot with the functions train.py stamped into the model's metadata.
Two files come out: report.md (with the PNGs beside it) and comment.md, the same without images,
for a pull-request comment (a comment cannot show local files; CI attaches the folder instead).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from mlops.src.fingerprint import code_sha256, data_sha256

COMMENT_MARKER = "<!-- mlops-report -->"
"""First line of the pull-request comment: CI finds its own comment by it and updates it in place."""
METRICS: tuple[tuple[str, str, bool], ...] = (
    ("rmse", "RMSE ($)", False),
    ("mae", "MAE ($)", False),
    ("r2", "R²", True),
)
"""Metric key, label, and whether higher is better."""
DISTANCE_EDGES: tuple[float, ...] = (0.0, 1.0, 2.0, 5.0, 10.0, 20.0, math.inf)
"""Trip distance bins (miles) for the error-by-distance plot: short hops to airport runs."""
IMPORTANCE_ROWS = 2000
IMPORTANCE_REPEATS = 5
PLOTS = {
    "predicted_vs_actual": "predicted vs actual fare",
    "residuals": "residual histogram",
    "error_by_distance": "error by trip distance",
    "permutation_importance": "permutation feature importance",
}
"""PNG file stem -> caption, in the order the report shows them."""


class ReportError(ValueError):
    """The run folder lacks what the report needs; the message names the file and how to get it."""


# ---------------------------------------------------------------- pure pieces


@dataclass(frozen=True)
class MetricRow:
    """One metric of the table: candidate, champion (None without one), and whether the candidate is better."""

    label: str
    candidate: float
    champion: float | None
    higher_is_better: bool

    @property
    def delta(self) -> float | None:
        """Candidate minus champion, in the metric's unit."""
        return None if self.champion is None else self.candidate - self.champion

    @property
    def better(self) -> bool | None:
        """Whether the candidate beats the champion on this metric (None: no champion or equal)."""
        if self.delta is None or self.delta == 0:
            return None
        return (self.delta > 0) == self.higher_is_better


def metric_rows(record: Mapping[str, Any]) -> list[MetricRow]:
    """The table rows from an evaluate step's metrics.json (candidate keys at the top, champion nested)."""
    missing = [key for key, _, _ in METRICS if not isinstance(record.get(key), int | float)]
    if missing:
        raise ReportError(f"metrics.json lacks {missing}; it must come from mlops/src/evaluate.py")
    champion = record.get("champion") or None
    return [
        MetricRow(
            label,
            float(record[key]),
            float(champion[key]) if champion and isinstance(champion.get(key), int | float) else None,
            higher_is_better,
        )
        for key, label, higher_is_better in METRICS
    ]


def _number(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def metric_table(rows: Sequence[MetricRow], champion_version: str | None) -> str:
    """The Markdown table: candidate, champion, delta, and a mark where the candidate is better or worse."""
    champion = f"champion (v{champion_version})" if champion_version else "champion"
    lines = [f"| metric | candidate | {champion} | delta | |", "| --- | ---: | ---: | ---: | --- |"]
    marks = {True: "better", False: "worse", None: ""}
    for row in rows:
        lines.append(
            f"| {row.label} | {_number(row.candidate)} | {_number(row.champion)} "
            f"| {_number(row.delta, signed=True)} | {marks[row.better]} |"
        )
    return "\n".join(lines)


def gate_verdict(record: Mapping[str, Any]) -> str:
    """One line: whether the gate registers the candidate, and its reason."""
    flag = record.get("deploy_flag")
    if flag not in (0, 1):
        raise ReportError(f"metrics.json has deploy_flag {flag!r}; evaluate.py writes 0 or 1")
    verdict = "registers the candidate as the new champion" if flag == 1 else "keeps the champion"
    return f"**Gate:** deploy_flag={flag}, {verdict}: {record.get('reason', 'no reason recorded')}"


@dataclass(frozen=True)
class BinError:
    """Errors of the test trips whose distance falls in [low, high) miles."""

    low: float
    high: float
    trips: int
    rmse: float
    mae: float

    @property
    def label(self) -> str:
        """`2-5 mi`, or `20+ mi` for the open last bin."""
        return f"{self.low:g}+ mi" if math.isinf(self.high) else f"{self.low:g}-{self.high:g} mi"


def errors_by_distance(
    distance: np.ndarray, actual: np.ndarray, predicted: np.ndarray, edges: Sequence[float] = DISTANCE_EDGES
) -> list[BinError]:
    """RMSE and MAE per distance bin; bins without trips are left out."""
    distance, errors = np.asarray(distance, float), np.asarray(predicted, float) - np.asarray(actual, float)
    bins = []
    for low, high in zip(edges, edges[1:]):
        inside = (distance >= low) & (distance < high)
        if inside.any():
            chosen = errors[inside]
            rmse, mae = float(np.sqrt(np.mean(chosen**2))), float(np.mean(np.abs(chosen)))
            bins.append(BinError(low, high, int(inside.sum()), rmse, mae))
    return bins


# ---------------------------------------------------------------- the run folder


@dataclass(frozen=True)
class RunFolder:
    """The files of one local pipeline run the report reads."""

    root: Path
    metrics: Path
    model: Path
    splits: tuple[Path, Path, Path]
    code: Path

    @classmethod
    def locate(cls, root: Path) -> RunFolder:
        """Find the evaluate output, the model that was evaluated, the splits and the code snapshot."""
        root = Path(root)
        steps = root / "steps"
        metrics = steps / "evaluate" / "evaluation_output" / "metrics.json"
        # The training step is `train`, or `sweep` when the run swept (its output is the best trial's model).
        models = [steps / step / "model_output" for step in ("sweep", "train")]
        model = next((folder for folder in models if (folder / "MLmodel").is_file()), None)
        splits = tuple(steps / "prep" / f"{name}_data" for name in ("train", "val", "test"))
        code = root / "code" / "src"
        needed = [metrics, *splits, code]
        absent = [str(path) for path in needed if not path.exists()] + (
            [] if model else [f"{models[0]} or {models[1]} (an MLflow model)"]
        )
        if absent:
            raise ReportError(
                f"{root} is not a complete local training run: missing {', '.join(absent)}; "
                "pass a folder WORKDIR/runs/run-NNN written by `python -m mlops deploy --target local`"
            )
        assert model is not None
        return cls(root, metrics, model, splits, code)  # type: ignore[arg-type]

    def record(self) -> dict[str, Any]:
        """The evaluate step's metrics.json."""
        return json.loads(self.metrics.read_text())

    def hashes(self) -> dict[str, str]:
        """Data (the train + val splits the model was fitted on, and the test split) and code hashes."""
        train, val, test = self.splits
        return {
            "training data (train + val splits)": data_sha256(train, val),
            "test data": data_sha256(test),
            "code (mlops/src snapshot)": code_sha256(self.code),
        }

    def recorded_lineage(self) -> dict[str, str]:
        """The lineage train.py stamped into the model's MLmodel metadata (empty for older models)."""
        import yaml

        spec = yaml.safe_load((self.model / "MLmodel").read_text()) or {}
        return dict((spec.get("metadata") or {}).get("lineage") or {})


# ---------------------------------------------------------------- plots


def _figure() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # headless: CI runners have no display
    import matplotlib.pyplot as plt

    return plt


def plot_predicted_vs_actual(actual: np.ndarray, predicted: np.ndarray, out: Path) -> None:
    """Scatter of predicted against actual fares with the ideal diagonal."""
    plt = _figure()
    figure, axes = plt.subplots(figsize=(6, 6))
    axes.scatter(actual, predicted, s=4, alpha=0.4)
    limit = float(max(actual.max(), predicted.max())) * 1.05
    axes.plot([0, limit], [0, limit], color="black", linewidth=1, label="predicted = actual")
    axes.set(xlabel="actual fare ($)", ylabel="predicted fare ($)", xlim=(0, limit), ylim=(0, limit))
    axes.set_title("Test set: predicted vs actual fare")
    axes.legend(loc="upper left")
    _save(plt, figure, out)


def plot_residuals(actual: np.ndarray, predicted: np.ndarray, out: Path) -> None:
    """Histogram of predicted minus actual fare."""
    plt = _figure()
    figure, axes = plt.subplots(figsize=(7, 4))
    axes.hist(predicted - actual, bins=60, color="tab:blue", alpha=0.8)
    axes.axvline(0, color="black", linewidth=1)
    axes.set(xlabel="predicted - actual fare ($)", ylabel="test trips", title="Residuals on the test set")
    _save(plt, figure, out)


def plot_error_by_distance(bins: Sequence[BinError], out: Path) -> None:
    """RMSE and MAE per trip-distance bin, with the trip count of each bin."""
    plt = _figure()
    figure, axes = plt.subplots(figsize=(7, 4))
    positions = np.arange(len(bins))
    axes.bar(positions - 0.2, [b.rmse for b in bins], width=0.4, label="RMSE")
    axes.bar(positions + 0.2, [b.mae for b in bins], width=0.4, label="MAE")
    axes.set_xticks(positions, [f"{b.label}\n({b.trips} trips)" for b in bins], fontsize=8)
    axes.set(ylabel="error ($)", title="Test error by trip distance")
    axes.legend()
    _save(plt, figure, out)


def plot_importance(importance: Mapping[str, float], out: Path) -> None:
    """Horizontal bars of the RMSE increase when each raw input column is shuffled."""
    plt = _figure()
    ordered = sorted(importance.items(), key=lambda item: item[1])
    figure, axes = plt.subplots(figsize=(7, 6))
    axes.barh([name for name, _ in ordered], [value for _, value in ordered])
    axes.set(xlabel="RMSE increase when shuffled ($)", title="Permutation feature importance (test set)")
    axes.tick_params(axis="y", labelsize=8)
    _save(plt, figure, out)


def _save(plt: Any, figure: Any, out: Path) -> None:
    figure.savefig(out, dpi=100, bbox_inches="tight")
    plt.close(figure)


def permutation_importance_rmse(model: Any, test: pd.DataFrame, seed: int) -> dict[str, float]:
    """Mean RMSE increase per raw column when it is shuffled (sklearn's permutation_importance), seeded."""
    from sklearn.inspection import permutation_importance

    from mlops.src.taxi_schema import FEATURES, TARGET

    sample = test.sample(n=min(len(test), IMPORTANCE_ROWS), random_state=seed)
    result = permutation_importance(
        model,
        sample[list(FEATURES)],
        sample[TARGET],
        scoring="neg_root_mean_squared_error",
        n_repeats=IMPORTANCE_REPEATS,
        random_state=seed,
    )
    return {name: float(value) for name, value in zip(FEATURES, result.importances_mean)}


# ---------------------------------------------------------------- the report


@dataclass(frozen=True)
class Report:
    """Where the report went and what it holds."""

    markdown: Path
    comment: Path
    plots: dict[str, Path]
    rows: list[MetricRow]


def write_report(run: Path, out: Path, against: str = "champion", seed: int = 42) -> Report:
    """Write report.md, comment.md and the four PNGs for the run folder `run` into `out`."""
    import mlflow.sklearn

    from mlops.src.taxi_schema import TARGET, load_taxi_csv

    folder = RunFolder.locate(run)
    record = folder.record()
    if against == "none":
        record = {**record, "champion": None}
    elif against != "champion":
        raise ReportError(f"--against {against!r}: give 'champion' (the one evaluate scored) or 'none'")
    rows = metric_rows(record)
    test, _ = load_taxi_csv(folder.splits[2])
    model = mlflow.sklearn.load_model(str(folder.model))
    actual = test[TARGET].to_numpy(dtype=float)
    # One OpenMP thread: permutation importance predicts ~100 times, and on a shared 2-core runner
    # the boosting's OpenMP barriers made each predict 9x slower with the default thread count.
    with threadpool_limits(limits=1):
        predicted = np.asarray(model.predict(test.drop(columns=[TARGET])), dtype=float)
        importance = permutation_importance_rmse(model, test, seed)
    out.mkdir(parents=True, exist_ok=True)
    plots = {stem: out / f"{stem}.png" for stem in PLOTS}
    plot_predicted_vs_actual(actual, predicted, plots["predicted_vs_actual"])
    plot_residuals(actual, predicted, plots["residuals"])
    plot_error_by_distance(
        errors_by_distance(test["distance"], actual, predicted), plots["error_by_distance"]
    )
    plot_importance(importance, plots["permutation_importance"])
    body = _body(folder, record, rows)
    markdown, comment = out / "report.md", out / "comment.md"
    figures = "\n\n".join(f"![{caption}]({stem}.png)" for stem, caption in PLOTS.items())
    markdown.write_text(f"{body}\n\n### Plots\n\n{figures}\n")
    comment.write_text(
        f"{COMMENT_MARKER}\n{body}\n\nPlots: {', '.join(PLOTS.values())} (in the CI artifact).\n"
    )
    return Report(markdown, comment, plots, rows)


def _body(folder: RunFolder, record: Mapping[str, Any], rows: Sequence[MetricRow]) -> str:
    champion = record.get("champion") or {}
    hashes = folder.hashes()
    lines = [
        f"### Model report: `{folder.root.name}`",
        "",
        metric_table(rows, champion.get("version")),
        "",
        gate_verdict(record),
        "",
        "| lineage | sha256 |",
        "| --- | --- |",
        *(f"| {what} | `{digest}` |" for what, digest in hashes.items()),
        "",
        lineage_check(folder.recorded_lineage(), hashes),
    ]
    return "\n".join(lines)


def lineage_check(recorded: Mapping[str, str], hashes: Mapping[str, str]) -> str:
    """Whether the hashes train.py stamped into the model match the run's data and code as they are now."""
    if not recorded:
        return "The model records no lineage (trained before train.py stamped it)."
    expected = {
        "data_sha256": hashes["training data (train + val splits)"],
        "code_sha256": hashes["code (mlops/src snapshot)"],
    }
    differing = [key for key, value in expected.items() if recorded.get(key) != value]
    if differing:
        return f"**Warning:** the model's recorded {', '.join(differing)} differ from this run's files."
    return "The model's recorded lineage matches this run's data and code."
