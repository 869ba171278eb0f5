"""One workspace session shared by the Azure backend's parts: the MLClient, error mapping, waits, the plan.

Retries, in one place each (AZURE-FACTS 22):
- HTTP: azure-core's RetryPolicy inside MLClient (408/429/5xx and connection errors, Retry-After honoured;
  3 status retries by default). It also retries while polling long-running operations, which
  `retry_total=0` would switch off, so it stays on and this module adds no second layer around SDK calls.
- Blob uploads: azure-storage-blob retries them itself.
- POSTs that start work (batch invoke) are never repeated here; a create whose response was lost is re-read
  (`create`) before it counts as failed.
- Long waits (jobs, deployments) ride out a transient read error and poll again, within their deadline.
- Only requests made outside azure-core (the smoke test's scoring POST) use mlops.retry's policy.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlparse

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
SDK_RETRIES = {"retry_total": 5, "retry_status": 3, "retry_connect": 3, "retry_backoff_factor": 0.8}
"""azure-core's retries for every MLClient request and poll: 5 in all, 3 on a retryable status."""

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


def request_url(error: BaseException) -> str:
    """The URL the failed request went to (azure-core errors carry their response and its request)."""
    request = getattr(getattr(error, "response", None), "request", None)
    return str(getattr(request, "url", "") or "")


def missing_role(url: str, outputs: StackOutputs) -> str:
    """The role a 403 from `url` points at, for the deploying identity (README, 'Roles')."""
    storage = outputs.storage_account_name or "the workspace storage account"
    host = urlparse(url).hostname or ""
    if host.endswith(".blob.core.windows.net"):
        return f"'Storage Blob Data Contributor' on storage account {storage} (datastores use identity auth)"
    if host.endswith(".file.core.windows.net"):
        return f"'Storage File Data Privileged Contributor' on storage account {storage}"
    if "/registries/" in url:
        return "'AzureML Registry User' on the model registry (config modelRegistryWriters of the prod stack)"
    if "/providers/Microsoft.ContainerService/managedClusters/" in url:
        return (
            "managedClusters/runcommand/action and commandResults/read on the AKS cluster (README, 'Roles')"
        )
    return f"'AzureML Data Scientist' on workspace {outputs.workspace_name}"


@dataclass
class Session:
    """What every part of the Azure backend shares: where the workspace is, how to call it, what was planned.

    `client` is the MLClient, built on first use; other modules (promotion, monitoring) take it from here.
    `deadline_s` bounds every wait of the run (the hook's own deadline), counted from the session's start.
    """

    outputs: StackOutputs
    credential: Any = None
    dry_run: bool = False
    progress: Callable[[str], None] = print
    retry_policy: RetryPolicy = DEFAULT_POLICY
    poll_interval_s: float = 30.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    deadline_s: float | None = None
    plan: list[PlanItem] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)
    _client: Any = None

    def __post_init__(self) -> None:
        self._started = self.clock()

    @property
    def credential_object(self) -> Any:
        """The Azure credential, chosen per CI system on first use (see credentials.py)."""
        if self.credential is None:
            from mlops.backends.azure.credentials import build_credential, choose_credential

            choice = choose_credential(os.environ)
            self.say(f"azure: credential {choice.kind} ({choice.ci})")
            self.credential = build_credential(choice, os.environ)
        return self.credential

    @property
    def client(self) -> Any:
        """MLClient built on first use, with azure-core's HTTP and polling retries on (module docstring)."""
        if self._client is None:
            from azure.ai.ml import MLClient

            self._client = MLClient(
                self.credential_object,
                self.outputs.subscription_id,
                self.outputs.resource_group,
                self.outputs.workspace_name,
                show_progress=False,
                **SDK_RETRIES,
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

    def cap(self, deadline_s: float) -> float:
        """A wait's deadline, cut to what is left of the hook's."""
        if self.deadline_s is None:
            return deadline_s
        return max(0.0, min(deadline_s, self.deadline_s - (self.clock() - self._started)))

    def call(self, what: str, operation: Callable[[], T]) -> T:
        """One SDK call (azure-core retried it already); every failure mapped to a BackendError with advice."""
        with self.azure_errors(what):
            return operation()

    def call_with_retry(self, what: str, operation: Callable[[], T]) -> T:
        """A request made outside azure-core (and idempotent): retried by mlops.retry's policy."""
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

    def create(self, what: str, create: Callable[[], T], reread: Callable[[], T | None]) -> T:
        """Create once; if that fails, re-read: a create whose response was lost has still happened."""
        try:
            return self.call(what, create)
        except BackendError as failure:
            try:
                found = self.exists(f"{what} (re-read)", reread)
            except BackendError:
                raise failure from None
            if found is None:
                raise
            self.say(f"{what}: {failure}; it exists now (the response was lost), carrying on")
            return found

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
            kind = TransientBackendError if is_transient(error) else BackendError
            raise kind(self.safe(f"{what}: {self.advice(error)}")) from None

    def advice(self, error: BaseException) -> str:
        status = status_of(error)
        names = {cls.__name__ for cls in type(error).__mro__}
        where = f"workspace {self.outputs.workspace_name!r} in resource group {self.outputs.resource_group!r}"
        if status == 401 or "ClientAuthenticationError" in names:
            return (
                f"authentication failed ({describe(error)}): no usable identity or its token was rejected. "
                "Run `az login`, or in CI give the hook a refreshing credential (README, 'Credentials')"
            )
        if status == 403:
            vnet = (
                " The workspace is private: if the message says public access is disabled, run the hook "
                "from inside its VNet (the self-hosted agents)"
                if self.outputs.private_workspace
                else ""
            )
            return (
                f"permission denied ({describe(error)}). Grant the deploying identity "
                f"{missing_role(request_url(error), self.outputs)} (README, 'Roles').{vnet}"
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
        """Start a long-running operation and wait for it within the deadline (capped by the hook's)."""
        poller = self.call(what, begin)
        limit = self.cap(deadline_s)
        with self.azure_errors(what):
            poller.wait(timeout=limit)
            if not poller.done():
                raise DeadlineExceeded(
                    f"not finished within {limit:.0f}s; it continues in Azure, re-run to resume"
                )
            return poller.result()

    def wait(self, poll: Callable[[], T], done: Callable[[T], bool], deadline_s: float, what: str) -> T:
        """Poll until done, within the deadline (capped by the hook's); a transient read error polls again."""
        unknown: list[TransientBackendError] = []

        def tolerant_poll() -> Any:
            try:
                value = poll()
            except TransientBackendError as error:
                self.say(f"{what}: {error}; polling again")
                unknown.append(error)
                return None
            return value

        def state(value: Any) -> str:
            if value is None and unknown:
                return str(unknown[-1])
            return plain(getattr(value, "status", None) or getattr(value, "provisioning_state", None))

        return wait_until(
            tolerant_poll,
            lambda value: value is not None and done(value),
            deadline_s=self.cap(deadline_s),
            interval_s=self.poll_interval_s,
            what=what,
            state=state,
            clock=self.clock,
            sleep=self.sleep,
        )
