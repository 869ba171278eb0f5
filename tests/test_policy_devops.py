"""Azure DevOps rules on both sides, and self-hosted agents in a private workspace's VNet (AZURE-FACTS 5, 32)."""

from __future__ import annotations

import pytest

from policy import rules as r
from tests._policy_cases import (
    DELETE,
    DESIGNS,
    ENVIRONMENTS,
    adding,
    assert_resource_case,
    assert_stack_case,
    breaking,
    build,
    chain,
    drop,
    edit,
    stack_findings,
)

RESOURCE_CASES = [
    ("devops-pool-not-auto-provisioned", r.DEVOPS_POOL, breaking(autoProvision=True)),
    ("devops-queue-bound-to-pool", r.DEVOPS_QUEUE, breaking(agentPoolId=DELETE)),
    ("devops-environment-described", r.DEVOPS_ENVIRONMENT, breaking(description="")),
    (
        "devops-variable-group-secrets",
        r.DEVOPS_VARIABLE_GROUP,
        breaking(variables=[{"name": "clientSecret", "value": "hunter2"}]),
    ),
    (
        "devops-service-connection-federated",
        r.DEVOPS_SERVICE_CONNECTION,
        breaking(serviceEndpointAuthenticationScheme="ServicePrincipal"),
    ),
    ("devops-prod-approval", r.DEVOPS_CHECK_APPROVAL, breaking(requesterCanApprove=True)),
    ("devops-prod-approval", r.DEVOPS_CHECK_APPROVAL, breaking(approvers=[])),
    ("devops-project-private", r.DEVOPS_PROJECT, breaking(visibility="public")),
]
STACK_CASES = [
    ("private-workspace-agents-in-vnet", "customerVnet", drop("agent-vm", "agent-vm-nic")),
    ("private-workspace-agents-in-vnet", "managedVnet", drop("agent-vm")),
]


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize(
    ("rule", "resource_type", "breaks"), RESOURCE_CASES, ids=[c[0] for c in RESOURCE_CASES]
)
def test_a_broken_devops_setting_is_reported_by_its_rule(
    rule: str, resource_type: str, breaks, env: str
) -> None:
    assert_resource_case(rule, resource_type, breaks, env)


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize(
    ("rule", "design", "change"), STACK_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(STACK_CASES)]
)
def test_a_private_workspace_without_agents_in_its_vnet_is_reported(
    rule: str, design, change, env: str
) -> None:
    assert_stack_case(rule, design, env, change)


@pytest.mark.parametrize("design", DESIGNS)
def test_a_managed_devops_pool_in_the_vnet_replaces_the_agent_vm(design) -> None:
    change = chain(
        drop("agent-vm", "agent-vm-nic"),
        adding(
            r.MANAGED_DEVOPS_POOL,
            "managed-pool",
            lambda b: {
                "poolName": "mdp-taxi",
                "location": "westeurope",
                "maximumConcurrency": 2.0,
                "fabricProfile": {
                    "kind": "Vmss",
                    "networkProfile": {
                        "subnetId": f"/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/{b.group}/providers/Microsoft.Network/virtualNetworks/vnet-taxi/subnets/snet-agents"
                    },
                },
            },
        ),
    )
    assert stack_findings(change(build(design, "prod")), "prod") == []


@pytest.mark.parametrize("design", DESIGNS)
def test_agents_in_another_vnet_do_not_count(design) -> None:
    change = edit("agents-subnet", "virtualNetworkName", "vnet-elsewhere")
    findings = stack_findings(change(build(design, "prod")), "prod")
    assert "private-workspace-agents-in-vnet" in {f.rule for f in findings}


def test_a_public_workspace_or_a_stack_without_pipelines_needs_no_agents() -> None:
    public = chain(drop("agent-vm", "agent-vm-nic"), edit("workspace", "publicNetworkAccess", "Enabled"))
    assert {f.rule for f in stack_findings(public(build("managedVnet", "dev")), "dev")} == {
        "workspace-public-network-disabled"
    }
    no_pipelines = drop("agent-vm", "agent-vm-nic", "service-connection")
    rules = {f.rule for f in stack_findings(no_pipelines(build("managedVnet", "prod")), "prod")}
    assert "private-workspace-agents-in-vnet" not in rules
