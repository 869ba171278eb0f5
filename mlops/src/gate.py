"""The deploy gate: whether a freshly trained model should replace the registered champion.

The metric is RMSE in dollars, with the champion re-scored on the *same* test set as the candidate
(evaluate.py does that), never compared against numbers it logged on some other split:
- On one test set, R2 = 1 - MSE / Var(y) orders models exactly as RMSE does, so choosing RMSE loses
  nothing and reads in the unit riders pay; it also weighs large misses (long and airport trips)
  more than MAE, which is what a fare quote should be judged on.
- Ties do NOT register. Training is seeded end to end, so re-running the pipeline with the same data
  and code reproduces the champion exactly; registering it again would add a new version, move the
  `champion` alias and trigger a redeployment for no change. A candidate must beat the champion by
  more than RELATIVE_TOLERANCE: far above float noise between machines or thread counts (around
  1e-6 relative), far below any improvement worth shipping.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

import numpy as np

CHAMPION_ALIAS = "champion"
"""The registry alias that marks the champion locally (MLflow on sqlite supports aliases)."""

CHAMPION_TAG, CHAMPION_TAG_VALUE = "champion", "true"
"""The model version tag that marks the champion on Azure ML, whose MLflow registry supports version tags but
not aliases (how-to-manage-models-mlflow.md, supported capabilities; AZURE-FACTS 16)."""

RELATIVE_TOLERANCE = 0.001
"""How much lower (relative) a candidate's RMSE must be than the champion's to replace it."""


def version_key(version: str) -> tuple[int, int, str]:
    """Sort key of model versions: numbers numerically (registries count 1, 2, ...), other labels after."""
    return (0, int(version), "") if version.isdigit() else (1, 0, version)


def is_older(version: str, than: str) -> bool:
    """Whether numeric `version` was registered before numeric `than` (labels are never ordered)."""
    return version.isdigit() and than.isdigit() and int(version) < int(than)


def pick_champion(versions: Iterable[tuple[str, Mapping[str, str]]]) -> str | None:
    """The champion among (version, tags): the newest version tagged champion=true, chosen on the client side.

    Azure ML's registry cannot search by tag, and moving the tag is two calls (tag the new version, untag
    the old): if the second is lost, the newest tagged version is still the right one.
    """
    tagged = [
        version
        for version, tags in versions
        if str((tags or {}).get(CHAMPION_TAG, "")).lower() == CHAMPION_TAG_VALUE
    ]
    return max(tagged, key=version_key) if tagged else None


@dataclass(frozen=True)
class Metrics:
    """Test-set scores of one model: R2 (unitless), RMSE and MAE (dollars)."""

    r2: float
    rmse: float
    mae: float

    def as_dict(self) -> dict[str, float]:
        """The scores as a JSON-ready mapping."""
        return asdict(self)

    @classmethod
    def of(cls, actual: np.ndarray, predicted: np.ndarray) -> Metrics:
        """Score predictions against the actual fares."""
        actual, predicted = np.asarray(actual, dtype="float64"), np.asarray(predicted, dtype="float64")
        if actual.shape != predicted.shape or actual.size == 0:
            raise ValueError(
                f"need as many predictions as actual values (>0), got {predicted.shape} "
                f"predictions for {actual.shape} actual values"
            )
        errors = predicted - actual
        total = float(np.sum((actual - actual.mean()) ** 2))
        r2 = 1 - float(np.sum(errors**2)) / total if total > 0 else float("nan")
        return cls(r2=r2, rmse=float(np.sqrt(np.mean(errors**2))), mae=float(np.mean(np.abs(errors))))

    @classmethod
    def from_mapping(cls, values: Mapping[str, float]) -> Metrics:
        """Scores read back from metrics.json (extra keys are ignored)."""
        return cls(r2=float(values["r2"]), rmse=float(values["rmse"]), mae=float(values["mae"]))


@dataclass(frozen=True)
class Decision:
    """The gate's verdict: flag 1 registers the candidate as the new champion, 0 keeps the old one."""

    flag: int
    reason: str


def decide(candidate: Metrics, champion: Metrics | None) -> Decision:
    """Compare a candidate with the champion scored on the same test set (None: no champion yet)."""
    if not math.isfinite(candidate.rmse):
        return Decision(0, f"candidate RMSE is {candidate.rmse}: the model predicts non-finite fares")
    if champion is None:
        return Decision(1, "no champion yet: the first model becomes the champion")
    if not math.isfinite(champion.rmse):
        return Decision(
            1, f"champion RMSE is {champion.rmse} on this test set: any finite candidate is better"
        )
    threshold = champion.rmse * (1 - RELATIVE_TOLERANCE)
    comparison = f"candidate RMSE {candidate.rmse:.4f} vs champion {champion.rmse:.4f}"
    if candidate.rmse < threshold:
        return Decision(1, f"better: {comparison}")
    if candidate.rmse > champion.rmse * (1 + RELATIVE_TOLERANCE):
        return Decision(0, f"worse: {comparison}")
    return Decision(
        0,
        f"tie within {RELATIVE_TOLERANCE:.1%}: {comparison}; the champion stays "
        "(a re-run with the same data and code must not register a new version)",
    )
