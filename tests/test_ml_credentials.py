"""The hook's credential per CI system, and an hour-long hook outliving ten-minute federated tokens.

The long-run tests drive the real azure-identity credentials and MLClient against intercepted token and ARM
endpoints on a fake clock (time.time and the backend's sleep both read it), so an hour passes instantly.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from mlops.backends.azure import AzureBackend
from mlops.backends.azure.credentials import build_credential, choose_credential
from mlops.backends.base import UsageError
from tests._fake_arm import OUTPUTS, WORKSPACE_PATH, FakeArm, intercepted_arm, unsigned_jwt

TENANT = "72f988bf-0000-0000-0000-000000000001"
CLIENT = "0a1b2c3d-0000-0000-0000-000000000002"
AZURE_DEVOPS = {
    "TF_BUILD": "True",
    "AZURESUBSCRIPTION_CLIENT_ID": CLIENT,
    "AZURESUBSCRIPTION_TENANT_ID": TENANT,
    "AZURESUBSCRIPTION_SERVICE_CONNECTION_ID": "sc-0000",
    "SYSTEM_ACCESSTOKEN": "system-access-token",
    "SYSTEM_OIDCREQUESTURI": "https://dev.azure.com/contoso/project-id/_apis/distributedtask/hubs/build/plans/p/jobs/j/oidctoken",
}
GITHUB = {
    "GITHUB_ACTIONS": "true",
    "AZURE_CLIENT_ID": CLIENT,
    "AZURE_TENANT_ID": TENANT,
    "ACTIONS_ID_TOKEN_REQUEST_URL": "https://pipelines.actions.githubusercontent.com/oidc/idtoken?api-version=2.0",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "runtime-request-token",
}
TOKEN_LIFETIME_S = 600
"""What the intercepted Microsoft Entra endpoint grants: ten minutes, like a federated CI token."""


@pytest.mark.parametrize(
    ("env", "kind", "credential_class"),
    [
        (AZURE_DEVOPS, "azure-pipelines", "AzurePipelinesCredential"),
        (GITHUB, "github-oidc", "ClientAssertionCredential"),
        (
            {"JENKINS_URL": "https://jenkins.contoso/", "AZURE_CLIENT_ID": CLIENT},
            "managed-identity",
            "ManagedIdentityCredential",
        ),
        ({}, "default", "DefaultAzureCredential"),
    ],
)
def test_each_ci_system_gets_a_credential_that_refreshes(
    env: dict[str, str], kind: str, credential_class: str
) -> None:
    choice = choose_credential(env)
    assert choice.kind == kind
    assert type(build_credential(choice, env)).__name__ == credential_class


@pytest.mark.parametrize(
    ("env", "missing", "fix"),
    [
        ({**AZURE_DEVOPS, "SYSTEM_ACCESSTOKEN": ""}, "SYSTEM_ACCESSTOKEN", "$(System.AccessToken)"),
        (
            {k: v for k, v in AZURE_DEVOPS.items() if "SERVICE_CONNECTION" not in k},
            "AZURESUBSCRIPTION_SERVICE_CONNECTION_ID",
            "AzureCLI@2",
        ),
        (
            {k: v for k, v in GITHUB.items() if k != "ACTIONS_ID_TOKEN_REQUEST_URL"},
            "ACTIONS_ID_TOKEN_REQUEST_URL",
            "id-token: write",
        ),
    ],
)
def test_a_half_configured_ci_job_is_told_what_is_missing(
    env: dict[str, str], missing: str, fix: str
) -> None:
    with pytest.raises(UsageError) as refused:
        choose_credential(env)
    assert missing in str(refused.value) and fix in str(refused.value) and "10 minutes" in str(refused.value)


@dataclass
class FakeTime:
    """Wall clock and sleep for azure-identity, azure-core and the backend at once."""

    now: float = 1_900_000_000.0
    sleeps: list[float] = field(default_factory=list)

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@dataclass
class Identity:
    """The CI's OIDC issuer and Microsoft Entra's token endpoint, both intercepted."""

    clock: FakeTime
    assertions: list[float] = field(default_factory=list)
    """Fake times at which a fresh CI assertion was requested."""
    grants: list[float] = field(default_factory=list)
    expired_calls: list[str] = field(default_factory=list)

    def ci_token(self, request: Any) -> tuple[int, dict[str, str], str]:
        self.assertions.append(self.clock.now)
        assertion = unsigned_jwt({"iss": "ci", "exp": self.clock.now + 300})
        key = "oidcToken" if request.method == "POST" else "value"
        return 200, {"Content-Type": "application/json"}, json.dumps({key: assertion})

    def entra_token(self, request: Any) -> tuple[int, dict[str, str], str]:
        form = parse_qs(request.body if isinstance(request.body, str) else request.body.decode())
        assert form["client_assertion_type"] == ["urn:ietf:params:oauth:client-assertion-type:jwt-bearer"]
        claims = json.loads(base64.urlsafe_b64decode(form["client_assertion"][0].split(".")[1] + "=="))
        assert claims["exp"] > self.clock.now, "Entra got an expired CI assertion"
        self.grants.append(self.clock.now)
        token = unsigned_jwt(
            {
                "oid": "ci",
                "tid": TENANT,
                "aud": "https://management.azure.com",
                "exp": self.clock.now + TOKEN_LIFETIME_S,
            }
        )
        return (
            200,
            {},
            json.dumps({"access_token": token, "expires_in": TOKEN_LIFETIME_S, "token_type": "Bearer"}),
        )

    def check(self, request: Any) -> None:
        """Called for every ARM request: its bearer token must not have expired on the fake clock."""
        token = request.headers["Authorization"].split()[1]
        claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
        if claims["exp"] <= self.clock.now:
            self.expired_calls.append(urlparse(request.url).path)


@pytest.fixture
def long_hook(monkeypatch: Any) -> Iterator[tuple[FakeArm, Identity, FakeTime]]:
    """Intercepted ARM whose every request checks its token, the CI and Entra endpoints, and a fake clock."""
    clock = FakeTime()
    identity = Identity(clock)
    for variable in ("TF_BUILD", "GITHUB_ACTIONS", "JENKINS_URL", "RUNNER_ENVIRONMENT"):
        monkeypatch.delenv(variable, raising=False)
    with intercepted_arm(monkeypatch) as arm:
        monkeypatch.setattr(time, "time", clock.time)
        arm.mock.add_callback(
            "POST",
            re.compile(r"https://login\.microsoftonline\.com/.*/oauth2/v2\.0/token"),
            callback=identity.entra_token,
            content_type="application/json",
        )
        arm.mock.add_callback(
            "POST",
            re.compile(r"https://dev\.azure\.com/.*/oidctoken.*"),
            callback=identity.ci_token,
            content_type="application/json",
        )
        arm.mock.add_callback(
            "GET",
            re.compile(r"https://pipelines\.actions\.githubusercontent\.com/oidc/idtoken.*"),
            callback=identity.ci_token,
            content_type="application/json",
        )
        original = arm.handle

        def checked(request: Any) -> Any:
            identity.check(request)
            return original(request)

        arm.handle = checked  # type: ignore[method-assign]
        yield arm, identity, clock


@pytest.mark.parametrize("ci", ["github", "azure-devops"])
def test_an_hour_long_training_wait_survives_ten_minute_tokens(
    long_hook: tuple[FakeArm, Identity, FakeTime], monkeypatch: Any, ci: str
) -> None:
    arm, identity, clock = long_hook
    for name, value in (GITHUB if ci == "github" else AZURE_DEVOPS).items():
        monkeypatch.setenv(name, value)
    arm.put("/jobs/taxi-train-long", {"properties": {"jobType": "Pipeline", "status": "Running"}})
    arm.job_progress.extend(["Running"] * 14 + ["Completed"])  # one poll every 5 minutes for 70 minutes
    backend = AzureBackend(
        OUTPUTS, progress=lambda line: None, poll_interval_s=300, clock=clock.time, sleep=clock.sleep
    )

    job = backend.training.wait_for_job("taxi-train-long", deadline_s=4 * 3600)

    assert job.status == "Completed"
    assert sum(clock.sleeps) >= 3600, "the wait took over an hour of (fake) time"
    assert identity.expired_calls == [], "a request went out with an expired token"
    assert len(identity.grants) >= 6, "Entra was asked again as tokens ran out"
    assert len(identity.assertions) == len(identity.grants), "each new token came from a fresh CI assertion"
    assert f"{WORKSPACE_PATH}/jobs/taxi-train-long" in {path for _, path in arm.calls}
