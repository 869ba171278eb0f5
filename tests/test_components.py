"""Each Pulumi component under the mock runtime: what it registers, how it is wired, its security settings."""

from __future__ import annotations

import uuid
from typing import Any, Callable

import pytest

from components.aks import AksCluster, AksClusterArgs, azureml_extension_settings
from components.common import BuiltInRole, CommonArgs, child_opts, merge_tags, role_assignment_name
from components.compute_cluster import (
    ComputeCluster,
    ComputeClusterArgs,
    compute_subnet,
    iso8601_seconds,
    remote_login_access,
)
from components.container_registry import ContainerRegistry, ContainerRegistryArgs
from components.devops_agents import DevOpsAgents, DevOpsAgentsArgs, pool_number
from components.key_vault import KeyVault, KeyVaultArgs
from components.monitoring import Monitoring, MonitoringArgs
from components.network import Network, NetworkArgs
from components.pipeline_environments import PipelineEnvironments, PipelineEnvironmentsArgs
from components.private_endpoint import PrivateEndpointArgs, all_private_dns_zones, zones_for
from components.resource_group import ResourceGroup, ResourceGroupArgs
from components.storage import StorageAccount, StorageAccountArgs
from components.variable_group import VariableGroup, VariableGroupArgs
from components.workspace import Workspace, WorkspaceArgs, managed_network_settings, outbound_rule_name
from stacks import mockrun
from stacks.mockrun import SECRET_MASK, RecordedResource, Recording, run_program

TAGS = {"environment": "test", "project": "aml-platform", "owner": "ml-platform"}
RG = "rg-test"
SUB = mockrun.SUBSCRIPTION_ID
LA_ID = (
    f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.OperationalInsights/workspaces/log-test"
)
SUBNET_ID = (
    f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Network/virtualNetworks/v/subnets/s"
)


def common(protect: bool = False) -> CommonArgs:
    return CommonArgs(location="westeurope", resource_group_name=RG, tags=TAGS, protect=protect)


def placement() -> PrivateEndpointArgs:
    return PrivateEndpointArgs(
        subnet_id=SUBNET_ID, dns_zone_ids={zone: f"/zones/{zone}" for zone in all_private_dns_zones()}
    )


def install_mock_gaps(monkeypatch: pytest.MonkeyPatch) -> dict[str, dict]:
    """Answer Azure DevOps' getProject (stacks/mockrun.py answers only getClientConfig) and spy on inputs.

    Returns the unmasked inputs each resource reached the mocks with, by logical name, for tests that must
    look behind a masked secret.
    """
    raw_inputs: dict[str, dict] = {}
    original_call, original_new = mockrun.RecordingMocks.call, mockrun.RecordingMocks.new_resource

    def call(self: Any, args: Any) -> dict:
        outputs = original_call(self, args)
        if args.token == "azuredevops:index/getProject:getProject" and not outputs:
            outputs = {
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, args.args["name"])),
                "name": args.args["name"],
            }
        return outputs

    def new_resource(self: Any, args: Any) -> tuple[str, dict]:
        raw_inputs[args.name] = dict(args.inputs)
        return original_new(self, args)

    monkeypatch.setattr(mockrun.RecordingMocks, "call", call)
    monkeypatch.setattr(mockrun.RecordingMocks, "new_resource", new_resource)
    return raw_inputs


@pytest.fixture(autouse=True)
def mock_gaps(monkeypatch: pytest.MonkeyPatch) -> dict[str, dict]:
    """install_mock_gaps for each test; the value is the spy's unmasked inputs."""
    return install_mock_gaps(monkeypatch)


def record(build: Callable[[], object], stack: str = "dev") -> Recording:
    """Run `build` (which declares one component) under the mocks."""

    def program() -> None:
        build()

    return run_program(program, stack=stack)


def component(recording: Recording, type_token: str) -> RecordedResource:
    found = [r for r in recording.resources if not r.custom and r.type == type_token]
    assert len(found) == 1, f"expected one component {type_token}, got {[r.name for r in found]}"
    return found[0]


def assert_children_parented(recording: Recording, parent: RecordedResource) -> None:
    """Every resource other than the component itself is a (transitive) child of it."""
    for resource in recording.resources:
        if resource.urn != parent.urn:
            assert resource.parent == parent.urn, f"{resource.name} is not parented to {parent.name}"


def diagnostics_targets(recording: Recording) -> list[Any]:
    return [r.inputs.get("workspaceId") for r in recording.of_type("azure-native:monitor:DiagnosticSetting")]


# ---- common -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "extra", "expected"),
    [
        ({"a": "1"}, {}, {"a": "1"}),
        ({"a": "1"}, {"b": "2"}, {"a": "1", "b": "2"}),
        ({"a": "1", "b": "2"}, {"b": "3"}, {"a": "1", "b": "3"}),
        ({}, {"b": "2"}, {"b": "2"}),
    ],
)
def test_merge_tags_overlays_extra_on_base(base: dict, extra: dict, expected: dict) -> None:
    assert merge_tags(base, extra) == expected


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("st1", "mlw1", BuiltInRole.ACR_PULL), ("st1", "mlw1", BuiltInRole.READER)),
        (("st1", "mlw1", BuiltInRole.ACR_PULL), ("st2", "mlw1", BuiltInRole.ACR_PULL)),
        (("st1", "mlw1", BuiltInRole.ACR_PULL), ("st1", "mlw2", BuiltInRole.ACR_PULL)),
        (("a|b", "c", BuiltInRole.ACR_PULL), ("a", "b|c", BuiltInRole.ACR_PULL)),
    ],
)
def test_role_assignment_name_is_a_stable_guid_distinct_per_scope_principal_and_role(
    first: tuple[str, str, str], second: tuple[str, str, str]
) -> None:
    name = role_assignment_name(*first)
    assert str(uuid.UUID(name)) == name
    assert role_assignment_name(*first) == name
    if first[0].count("|") == second[0].count("|"):
        assert role_assignment_name(*second) != name


@pytest.mark.parametrize("protect", [True, False])
def test_child_opts_retains_exactly_the_protected_children(protect: bool) -> None:
    opts = child_opts(parent=None, protect=protect)  # type: ignore[arg-type]
    assert (opts.protect, opts.retain_on_delete) == (protect, protect)


# ---- resource group, storage, registry, key vault, monitoring ------------------------------------


@pytest.mark.parametrize("protect", [True, False])
def test_resource_group_is_named_tagged_and_protected_as_asked(protect: bool) -> None:
    recording = record(lambda: ResourceGroup("rg", ResourceGroupArgs(common(protect))))
    group = recording.one("azure-native:resources:ResourceGroup")
    assert group.inputs["resourceGroupName"] == RG and group.inputs["tags"] == TAGS
    assert (group.protect, group.retain_on_delete) == (protect, protect)
    assert_children_parented(recording, component(recording, "aml-platform:core:ResourceGroup"))


@pytest.mark.parametrize("public", [True, False])
def test_storage_account_security_baseline(public: bool) -> None:
    args = StorageAccountArgs(
        common(),
        "sttest",
        public_network_access=public,
        diagnostics_workspace_id=LA_ID,
        private_endpoint=None if public else placement(),
    )
    recording = record(lambda: StorageAccount("storage", args))
    account = recording.one("azure-native:storage:StorageAccount").inputs
    assert account["accountName"] == "sttest"
    assert account["enableHttpsTrafficOnly"] is True and account["minimumTlsVersion"] == "TLS1_2"
    assert account["allowBlobPublicAccess"] is False and account["allowSharedKeyAccess"] is False
    assert account["publicNetworkAccess"] == ("Enabled" if public else "Disabled")
    blob = recording.one("azure-native:storage:BlobServiceProperties").inputs
    assert blob["deleteRetentionPolicy"]["enabled"] and blob["containerDeleteRetentionPolicy"]["enabled"]
    endpoints = recording.of_type("azure-native:network:PrivateEndpoint")
    groups = sorted(e.inputs["privateLinkServiceConnections"][0]["groupIds"][0] for e in endpoints)
    assert groups == ([] if public else ["blob", "file"])
    assert diagnostics_targets(recording) == [LA_ID, LA_ID]
    for setting in recording.of_type("azure-native:monitor:DiagnosticSetting"):
        # Storage refuses the "AllMetrics" category that other resource types take.
        assert [metric["category"] for metric in setting.inputs["metrics"]] == ["Transaction", "Capacity"]
    assert_children_parented(recording, component(recording, "aml-platform:data:StorageAccount"))


@pytest.mark.parametrize(
    ("public", "endpoint", "sku"), [(True, False, "Basic"), (False, True, "Premium"), (True, True, "Premium")]
)
def test_container_registry_admin_off_and_premium_only_when_private(
    public: bool, endpoint: bool, sku: str
) -> None:
    args = ContainerRegistryArgs(
        common(), "crtest", public_network_access=public, private_endpoint=placement() if endpoint else None
    )
    recording = record(lambda: ContainerRegistry("registry", args))
    registry = recording.one("azure-native:containerregistry:Registry").inputs
    assert registry["adminUserEnabled"] is False and registry["sku"] == {"name": sku}
    assert registry["publicNetworkAccess"] == ("Enabled" if public else "Disabled")
    assert len(recording.of_type("azure-native:network:PrivateEndpoint")) == (1 if endpoint else 0)


def test_key_vault_rbac_purge_protection_and_90_days_soft_delete() -> None:
    args = KeyVaultArgs(
        common(True),
        "kv-test",
        tenant_id=mockrun.TENANT_ID,
        public_network_access=False,
        diagnostics_workspace_id=LA_ID,
        private_endpoint=placement(),
    )
    recording = record(lambda: KeyVault("vault", args))
    vault = recording.one("azure-native:keyvault:Vault")
    properties = vault.inputs["properties"]
    assert properties["enableRbacAuthorization"] is True and properties["enablePurgeProtection"] is True
    assert properties["enableSoftDelete"] is True and properties["softDeleteRetentionInDays"] == 90
    assert properties["publicNetworkAccess"] == "Disabled" and properties["tenantId"] == mockrun.TENANT_ID
    assert vault.protect and vault.retain_on_delete
    dns = recording.one("azure-native:network:PrivateDnsZoneGroup").inputs["privateDnsZoneConfigs"]
    assert [config["privateDnsZoneId"] for config in dns] == ["/zones/privatelink.vaultcore.azure.net"]
    assert diagnostics_targets(recording) == [LA_ID]


def test_monitoring_app_insights_is_workspace_based_and_its_connection_string_secret() -> None:
    def build() -> dict:
        monitoring = Monitoring(
            "monitoring", MonitoringArgs(common(), "log-test", "appi-test", retention_days=90)
        )
        return {"connectionString": monitoring.app_insights_connection_string}

    recording = run_program(build)
    workspace = recording.one("azure-native:operationalinsights:Workspace")
    insights = recording.one("azure-native:applicationinsights:Component").inputs
    assert workspace.inputs["retentionInDays"] == 90
    assert insights["resourceName"] == "appi-test" and insights["ingestionMode"] == "LogAnalytics"
    assert insights["workspaceResourceId"] == LA_ID
    assert workspace.urn in recording.by_name("monitoring-app-insights").dependencies
    assert recording.outputs["connectionString"] == SECRET_MASK


# ---- network ------------------------------------------------------------------------------------


def network_args(private_endpoints: bool) -> NetworkArgs:
    return NetworkArgs(
        common(),
        "vnet-test",
        "10.10.0.0/16",
        "10.10.1.0/24",
        "10.10.16.0/20",
        "10.10.2.0/24",
        "10.10.3.0/24",
        private_endpoints=private_endpoints,
    )


@pytest.mark.parametrize("private_endpoints", [True, False])
def test_network_subnets_each_behind_an_nsg_and_dns_zones_only_with_private_endpoints(
    private_endpoints: bool,
) -> None:
    recording = record(lambda: Network("network", network_args(private_endpoints)))
    subnets = recording.of_type("azure-native:network:Subnet")
    nsgs = recording.of_type("azure-native:network:NetworkSecurityGroup")
    assert sorted(s.inputs["subnetName"] for s in subnets) == [
        "snet-agents",
        "snet-aks",
        "snet-private-endpoints",
        "snet-training",
    ]
    nsg_ids = {
        f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Network/networkSecurityGroups/"
        f"{n.inputs['networkSecurityGroupName']}"
        for n in nsgs
    }
    assert {s.inputs["networkSecurityGroup"]["id"] for s in subnets} == nsg_ids
    assert all(s.inputs["defaultOutboundAccess"] is False for s in subnets)
    # One subnet write at a time: each subnet after the first depends on the previous one.
    for previous, current in zip(subnets, subnets[1:]):
        assert previous.urn in current.dependencies
    zones = recording.of_type("azure-native:privatedns:PrivateZone")
    links = recording.of_type("azure-native:privatedns:VirtualNetworkLink")
    expected = sorted(all_private_dns_zones()) if private_endpoints else []
    assert sorted(z.inputs["privateZoneName"] for z in zones) == expected and len(links) == len(expected)
    assert_children_parented(recording, component(recording, "aml-platform:network:Network"))


@pytest.mark.parametrize(
    ("group_id", "zones"),
    [
        ("blob", ("privatelink.blob.core.windows.net",)),
        ("amlworkspace", ("privatelink.api.azureml.ms", "privatelink.notebooks.azure.net")),
    ],
)
def test_zones_for_known_group_ids(group_id: str, zones: tuple[str, ...]) -> None:
    assert zones_for(group_id) == zones


def test_zones_for_unknown_group_id_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="'queue'.*blob"):
        zones_for("queue")


# ---- workspace and compute ----------------------------------------------------------------------


def workspace_args(prod: bool) -> WorkspaceArgs:
    def rid(kind: str, name: str) -> str:
        return f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/{kind}/{name}"

    return WorkspaceArgs(
        common(prod),
        "mlw-test",
        subscription_id=SUB,
        storage_account_id=rid("Microsoft.Storage/storageAccounts", "sttest"),
        storage_account_name="sttest",
        key_vault_id=rid("Microsoft.KeyVault/vaults", "kv-test"),
        key_vault_name="kv-test",
        container_registry_id=rid("Microsoft.ContainerRegistry/registries", "crtest"),
        container_registry_name="crtest",
        app_insights_id=rid("Microsoft.Insights/components", "appi-test"),
        image_build_compute="cpu-cluster",
        compute_identity_name="id-cpu-test",
        public_network_access=not prod,
        isolation_mode="AllowOnlyApprovedOutbound" if prod else "AllowInternetOutbound",
        diagnostics_workspace_id=LA_ID,
        private_endpoint=placement() if prod else None,
    )


@pytest.mark.parametrize("prod", [True, False])
def test_workspace_wiring_and_settings(prod: bool) -> None:
    args = workspace_args(prod)
    recording = record(lambda: Workspace("workspace", args))
    workspace = recording.one("azure-native:machinelearningservices:Workspace")
    inputs = workspace.inputs
    assert (inputs["storageAccount"], inputs["keyVault"]) == (args.storage_account_id, args.key_vault_id)
    assert (inputs["containerRegistry"], inputs["applicationInsights"]) == (
        args.container_registry_id,
        args.app_insights_id,
    )
    assert inputs["identity"] == {"type": "SystemAssigned"} and inputs["v1LegacyMode"] is False
    assert inputs["systemDatastoresAuthMode"] == "identity" and inputs["imageBuildCompute"] == "cpu-cluster"
    assert inputs["publicNetworkAccess"] == ("Disabled" if prod else "Enabled")
    network = inputs["managedNetwork"]
    assert network["isolationMode"] == args.isolation_mode
    destinations = {rule["destination"] for rule in (network.get("outboundRules") or {}).values()}
    assert (
        {"pypi.org", "files.pythonhosted.org", "conda.anaconda.org", "*.anaconda.org"} <= destinations
    ) is prod
    assert (workspace.protect, workspace.retain_on_delete) == (prod, prod)
    endpoints = recording.of_type("azure-native:network:PrivateEndpoint")
    assert [e.inputs["privateLinkServiceConnections"][0]["groupIds"] for e in endpoints] == (
        [["amlworkspace"]] if prod else []
    )
    assert_children_parented(recording, component(recording, "aml-platform:ml:Workspace"))


@pytest.mark.parametrize(
    ("fqdn", "name"),
    [
        ("pypi.org", "allow-pypi-org"),
        ("*.anaconda.org", "allow-any-anaconda-org"),
        ("files.pythonhosted.org", "allow-files-pythonhosted-org"),
    ],
)
def test_outbound_rule_name(fqdn: str, name: str) -> None:
    assert outbound_rule_name(fqdn) == name


@pytest.mark.parametrize("fqdn", ["", "py pi.org", "a.*.org", "**.org", "*anaconda.org"])
def test_outbound_rule_name_rejects_non_host_names(fqdn: str) -> None:
    with pytest.raises(ValueError, match="not a host name"):
        outbound_rule_name(fqdn)


def test_managed_network_has_rules_only_when_outbound_needs_approval() -> None:
    assert managed_network_settings("AllowInternetOutbound", ("pypi.org",)).outbound_rules is None
    rules = managed_network_settings("AllowOnlyApprovedOutbound", ("pypi.org",)).outbound_rules
    assert list(rules or {}) == ["allow-pypi-org"]


@pytest.mark.parametrize(("seconds", "duration"), [(0, "PT0S"), (120, "PT120S"), (1800, "PT1800S")])
def test_iso8601_seconds(seconds: int, duration: str) -> None:
    assert iso8601_seconds(seconds) == duration


def test_iso8601_seconds_rejects_negative() -> None:
    with pytest.raises(ValueError, match="-5"):
        iso8601_seconds(-5)


@pytest.mark.parametrize(
    ("mode", "subnet"),
    [("Disabled", SUBNET_ID), ("AllowInternetOutbound", None), ("AllowOnlyApprovedOutbound", None)],
)
def test_compute_subnet_only_without_a_managed_network(mode: str, subnet: str | None) -> None:
    assert compute_subnet(mode, SUBNET_ID) == subnet


@pytest.mark.parametrize(("ssh", "access"), [(True, "NotSpecified"), (False, "Disabled")])
def test_compute_cluster_attached_to_workspace_without_public_ip(ssh: bool, access: str) -> None:
    args = ComputeClusterArgs(
        common(),
        workspace_name="mlw-test",
        compute_name="cpu-cluster",
        vm_size="Standard_DS3_v2",
        min_nodes=0,
        max_nodes=4,
        idle_seconds_before_scale_down=600,
        priority="LowPriority",
        subnet_id=SUBNET_ID,
        identity_id="/identities/id-cpu",
        ssh_enabled=ssh,
    )
    recording = record(lambda: ComputeCluster("cluster", args))
    compute = recording.one("azure-native:machinelearningservices:Compute").inputs
    assert compute["workspaceName"] == "mlw-test" and compute["computeName"] == "cpu-cluster"
    assert compute["identity"] == {"type": "UserAssigned", "userAssignedIdentities": ["/identities/id-cpu"]}
    properties = compute["properties"]["properties"]
    assert compute["properties"]["computeType"] == "AmlCompute"
    assert properties["enableNodePublicIp"] is False and properties["subnet"] == {"id": SUBNET_ID}
    assert properties["remoteLoginPortPublicAccess"] == access == remote_login_access(ssh)
    assert properties["vmPriority"] == "LowPriority"
    assert properties["scaleSettings"] == {
        "minNodeCount": 0,
        "maxNodeCount": 4,
        "nodeIdleTimeBeforeScaleDown": "PT600S",
    }


# ---- AKS ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("tls", "insecure"), [(None, "True"), ("inference-tls", "False")])
def test_azureml_extension_settings_use_an_internal_load_balancer(tls: str | None, insecure: str) -> None:
    settings = azureml_extension_settings(tls)
    assert settings["inferenceRouterServiceType"] == "loadBalancer"
    assert settings["internalLoadBalancerProvider"] == "azure"
    assert settings["allowInsecureConnections"] == insecure and settings.get("sslSecret") == tls


@pytest.mark.parametrize("private", [True, False])
def test_aks_cluster_secured_extended_and_attached_to_the_workspace(private: bool) -> None:
    args = AksClusterArgs(
        common(),
        cluster_name="aks-test",
        compute_name="aks-inference",
        subscription_id=SUB,
        workspace_name="mlw-test",
        workspace_id="/workspaces/mlw-test",
        subnet_id=SUBNET_ID,
        service_cidr="10.100.0.0/16",
        dns_service_ip="10.100.0.10",
        log_analytics_workspace_id=LA_ID,
        private_cluster=private,
        diagnostics_workspace_id=LA_ID,
    )
    recording = record(lambda: AksCluster("aks", args))
    cluster = recording.one("azure-native:containerservice:ManagedCluster")
    inputs = cluster.inputs
    assert inputs["identity"] == {"type": "SystemAssigned"} and inputs["disableLocalAccounts"] is True
    assert inputs["aadProfile"] == {"managed": True, "enableAzureRBAC": True}
    assert inputs["networkProfile"]["networkPolicy"] == "azure"
    assert inputs["apiServerAccessProfile"]["enablePrivateCluster"] is private
    assert inputs["agentPoolProfiles"][0]["vnetSubnetID"] == SUBNET_ID
    assert inputs["addonProfiles"]["omsagent"]["config"]["logAnalyticsWorkspaceResourceID"] == LA_ID
    extension = recording.one("azure-native:kubernetesconfiguration:Extension")
    assert extension.inputs["extensionType"] == "Microsoft.AzureML.Kubernetes"
    assert extension.inputs["clusterName"] == "aks-test" and cluster.urn in extension.dependencies
    attach = recording.one("azure-native:machinelearningservices:Compute")
    assert attach.inputs["properties"]["computeType"] == "Kubernetes"
    assert attach.inputs["properties"]["resourceId"].endswith("/managedClusters/aks-test")
    assert attach.inputs["workspaceName"] == "mlw-test" and extension.urn in attach.dependencies
    binding = recording.one("azure-native:containerservice:TrustedAccessRoleBinding").inputs
    assert binding["sourceResourceId"] == "/workspaces/mlw-test"
    network_role = recording.one("azure-native:authorization:RoleAssignment").inputs
    assert network_role["scope"] == SUBNET_ID and network_role["roleDefinitionId"].endswith(
        BuiltInRole.NETWORK_CONTRIBUTOR
    )
    assert diagnostics_targets(recording) == [LA_ID]
    assert_children_parented(recording, component(recording, "aml-platform:inference:AksCluster"))


# ---- Azure DevOps -------------------------------------------------------------------------------


@pytest.mark.parametrize(("pool_id", "number"), [("12", 12), ("7", 7), ("", ""), ("abc", "abc")])
def test_pool_number(pool_id: str, number: int | str) -> None:
    assert pool_number(pool_id) == number


def test_devops_agents_queue_points_at_the_pool() -> None:
    recording = record(lambda: DevOpsAgents("agents", DevOpsAgentsArgs("project-1", "pool-test")))
    pool = recording.one("azuredevops:index/pool:Pool")
    queue = recording.one("azuredevops:index/queue:Queue")
    assert pool.inputs["name"] == "pool-test" and pool.inputs["autoProvision"] is False
    assert queue.inputs["projectId"] == "project-1" and pool.urn in queue.dependencies
    assert_children_parented(recording, component(recording, "aml-platform:devops:DevOpsAgents"))


def test_variable_group_carries_the_given_variables() -> None:
    args = VariableGroupArgs("project-1", "vg-test", {"workspaceName": "mlw-test", "location": "westeurope"})
    recording = record(lambda: VariableGroup("variables", args))
    group = recording.one("azuredevops:index/variableGroup:VariableGroup").inputs
    assert group["name"] == "vg-test" and group["projectId"] == "project-1"
    assert {v["name"]: v["value"] for v in group["variables"]} == {
        "workspaceName": "mlw-test",
        "location": "westeurope",
    }


def test_variable_group_needs_variables() -> None:
    with pytest.raises(ValueError, match="'vg-test' needs at least one variable"):
        record(lambda: VariableGroup("variables", VariableGroupArgs("project-1", "vg-test", {})))


def test_pipeline_environments_gate_only_the_environments_with_approvers() -> None:
    args = PipelineEnvironmentsArgs("project-1", ("dev", "prod"), approvers={"prod": ("lead-1", "lead-2")})
    recording = record(lambda: PipelineEnvironments("environments", args))
    environments = recording.of_type("azuredevops:index/environment:Environment")
    assert sorted(e.inputs["name"] for e in environments) == ["dev", "prod"]
    check = recording.one("azuredevops:index/checkApproval:CheckApproval")
    assert (
        check.inputs["approvers"] == ["lead-1", "lead-2"]
        and check.inputs["targetResourceType"] == "environment"
    )
    assert recording.by_name("environments-prod").urn in check.dependencies
    assert check.inputs["requesterCanApprove"] is False


@pytest.mark.parametrize(
    ("approvers", "message"),
    [({"staging": ("a",)}, "unknown environments \\['staging'\\]"), ({"prod": ()}, "no approvers")],
)
def test_pipeline_environments_reject_bad_approvers(approvers: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PipelineEnvironmentsArgs("project-1", ("dev", "prod"), approvers=approvers)
