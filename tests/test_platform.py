"""The platform graph for dev and prod in both isolation designs under the mock runtime: completeness, tags,
baseline, secrets, and what each design declares."""

from __future__ import annotations

import dataclasses
from typing import Any, Iterator

import pytest

from components.network import nsg_name
from components.workspace import TRAINING_PACKAGE_FEEDS
from stacks.config import example_config
from stacks.mockrun import SECRET_MASK, Recording, run_program
from stacks.model import StackConfig
from stacks.platform import build_platform
from tests.test_components import install_mock_gaps

EXTENSION = "azure-native:kubernetesconfiguration:Extension"
PRIVATE_ZONE = "azure-native:privatedns:PrivateZone"
PRIVATE_RECORD = "azure-native:privatedns:PrivateRecordSet"
NSG = "azure-native:network:NetworkSecurityGroup"
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
    "aml-platform:identity:CiIdentity",
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
    "azure-native:privatedns:PrivateRecordSet",
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
DESIGN_OUTPUTS = {
    "isolationDesign",
    "onlineTarget",
    "workspacePublicNetworkAccess",
    "inferenceScoringHost",
    "inferenceLoadBalancerIp",
}
SWITCHED_OUTPUTS = {
    "aks": {"aksClusterName", "aksComputeName", "aksNodeVmSize", "aksNodeCount"},
    "agent_vm": {"agentVmName"},
    "devops": {
        "serviceConnectionName",
        "variableGroupId",
        "agentPoolName",
        "agentVmName",
        "ciIdentityClientId",
        "ciIdentityPrincipalId",
    },
}


def plan(cfg: StackConfig) -> Recording:
    with pytest.MonkeyPatch.context() as monkeypatch:
        install_mock_gaps(monkeypatch)
        return run_program(lambda: build_platform(cfg), stack=cfg.stack)


# managedVnet cannot host AKS (AZURE-FACTS 1), so its stacks switch AKS off.
MANAGED_VNET = dict(isolationDesign="managedVnet", enableAks="false")
MATRIX = [(env, design) for design in ("customerVnet", "managedVnet") for env in ("dev", "prod")]


def design_config(environment: str, design: str, **overrides: str | None) -> StackConfig:
    values = {**(MANAGED_VNET if design == "managedVnet" else {"isolationDesign": design}), **overrides}
    return example_config(environment, **values)


@pytest.fixture(scope="module", params=MATRIX, ids=[f"{env}-{design}" for env, design in MATRIX])
def platform(request: pytest.FixtureRequest) -> Iterator[tuple[StackConfig, Recording]]:
    cfg = design_config(*request.param)
    yield cfg, plan(cfg)


def customer(cfg: StackConfig) -> bool:
    return cfg.isolation_design == "customerVnet"


def of_type(recording: Recording, type_token: str) -> list[Any]:
    return recording.of_type(type_token)


def test_every_component_is_present_once_and_urns_are_unique(platform: tuple[StackConfig, Recording]) -> None:
    cfg, recording = platform
    components = [r.type for r in recording.resources if not r.custom and r.type.startswith("aml-platform:")]
    alerts = {"aml-platform:monitoring:Alerts"} if cfg.alerts is not None else set()
    expected = COMPONENT_TYPES if customer(cfg) else COMPONENT_TYPES - {"aml-platform:inference:AksCluster"}
    # The registry dev and prod share is declared by its owner, prod (tests/test_model_registry.py).
    owned = {"aml-platform:ml:ModelRegistry"} if cfg.environment == "prod" else set()
    assert sorted(components) == sorted(expected | alerts | owned)
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
    switched = SWITCHED_OUTPUTS["devops"] | (SWITCHED_OUTPUTS["aks"] if customer(cfg) else set())
    assert REQUIRED_OUTPUTS | DESIGN_OUTPUTS | switched <= set(recording.outputs)
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
    expected = (
        {cfg.names.compute_cluster, cfg.names.aks_compute} if customer(cfg) else {cfg.names.compute_cluster}
    )
    assert set(computes) == expected
    assert all(workspace.urn in c.dependencies for c in computes.values())
    assert workspace.inputs["imageBuildCompute"] == cfg.names.compute_cluster
    subnets = {s.inputs["subnetName"]: s.urn for s in of_type(recording, "azure-native:network:Subnet")}
    training = computes[cfg.names.compute_cluster]
    if customer(cfg):
        # Customer VNet: the cluster joins our training subnet (AZURE-FACTS 1).
        assert training.inputs["properties"]["properties"]["subnet"]["id"].endswith("/snet-training")
        assert subnets["snet-training"] in training.dependencies
    else:
        # Managed VNet: compute lives in Azure ML's network; a customer subnet is not supported there.
        assert "subnet" not in training.inputs["properties"]["properties"]
        assert "snet-training" not in subnets
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
    assert account["allowBlobPublicAccess"] is False and account["publicNetworkAccess"] == access
    # Shared keys stay on only where Kubernetes online endpoints serve (AZURE-FACTS 33).
    assert account["allowSharedKeyAccess"] is customer(cfg)
    vault = recording.one("azure-native:keyvault:Vault").inputs["properties"]
    assert (
        vault["enableRbacAuthorization"],
        vault["enablePurgeProtection"],
        vault["softDeleteRetentionInDays"],
    ) == (True, True, 90)
    registry = recording.one("azure-native:containerregistry:Registry").inputs
    assert registry["adminUserEnabled"] is False and registry["publicNetworkAccess"] == access
    # A private endpoint needs Premium; the customer VNet always has one (AZURE-FACTS 24).
    assert registry["sku"]["name"] == ("Premium" if prod or customer(cfg) else "Basic")
    assert registry["networkRuleBypassOptions"] == "AzureServices"
    workspace = recording.one("azure-native:machinelearningservices:Workspace").inputs
    assert workspace["publicNetworkAccess"] == access and workspace["v1LegacyMode"] is False
    assert workspace["systemDatastoresAuthMode"] == "identity"
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
    if customer(cfg):
        # Always: no-public-IP compute and AKS in the VNet need the workspace and its resources on private
        # endpoints there, and batch needs all four storage sub-resources (AZURE-FACTS 31).
        expected = ["amlworkspace", "blob", "file", "queue", "registry", "table", "vault"]
    else:
        expected = ["amlworkspace", "blob", "file", "registry", "vault"] if prod else []
    assert endpoint_groups == expected
    zones = sorted(z.inputs["privateZoneName"] for z in of_type(recording, PRIVATE_ZONE))
    zone_groups = of_type(recording, "azure-native:network:PrivateDnsZoneGroup")
    used = {
        c["privateDnsZoneId"].rsplit("/", 1)[-1]
        for g in zone_groups
        for c in g.inputs["privateDnsZoneConfigs"]
    }
    scoring = {cfg.aks.tls.ssl_cname} if cfg.aks is not None and cfg.aks.tls is not None else set()
    assert set(zones) == used | scoring, "every private link zone is used, and only those are declared"


def test_customer_vnet_design_declares_its_topology(platform: tuple[StackConfig, Recording]) -> None:
    cfg, recording = platform
    if not customer(cfg):
        pytest.skip("customer VNet design only")
    workspace = recording.one("azure-native:machinelearningservices:Workspace").inputs
    assert (
        workspace["managedNetwork"]["isolationMode"] == "Disabled" and "provisionNetworkNow" not in workspace
    )
    assert set(subnets_by_role(recording)) == {"training", "aks", "agents", "private-endpoints"}
    assert nat_roles(recording) == {"training", "aks", "agents"}
    cluster = recording.one("azure-native:containerservice:ManagedCluster")
    inputs = cluster.inputs
    assert inputs["networkProfile"]["outboundType"] == "userAssignedNATGateway"
    assert inputs["disableLocalAccounts"] is False and inputs["aadProfile"]["enableAzureRBAC"] is True
    assert inputs["identity"]["type"] == "UserAssigned" and inputs["location"] == workspace["location"]
    prod = cfg.environment == "prod"
    assert inputs["apiServerAccessProfile"]["enablePrivateCluster"] is prod
    assert inputs["apiServerAccessProfile"].get("enablePrivateClusterPublicFQDN") is (False if prod else None)
    aks_subnet = subnets_by_role(recording)["aks"]
    assert aks_subnet.urn in cluster.dependencies
    assert inputs["agentPoolProfiles"][0]["count"] == cfg.aks.node_count  # type: ignore[union-attr]
    settings = recording.one(EXTENSION).inputs["configurationSettings"]
    assert settings["inferenceRouterHA"] == ("True" if cfg.aks.node_count >= 3 else "False")  # type: ignore[union-attr]
    assert settings["scoringFe.serviceType.internalLoadBalancer"] == "true"
    assert settings["allowInsecureConnections"] == ("False" if cfg.aks.tls else "True")  # type: ignore[union-attr]
    assert recording.of_type("azure-native:containerservice:TrustedAccessRoleBinding") == []
    training_nsg = nsgs_by_role(cfg, recording)["training"].inputs["securityRules"]
    destinations = {rule["destinationAddressPrefix"] for rule in training_nsg}
    assert {
        "AzureMachineLearning",
        f"BatchNodeManagement.{cfg.location}",
        f"Storage.{cfg.location}",
        cfg.network.private_endpoints_subnet,
    } <= destinations


def test_managed_vnet_design_declares_its_topology(platform: tuple[StackConfig, Recording]) -> None:
    cfg, recording = platform
    if customer(cfg):
        pytest.skip("managed VNet design only")
    prod = cfg.environment == "prod"
    workspace = recording.one("azure-native:machinelearningservices:Workspace").inputs
    network = workspace["managedNetwork"]
    assert workspace["provisionNetworkNow"] is True
    assert network["isolationMode"] == ("AllowOnlyApprovedOutbound" if prod else "AllowInternetOutbound")
    rules = network.get("outboundRules") or {}
    assert {rule["destination"] for rule in rules.values() if rule["type"] == "FQDN"} == (
        set(TRAINING_PACKAGE_FEEDS) if prod else set()
    )
    targets = {rule["destination"]["subresourceTarget"] for rule in rules.values() if rule["type"] != "FQDN"}
    assert targets == ({"queue", "table"} if prod else set())
    # Our VNet keeps only the agents and the private endpoints; only the agents egress.
    assert set(subnets_by_role(recording)) == {"agents", "private-endpoints"}
    assert nat_roles(recording) == {"agents"}
    for absent in ("azure-native:containerservice:ManagedCluster", EXTENSION, PRIVATE_RECORD):
        assert recording.of_type(absent) == [], absent


def test_outputs_tell_the_hook_where_and_from_where_to_deploy(
    platform: tuple[StackConfig, Recording],
) -> None:
    cfg, recording = platform
    outputs = recording.outputs
    assert outputs["isolationDesign"] == cfg.isolation_design
    assert outputs["onlineTarget"] == ("kubernetes" if customer(cfg) else "managed")
    assert outputs["workspacePublicNetworkAccess"] == ("Disabled" if cfg.environment == "prod" else "Enabled")
    if customer(cfg):
        assert cfg.aks is not None and cfg.aks.tls is not None
        assert (outputs["aksNodeVmSize"], outputs["aksNodeCount"]) == (
            cfg.aks.node_vm_size,
            cfg.aks.node_count,
        )
        assert outputs["inferenceScoringHost"] == cfg.aks.tls.ssl_cname
    else:
        assert outputs["inferenceScoringHost"] == "" and "aksNodeCount" not in outputs
    assert outputs["inferenceLoadBalancerIp"] == ""


def test_a_known_load_balancer_ip_gets_the_scoring_a_record() -> None:
    cfg = design_config("prod", "customerVnet", inferenceLoadBalancerIp="10.10.16.200")
    recording = plan(cfg)
    (record,) = recording.of_type(PRIVATE_RECORD)
    assert record.inputs["aRecords"] == [{"ipv4Address": "10.10.16.200"}]
    assert record.inputs["privateZoneName"] == cfg.aks.tls.ssl_cname  # type: ignore[union-attr]
    assert recording.outputs["inferenceLoadBalancerIp"] == "10.10.16.200"


def test_dev_without_tls_serves_plain_http_on_the_internal_load_balancer() -> None:
    cfg = design_config(
        "dev", "customerVnet", inferenceSslCname=None, inferenceSslCertPem=None, inferenceSslKeyPem=None
    )
    recording = plan(cfg)
    settings = recording.one(EXTENSION).inputs
    assert settings["configurationSettings"]["allowInsecureConnections"] == "True"
    assert "configurationProtectedSettings" not in settings
    assert recording.of_type(PRIVATE_RECORD) == [] and recording.outputs["inferenceScoringHost"] == ""


def subnets_by_role(recording: Recording) -> dict[str, Any]:
    return {
        s.inputs["subnetName"].removeprefix("snet-"): s
        for s in of_type(recording, "azure-native:network:Subnet")
    }


def nsgs_by_role(cfg: StackConfig, recording: Recording) -> dict[str, Any]:
    nsgs = {n.inputs["networkSecurityGroupName"]: n for n in of_type(recording, NSG)}
    return {role: nsgs[nsg_name(cfg.names.vnet, role)] for role in subnets_by_role(recording)}


def nat_roles(recording: Recording) -> set[str]:
    gateway = recording.one("azure-native:network:NatGateway")
    assert recording.one("azure-native:network:PublicIPAddress").inputs["sku"]["name"] == "Standard"
    return {role for role, s in subnets_by_role(recording).items() if gateway.urn in s.dependencies}


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
