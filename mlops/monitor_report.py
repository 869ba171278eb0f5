"""The local model monitor: collected (or batch-scored) traffic against the training data, as Markdown + PNGs.

Production data is what the local endpoint's data collection wrote (mlops/azureml/deploy/online/
data_collection.py: model_inputs and model_outputs JSON lines) or a CSV of features with an optional
`prediction` column. Reference data is the training CSV; the predictions are compared with its `cost`
column, which is what the model learned to predict. The verdict is the local alert: `drifted` is true when
any feature or the predictions crossed its threshold.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from mlops.drift import ColumnDrift, Thresholds, drift_by_column
from mlops.src.taxi_schema import FEATURE_SPECS, TARGET

FEATURES = tuple(spec.name for spec in FEATURE_SPECS)
# Codes, not quantities: a histogram distance over vendor 1/2 means nothing, category shares do.
CATEGORICAL = frozenset({"store_forward", "vendor"})
PREDICTION = "prediction"
INPUTS, OUTPUTS = "model_inputs", "model_outputs"
PLOTTED_COLUMNS = 6
FEW_ROWS = 1000
"""Below this many production rows the distances mostly measure sampling noise (about 0.1 at 250 rows)."""


class MonitorError(ValueError):
    """Inputs the monitor cannot use; the message names the file and the fix."""


@dataclass(frozen=True)
class Production:
    """Production traffic: features, predictions when known, and per-request latency when collected."""

    source: str
    features: pd.DataFrame
    predictions: pd.Series | None
    requests: pd.DataFrame | None
    """One row per request: time (UTC) and latency_ms; None for a CSV."""


@dataclass(frozen=True)
class Report:
    """What the monitor found and where it wrote it."""

    drift: list[ColumnDrift]
    markdown: Path
    figures: tuple[Path, ...]
    seconds: float
    production_rows: int

    @property
    def drifted(self) -> list[ColumnDrift]:
        """The columns that crossed their thresholds."""
        return [column for column in self.drift if column.drifted]


def _jsonl_records(folder: Path) -> list[dict]:
    records = []
    for file in sorted(folder.rglob("*.jsonl")):
        lines = file.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                # The last line of a file still being written may be cut short: skip only that one.
                if number != len(lines):
                    raise MonitorError(
                        f"{file}, line {number}: not JSON; is this a data collection folder?"
                    ) from None
    return records


def collection_folders(root: Path) -> list[Path]:
    """The collection folders (holding model_inputs/) at or under `root`: one per deployment locally."""
    return sorted({inputs.parent for inputs in root.rglob(INPUTS) if inputs.is_dir()})


def load_collection(root: Path) -> Production:
    """Production traffic from a data collection folder, or from every collection folder under it."""
    inputs, outputs = [], {}
    for folder in collection_folders(root):
        inputs += _jsonl_records(folder / INPUTS)
        outputs |= {record["correlationid"]: record for record in _jsonl_records(folder / OUTPUTS)}
    if not inputs:
        raise MonitorError(
            f"{root} holds no collected requests ({INPUTS}/**/*.jsonl); send traffic to the local "
            "endpoint first (e.g. `python -m mlops loadtest`), or pass --production CSV"
        )
    rows, predictions, requests = [], [], []
    for record in inputs:
        output = outputs.get(record.get("correlationid"))
        rows.extend(record["data"])
        if output is not None and len(output["data"]) == len(record["data"]):
            predictions.extend(row[PREDICTION] for row in output["data"])
            requests.append({"time": record["time"], "latency_ms": output.get("latency_ms", np.nan)})
        else:
            predictions.extend([np.nan] * len(record["data"]))
    frame = pd.DataFrame(rows)
    timeline = pd.DataFrame(requests, columns=["time", "latency_ms"])
    timeline["time"] = pd.to_datetime(timeline["time"], utc=True)
    timeline = timeline.sort_values("time", ignore_index=True)
    return Production(f"collection {root}", frame, pd.Series(predictions, name=PREDICTION), timeline)


def load_production_csv(path: Path) -> Production:
    """Production data from a CSV of features, with predictions if it has a `prediction` column."""
    frame = pd.read_csv(path)
    predictions = frame[PREDICTION] if PREDICTION in frame.columns else None
    return Production(f"file {path}", frame, predictions, None)


def load_production(path: Path) -> Production:
    """A collection folder or a CSV file."""
    if path.is_dir():
        return load_collection(path)
    if path.is_file():
        return load_production_csv(path)
    raise MonitorError(f"production data {path} does not exist; give a collection folder or a CSV")


def load_reference(path: Path) -> pd.DataFrame:
    """The training CSV (features and `cost`)."""
    if not path.is_file():
        raise MonitorError(f"reference data {path} is not a file; give the training CSV")
    return pd.read_csv(path)


def compare(
    reference: pd.DataFrame, production: Production, thresholds: Thresholds = Thresholds()
) -> list[ColumnDrift]:
    """Drift of every feature and, when both sides have them, of the predictions against `cost`."""
    drift = drift_by_column(reference, production.features, FEATURES, CATEGORICAL, thresholds)
    predictions = production.predictions
    if predictions is not None and TARGET in reference.columns and predictions.notna().sum() >= 2:
        sides = reference[[TARGET]].rename(columns={TARGET: PREDICTION}), predictions.to_frame(PREDICTION)
        drift += drift_by_column(*sides, [PREDICTION], thresholds=thresholds)
    return drift


# ------------------------------------------------------------------ figures


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers and CI
    import matplotlib.pyplot as plt

    return plt


def plot_drift(drift: Sequence[ColumnDrift], out: Path) -> Path:
    """One bar per column: its deciding metric as a multiple of its threshold (1 = the alert line)."""
    plt = _pyplot()
    ordered = sorted(drift, key=lambda column: column.value / column.threshold)
    figure, axis = plt.subplots(figsize=(8, 0.3 * len(ordered) + 1.5))
    ratios = [column.value / column.threshold for column in ordered]
    colors = ["#c0392b" if column.drifted else "#2e86c1" for column in ordered]
    axis.barh([column.name for column in ordered], ratios, color=colors)
    axis.axvline(1.0, color="black", linestyle="--", linewidth=1)
    axis.set_xlabel("deciding metric / threshold (p-value tests: threshold / p)")
    axis.set_title("Drift per column (red: threshold crossed)")
    figure.tight_layout()
    figure.savefig(out, dpi=90)
    plt.close(figure)
    return out


def plot_distributions(
    reference: pd.DataFrame, production: Production, drift: Sequence[ColumnDrift], out: Path
) -> Path:
    """Reference vs production histograms of the most drifted columns."""
    plt = _pyplot()
    shown = list(drift[:PLOTTED_COLUMNS])
    columns = 3
    rows = -(-len(shown) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(12, 3 * rows), squeeze=False)
    for axis, column in zip(axes.flat, shown):
        ref = reference[TARGET if column.name == PREDICTION else column.name]
        prod = production.predictions if column.name == PREDICTION else production.features[column.name]
        values = pd.concat([ref, prod]).dropna()
        bins = np.histogram_bin_edges(values, bins=30)
        # One stairs artist per side, not a patch per bar: drawing dominated the report's time.
        for side, label in ((ref, "reference"), (prod, "production")):
            density = np.histogram(side.dropna(), bins=bins, density=True)[0]
            axis.stairs(density, bins, fill=True, alpha=0.5, label=label)
        axis.set_title(f"{column.name}: {column.metric} {column.value:.3g}", fontsize=9)
        axis.legend(fontsize=7)
    for axis in list(axes.flat)[len(shown) :]:
        axis.set_visible(False)
    figure.tight_layout()
    figure.savefig(out, dpi=90)
    plt.close(figure)
    return out


def plot_latency(requests: pd.DataFrame, out: Path) -> Path:
    """Scoring latency of every collected request over time, with rolling p50 and p95."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(10, 3.5))
    timeline = requests.set_index("time")["latency_ms"]
    axis.plot(timeline.index, timeline.values, ".", markersize=2, alpha=0.4, label="request")
    window = max(5, len(timeline) // 50)
    for quantile, style in ((0.5, "-"), (0.95, "--")):
        rolling = timeline.rolling(window, min_periods=1).quantile(quantile)
        axis.plot(rolling.index, rolling.values, style, label=f"rolling p{int(quantile * 100)}")
    axis.set_ylabel("scoring latency (ms)")
    axis.set_title("Latency over time (time inside score.py: parse, predict, collect)")
    axis.legend(fontsize=8)
    figure.autofmt_xdate()
    figure.tight_layout()
    figure.savefig(out, dpi=90)
    plt.close(figure)
    return out


# ------------------------------------------------------------------ Markdown


def _drift_table(drift: Sequence[ColumnDrift]) -> list[str]:
    header = (
        "| column | kind | deciding metric | value | threshold | drifted | Jensen-Shannon | PSI | "
        "norm. Wasserstein | KS / chi² p |"
    )
    lines = [header, "| --- | --- | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |"]
    for column in drift:
        metrics = column.metrics
        test = metrics.get("two_sample_kolmogorov_smirnov_test", metrics.get("pearsons_chi_squared_test"))
        wasserstein = metrics.get("normalized_wasserstein_distance")
        lines.append(
            f"| {column.name} | {column.kind} | {column.metric} | {column.value:.4g} | {column.threshold:g} | "
            f"{'**yes**' if column.drifted else 'no'} | {metrics['jensen_shannon_distance']:.4f} | "
            f"{metrics['population_stability_index']:.4f} | "
            f"{'' if wasserstein is None else f'{wasserstein:.4f}'} | {test:.3g} |"
        )
    return lines


def _latency_lines(requests: pd.DataFrame | None) -> list[str]:
    if requests is None or requests.empty:
        return ["No per-request latency: the production data is a file, not a collection."]
    latency = requests["latency_ms"].dropna()
    start, end = requests["time"].iloc[0], requests["time"].iloc[-1]
    p50, p95, p99 = (float(np.percentile(latency, q)) for q in (50, 95, 99))
    return [
        f"{len(requests):,} requests from {start:%Y-%m-%d %H:%M:%S} to {end:%H:%M:%S} UTC; "
        f"scoring latency p50 {p50:.2f} ms, p95 {p95:.2f} ms, p99 {p99:.2f} ms.",
        "",
        "![latency over time](latency.png)",
    ]


def render_markdown(
    reference_source: str,
    reference_rows: int,
    production: Production,
    drift: Sequence[ColumnDrift],
    thresholds: Thresholds,
) -> str:
    """The report text (figures referenced by their file names beside it)."""
    crossed = [column for column in drift if column.drifted]
    verdict = (
        f"**ALERT: {len(crossed)} of {len(drift)} columns drifted** ({', '.join(c.name for c in crossed)})"
        if crossed
        else f"**OK: none of {len(drift)} columns crossed its threshold**"
    )
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Model monitor report (local)",
        "",
        verdict,
        "",
        f"- generated {when}",
        f"- reference: {reference_source}, {reference_rows:,} rows (predictions compared with `{TARGET}`)",
        f"- production: {production.source}, {len(production.features):,} rows"
        + (
            f" (**fewer than {FEW_ROWS:,}: sampling noise alone can cross the thresholds**)"
            if len(production.features) < FEW_ROWS
            else ""
        ),
        f"- thresholds: numerical `{thresholds.numerical_metric}` > {thresholds.numerical:g}, categorical "
        f"`{thresholds.categorical_metric}` > {thresholds.categorical:g} (Azure ML's defaults)",
        "",
        "## Drift per column",
        "",
        "![drift per column](drift.png)",
        "",
        *_drift_table(drift),
        "",
        "## Distributions of the most drifted columns",
        "",
        "![distributions](distributions.png)",
        "",
        "## Latency",
        "",
        *_latency_lines(production.requests),
        "",
    ]
    return "\n".join(lines)


def write_report(
    reference_path: Path,
    production_path: Path,
    out_dir: Path,
    thresholds: Thresholds = Thresholds(),
) -> Report:
    """Compare, plot and write `out_dir/report.md` (+ report.json and PNGs); returns what was found."""
    started = time.perf_counter()
    reference = load_reference(reference_path)
    production = load_production(production_path)
    drift = compare(reference, production, thresholds)
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = [
        plot_drift(drift, out_dir / "drift.png"),
        plot_distributions(reference, production, drift, out_dir / "distributions.png"),
    ]
    if production.requests is not None and not production.requests.empty:
        figures.append(plot_latency(production.requests, out_dir / "latency.png"))
    markdown = out_dir / "report.md"
    text = render_markdown(str(reference_path), len(reference), production, drift, thresholds)
    markdown.write_text(text, encoding="utf-8")
    summary = {
        "drifted": [column.name for column in drift if column.drifted],
        "columns": {
            column.name: {"metric": column.metric, "value": column.value, "threshold": column.threshold}
            for column in drift
        },
    }
    (out_dir / "report.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return Report(drift, markdown, tuple(figures), time.perf_counter() - started, len(production.features))
