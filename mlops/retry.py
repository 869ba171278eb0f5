"""Retry with exponential backoff, jitter, Retry-After and an overall deadline, for Azure calls and waits."""

from __future__ import annotations

import email.utils
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

T = TypeVar("T")

TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
"""HTTP statuses worth another try; 501/505 and every 4xx but 429 will fail the same way again."""


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: attempts, backoff curve and a wall-clock budget for all attempts together."""

    max_attempts: int = 5
    base_delay_s: float = 1.0
    max_delay_s: float = 60.0
    deadline_s: float = 600.0
    jitter: float = 0.2
    """Each delay is scaled by a random factor in [1 - jitter, 1 + jitter] so parallel clients spread out."""


class RetryExhausted(Exception):
    """The last transient failure, re-raised once attempts or the deadline ran out."""

    def __init__(self, attempts: int, elapsed_s: float, last: BaseException) -> None:
        super().__init__(f"gave up after {attempts} attempt(s) in {elapsed_s:.1f}s: {describe(last)}")
        self.attempts = attempts
        self.elapsed_s = elapsed_s
        self.last = last


class DeadlineExceeded(Exception):
    """A wait did not reach its goal before its deadline."""


def status_of(error: BaseException) -> int | None:
    """The HTTP status an error carries (azure-core's `status_code`, or its response's), if any."""
    status = getattr(error, "status_code", None)
    if status is None:
        status = getattr(getattr(error, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


def headers_of(error: BaseException) -> Mapping[str, str]:
    """The response headers an error carries, with lower-case names; empty when there is no response."""
    headers = getattr(getattr(error, "response", None), "headers", None) or {}
    return {str(key).lower(): str(value) for key, value in dict(headers).items()}


def is_connection_error(error: BaseException) -> bool:
    """True for failures to reach or hear back from the service (no HTTP status at all)."""
    names = {cls.__name__ for cls in type(error).__mro__}
    # azure-core's ServiceRequestError/ServiceResponseError carry no status: the request never completed.
    return isinstance(error, ConnectionError | TimeoutError) or bool(
        names & {"ServiceRequestError", "ServiceResponseError", "ConnectionError", "Timeout"}
    )


def is_transient(error: BaseException) -> bool:
    """True when the same call may succeed later: throttling, a 5xx listed above, a connection failure."""
    status = status_of(error)
    if status is not None:
        return status in TRANSIENT_STATUSES
    return is_connection_error(error)


def retry_after_s(headers: Mapping[str, str], now: datetime) -> float | None:
    """Seconds the service asked us to wait: Retry-After as seconds or HTTP date, or the -ms variants."""
    value = headers.get("retry-after")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            parsed = _http_date(value)
            return None if parsed is None else max(0.0, (parsed - now).total_seconds())
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        millis = headers.get(name)
        if millis:
            try:
                return max(0.0, float(millis) / 1000.0)
            except ValueError:
                return None
    return None


def _http_date(value: str) -> datetime | None:
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def backoff_s(attempt: int, policy: RetryPolicy, rand: Callable[[], float]) -> float:
    """Delay before retry number `attempt` (1-based): base * 2^(attempt-1), capped, with jitter."""
    raw = min(policy.max_delay_s, policy.base_delay_s * 2 ** (attempt - 1))
    return raw * (1 - policy.jitter + 2 * policy.jitter * rand())


def next_delay_s(
    error: BaseException, attempt: int, policy: RetryPolicy, now: datetime, rand: Callable[[], float]
) -> float:
    """The wait before the next attempt: the service's Retry-After when given (capped), else our backoff."""
    asked = retry_after_s(headers_of(error), now)
    if asked is not None:
        return min(asked, policy.max_delay_s)
    return backoff_s(attempt, policy, rand)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def describe(error: BaseException, limit: int = 400) -> str:
    """A one-line description: type, status and the message without colour codes, whitespace collapsed."""
    status = status_of(error)
    message = " ".join(_ANSI.sub("", str(error)).split())[:limit]
    prefix = f"HTTP {status} " if status is not None else ""
    return f"{prefix}{type(error).__name__}: {message}".strip()


def call_with_retry(
    operation: Callable[[], T],
    policy: RetryPolicy | None = None,
    *,
    retryable: Callable[[BaseException], bool] = is_transient,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    wall_now: Callable[[], datetime] = lambda: datetime.now(UTC),
    rand: Callable[[], float] = random.random,
    on_retry: Callable[[int, float, BaseException], None] | None = None,
) -> T:
    """Run `operation`, retrying transient failures; non-transient ones propagate at once unchanged.

    Raises RetryExhausted (carrying the last error) when attempts run out or the next wait would pass the
    deadline: a wait that cannot end in time is pointless.
    """
    policy = policy or RetryPolicy()
    started = clock()
    attempt = 0
    while True:
        attempt += 1
        try:
            return operation()
        except Exception as error:  # noqa: BLE001 - classified right below
            if not retryable(error):
                raise
            elapsed = clock() - started
            delay = next_delay_s(error, attempt, policy, wall_now(), rand)
            if attempt >= policy.max_attempts or elapsed + delay > policy.deadline_s:
                raise RetryExhausted(attempt, elapsed, error) from error
            if on_retry is not None:
                on_retry(attempt, delay, error)
            sleep(delay)


def wait_until(
    poll: Callable[[], T],
    done: Callable[[T], bool],
    *,
    deadline_s: float,
    interval_s: float = 15.0,
    what: str = "operation",
    state: Callable[[T], str] = str,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Poll until `done(value)`; else raise DeadlineExceeded naming `what` and its last `state(value)`."""
    started = clock()
    while True:
        value = poll()
        if done(value):
            return value
        elapsed = clock() - started
        if elapsed >= deadline_s:
            raise DeadlineExceeded(
                f"{what} not finished after {elapsed:.0f}s (deadline {deadline_s:.0f}s); "
                f"last state: {state(value)}"
            )
        sleep(min(interval_s, max(0.0, deadline_s - elapsed)))
