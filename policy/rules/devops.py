"""Azure DevOps rules: pools, queues, approvals, secrets, federation, and agents inside a private workspace's VNet."""

from __future__ import annotations

import re
from typing import Iterator

from . import types as t
from .core import A, M, Rule, StackRule, Subject, Violation, forbid, present, require, rule
from .graph import PlannedResource, Stack
from .values import as_list, get

SECRET_LOOKING_NAME = re.compile(
    r"(secret|password|passwd|pat$|token|key$|apikey|connectionstring)", re.IGNORECASE
)


def _variable_group_secrets(subject: Subject) -> str | None:
    leaked = [
        v.get("name")
        for v in as_list(subject.props.get("variables"))
        if SECRET_LOOKING_NAME.search(str(v.get("name") or "")) and v.get("value") not in (None, "")
    ]
    return f"variables {leaked} hold secrets in plain `value`" if leaked else None


def _approval(subject: Subject) -> str | None:
    if not subject.props.get("approvers"):
        return "the approval check has no approvers"
    if subject.props.get("requesterCanApprove") is True:
        return "the requester can approve their own deployment (`requesterCanApprove` is true)"
    return None


def _vnets_of_subnets(stack: Stack, owner: PlannedResource, prop: str, subnet_id: object) -> set[str]:
    return {str(s.props.get("virtualNetworkName")) for s in stack.subnet_of(owner, prop, subnet_id)}


def agent_vnets(stack: Stack) -> set[str]:
    """The VNets self-hosted agents run in: agent VMs' network interfaces and Managed DevOps Pools."""
    vnets: set[str] = set()
    for vm in stack.of_type(t.VM):
        for ref in as_list(get(vm.props, "networkProfile.networkInterfaces")):
            for nic in stack.targets(vm, "networkProfile", [t.NIC], ref.get("id")):
                for config in as_list(nic.props.get("ipConfigurations")):
                    vnets |= _vnets_of_subnets(stack, nic, "ipConfigurations", get(config, "subnet.id"))
    for pool in stack.of_type(t.MANAGED_DEVOPS_POOL):
        subnet_id = get(pool.props, "fabricProfile.networkProfile.subnetId")
        vnets |= _vnets_of_subnets(stack, pool, "fabricProfile", subnet_id)
    return vnets


def _hook_runs_in_vnet(stack: Stack) -> Iterator[Violation]:
    if not stack.of_type(t.DEVOPS_SERVICE_CONNECTION):
        return  # this stack does not run the deploy pipeline; whoever runs the hook brings the runner
    for workspace in stack.of_type(t.ML_WORKSPACE):
        if get(workspace.props, "publicNetworkAccess") != "Disabled":
            continue
        endpoint_vnets = {
            vnet
            for endpoint, _ in stack.private_endpoints_to(workspace)
            for vnet in _vnets_of_subnets(stack, endpoint, "subnet", get(endpoint.props, "subnet.id"))
        }
        if not endpoint_vnets & agent_vnets(stack):
            yield Violation(
                workspace,
                f"workspace {workspace.name} is private, but no self-hosted agent (agent VM or Managed DevOps Pool) "
                f"runs in the VNet of its private endpoint {sorted(endpoint_vnets) or '(none planned)'}: the "
                "post-deploy hook's uploads, job runs and endpoint invokes fail from Microsoft-hosted agents",
            )


RULES: tuple[Rule, ...] = (
    rule(
        "devops-pool-not-auto-provisioned",
        t.DEVOPS_POOL,
        M,
        "The agent pool is not offered to every project.",
        "set auto_provision=False and add a Queue in the platform project only",
        forbid("autoProvision", True, "the pool is provisioned into every project of the organization"),
    ),
    rule(
        "devops-queue-bound-to-pool",
        t.DEVOPS_QUEUE,
        M,
        "The project queue points at the platform's pool.",
        "set agent_pool_id to the platform pool's id",
        present("agentPoolId", "the queue has no pool"),
    ),
    rule(
        "devops-environment-described",
        t.DEVOPS_ENVIRONMENT,
        A,
        "Pipeline environments say what they deploy.",
        "set description (e.g. 'Deployments of the prod platform')",
        present("description", "the environment has no description"),
    ),
    rule(
        "devops-variable-group-secrets",
        t.DEVOPS_VARIABLE_GROUP,
        M,
        "Variable group secrets are stored as secrets.",
        "move the value to secret_value (is_secret=True) or link the group to Key Vault",
        _variable_group_secrets,
    ),
    rule(
        "devops-service-connection-federated",
        t.DEVOPS_SERVICE_CONNECTION,
        A,
        "The Azure service connection uses workload identity federation (no client secret).",
        'set service_endpoint_authentication_scheme="WorkloadIdentityFederation" (config serviceConnectionAuth)',
        require(
            "serviceEndpointAuthenticationScheme", "WorkloadIdentityFederation", "a client secret is stored"
        ),
    ),
    rule(
        "devops-prod-approval",
        t.DEVOPS_CHECK_APPROVAL,
        M,
        "Deployments wait for a named approver.",
        "set approvers (config prodApprovers) and leave requester_can_approve False",
        _approval,
    ),
    rule(
        "devops-project-private",
        t.DEVOPS_PROJECT,
        M,
        "The Azure DevOps project is private.",
        'leave visibility unset or "private"',
        forbid("visibility", "public", "the project is public"),
    ),
)

STACK_RULES: tuple[StackRule, ...] = (
    StackRule(
        "private-workspace-agents-in-vnet",
        "A private workspace deployed by this stack's pipelines has self-hosted agents in its private endpoint's "
        "VNet, where the post-deploy hook's data-plane work runs.",
        M,
        "keep enableAgentVm=true (agents in the agents subnet of the same VNet, with NAT egress) or add a "
        "VNet-injected Managed DevOps Pool, and run the hook's pipeline jobs on that pool",
        _hook_runs_in_vnet,
        facts=(5, 32),
        source="includes/machine-learning-managed-vnet-online-endpoint-limitations.md (control plane over ARM, "
        "data plane only through the isolated network); how-to-secure-batch-endpoint.md, Securing batch endpoints",
    ),
)
