"""Table tests of the retry helper: classification, Retry-After, backoff, attempts and deadline."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from mlops.retry import (
    DeadlineExceeded,
    RetryExhausted,
    RetryPolicy,
    backoff_s,
    call_with_retry,
    is_transient,
    retry_after_s,
    wait_until,
)

NOW = datetime(2026, 11, 22, 2, 0, 0, tzinfo=UTC)


@dataclass
class FakeResponse:
    status_code: int
    headers: dict[str, str] = field(default_factory=dict)


class HttpError(Exception):
    """Shaped like azure-core's HttpResponseError: status_code plus the response."""

    def __init__(self, status: int, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"HTTP {status}")
        self.status_code = status
        self.response = FakeResponse(status, headers or {})


class ServiceRequestError(Exception):
    """Named like azure-core's connection failure (no status)."""


@dataclass
class FakeTime:
    now: float = 0.0
    sleeps: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def failing_then(result: Any, *errors: BaseException) -> Any:
    pending = list(errors)
    calls: list[int] = []

    def operation() -> Any:
        calls.append(1)
        if pending:
            raise pending.pop(0)
        return result

    operation.calls = calls  # type: ignore[attr-defined]
    return operation


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (HttpError(429), True),
        (HttpError(500), True),
        (HttpError(502), True),
        (HttpError(503), True),
        (HttpError(504), True),
        (HttpError(501), False),
        (HttpError(505), False),
        (HttpError(400), False),
        (HttpError(401), False),
        (HttpError(403), False),
        (HttpError(404), False),
        (HttpError(409), False),
        (ConnectionResetError(), True),
        (TimeoutError(), True),
        (ServiceRequestError("dns"), True),
        (ValueError("bad"), False),
    ],
)
def test_only_throttling_server_and_connection_errors_are_transient(
    error: BaseException, transient: bool
) -> None:
    assert is_transient(error) is transient


def test_azure_core_errors_are_classified_by_their_real_types() -> None:
    from azure.core.exceptions import ClientAuthenticationError
    from azure.core.exceptions import ServiceRequestError as AzureRequestError

    assert is_transient(AzureRequestError("connection refused"))
    assert not is_transient(ClientAuthenticationError("expired"))


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after": "-3"}, 0.0),
        ({"retry-after": "Sun, 22 Nov 2026 02:00:30 GMT"}, 30.0),
        ({"retry-after": "Sun, 22 Nov 2026 01:59:00 GMT"}, 0.0),
        ({"retry-after": "soon"}, None),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"x-ms-retry-after-ms": "250"}, 0.25),
        ({}, None),
    ],
)
def test_retry_after_in_seconds_or_http_date(headers: dict[str, str], expected: float | None) -> None:
    assert retry_after_s(headers, NOW) == expected


@pytest.mark.parametrize(
    ("attempt", "rand", "expected"),
    [(1, 0.5, 1.0), (2, 0.5, 2.0), (3, 0.5, 4.0), (10, 0.5, 60.0), (1, 0.0, 0.8), (1, 1.0, 1.2)],
)
def test_backoff_doubles_is_capped_and_jittered(attempt: int, rand: float, expected: float) -> None:
    policy = RetryPolicy(base_delay_s=1, max_delay_s=60, jitter=0.2)
    assert backoff_s(attempt, policy, lambda: rand) == pytest.approx(expected)


def run(operation: Any, policy: RetryPolicy, time: FakeTime) -> Any:
    return call_with_retry(
        operation, policy, clock=time.clock, sleep=time.sleep, wall_now=lambda: NOW, rand=lambda: 0.5
    )


def test_retry_after_is_honoured_then_success() -> None:
    time = FakeTime()
    operation = failing_then("ok", HttpError(429, {"Retry-After": "7"}), HttpError(503))
    assert run(operation, RetryPolicy(base_delay_s=1), time) == "ok"
    assert time.sleeps == [7.0, 2.0]
    assert len(operation.calls) == 3


def test_retry_after_longer_than_the_cap_is_capped() -> None:
    time = FakeTime()
    run(failing_then("ok", HttpError(429, {"Retry-After": "3600"})), RetryPolicy(max_delay_s=30), time)
    assert time.sleeps == [30.0]


def test_permanent_errors_propagate_at_once() -> None:
    time = FakeTime()
    operation = failing_then("ok", HttpError(401))
    with pytest.raises(HttpError):
        run(operation, RetryPolicy(), time)
    assert time.sleeps == [] and len(operation.calls) == 1


def test_attempts_are_bounded() -> None:
    time = FakeTime()
    operation = failing_then("ok", *[HttpError(500)] * 5)
    with pytest.raises(RetryExhausted) as raised:
        run(operation, RetryPolicy(max_attempts=3, base_delay_s=1), time)
    assert raised.value.attempts == 3 and isinstance(raised.value.last, HttpError)
    assert time.sleeps == [1.0, 2.0]


def test_a_wait_that_would_pass_the_deadline_is_not_started() -> None:
    time = FakeTime()
    operation = failing_then(
        "ok", HttpError(429, {"Retry-After": "20"}), HttpError(429, {"Retry-After": "20"})
    )
    with pytest.raises(RetryExhausted, match="gave up after 2 attempt"):
        run(operation, RetryPolicy(max_attempts=10, deadline_s=30), time)
    assert time.sleeps == [20.0]


def test_wait_until_returns_when_done_and_polls_at_the_interval() -> None:
    time = FakeTime()
    states = iter(["Queued", "Running", "Completed"])
    result = wait_until(
        lambda: next(states),
        lambda s: s == "Completed",
        deadline_s=100,
        interval_s=10,
        clock=time.clock,
        sleep=time.sleep,
    )
    assert result == "Completed" and time.sleeps == [10, 10]


def test_wait_until_raises_at_the_deadline_naming_the_last_state() -> None:
    time = FakeTime()
    with pytest.raises(DeadlineExceeded, match="job x not finished after 25s .*last state: Running"):
        wait_until(
            lambda: "Running",
            lambda s: False,
            deadline_s=25,
            interval_s=10,
            what="job x",
            clock=time.clock,
            sleep=time.sleep,
        )
    assert time.sleeps == [10, 10, 5]
