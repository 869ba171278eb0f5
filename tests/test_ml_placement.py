"""Where online deployments run and where the hook may run, from the stack's design (pure table tests)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mlops.backends.azure.placement import choose_online_target, hook_location_problem, stack_online_target
from mlops.backends.base import UsageError
from mlops.stack_outputs import StackOutputs

BASE = StackOutputs("sub", "rg-taxi-dev", "mlw-taxi001dev", "westeurope", "cpu-cluster", "dev")
CUSTOMER_AKS = replace(BASE, isolation_design="customerVnet", aks_compute_name="aks-inference")
PRIVATE_CUSTOMER_AKS = replace(CUSTOMER_AKS, workspace_public_network_access="Disabled")
MANAGED_VNET = replace(BASE, isolation_design="managedVnet", workspace_public_network_access="Disabled")


@pytest.mark.parametrize(
    ("outputs", "kind", "reason"),
    [
        (replace(CUSTOMER_AKS, online_target="kubernetes"), "kubernetes", "stack output onlineTarget"),
        (replace(MANAGED_VNET, online_target="managed"), "managed", "stack output onlineTarget"),
        (CUSTOMER_AKS, "kubernetes", "derived: AKS attached as aks-inference"),
        (replace(MANAGED_VNET, aks_compute_name="aks"), "managed", "derived: isolationDesign managedVnet"),
        (BASE, "managed", "derived: the stack attaches no AKS"),
    ],
)
def test_the_stack_decides_the_online_target(outputs: StackOutputs, kind: str, reason: str) -> None:
    choice = stack_online_target(outputs)
    assert choice.kind == kind and choice.reason.startswith(reason)


@pytest.mark.parametrize(
    ("outputs", "requested", "kind"),
    [
        (CUSTOMER_AKS, None, "kubernetes"),
        (CUSTOMER_AKS, "kubernetes", "kubernetes"),
        (CUSTOMER_AKS, "managed", "managed"),  # a public customer-VNet workspace can still pull images
        (MANAGED_VNET, "managed", "managed"),
    ],
)
def test_an_override_the_stack_can_host_is_taken(
    outputs: StackOutputs, requested: str | None, kind: str
) -> None:
    assert choose_online_target(outputs, requested).kind == kind


@pytest.mark.parametrize(
    ("outputs", "requested", "because"),
    [
        (MANAGED_VNET, "kubernetes", "does not support Kubernetes compute (how-to-managed-network.md"),
        (BASE, "kubernetes", "attaches no AKS cluster"),
        (PRIVATE_CUSTOMER_AKS, "managed", "reaches private resources only from a workspace managed VNet"),
        (CUSTOMER_AKS, "serverless", "choose one of kubernetes, managed"),
    ],
)
def test_an_override_the_stack_cannot_host_is_refused(
    outputs: StackOutputs, requested: str, because: str
) -> None:
    with pytest.raises(UsageError) as refused:
        choose_online_target(outputs, requested)
    assert because in str(refused.value)


@pytest.mark.parametrize(
    ("outputs", "env", "refused"),
    [
        (PRIVATE_CUSTOMER_AKS, {"RUNNER_ENVIRONMENT": "github-hosted"}, True),
        (PRIVATE_CUSTOMER_AKS, {"RUNNER_ENVIRONMENT": "self-hosted"}, False),
        (CUSTOMER_AKS, {"RUNNER_ENVIRONMENT": "github-hosted"}, False),
        (PRIVATE_CUSTOMER_AKS, {}, False),
    ],
)
def test_a_private_workspace_needs_the_hook_inside_the_vnet(
    outputs: StackOutputs, env: dict[str, str], refused: bool
) -> None:
    problem = hook_location_problem(outputs, env)
    assert (problem is not None) is refused
    if problem:
        assert "aml-vnet-dev" in problem and "AZURE-FACTS 5, 32" in problem
