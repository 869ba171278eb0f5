"""The hook's Azure identity per CI system, chosen so that a token refreshes for as long as the hook runs.

A federated token from CI lives about ten minutes and the az CLI cannot refresh it (Azure/azure-cli#28708,
AZURE-FACTS 21), so an hour-long hook never relies on `az login`:
- Azure DevOps: AzurePipelinesCredential asks the pipeline's OIDC endpoint for a fresh assertion each time
  (the AzureCLI@2 task exposes AZURESUBSCRIPTION_CLIENT_ID / _TENANT_ID / _SERVICE_CONNECTION_ID; the job
  maps SYSTEM_ACCESSTOKEN);
- GitHub Actions: a ClientAssertionCredential whose callback requests a new OIDC token from
  ACTIONS_ID_TOKEN_REQUEST_URL with ACTIONS_ID_TOKEN_REQUEST_TOKEN (job permission id-token: write);
- Jenkins: the agent VM's managed identity (ManagedIdentityCredential refreshes from IMDS; AZURE_CLIENT_ID
  picks a user-assigned one);
- elsewhere (a developer's machine): DefaultAzureCredential (az login, environment, managed identity).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlops.backends.base import UsageError

GITHUB_AUDIENCE = "api://AzureADTokenExchange"
"""The audience Microsoft Entra expects in a federated credential's token (Azure/login's default)."""
OIDC_TIMEOUT_S = 30.0

AZURE_DEVOPS_VARIABLES = (
    "AZURESUBSCRIPTION_CLIENT_ID",
    "AZURESUBSCRIPTION_TENANT_ID",
    "AZURESUBSCRIPTION_SERVICE_CONNECTION_ID",
    "SYSTEM_ACCESSTOKEN",
    "SYSTEM_OIDCREQUESTURI",
)
GITHUB_VARIABLES = (
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "ACTIONS_ID_TOKEN_REQUEST_URL",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
)


@dataclass(frozen=True)
class CredentialChoice:
    """Which credential the hook uses here, and the CI system that decided it."""

    kind: str
    """"azure-pipelines", "github-oidc", "managed-identity" or "default"."""
    ci: str
    """"Azure DevOps", "GitHub Actions", "Jenkins" or "none"."""


def choose_credential(env: Mapping[str, str]) -> CredentialChoice:
    """The credential for this environment; UsageError naming the missing variables in a half-set-up CI job."""
    if env.get("TF_BUILD"):
        _require(env, AZURE_DEVOPS_VARIABLES, "Azure DevOps", "run the hook in an AzureCLI@2 task with the "
                 "service connection and `env: SYSTEM_ACCESSTOKEN: $(System.AccessToken)`")  # fmt: skip
        return CredentialChoice("azure-pipelines", "Azure DevOps")
    if env.get("GITHUB_ACTIONS") == "true":
        _require(env, GITHUB_VARIABLES, "GitHub Actions", "give the job `permissions: id-token: write` and set "
                 "AZURE_CLIENT_ID and AZURE_TENANT_ID from secrets")  # fmt: skip
        return CredentialChoice("github-oidc", "GitHub Actions")
    if env.get("JENKINS_URL"):
        return CredentialChoice("managed-identity", "Jenkins")
    return CredentialChoice("default", "none")


def _require(env: Mapping[str, str], names: tuple[str, ...], ci: str, fix: str) -> None:
    missing = [name for name in names if not env.get(name)]
    if missing:
        raise UsageError(
            f"{ci}: the hook needs {', '.join(missing)} to get a refreshing Azure token; {fix} "
            "(a federated `az login` expires after about 10 minutes, the hook runs for hours)"
        )


def github_oidc_token(env: Mapping[str, str]) -> str:
    """A fresh GitHub Actions OIDC token for Microsoft Entra (asked anew on every call)."""
    import requests

    response = requests.get(
        env["ACTIONS_ID_TOKEN_REQUEST_URL"],
        params={"audience": GITHUB_AUDIENCE},
        headers={
            "Authorization": f"Bearer {env['ACTIONS_ID_TOKEN_REQUEST_TOKEN']}",
            "Accept": "application/json",
        },
        timeout=OIDC_TIMEOUT_S,
    )
    token = response.json().get("value") if response.ok else None
    if not token:
        raise UsageError(
            f"GitHub Actions returned no OIDC token (HTTP {response.status_code}); "
            "does the job have `permissions: id-token: write`?"
        )
    return str(token)


def build_credential(choice: CredentialChoice, env: Mapping[str, str]) -> Any:
    """The azure-identity credential for a choice; each refreshes its token itself."""
    if choice.kind == "azure-pipelines":
        from azure.identity import AzurePipelinesCredential

        return AzurePipelinesCredential(
            tenant_id=env["AZURESUBSCRIPTION_TENANT_ID"],
            client_id=env["AZURESUBSCRIPTION_CLIENT_ID"],
            service_connection_id=env["AZURESUBSCRIPTION_SERVICE_CONNECTION_ID"],
            system_access_token=env["SYSTEM_ACCESSTOKEN"],
        )
    if choice.kind == "github-oidc":
        from azure.identity import ClientAssertionCredential

        snapshot = dict(env)
        return ClientAssertionCredential(
            tenant_id=snapshot["AZURE_TENANT_ID"],
            client_id=snapshot["AZURE_CLIENT_ID"],
            func=lambda: github_oidc_token(snapshot),
        )
    if choice.kind == "managed-identity":
        from azure.identity import ManagedIdentityCredential

        return ManagedIdentityCredential(client_id=env.get("AZURE_CLIENT_ID") or None)
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()
