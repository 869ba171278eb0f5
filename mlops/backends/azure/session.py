"""One workspace session shared by the Azure backend's parts: the MLClient, error mapping, waits, the plan."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from mlops.backends.base import BackendError, TransientBackendError
from mlops.retry import (
    DeadlineExceeded,
    RetryExhausted,
    RetryPolicy,
    call_with_retry,
    describe,
    is_transient,
    status_of,
    wait_until,
)
from mlops.stack_outputs import StackOutputs

T = TypeVar("T")

DEFAULT_POLICY = RetryPolicy()
ENDPOINT_DEADLINE_S = 1800.0
"""Endpoint create/update, traffic shifts and deletes: ARM operations that take minutes, not hours."""

_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")


@dataclass(frozen=True)
class PlanItem:
    """One line of a dry-run plan: a step, what it targets, and what exists already."""

    step: str
    target: str
    state: str

    def __str__(self) -> str:
        return f"plan: {self.step:<12} {self.target:<48} {self.state}"


def plain(value: Any, default: str = "Unknown") -> str:
    """An SDK state as plain text (the SDK hands back str enums whose str() is 'JobStatus.X')."""
    return str(getattr(value, "value", value) or default)


def job_status(job: Any) -> str:
    """A job's status as plain text."""
    return plain(getattr(job, "status", None))


def redact(text: str, secrets: Sequence[str]) -> str:
    """Remove known secrets and any bearer token from a message before it is shown or raised."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return _BEARER.sub(r"\1***", text)


@dataclass
class Session:
    """What every part of the Azure backend shares: where the workspace is, how to call it, what was planned.

    `client` is the MLClient, built on first use; other modules (promotion, monitoring) take it from here.
    """

    outputs: StackOutputs
    credential: Any = None
    dry_run: bool = False
    progress: Callable[[str], None] = print
    retry_policy: RetryPolicy = DEFAULT_POLICY
    poll_interval_s: float = 30.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    plan: list[PlanItem] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)
    _client: Any = None

    @property
    def client(self) -> Any:
        """MLClient built on first use; its own retries are off so ours (deadline, Retry-After) govern."""
        if self._client is None:
            from azure.ai.ml import MLClient

            credential = self.credential
            if credential is None:
                from azure.identity import DefaultAzureCredential

                credential = DefaultAzureCredential()
            self._client = MLClient(
                credential,
                self.outputs.subscription_id,
                self.outputs.resource_group,
                self.outputs.workspace_name,
                retry_total=0,
                show_progress=False,
            )
        return self._client

    def close(self) -> None:
        """Drop the client so its HTTP sessions close."""
        self._client = None

    def say(self, message: str) -> None:
        self.progress(redact(message, self.secrets))

    def safe(self, message: str) -> str:
        return redact(message, self.secrets)

    def add_plan(self, step: str, target: str, state: str) -> None:
        item = PlanItem(step, target, state)
        self.plan.append(item)
        self.say(str(item))

    def call(self, what: str, operation: Callable[[], T]) -> T:
        """One Azure call: transient failures retried, then every failure mapped to a BackendError."""
        with self.azure_errors(what):
            return call_with_retry(
                operation,
                self.retry_policy,
                clock=self.clock,
                sleep=self.sleep,
                on_retry=lambda attempt, delay, error: self.say(
                    f"{what}: {describe(error)}; retry {attempt} in {delay:.1f}s"
                ),
            )

    @contextmanager
    def azure_errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except BackendError:
            raise
        except RetryExhausted as exhausted:
            raise TransientBackendError(self.safe(f"{what}: {exhausted}")) from None
        except DeadlineExceeded as late:
            raise BackendError(self.safe(f"{what}: {late}")) from None
        except Exception as error:  # noqa: BLE001 - every SDK failure becomes a BackendError with advice
            # Transient errors land here when they happen outside our retry (e.g. while polling an LRO).
            kind = TransientBackendError if is_transient(error) else BackendError
            raise kind(self.safe(f"{what}: {self.advice(error)}")) from None

    def advice(self, error: BaseException) -> str:
        status = status_of(error)
        names = {cls.__name__ for cls in type(error).__mro__}
        where = f"workspace {self.outputs.workspace_name!r} in resource group {self.outputs.resource_group!r}"
        if status == 401 or "ClientAuthenticationError" in names:
            return (
                f"authentication failed ({describe(error)}): no usable identity or its token was rejected. "
                "Run `az login`, or in CI set AZURE_CLIENT_ID/AZURE_TENANT_ID and a federated token"
            )
        if status == 403:
            return (
                f"permission denied on {where} ({describe(error)}). Grant the deploying identity "
                "'AzureML Data Scientist' on the workspace (see the README section of the hook)"
            )
        if status == 404 or "ResourceNotFoundError" in names:
            return (
                f"not found in {where} ({describe(error)}); is the stack deployed, are the outputs current?"
            )
        return describe(error)

    def exists(self, what: str, read: Callable[[], T]) -> T | None:
        """A read that treats 404 as absence rather than failure."""
        from azure.core.exceptions import ResourceNotFoundError

        def read_or_none() -> T | None:
            try:
                return read()
            except ResourceNotFoundError:
                return None

        return self.call(what, read_or_none)

    def finish(self, what: str, begin: Callable[[], Any], deadline_s: float) -> Any:
        """Start a long-running operation and wait for it within the deadline."""
        poller = self.call(what, begin)
        with self.azure_errors(what):
            poller.wait(timeout=deadline_s)
            if not poller.done():
                raise DeadlineExceeded(
                    f"not finished within {deadline_s:.0f}s; it continues in Azure, re-run to resume"
                )
            return poller.result()

    def wait(self, poll: Callable[[], T], done: Callable[[T], bool], deadline_s: float, what: str) -> T:
        """Poll until done, within the deadline, at the session's poll interval."""
        return wait_until(
            poll,
            done,
            deadline_s=deadline_s,
            interval_s=self.poll_interval_s,
            what=what,
            state=lambda value: plain(
                getattr(value, "status", None) or getattr(value, "provisioning_state", None)
            ),
            clock=self.clock,
            sleep=self.sleep,
        )
