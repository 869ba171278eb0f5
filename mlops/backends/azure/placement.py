"""Where online deployments run and where the hook must run, decided from the stack's isolation design.

Sources: a managed-VNet workspace cannot use Kubernetes compute (how-to-managed-network.md, Limitations;
AZURE-FACTS 1); a managed online deployment reaches private storage and registries only from the workspace's
managed VNet (concept-secure-online-endpoint.md, "For outbound communication"); a private workspace's data
plane is reachable only from inside the VNet (how-to-configure-private-link.md; AZURE-FACTS 5, 32).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mlops.backends.base import UsageError
from mlops.stack_outputs import StackOutputs

ONLINE_TARGETS = ("kubernetes", "managed")


@dataclass(frozen=True)
class TargetChoice:
    """The online target of this deploy and why it was chosen."""

    kind: str
    reason: str


def stack_online_target(outputs: StackOutputs) -> TargetChoice:
    """The target the stack's design hosts: its `onlineTarget` output, else derived as infra-network derives it."""
    if outputs.online_target:
        return TargetChoice(outputs.online_target, "stack output onlineTarget")
    if outputs.isolation_design == "managedVnet":
        return TargetChoice("managed", "derived: isolationDesign managedVnet hosts no Kubernetes compute")
    if outputs.aks_compute_name:
        return TargetChoice("kubernetes", f"derived: AKS attached as {outputs.aks_compute_name}")
    return TargetChoice("managed", "derived: the stack attaches no AKS")


def choose_online_target(outputs: StackOutputs, requested: str | None) -> TargetChoice:
    """The stack's target, or `requested` when the stack can host it; UsageError naming why not otherwise."""
    hosted = stack_online_target(outputs)
    if requested is None or requested == hosted.kind:
        return hosted
    if requested not in ONLINE_TARGETS:
        raise UsageError(f"--online-target {requested!r}: choose one of {', '.join(ONLINE_TARGETS)}")
    problem = _cannot_host(outputs, requested)
    if problem:
        raise UsageError(
            f"--online-target {requested}: stack {outputs.workspace_name} cannot host it: {problem}. "
            f"Leave the flag out to deploy to its {hosted.kind} target ({hosted.reason})"
        )
    return TargetChoice(requested, f"--online-target {requested} (the stack's design hosts it)")


def _cannot_host(outputs: StackOutputs, kind: str) -> str | None:
    if kind == "kubernetes":
        if outputs.isolation_design == "managedVnet":
            return (
                "its workspace uses a managed virtual network, which does not support Kubernetes compute "
                "(how-to-managed-network.md, Limitations)"
            )
        if not outputs.aks_compute_name:
            return "it attaches no AKS cluster (stack output aksComputeName is absent; config enableAks)"
        return None
    if outputs.isolation_design == "customerVnet" and outputs.private_workspace:
        return (
            "in the customer-VNet design its storage and registry are private, and a managed online "
            "deployment reaches private resources only from a workspace managed VNet "
            "(concept-secure-online-endpoint.md)"
        )
    return None


def vnet_reason(outputs: StackOutputs) -> str | None:
    """Why the hook for this stack must run inside its VNet; None when it may run anywhere."""
    if outputs.private_workspace:
        return (
            f"workspace {outputs.workspace_name} has public network access Disabled, so uploads, run "
            "history, batch invokes and the smoke test work only from inside its VNet (AZURE-FACTS 5, 32)"
        )
    if stack_online_target(outputs).kind == "kubernetes":
        return (
            f"stack {outputs.workspace_name} serves its online endpoint from AKS behind an internal load "
            "balancer, so the smoke test reaches the scoring URI only from inside its VNet (AZURE-FACTS 28)"
        )
    return None


def hook_location_problem(outputs: StackOutputs, env: Mapping[str, str]) -> str | None:
    """Why this machine cannot run the hook for the stack (a GitHub-hosted runner outside the VNet)."""
    reason = vnet_reason(outputs)
    if reason and env.get("RUNNER_ENVIRONMENT") == "github-hosted":
        return (
            f"{reason}; this job runs on a GitHub-hosted runner. Run the hook on the self-hosted runner in "
            f"the agents subnet (label aml-vnet-{outputs.environment}; see the README, 'Which CI jobs need "
            "the VNet')"
        )
    return None


VNET_RUNNER_PREFIX = "aml-vnet-"
"""GitHub runner / Jenkins agent label of the self-hosted machines in a stack's agents subnet: aml-vnet-<env>."""
HOSTED_RUNNER = "ubuntu-latest"


@dataclass(frozen=True)
class HookRunner:
    """Where CI must run the hook for a stack: inside its VNet (a private workspace, or an AKS-served endpoint
    behind the internal load balancer) or anywhere."""

    needs_vnet: bool
    label: str
    """The self-hosted label (aml-vnet-<env>) when the VNet is needed, else the hosted image."""
    pool: str | None
    """The Azure DevOps agent pool the stack created (agentPoolName), when it exports one."""

    @property
    def github_runs_on(self) -> list[str] | str:
        """The value of a GitHub job's `runs-on`."""
        return ["self-hosted", self.label] if self.needs_vnet else HOSTED_RUNNER


def hook_runner(outputs: StackOutputs) -> HookRunner:
    """The runner the hook needs: inside the VNet whenever vnet_reason gives one."""
    if vnet_reason(outputs) is not None:
        return HookRunner(True, f"{VNET_RUNNER_PREFIX}{outputs.environment}", outputs.agent_pool_name)
    return HookRunner(False, HOSTED_RUNNER, outputs.agent_pool_name)


def runner_problem(outputs: StackOutputs, ci: str, given: str) -> str | None:
    """Why the pool/label a CI file gives the hook job cannot reach the workspace; None when it can."""
    runner = hook_runner(outputs)
    reason = vnet_reason(outputs)
    if reason is None:
        return None
    if ci == "azure-devops" and given in ("", "Azure Pipelines"):
        pool = runner.pool or "the agentPoolName output of the stack"
        return (
            f"{reason}: run its hook job on the self-hosted pool {pool} "
            "(set hookPool for this target in .ci/azure-pipelines.yml), not on Microsoft-hosted agents"
        )
    if ci == "jenkins" and not given.startswith(VNET_RUNNER_PREFIX):
        return (
            f"{reason}: run its hook stage on an agent labelled {runner.label} "
            f"in the agents subnet, not on {given or 'any agent'}"
        )
    return None
