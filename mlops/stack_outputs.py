"""The Pulumi stack outputs the post-deploy hook needs, read from `pulumi stack output` or a JSON file."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REQUIRED_KEYS: Mapping[str, str] = {
    "subscriptionId": "subscription_id",
    "resourceGroupName": "resource_group",
    "workspaceName": "workspace_name",
    "location": "location",
    "computeClusterName": "compute_cluster_name",
    "environment": "environment",
}
"""Stack output key -> field: what the Azure backend cannot work without."""

OPTIONAL_KEYS: Mapping[str, str] = {
    "containerRegistryName": "registry",
    "keyVaultName": "key_vault_name",
    "storageAccountName": "storage_account_name",
    "applicationInsightsName": "application_insights_name",
    "aksComputeName": "aks_compute_name",
    "onlineEndpointName": "online_endpoint_name",
    "batchEndpointName": "batch_endpoint_name",
    "logAnalyticsWorkspaceId": "log_analytics_workspace_id",
    # CONTRACT.md: the isolation design decides where online deployments run and where the hook must run.
    "isolationDesign": "isolation_design",
    "onlineTarget": "online_target",
    "workspacePublicNetworkAccess": "workspace_public_network_access",
    "aksClusterName": "aks_cluster_name",
    "aksNodeVmSize": "aks_node_vm_size",
    "inferenceScoringHost": "inference_scoring_host",
    "inferenceLoadBalancerIp": "inference_load_balancer_ip",
    "ciIdentityClientId": "ci_identity_client_id",
    "ciIdentityPrincipalId": "ci_identity_principal_id",
    "agentPoolName": "agent_pool_name",
    "actionGroupId": "action_group_id",
    "modelRegistryName": "model_registry_name",
}
"""Optional string outputs: the hook works without them (deriving or refusing with a clear error)."""

INTEGER_KEYS: Mapping[str, str] = {"aksNodeCount": "aks_node_count"}
"""Optional integer outputs."""

ALLOWED_VALUES: Mapping[str, tuple[str, ...]] = {
    "isolationDesign": ("customerVnet", "managedVnet"),
    "onlineTarget": ("kubernetes", "managed"),
    "workspacePublicNetworkAccess": ("Enabled", "Disabled"),
}
"""Outputs with a closed set of values (CONTRACT.md)."""

ENVIRONMENTS = ("dev", "prod")
PULUMI_TIMEOUT_S = 120.0


class StackOutputsError(Exception):
    """The stack outputs are missing, unreadable or incomplete; the message says how to fix it."""


@dataclass(frozen=True)
class StackOutputs:
    """Where the platform lives: the workspace and its neighbours, as one stack exported them."""

    subscription_id: str
    resource_group: str
    workspace_name: str
    location: str
    compute_cluster_name: str
    environment: str
    registry: str | None = None
    key_vault_name: str | None = None
    storage_account_name: str | None = None
    application_insights_name: str | None = None
    aks_compute_name: str | None = None
    online_endpoint_name: str | None = None
    batch_endpoint_name: str | None = None
    log_analytics_workspace_id: str | None = None
    action_group_id: str | None = None
    drift_threshold: float | None = None
    """The model monitor's threshold (stack output driftThreshold)."""
    alert_emails: tuple[str, ...] = ()
    """Who the model monitor emails (stack output alertEmails; empty when alerts are off)."""
    isolation_design: str | None = None
    online_target: str | None = None
    workspace_public_network_access: str | None = None
    aks_cluster_name: str | None = None
    aks_node_vm_size: str | None = None
    aks_node_count: int | None = None
    inference_scoring_host: str | None = None
    inference_load_balancer_ip: str | None = None
    ci_identity_client_id: str | None = None
    ci_identity_principal_id: str | None = None
    agent_pool_name: str | None = None
    model_registry_name: str | None = None

    @property
    def private_workspace(self) -> bool:
        """Whether the workspace's data plane is reachable only from inside the VNet (AZURE-FACTS 5, 32)."""
        return self.workspace_public_network_access == "Disabled"

    def endpoint_names(self) -> tuple[str, str]:
        """Online and batch endpoint names: exported by the stack, else derived like the stack derives them.

        Endpoint names are DNS labels unique per region, so dev and prod must never share one; the
        derivation `mlw-<suffix>` -> `ep-<suffix>` / `bep-<suffix>` mirrors stacks/naming.py.
        """
        suffix = self.workspace_name.removeprefix("mlw-")
        return (self.online_endpoint_name or f"ep-{suffix}", self.batch_endpoint_name or f"bep-{suffix}")


def parse_stack_outputs(raw: Mapping[str, Any], source: str) -> StackOutputs:
    """Validate the camelCase output mapping; one error lists every missing or malformed key."""
    problems = [
        f"missing required output {key!r}"
        for key in REQUIRED_KEYS
        if not isinstance(raw.get(key), str) or not raw[key].strip()
    ]
    environment = raw.get("environment")
    if isinstance(environment, str) and environment and environment not in ENVIRONMENTS:
        problems.append(f"output 'environment' is {environment!r}; allowed: {', '.join(ENVIRONMENTS)}")
    problems += [
        f"output {key!r} must be a string, got {type(raw[key]).__name__}"
        for key in OPTIONAL_KEYS
        if raw.get(key) is not None and not isinstance(raw[key], str)
    ]
    problems += [
        f"output {key!r} is {raw[key]!r}; allowed: {', '.join(allowed)}"
        for key, allowed in ALLOWED_VALUES.items()
        if isinstance(raw.get(key), str) and raw[key] and raw[key] not in allowed
    ]
    problems += [
        f"output {key!r} must be a whole number of at least 1, got {raw[key]!r}"
        for key in INTEGER_KEYS
        if raw.get(key) is not None
        and (isinstance(raw[key], bool) or not isinstance(raw[key], int) or raw[key] < 1)
    ]
    if problems:
        raise StackOutputsError(
            f"stack outputs from {source} are incomplete: "
            + "; ".join(problems)
            + ". The Pulumi program must export them (see __main__.py); or fix the --outputs file."
        )
    fields: dict[str, Any] = {field: raw[key].strip() for key, field in REQUIRED_KEYS.items()}
    fields |= {field: raw[key] or None for key, field in OPTIONAL_KEYS.items() if key in raw}
    fields |= _monitoring_fields(raw, source)
    fields |= {field: raw[key] for key, field in INTEGER_KEYS.items() if raw.get(key) is not None}
    return StackOutputs(**fields)


def _monitoring_fields(raw: Mapping[str, Any], source: str) -> dict[str, Any]:
    """driftThreshold (a number) and alertEmails (a list of strings), when the stack exports them."""
    fields: dict[str, Any] = {}
    threshold = raw.get("driftThreshold")
    if threshold is not None:
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or threshold <= 0:
            raise StackOutputsError(
                f"stack outputs from {source}: 'driftThreshold' must be a positive number"
            )
        fields["drift_threshold"] = float(threshold)
    emails = raw.get("alertEmails")
    if emails is not None:
        if not isinstance(emails, list) or not all(isinstance(email, str) for email in emails):
            raise StackOutputsError(f"stack outputs from {source}: 'alertEmails' must be a list of strings")
        fields["alert_emails"] = tuple(emails)
    return fields


def pulumi_command(stack: str) -> Sequence[str]:
    """The CLI call that prints a stack's outputs as JSON (secrets shown: the hook runs in the deployer)."""
    return ["pulumi", "stack", "output", "--json", "--show-secrets", "--stack", stack]


def _read_from_pulumi(stack: str, run: Callable[..., subprocess.CompletedProcess[str]]) -> str:
    if shutil.which("pulumi") is None:
        raise StackOutputsError(
            "the Pulumi CLI is not on PATH, so stack outputs cannot be read for stack "
            f"{stack!r}; install it, or pass --outputs FILE with the JSON of `pulumi stack output --json`"
        )
    try:
        done = run(list(pulumi_command(stack)), capture_output=True, text=True, timeout=PULUMI_TIMEOUT_S)
    except subprocess.TimeoutExpired as error:
        raise StackOutputsError(
            f"`pulumi stack output` for stack {stack!r} took over {PULUMI_TIMEOUT_S:.0f}s; "
            "pass --outputs FILE instead"
        ) from error
    if done.returncode != 0:
        # stderr of `pulumi stack output` names the stack/backend problem, never an output value.
        raise StackOutputsError(
            f"`pulumi stack output --stack {stack}` exited {done.returncode}: {done.stderr.strip()[:500]}"
        )
    return done.stdout


def load_stack_outputs(
    stack: str | None,
    file: Path | None,
    *,
    run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run,
) -> StackOutputs:
    """Read outputs from `file` when given, else from `pulumi stack output` for `stack`."""
    if file is not None:
        source = str(file)
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as error:
            raise StackOutputsError(f"cannot read --outputs file {file}: {error.strerror}") from error
    elif stack:
        source = f"stack {stack!r}"
        text = _read_from_pulumi(stack, run)
    else:
        raise StackOutputsError("no stack outputs: pass --stack dev|prod or --outputs FILE")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise StackOutputsError(
            f"stack outputs from {source} are not JSON (line {error.lineno}: {error.msg}); "
            "expected the object printed by `pulumi stack output --json`"
        ) from error
    if not isinstance(raw, dict):
        raise StackOutputsError(
            f"stack outputs from {source} must be a JSON object, got {type(raw).__name__}"
        )
    return parse_stack_outputs(raw, source)
