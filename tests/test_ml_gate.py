"""Tests of the deploy gate (mlops/src/gate.py): who registers, and how test scores are computed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlops.src.gate import RELATIVE_TOLERANCE, Metrics, decide


def scores(rmse: float) -> Metrics:
    """Metrics where only RMSE matters to the gate."""
    return Metrics(r2=0.9, rmse=rmse, mae=rmse / 2)


@pytest.mark.parametrize(
    ("candidate", "champion", "flag", "reason_starts"),
    [
        (2.0, None, 1, "no champion yet"),
        (2.0, 2.5, 1, "better"),
        (2.5, 2.0, 0, "worse"),
        (2.0, 2.0, 0, "tie"),
        (2.0 * (1 - RELATIVE_TOLERANCE / 2), 2.0, 0, "tie"),
        (2.0 * (1 + RELATIVE_TOLERANCE / 2), 2.0, 0, "tie"),
        (2.0 * (1 - 2 * RELATIVE_TOLERANCE), 2.0, 1, "better"),
        (2.0 * (1 + 2 * RELATIVE_TOLERANCE), 2.0, 0, "worse"),
        (math.nan, None, 0, "candidate RMSE is nan"),
        (math.inf, 2.0, 0, "candidate RMSE is inf"),
        (2.0, math.nan, 1, "champion RMSE is nan"),
    ],
)
def test_decide(candidate: float, champion: float | None, flag: int, reason_starts: str) -> None:
    decision = decide(scores(candidate), None if champion is None else scores(champion))
    assert decision.flag == flag
    assert decision.reason.startswith(reason_starts)


def test_decide_ignores_r2_and_mae_when_rmse_decides() -> None:
    candidate = Metrics(r2=0.10, rmse=1.0, mae=5.0)
    champion = Metrics(r2=0.99, rmse=2.0, mae=0.1)
    assert decide(candidate, champion).flag == 1


def test_reason_names_both_rmses() -> None:
    reason = decide(scores(1.2345), scores(2.5)).reason
    assert "1.2345" in reason and "2.5000" in reason


@pytest.mark.parametrize(
    ("actual", "predicted", "expected"),
    [
        ([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], Metrics(r2=1.0, rmse=0.0, mae=0.0)),
        ([1.0, 2.0, 3.0], [2.0, 2.0, 2.0], Metrics(r2=0.0, rmse=math.sqrt(2 / 3), mae=2 / 3)),
        ([0.0, 10.0], [3.0, 6.0], Metrics(r2=1 - 25 / 50, rmse=math.sqrt(12.5), mae=3.5)),
    ],
)
def test_metrics_of(actual: list[float], predicted: list[float], expected: Metrics) -> None:
    got = Metrics.of(np.array(actual), np.array(predicted))
    assert got.as_dict() == pytest.approx(expected.as_dict())


def test_metrics_of_matches_sklearn() -> None:
    from sklearn.metrics import mean_absolute_error, r2_score, root_mean_squared_error

    rng = np.random.default_rng(3)
    actual = rng.gamma(2.0, 8.0, 500)
    predicted = actual + rng.normal(0, 2.0, 500)
    got = Metrics.of(actual, predicted)
    assert got.r2 == pytest.approx(r2_score(actual, predicted))
    assert got.rmse == pytest.approx(root_mean_squared_error(actual, predicted))
    assert got.mae == pytest.approx(mean_absolute_error(actual, predicted))


@pytest.mark.parametrize(("actual", "predicted"), [([1.0, 2.0], [1.0]), ([], [])])
def test_metrics_of_refuses_mismatched_or_empty(actual: list[float], predicted: list[float]) -> None:
    with pytest.raises(ValueError, match="predictions"):
        Metrics.of(np.array(actual), np.array(predicted))


def test_metrics_round_trip_through_mapping() -> None:
    metrics = Metrics(r2=0.5, rmse=1.5, mae=1.0)
    assert Metrics.from_mapping({**metrics.as_dict(), "deploy_flag": 1}) == metrics
