"""Where online deployments run and where the hook may run, from the stack's design (pure table tests)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mlops.backends.azure.placement import (
    choose_online_target,
    hook_location_problem,
    hook_runner,
    runner_problem,
    stack_online_target,
)
from mlops.backends.base import UsageError
from mlops.stack_outputs import StackOutputs

BASE = StackOutputs("sub", "rg-taxi-dev", "mlw-taxi001dev", "westeurope", "cpu-cluster", "dev")
CUSTOMER_AKS = replace(BASE, isolation_design="customerVnet", aks_compute_name="aks-inference")
PRIVATE_CUSTOMER_AKS = replace(CUSTOMER_AKS, workspace_public_network_access="Disabled")
MANAGED_VNET = replace(BASE, isolation_design="managedVnet", workspace_public_network_access="Disabled")
PUBLIC_MANAGED = replace(BASE, isolation_design="managedVnet", online_target="managed")


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
        (CUSTOMER_AKS, {"RUNNER_ENVIRONMENT": "github-hosted"}, True),
        (PUBLIC_MANAGED, {"RUNNER_ENVIRONMENT": "github-hosted"}, False),
        (PRIVATE_CUSTOMER_AKS, {}, False),
    ],
)
def test_a_private_workspace_needs_the_hook_inside_the_vnet(
    outputs: StackOutputs, env: dict[str, str], refused: bool
) -> None:
    problem = hook_location_problem(outputs, env)
    assert (problem is not None) is refused
    if problem:
        fact = "AZURE-FACTS 5, 32" if outputs.private_workspace else "AZURE-FACTS 28"
        assert "aml-vnet-dev" in problem and fact in problem


def test_github_runs_the_hook_of_a_private_stack_on_its_vnet_runner() -> None:
    assert hook_runner(PRIVATE_CUSTOMER_AKS).github_runs_on == ["self-hosted", "aml-vnet-dev"]
    assert hook_runner(PUBLIC_MANAGED).github_runs_on == "ubuntu-latest"


def test_an_aks_served_endpoint_needs_the_vnet_even_with_a_public_workspace() -> None:
    # The Kubernetes scoring URI is the internal load balancer's (AZURE-FACTS 28): no hosted runner reaches it.
    runner = hook_runner(CUSTOMER_AKS)
    assert runner.needs_vnet and runner.github_runs_on == ["self-hosted", "aml-vnet-dev"]
    problem = runner_problem(CUSTOMER_AKS, "azure-devops", "")
    assert problem is not None and "internal load balancer" in problem
    assert hook_runner(replace(CUSTOMER_AKS, online_target="managed")).needs_vnet is False


@pytest.mark.parametrize(
    ("outputs", "ci", "given", "refused"),
    [
        (
            replace(PRIVATE_CUSTOMER_AKS, agent_pool_name="pool-taxi001dev"),
            "azure-devops",
            "",
            "pool-taxi001dev",
        ),
        (PRIVATE_CUSTOMER_AKS, "azure-devops", "Azure Pipelines", "agentPoolName"),
        (PRIVATE_CUSTOMER_AKS, "azure-devops", "pool-taxi001dev", None),
        (PRIVATE_CUSTOMER_AKS, "jenkins", "linux", "labelled aml-vnet-dev"),
        (PRIVATE_CUSTOMER_AKS, "jenkins", "aml-vnet-dev", None),
        (CUSTOMER_AKS, "azure-devops", "", "internal load balancer"),
        (PUBLIC_MANAGED, "azure-devops", "", None),
        (PUBLIC_MANAGED, "jenkins", "linux", None),
    ],
)
def test_a_pool_or_label_that_cannot_reach_a_private_workspace_is_refused(
    outputs: StackOutputs, ci: str, given: str, refused: str | None
) -> None:
    problem = runner_problem(outputs, ci, given)
    assert (problem is None) == (refused is None)
    if refused:
        assert refused in str(problem)


def test_the_hook_runner_command_prints_runs_on_or_exits_2(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    import json

    from mlops import cli

    outputs = tmp_path / "outputs.json"
    outputs.write_text(
        json.dumps(
            {
                "subscriptionId": "sub",
                "resourceGroupName": "rg",
                "workspaceName": "mlw-taxi001prod",
                "location": "westeurope",
                "computeClusterName": "cpu-cluster",
                "environment": "prod",
                "workspacePublicNetworkAccess": "Disabled",
            }
        )
    )
    assert cli.main(["hook-runner", "--ci", "github", "--outputs", str(outputs)]) == 0
    assert json.loads(capsys.readouterr().out) == ["self-hosted", "aml-vnet-prod"]
    assert cli.main(["hook-runner", "--ci", "jenkins", "--outputs", str(outputs), "--given", "linux"]) == 2
    assert "labelled aml-vnet-prod" in capsys.readouterr().err
