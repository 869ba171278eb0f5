"""Drift statistics as Azure ML's model monitor defines them, per feature and for predictions, through scipy.

Metric names, the numerical/categorical split and the default thresholds follow Azure ML model monitoring
(Learn: concept-model-monitoring.md, "Monitoring signals and metrics"; reference-yaml-monitor.md, allowed
metric names; azure-ai-ml 1.35 `NumericalDriftMetrics._get_default_thresholds` = normalized Wasserstein
0.1 and `CategoricalDriftMetrics._get_default_thresholds` = Jensen-Shannon 0.1). Every statistic comes from
scipy; this module only bins the data and picks which statistic decides the alert.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency, entropy, ks_2samp, wasserstein_distance

Kind = Literal["numerical", "categorical"]
NUMERICAL_METRICS = (
    "jensen_shannon_distance",
    "normalized_wasserstein_distance",
    "population_stability_index",
    "two_sample_kolmogorov_smirnov_test",
)
CATEGORICAL_METRICS = ("jensen_shannon_distance", "population_stability_index", "pearsons_chi_squared_test")
P_VALUE_METRICS = frozenset({"two_sample_kolmogorov_smirnov_test", "pearsons_chi_squared_test"})
"""Tests report a p-value: they alert when it falls *below* the threshold, distances when they rise above."""
HISTOGRAM_BINS = 20
# PSI divides by bin shares: an empty bin would make it infinite, so shares are floored (common practice).
MIN_SHARE = 1e-4
MIN_ROWS = 2


class DriftError(ValueError):
    """Data that drift cannot be computed on; the message says which column and why."""


@dataclass(frozen=True)
class Thresholds:
    """Which metric decides drift for each kind of column, and its threshold."""

    numerical_metric: str = "normalized_wasserstein_distance"
    numerical: float = 0.1
    categorical_metric: str = "jensen_shannon_distance"
    categorical: float = 0.1

    def __post_init__(self) -> None:
        if self.numerical_metric not in NUMERICAL_METRICS:
            raise DriftError(f"numerical metric {self.numerical_metric!r}: use one of {NUMERICAL_METRICS}")
        if self.categorical_metric not in CATEGORICAL_METRICS:
            raise DriftError(
                f"categorical metric {self.categorical_metric!r}: use one of {CATEGORICAL_METRICS}"
            )
        for name, value in (("numerical", self.numerical), ("categorical", self.categorical)):
            if not (np.isfinite(value) and value > 0):
                raise DriftError(f"{name} threshold must be a positive number, got {value}")

    def rule(self, kind: Kind) -> tuple[str, float]:
        """The deciding (metric, threshold) for a column of `kind`."""
        if kind == "numerical":
            return self.numerical_metric, self.numerical
        return self.categorical_metric, self.categorical


@dataclass(frozen=True)
class ColumnDrift:
    """The drift of one column between reference and production, with every metric of its kind."""

    name: str
    kind: Kind
    metrics: Mapping[str, float]
    metric: str
    threshold: float
    reference_rows: int
    production_rows: int
    extra: Mapping[str, float] = field(default_factory=dict)

    @property
    def value(self) -> float:
        """The deciding metric's value."""
        return self.metrics[self.metric]

    @property
    def drifted(self) -> bool:
        """Whether the deciding metric crossed its threshold."""
        if self.metric in P_VALUE_METRICS:
            return self.value < self.threshold
        return self.value > self.threshold


def _clean(values: Iterable[float] | pd.Series, column: str, side: str) -> np.ndarray:
    array = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)
    array = array[np.isfinite(array)]
    if array.size < MIN_ROWS:
        raise DriftError(
            f"column {column!r}: {side} data has {array.size} finite values; drift needs at least {MIN_ROWS}"
        )
    return array


def _shares(counts: np.ndarray) -> np.ndarray:
    shares = counts / counts.sum()
    floored = np.maximum(shares, MIN_SHARE)
    return floored / floored.sum()


def population_stability_index(reference: np.ndarray, production: np.ndarray) -> float:
    """PSI of two binned distributions: the symmetric KL divergence, sum((p - q) ln(p / q))."""
    p, q = _shares(reference), _shares(production)
    return float(entropy(p, q) + entropy(q, p))


def numerical_drift(reference: np.ndarray, production: np.ndarray) -> dict[str, float]:
    """Every numerical metric, on shared histogram bins spanning both samples."""
    edges = np.histogram_bin_edges(np.concatenate([reference, production]), bins=HISTOGRAM_BINS)
    ref_counts = np.histogram(reference, bins=edges)[0].astype(float)
    prod_counts = np.histogram(production, bins=edges)[0].astype(float)
    spread = float(np.std(reference))
    distance = wasserstein_distance(reference, production)
    # Normalized by the reference's spread so one threshold fits miles and minutes alike; a constant
    # reference column has no spread, and then any movement at all is drift.
    normalized = distance / spread if spread > 0 else (0.0 if distance == 0 else float("inf"))
    return {
        "jensen_shannon_distance": float(jensenshannon(ref_counts, prod_counts, base=2)),
        "normalized_wasserstein_distance": float(normalized),
        "population_stability_index": population_stability_index(ref_counts, prod_counts),
        "two_sample_kolmogorov_smirnov_test": float(ks_2samp(reference, production).pvalue),
    }


def categorical_drift(reference: np.ndarray, production: np.ndarray) -> dict[str, float]:
    """Every categorical metric, over the union of the categories seen on either side."""
    categories = np.union1d(reference, production)
    ref_counts = np.array([(reference == value).sum() for value in categories], dtype=float)
    prod_counts = np.array([(production == value).sum() for value in categories], dtype=float)
    if categories.size < 2:
        chi_p = 1.0  # one category on both sides: nothing can have moved
    else:
        chi_p = float(chi2_contingency(np.vstack([ref_counts, prod_counts])).pvalue)
    return {
        "jensen_shannon_distance": float(jensenshannon(ref_counts, prod_counts, base=2)),
        "population_stability_index": population_stability_index(ref_counts, prod_counts),
        "pearsons_chi_squared_test": chi_p,
    }


def column_drift(
    name: str,
    reference: Iterable[float] | pd.Series,
    production: Iterable[float] | pd.Series,
    kind: Kind,
    thresholds: Thresholds = Thresholds(),
) -> ColumnDrift:
    """The drift of one column (NaN and infinities are left out, as data-quality rather than drift)."""
    ref, prod = _clean(reference, name, "reference"), _clean(production, name, "production")
    metrics = numerical_drift(ref, prod) if kind == "numerical" else categorical_drift(ref, prod)
    metric, threshold = thresholds.rule(kind)
    return ColumnDrift(name, kind, metrics, metric, threshold, ref.size, prod.size)


def drift_by_column(
    reference: pd.DataFrame,
    production: pd.DataFrame,
    columns: Iterable[str],
    categorical: frozenset[str] = frozenset(),
    thresholds: Thresholds = Thresholds(),
) -> list[ColumnDrift]:
    """Drift of each of `columns` (numerical unless named in `categorical`), most drifted first."""
    wanted = list(columns)
    missing = {
        side: sorted(set(wanted) - set(frame.columns))
        for side, frame in (("reference", reference), ("production", production))
    }
    problems = [f"{side} data lacks columns {names}" for side, names in missing.items() if names]
    if problems:
        raise DriftError("; ".join(problems))
    results = [
        column_drift(
            name,
            reference[name],
            production[name],
            "categorical" if name in categorical else "numerical",
            thresholds,
        )
        for name in wanted
    ]
    return sorted(results, key=lambda drift: (not drift.drifted, -_severity(drift)))


def _severity(drift: ColumnDrift) -> float:
    """How far past (or short of) its threshold a column is, comparable across metrics."""
    if drift.metric in P_VALUE_METRICS:
        return drift.threshold / max(drift.value, 1e-300)
    return drift.value / drift.threshold
