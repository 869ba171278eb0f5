"""The whole platform graph for dev and prod under the mock runtime: completeness, tags, baseline, secrets."""

from __future__ import annotations

import dataclasses
from typing import Any, Iterator

import pytest

from stacks.config import example_config
from stacks.mockrun import SECRET_MASK, Recording, run_program
from stacks.model import StackConfig
from stacks.platform import build_platform
from tests.test_components import install_mock_gaps

COMPONENT_TYPES = {
    "aml-platform:core:ResourceGroup",
    "aml-platform:monitoring:Monitoring",
    "aml-platform:network:Network",
    "aml-platform:data:StorageAccount",
    "aml-platform:security:KeyVault",
    "aml-platform:data:ContainerRegistry",
    "aml-platform:ml:Workspace",
    "aml-platform:ml:ComputeCluster",
    "aml-platform:inference:AksCluster",
    "aml-platform:devops:DevOpsAgents",
    "aml-platform:devops:ServiceConnection",
    "aml-platform:devops:VariableGroup",
    "aml-platform:devops:PipelineEnvironments",
    "aml-platform:devops:AgentVm",
}
# Azure resource types whose API has no tags property (sub-resources and extension resources).
UNTAGGABLE = {
    "azure-native:storage:BlobServiceProperties",
    "azure-native:network:Subnet",
    "azure-native:network:PrivateDnsZoneGroup",
    "azure-native:monitor:DiagnosticSetting",
    "azure-native:authorization:RoleAssignment",
    "azure-native:managedidentity:FederatedIdentityCredential",
    "azure-native:kubernetesconfiguration:Extension",
    "azure-native:containerservice:TrustedAccessRoleBinding",
    "azure-native:monitor:DataCollectionRuleAssociation",
    "azure-native:eventgrid:SystemTopicEventSubscription",
}
STATEFUL = {
    "azure-native:resources:ResourceGroup",
    "azure-native:storage:StorageAccount",
    "azure-native:storage:BlobServiceProperties",
    "azure-native:keyvault:Vault",
    "azure-native:containerregistry:Registry",
    "azure-native:operationalinsights:Workspace",
    "azure-native:applicationinsights:Component",
    "azure-native:machinelearningservices:Workspace",
    "azure-native:network:VirtualNetwork",
    "azure-native:network:Subnet",
}
REQUIRED_OUTPUTS = {
    "subscriptionId",
    "resourceGroupName",
    "location",
    "environment",
    "workspaceName",
    "workspaceId",
    "computeClusterName",
    "containerRegistryName",
    "containerRegistryLoginServer",
    "keyVaultName",
    "storageAccountName",
    "applicationInsightsName",
    "applicationInsightsConnectionString",
    "logAnalyticsWorkspaceId",
    "vnetName",
}
SWITCHED_OUTPUTS = {
    "aks": {"aksClusterName", "aksComputeName"},
    "agent_vm": {"agentVmName"},
    "devops": {"serviceConnectionName", "variableGroupId", "agentPoolName", "agentVmName"},
}


def plan(cfg: StackConfig) -> Recording:
    with pytest.MonkeyPatch.context() as monkeypatch:
        install_mock_gaps(monkeypatch)
        return run_program(lambda: build_platform(cfg), stack=cfg.stack)


@pytest.fixture(scope="module", params=["dev", "prod"])
def platform(request: pytest.FixtureRequest) -> Iterator[tuple[StackConfig, Recording]]:
    cfg = example_config(request.param)
    yield cfg, plan(cfg)


def of_type(recording: Recording, type_token: str) -> list[Any]:
    return recording.of_type(type_token)


def test_every_component_is_present_once_and_urns_are_unique(platform: tuple[StackConfig, Recording]) -> None:
    cfg, recording = platform
    components = [r.type for r in recording.resources if not r.custom and r.type.startswith("aml-platform:")]
    alerts = {"aml-platform:monitoring:Alerts"} if cfg.alerts is not None else set()
    # The registry dev and prod share is declared by its owner, prod (tests/test_model_registry.py).
    owned = {"aml-platform:ml:ModelRegistry"} if cfg.environment == "prod" else set()
    assert sorted(components) == sorted(COMPONENT_TYPES | alerts | owned)
    assert recording.duplicate_urns() == []


def test_every_resource_belongs_to_a_component(platform: tuple[StackConfig, Recording]) -> None:
    _, recording = platform
    components = {r.urn for r in recording.resources if not r.custom}
    orphans = [
        r.name
        for r in recording.resources
        if r.custom and r.parent not in components and r.type != "pulumi:providers:azuredevops"
    ]
    assert orphans == []


def test_every_taggable_azure_resource_carries_the_stack_tags(
    platform: tuple[StackConfig, Recording],
) -> None:
    cfg, recording = platform
    azure = [r for r in recording.resources if r.custom and r.type.startswith("azure-native:")]
    untagged = [r.name for r in azure if r.type not in UNTAGGABLE and r.inputs.get("tags") != dict(cfg.tags)]
    assert untagged == []
    assert {"environment", "project", "owner"} <= set(cfg.tags)


def test_outputs_are_complete_and_secrets_masked(platform: tuple[StackConfig, Recording]) -> None:
    cfg, recording = platform
    assert REQUIRED_OUTPUTS | SWITCHED_OUTPUTS["aks"] | SWITCHED_OUTPUTS["devops"] <= set(recording.outputs)
    outputs = recording.outputs
    assert outputs["applicationInsightsConnectionString"] == SECRET_MASK
    assert outputs["workspaceName"] == cfg.names.workspace and outputs["environment"] == cfg.environment
    assert outputs["computeClusterName"] == cfg.names.compute_cluster
    assert outputs["containerRegistryLoginServer"] == f"{cfg.names.container_registry}.azurecr.io"


def test_no_secret_reaches_inputs_or_outputs_in_plaintext(platform: tuple[StackConfig, Recording]) -> None:
    cfg, recording = platform
    assert cfg.devops is not None
    pat = cfg.devops.pat.reveal()
    assert pat not in repr([r.inputs for r in recording.resources]) and pat not in repr(recording.outputs)
    provider = recording.one("pulumi:providers:azuredevops")
    assert provider.inputs["personalAccessToken"] == SECRET_MASK
    assert provider.inputs["orgServiceUrl"] == cfg.devops.org_url


def test_every_azure_devops_resource_uses_the_explicit_provider(
    platform: tuple[StackConfig, Recording],
) -> None:
    _, recording = platform
    provider = recording.one("pulumi:providers:azuredevops")
    devops = [r for r in recording.resources if r.custom and r.type.startswith("azuredevops:")]
    assert devops and all((r.provider or "").startswith(provider.urn + "::") for r in devops)


def test_wiring_across_components(platform: tuple[StackConfig, Recording]) -> None:
    cfg, recording = platform
    workspace = recording.one("azure-native:machinelearningservices:Workspace")
    for type_token in (
        "azure-native:storage:StorageAccount",
        "azure-native:keyvault:Vault",
        "azure-native:containerregistry:Registry",
        "azure-native:applicationinsights:Component",
    ):
        assert recording.one(type_token).urn in workspace.dependencies, type_token
    computes = {
        c.inputs["computeName"]: c for c in of_type(recording, "azure-native:machinelearningservices:Compute")
    }
    assert set(computes) == {cfg.names.compute_cluster, cfg.names.aks_compute}
    assert all(workspace.urn in c.dependencies for c in computes.values())
    assert workspace.inputs["imageBuildCompute"] == cfg.names.compute_cluster
    subnets = {s.inputs["subnetName"]: s.urn for s in of_type(recording, "azure-native:network:Subnet")}
    # The workspace has a managed network in both environments: the cluster lives there, not in our subnet.
    assert "subnet" not in computes[cfg.names.compute_cluster].inputs["properties"]["properties"]
    assert subnets["snet-training"] not in computes[cfg.names.compute_cluster].dependencies
    assert subnets["snet-agents"] in recording.one("azure-native:network:NetworkInterface").dependencies
    vm = recording.one("azure-native:compute:VirtualMachine")
    assert recording.one("azuredevops:index/pool:Pool").urn in vm.dependencies
    variables = {
        v["name"]: v["value"]
        for v in recording.one("azuredevops:index/variableGroup:VariableGroup").inputs["variables"]
    }
    assert variables["workspaceName"] == cfg.names.workspace and variables["environment"] == cfg.environment
    assert variables["resourceGroupName"] == cfg.names.resource_group
    assert variables["computeClusterName"] == cfg.names.compute_cluster
    assert variables["containerRegistryName"] == cfg.names.container_registry
    assert variables["location"] == cfg.location
    diagnostics = of_type(recording, "azure-native:monitor:DiagnosticSetting")
    log_analytics = recording.one("azure-native:operationalinsights:Workspace")
    assert len(diagnostics) >= 5 and all(log_analytics.urn in d.dependencies for d in diagnostics)


def test_prod_meets_the_security_baseline_and_dev_only_relaxes_network_isolation(
    platform: tuple[StackConfig, Recording],
) -> None:
    cfg, recording = platform
    prod = cfg.environment == "prod"
    access = "Disabled" if prod else "Enabled"
    account = recording.one("azure-native:storage:StorageAccount").inputs
    assert (account["enableHttpsTrafficOnly"], account["minimumTlsVersion"]) == (True, "TLS1_2")
    assert (account["allowBlobPublicAccess"], account["allowSharedKeyAccess"]) == (False, False)
    assert account["publicNetworkAccess"] == access
    vault = recording.one("azure-native:keyvault:Vault").inputs["properties"]
    assert (
        vault["enableRbacAuthorization"],
        vault["enablePurgeProtection"],
        vault["softDeleteRetentionInDays"],
    ) == (True, True, 90)
    registry = recording.one("azure-native:containerregistry:Registry").inputs
    assert registry["adminUserEnabled"] is False and registry["publicNetworkAccess"] == access
    assert registry["sku"]["name"] == ("Premium" if prod else "Basic")
    workspace = recording.one("azure-native:machinelearningservices:Workspace").inputs
    assert workspace["publicNetworkAccess"] == access and workspace["v1LegacyMode"] is False
    assert workspace["systemDatastoresAuthMode"] == "identity"
    assert workspace["managedNetwork"]["isolationMode"] == (
        "AllowOnlyApprovedOutbound" if prod else "AllowInternetOutbound"
    )
    cluster = recording.one("azure-native:containerservice:ManagedCluster").inputs
    assert cluster["apiServerAccessProfile"]["enablePrivateCluster"] is prod
    assert cluster["aadProfile"]["enableAzureRBAC"] is True and cluster["networkProfile"]["networkPolicy"]
    training = next(
        c
        for c in of_type(recording, "azure-native:machinelearningservices:Compute")
        if c.inputs["properties"]["computeType"] == "AmlCompute"
    )
    assert training.inputs["properties"]["properties"]["enableNodePublicIp"] is False
    if prod:
        assert training.inputs["properties"]["properties"]["remoteLoginPortPublicAccess"] == "Disabled"
    endpoint_groups = sorted(
        e.inputs["privateLinkServiceConnections"][0]["groupIds"][0]
        for e in of_type(recording, "azure-native:network:PrivateEndpoint")
    )
    assert endpoint_groups == (["amlworkspace", "blob", "file", "registry", "vault"] if prod else [])


def test_prod_protects_and_retains_stateful_resources_dev_does_not(
    platform: tuple[StackConfig, Recording],
) -> None:
    cfg, recording = platform
    stateful = [r for r in recording.resources if r.type in STATEFUL]
    assert {r.type for r in stateful} == STATEFUL
    prod = cfg.environment == "prod"
    assert [(r.name, r.protect, r.retain_on_delete) for r in stateful] == [
        (r.name, prod, prod) for r in stateful
    ]


def test_prod_gates_its_pipeline_environment_with_an_approval(
    platform: tuple[StackConfig, Recording],
) -> None:
    cfg, recording = platform
    environment = recording.one("azuredevops:index/environment:Environment")
    assert environment.inputs["name"] == cfg.environment
    checks = of_type(recording, "azuredevops:index/checkApproval:CheckApproval")
    assert cfg.devops is not None
    assert [c.inputs["approvers"] for c in checks] == (
        [list(cfg.devops.prod_approvers)] if cfg.environment == "prod" else []
    )


@pytest.mark.parametrize(
    ("switch", "absent_types"),
    [
        (
            "aks",
            {
                "azure-native:containerservice:ManagedCluster",
                "azure-native:kubernetesconfiguration:Extension",
            },
        ),
        ("agent_vm", {"azure-native:compute:VirtualMachine", "azure-native:network:NetworkInterface"}),
        (
            "devops",
            {
                "pulumi:providers:azuredevops",
                "azuredevops:index/pool:Pool",
                "azure-native:compute:VirtualMachine",
            },
        ),
    ],
)
def test_switches_leave_their_parts_out(switch: str, absent_types: set[str]) -> None:
    base = example_config("dev")
    overrides: dict[str, Any] = {switch: None}
    if switch == "devops":
        overrides["agent_vm"] = None  # the agent VM registers into the DevOps pool, so it goes with it
    recording = plan(dataclasses.replace(base, **overrides))
    present = {r.type for r in recording.resources}
    assert present & absent_types == set()
    assert set(recording.outputs) & SWITCHED_OUTPUTS[switch] == set()
    assert REQUIRED_OUTPUTS <= set(recording.outputs)
    assert recording.duplicate_urns() == []
