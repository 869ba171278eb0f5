"""Each Pulumi component under the mock runtime: what it registers, how it is wired, its security settings."""

from __future__ import annotations

import base64
import dataclasses
import uuid
from typing import Any, Callable

import pytest
from pulumi.runtime import rpc
from google.protobuf import json_format

from components.aks import (
    AksCluster,
    AksClusterArgs,
    InferenceTlsArgs,
    azureml_extension_settings,
    protected_tls_settings,
    scoring_uri,
)
from components.common import BuiltInRole, CommonArgs, child_opts, merge_tags, role_assignment_name
from components.compute_cluster import (
    ComputeCluster,
    ComputeClusterArgs,
    iso8601_seconds,
    remote_login_access,
)
from components.container_registry import ContainerRegistry, ContainerRegistryArgs
from components.devops_agents import DevOpsAgents, DevOpsAgentsArgs, pool_number
from components.key_vault import KeyVault, KeyVaultArgs
from components.monitoring import Monitoring, MonitoringArgs
from components.network import Network, NetworkArgs, SubnetSpec
from components.nsg_rules import SecurityRule, aml_compute_outbound_rules, deny_internet_inbound
from components.pipeline_environments import PipelineEnvironments, PipelineEnvironmentsArgs
from components.private_endpoint import (
    PrivateEndpointArgs,
    all_private_dns_zones,
    zones_for,
    zones_for_groups,
)
from components.resource_group import ResourceGroup, ResourceGroupArgs
from components.storage import StorageAccount, StorageAccountArgs
from components.variable_group import VariableGroup, VariableGroupArgs
from components.workspace import (
    TRAINING_PACKAGE_FEEDS,
    Workspace,
    WorkspaceArgs,
    managed_network_settings,
    outbound_rule_name,
)
from stacks import mockrun
from stacks.mockrun import SECRET_MASK, RecordedResource, Recording, run_program

TAGS = {"environment": "test", "project": "aml-platform", "owner": "ml-platform"}
RG = "rg-test"
SUB = mockrun.SUBSCRIPTION_ID
LA_ID = (
    f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.OperationalInsights/workspaces/log-test"
)
SUBNET = "azure-native:network:Subnet"
NSG = "azure-native:network:NetworkSecurityGroup"
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


def unwrap_secret(value: Any) -> Any:
    """The plain value of a secret as the mocks receive it (a signature-tagged wrapper)."""
    if isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig:
        return value["value"]
    return value


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


@pytest.mark.parametrize(
    ("public", "groups", "shared_keys"),
    [
        (True, None, False),
        (False, ("blob", "file"), False),
        (False, ("blob", "file", "queue", "table"), True),
    ],
)
def test_storage_account_security_baseline(
    public: bool, groups: tuple[str, ...] | None, shared_keys: bool
) -> None:
    args = StorageAccountArgs(
        common(),
        "sttest",
        public_network_access=public,
        diagnostics_workspace_id=LA_ID,
        private_endpoint=None if groups is None else placement(),
        private_endpoint_groups=groups or ("blob", "file"),
        shared_key_access=shared_keys,
    )
    recording = record(lambda: StorageAccount("storage", args))
    account = recording.one("azure-native:storage:StorageAccount").inputs
    assert account["accountName"] == "sttest"
    assert account["enableHttpsTrafficOnly"] is True and account["minimumTlsVersion"] == "TLS1_2"
    assert account["allowBlobPublicAccess"] is False and account["allowSharedKeyAccess"] is shared_keys
    assert account["publicNetworkAccess"] == ("Enabled" if public else "Disabled")
    # Trusted Azure services may pass the firewall (how-to-secure-kubernetes-inferencing-environment.md).
    assert account["networkRuleSet"]["bypass"] == "AzureServices"
    blob = recording.one("azure-native:storage:BlobServiceProperties").inputs
    assert blob["deleteRetentionPolicy"]["enabled"] and blob["containerDeleteRetentionPolicy"]["enabled"]
    endpoints = recording.of_type("azure-native:network:PrivateEndpoint")
    found = sorted(e.inputs["privateLinkServiceConnections"][0]["groupIds"][0] for e in endpoints)
    assert found == sorted(groups or ())
    zone_groups = recording.of_type("azure-native:network:PrivateDnsZoneGroup")
    assert sorted(z.inputs["privateDnsZoneConfigs"][0]["privateDnsZoneId"] for z in zone_groups) == sorted(
        f"/zones/privatelink.{group}.core.windows.net" for group in groups or ()
    )
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
    # The trusted-services exception image builds and AML need on a private registry (AZURE-FACTS 24).
    assert registry["networkRuleBypassOptions"] == "AzureServices"
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

STORAGE_ZONES = tuple(f"privatelink.{group}.core.windows.net" for group in ("blob", "file", "queue", "table"))


def network_args(zones: tuple[str, ...] = STORAGE_ZONES, egress: bool = True) -> NetworkArgs:
    rules = aml_compute_outbound_rules("westeurope", "10.10.3.0/24")
    return NetworkArgs(
        common(),
        "vnet-test",
        "10.10.0.0/16",
        {
            "training": SubnetSpec("10.10.1.0/24", egress=egress, security_rules=rules),
            "aks": SubnetSpec("10.10.16.0/20", egress=egress),
            "agents": SubnetSpec("10.10.2.0/24", egress=egress),
            "private-endpoints": SubnetSpec("10.10.3.0/24"),
        },
        nat_gateway_name="ng-test" if egress else None,
        nat_public_ip_name="pip-ng-test" if egress else None,
        private_dns_zones=zones,
    )


def nsg_id(name: str) -> str:
    return (
        f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Network/networkSecurityGroups/{name}"
    )


@pytest.mark.parametrize("zones", [STORAGE_ZONES, ()])
def test_network_subnets_each_behind_an_nsg_and_dns_zones_as_listed(zones: tuple[str, ...]) -> None:
    recording = record(lambda: Network("network", network_args(zones)))
    subnets = recording.of_type("azure-native:network:Subnet")
    nsgs = recording.of_type("azure-native:network:NetworkSecurityGroup")
    assert [s.inputs["subnetName"] for s in subnets] == [
        "snet-training",
        "snet-aks",
        "snet-agents",
        "snet-private-endpoints",
    ]
    assert {s.inputs["networkSecurityGroup"]["id"] for s in subnets} == {
        nsg_id(n.inputs["networkSecurityGroupName"]) for n in nsgs
    }
    assert all(s.inputs["defaultOutboundAccess"] is False for s in subnets)
    # Azure ML compute and AKS refuse delegated subnets (how-to-secure-training-vnet.md, Prerequisites).
    assert all("delegations" not in s.inputs for s in subnets)
    # One subnet write at a time: each subnet after the first depends on the previous one.
    for previous, current in zip(subnets, subnets[1:]):
        assert previous.urn in current.dependencies
    found = recording.of_type("azure-native:privatedns:PrivateZone")
    links = recording.of_type("azure-native:privatedns:VirtualNetworkLink")
    # Registration order of sibling resources is the event loop's, not the program's: compare as sets.
    assert sorted(z.inputs["privateZoneName"] for z in found) == sorted(zones) and len(links) == len(zones)
    vnet = recording.one("azure-native:network:VirtualNetwork")
    assert all(link.inputs["virtualNetwork"]["id"] == vnet_id_of(vnet) for link in links)
    assert all(link.inputs["registrationEnabled"] is False for link in links)
    assert_children_parented(recording, component(recording, "aml-platform:network:Network"))


def vnet_id_of(vnet: RecordedResource) -> str:
    name = vnet.inputs["virtualNetworkName"]
    return f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Network/virtualNetworks/{name}"


def test_machine_subnets_egress_through_one_nat_gateway_with_a_standard_static_ip() -> None:
    recording = record(lambda: Network("network", network_args()))
    gateway = recording.one("azure-native:network:NatGateway")
    public_ip = recording.one("azure-native:network:PublicIPAddress")
    assert gateway.inputs["sku"] == {"name": "Standard"} and gateway.inputs["natGatewayName"] == "ng-test"
    assert public_ip.inputs["sku"]["name"] == "Standard"
    assert public_ip.inputs["publicIPAllocationMethod"] == "Static"
    assert public_ip.urn in gateway.dependencies
    gateway_id = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Network/natGateways/ng-test"
    by_role = {s.inputs["subnetName"].removeprefix("snet-"): s for s in recording.of_type(SUBNET)}
    assert {role: s.inputs.get("natGateway") for role, s in by_role.items()} == {
        "training": {"id": gateway_id},
        "aks": {"id": gateway_id},
        "agents": {"id": gateway_id},
        "private-endpoints": None,
    }
    assert all(gateway.urn in by_role[role].dependencies for role in ("training", "aks", "agents"))


def test_network_without_egress_declares_no_nat_gateway() -> None:
    recording = record(lambda: Network("network", network_args(egress=False)))
    assert recording.of_type("azure-native:network:NatGateway") == []
    assert recording.of_type("azure-native:network:PublicIPAddress") == []
    assert all("natGateway" not in s.inputs for s in recording.of_type(SUBNET))


def test_training_nsg_carries_the_compute_outbound_rules_above_the_inbound_deny() -> None:
    recording = record(lambda: Network("network", network_args()))
    nsgs = {n.inputs["networkSecurityGroupName"]: n for n in recording.of_type(NSG)}
    training = nsgs["nsg-training-test"].inputs["securityRules"]
    assert [r["name"] for r in training] == [
        "allow-azureml-tcp",
        "allow-azureml-udp",
        "allow-batch-node-management",
        "allow-batch-storage",
        "allow-storage-smb",
        "deny-internet-inbound",
    ]
    tcp = training[0]
    assert tcp["destinationPortRanges"] == ["443", "8787", "18881"] and "destinationPortRange" not in tcp
    assert training[1]["destinationPortRange"] == "5831" and "destinationPortRanges" not in training[1]
    assert {r["direction"] for r in training[:-1]} == {"Outbound"}
    # No subnet denies outbound internet: package feeds are reached through the NAT gateway.
    for nsg in nsgs.values():
        rules = nsg.inputs["securityRules"]
        assert not [r for r in rules if r["direction"] == "Outbound" and r["access"] == "Deny"]
        assert rules[-1]["name"] == "deny-internet-inbound"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"nat_gateway_name": None}, "egress through a NAT gateway"),
        ({"nat_public_ip_name": None}, "egress through a NAT gateway"),
    ],
)
def test_network_args_refuse_egress_without_a_named_nat_gateway(overrides: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(network_args(), **overrides)


def test_network_args_refuse_dns_zones_without_an_endpoint_subnet() -> None:
    args = network_args()
    subnets = {role: spec for role, spec in args.subnets.items() if role != "private-endpoints"}
    with pytest.raises(ValueError, match="'private-endpoints' subnet"):
        dataclasses.replace(args, subnets=subnets)


@pytest.mark.parametrize(("priority", "valid"), [(99, False), (100, True), (4096, True), (4097, False)])
def test_security_rule_priority_boundaries(priority: int, valid: bool) -> None:
    def build() -> SecurityRule:
        return SecurityRule("r", priority, "Outbound", "Allow", "Tcp", "Storage", ("443",))

    if valid:
        assert build().priority == priority
    else:
        with pytest.raises(ValueError, match="outside Azure's 100-4096"):
            build()


def test_compute_outbound_rules_are_ordered_above_any_later_deny() -> None:
    rules = aml_compute_outbound_rules("westeurope", "10.10.3.0/24")
    priorities = [rule.priority for rule in rules]
    assert priorities == sorted(set(priorities)) and max(priorities) < deny_internet_inbound().priority
    assert all(rule.access == "Allow" and rule.direction == "Outbound" for rule in rules)
    assert rules[-1].destination == "10.10.3.0/24" and rules[-1].ports == ("445",)


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
    with pytest.raises(ValueError, match="'dfs'.*blob"):
        zones_for("dfs")


def test_zones_for_groups_lists_each_zone_once_in_first_use_order() -> None:
    assert zones_for_groups(["queue", "blob", "queue", "amlworkspace"]) == (
        "privatelink.queue.core.windows.net",
        "privatelink.blob.core.windows.net",
        "privatelink.api.azureml.ms",
        "privatelink.notebooks.azure.net",
    )


# ---- workspace and compute ----------------------------------------------------------------------


def rid(kind: str, name: str) -> str:
    return f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/{kind}/{name}"


STORAGE_ID = rid("Microsoft.Storage/storageAccounts", "sttest")


def workspace_args(prod: bool, isolation_mode: str = "Disabled", **overrides: Any) -> WorkspaceArgs:
    return WorkspaceArgs(
        common(prod),
        "mlw-test",
        subscription_id=SUB,
        storage_account_id=STORAGE_ID,
        storage_account_name="sttest",
        key_vault_id=rid("Microsoft.KeyVault/vaults", "kv-test"),
        key_vault_name="kv-test",
        container_registry_id=rid("Microsoft.ContainerRegistry/registries", "crtest"),
        container_registry_name="crtest",
        app_insights_id=rid("Microsoft.Insights/components", "appi-test"),
        image_build_compute="cpu-cluster",
        compute_identity_name="id-cpu-test",
        public_network_access=not prod,
        isolation_mode=isolation_mode,
        diagnostics_workspace_id=LA_ID,
        private_endpoint=placement() if prod else None,
        **overrides,
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
    # Customer VNet design: no managed network, so nothing to provision with the workspace.
    assert inputs["managedNetwork"]["isolationMode"] == "Disabled"
    assert "outboundRules" not in inputs["managedNetwork"] and "provisionNetworkNow" not in inputs
    assert (workspace.protect, workspace.retain_on_delete) == (prod, prod)
    endpoints = recording.of_type("azure-native:network:PrivateEndpoint")
    assert [e.inputs["privateLinkServiceConnections"][0]["groupIds"] for e in endpoints] == (
        [["amlworkspace"]] if prod else []
    )
    assert_children_parented(recording, component(recording, "aml-platform:ml:Workspace"))


def test_managed_vnet_workspace_is_provisioned_at_create_with_feed_and_batch_rules() -> None:
    args = workspace_args(
        True, "AllowOnlyApprovedOutbound", storage_rules=("queue", "table"), provision_network_now=True
    )
    recording = record(lambda: Workspace("workspace", args))
    inputs = recording.one("azure-native:machinelearningservices:Workspace").inputs
    assert inputs["provisionNetworkNow"] is True
    network = inputs["managedNetwork"]
    assert network["isolationMode"] == "AllowOnlyApprovedOutbound"
    rules = network["outboundRules"]
    fqdn = {rule["destination"] for rule in rules.values() if rule["type"] == "FQDN"}
    assert fqdn == set(TRAINING_PACKAGE_FEEDS)
    endpoints = {name: rule for name, rule in rules.items() if rule["type"] == "PrivateEndpoint"}
    assert {name: rule["destination"] for name, rule in endpoints.items()} == {
        "allow-storage-queue": {
            "serviceResourceId": STORAGE_ID,
            "subresourceTarget": "queue",
            "sparkEnabled": False,
        },
        "allow-storage-table": {
            "serviceResourceId": STORAGE_ID,
            "subresourceTarget": "table",
            "sparkEnabled": False,
        },
    }
    assert {rule["category"] for rule in rules.values()} == {"UserDefined"}


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


@pytest.mark.parametrize(
    ("mode", "storage_rules", "fqdn_rules", "endpoint_rules"),
    [
        ("Disabled", (), [], []),
        ("AllowInternetOutbound", (), [], []),
        ("AllowInternetOutbound", ("queue",), [], ["allow-storage-queue"]),
        ("AllowOnlyApprovedOutbound", (), ["allow-pypi-org"], []),
        (
            "AllowOnlyApprovedOutbound",
            ("queue", "table"),
            ["allow-pypi-org"],
            ["allow-storage-queue", "allow-storage-table"],
        ),
    ],
)
def test_managed_network_rules_follow_the_isolation_mode(
    mode: str, storage_rules: tuple[str, ...], fqdn_rules: list[str], endpoint_rules: list[str]
) -> None:
    settings = managed_network_settings(mode, ("pypi.org",), STORAGE_ID, storage_rules)
    assert settings.isolation_mode == mode
    rules = settings.outbound_rules or {}
    assert [name for name, rule in rules.items() if rule.type == "FQDN"] == fqdn_rules
    assert [name for name, rule in rules.items() if rule.type == "PrivateEndpoint"] == endpoint_rules


@pytest.mark.parametrize(
    ("mode", "storage_id", "message"),
    [
        ("Disabled", STORAGE_ID, "takes no outbound rules"),
        ("AllowInternetOutbound", None, "storage account id"),
    ],
)
def test_managed_network_refuses_rules_it_cannot_carry(
    mode: str, storage_id: str | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        managed_network_settings(mode, (), storage_id, ("queue",))


@pytest.mark.parametrize(("seconds", "duration"), [(0, "PT0S"), (120, "PT120S"), (1800, "PT1800S")])
def test_iso8601_seconds(seconds: int, duration: str) -> None:
    assert iso8601_seconds(seconds) == duration


def test_iso8601_seconds_rejects_negative() -> None:
    with pytest.raises(ValueError, match="-5"):
        iso8601_seconds(-5)


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

AKS_ID = (
    f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.ContainerService/managedClusters/aks-test"
)
VNET_ID = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Network/virtualNetworks/vnet-test"


@pytest.mark.parametrize(
    ("nodes", "ha", "purpose"), [(1, "False", "DevTest"), (2, "False", "DevTest"), (3, "True", "FastProd")]
)
def test_azureml_extension_router_ha_only_with_three_nodes(nodes: int, ha: str, purpose: str) -> None:
    settings = azureml_extension_settings(AKS_ID, "aks-test", "westeurope", nodes, None)
    assert (settings["inferenceRouterHA"], settings["clusterPurpose"]) == (ha, purpose)


@pytest.mark.parametrize(("host", "insecure"), [(None, "True"), ("ml.contoso.com", "False")])
def test_azureml_extension_settings_carry_what_the_cli_derives(host: str | None, insecure: str) -> None:
    settings = azureml_extension_settings(AKS_ID, "aks-test", "westeurope", 3, host)
    assert settings["enableInference"] == "True" and settings["enableTraining"] == "False"
    assert settings["inferenceRouterServiceType"] == "loadBalancer"
    assert settings["internalLoadBalancerProvider"] == "azure"
    assert settings["scoringFe.serviceType.internalLoadBalancer"] == "true"
    assert settings["allowInsecureConnections"] == insecure and settings.get("sslCname") == host
    assert settings["cluster_name"] == settings["clusterId"] == AKS_ID
    assert settings["prometheus.prometheusSpec.externalLabels.cluster_name"] == AKS_ID
    assert settings["cluster_name_friendly"] == "aks-test"
    assert settings["location"] == settings["jobSchedulerLocation"] == "westeurope"
    assert settings["domain"] == "westeurope.cloudapp.azure.com"
    assert (settings["relayserver.enabled"], settings["servicebus.enabled"]) == ("false", "false")
    assert settings["nginxIngress.enabled"] == "true"
    assert "sslSecret" not in settings and "scoringFe.sslCert" not in settings


def test_protected_tls_settings_are_the_base64_pem_files() -> None:
    settings = protected_tls_settings("-----BEGIN CERTIFICATE-----\nc\n", "-----BEGIN PRIVATE KEY-----\nk\n")
    assert set(settings) == {"scoringFe.sslCert", "scoringFe.sslKey"}
    assert base64.b64decode(settings["scoringFe.sslCert"]).decode() == "-----BEGIN CERTIFICATE-----\nc\n"
    assert base64.b64decode(settings["scoringFe.sslKey"]).decode() == "-----BEGIN PRIVATE KEY-----\nk\n"


def test_scoring_uri_follows_the_kubernetes_endpoint_shape() -> None:
    assert scoring_uri("ml.contoso.com", "ep-taxi") == "https://ml.contoso.com/api/v1/endpoint/ep-taxi/score"


def aks_args(private: bool = False, **overrides: Any) -> AksClusterArgs:
    values: dict[str, Any] = dict(
        common=common(),
        cluster_name="aks-test",
        identity_name="id-aks-test",
        compute_name="aks-inference",
        subscription_id=SUB,
        workspace_name="mlw-test",
        subnet_id=SUBNET_ID,
        vnet_id=VNET_ID,
        service_cidr="10.100.0.0/16",
        dns_service_ip="10.100.0.10",
        log_analytics_workspace_id=LA_ID,
        private_cluster=private,
        diagnostics_workspace_id=LA_ID,
    )
    values.update(overrides)
    return AksClusterArgs(**values)


@pytest.fixture
def resource_options(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """replaceOnChanges, deleteBeforeReplace and the replacement trigger of each registration, by logical name
    (options the recording does not keep)."""
    seen: dict[str, Any] = {}
    original = mockrun._record

    def spy(request: Any, urn: str) -> RecordedResource:
        trigger = (
            json_format.MessageToDict(request.replacement_trigger)
            if request.HasField("replacement_trigger")
            else None
        )
        seen[request.name] = (tuple(request.replaceOnChanges), bool(request.deleteBeforeReplace), trigger)
        return original(request, urn)

    monkeypatch.setattr(mockrun, "_record", spy)
    return seen


@pytest.mark.parametrize("private", [True, False])
def test_aks_cluster_secured_extended_and_attached_to_the_workspace(
    private: bool, resource_options: dict[str, Any]
) -> None:
    recording = record(lambda: AksCluster("aks", aks_args(private)))
    cluster = recording.one("azure-native:containerservice:ManagedCluster")
    identity = recording.one("azure-native:managedidentity:UserAssignedIdentity")
    inputs = cluster.inputs
    identity_id = mockrun.fake_id(identity.type, identity.inputs["resourceName"], identity.inputs)
    assert inputs["identity"] == {"type": "UserAssigned", "userAssignedIdentities": [identity_id]}
    # Local accounts stay on for the Azure ML extension (AZURE-FACTS 11); access is Entra ID + Azure RBAC.
    assert inputs["disableLocalAccounts"] is False
    assert inputs["aadProfile"] == {"managed": True, "enableAzureRBAC": True}
    assert inputs["networkProfile"]["networkPolicy"] == "azure"
    assert inputs["networkProfile"]["outboundType"] == "userAssignedNATGateway"
    access = inputs["apiServerAccessProfile"]
    assert access["enablePrivateCluster"] is private
    assert access.get("enablePrivateClusterPublicFQDN") is (False if private else None)
    assert inputs["agentPoolProfiles"][0]["vnetSubnetID"] == SUBNET_ID
    assert inputs["agentPoolProfiles"][0]["enableNodePublicIP"] is False
    network_role = recording.one("azure-native:authorization:RoleAssignment")
    assert network_role.inputs["scope"] == SUBNET_ID
    assert network_role.inputs["roleDefinitionId"].endswith(BuiltInRole.NETWORK_CONTRIBUTOR)
    assert identity.urn in network_role.dependencies and network_role.urn in cluster.dependencies
    extension = recording.one("azure-native:kubernetesconfiguration:Extension")
    assert extension.inputs["extensionType"] == "Microsoft.AzureML.Kubernetes"
    assert extension.inputs["scope"] == {"cluster": {"releaseNamespace": "azureml"}}
    assert extension.inputs["clusterName"] == "aks-test" and cluster.urn in extension.dependencies
    assert extension.inputs["configurationSettings"]["clusterId"] == AKS_ID
    assert extension.inputs["configurationSettings"]["allowInsecureConnections"] == "True"
    assert "configurationProtectedSettings" not in extension.inputs
    # Trusted Access is only for local accounts off, IP ranges or a public FQDN (AZURE-FACTS 27): none here.
    assert recording.of_type("azure-native:containerservice:TrustedAccessRoleBinding") == []
    attach = recording.one("azure-native:machinelearningservices:Compute")
    assert attach.inputs["properties"]["computeType"] == "Kubernetes"
    assert attach.inputs["properties"]["resourceId"] == AKS_ID
    assert attach.inputs["workspaceName"] == "mlw-test" and extension.urn in attach.dependencies
    replace_on_changes, delete_first, trigger = resource_options[attach.name]
    assert (replace_on_changes, delete_first) == (("*",), True)
    # A changed extension configuration re-attaches the compute.
    assert trigger == extension.inputs["configurationSettings"]
    assert recording.of_type("azure-native:privatedns:PrivateZone") == []
    assert diagnostics_targets(recording) == [LA_ID]
    assert_children_parented(recording, component(recording, "aml-platform:inference:AksCluster"))


CERT, KEY = "-----BEGIN CERTIFICATE-----\ncert\n", "-----BEGIN PRIVATE KEY-----\nkey\n"


@pytest.mark.parametrize("ip", [None, "10.10.16.50"])
def test_aks_with_tls_sends_the_pems_as_secret_protected_settings_and_owns_the_scoring_dns(
    ip: str | None, mock_gaps: dict[str, dict]
) -> None:
    import pulumi

    tls = InferenceTlsArgs("ml.contoso.com", pulumi.Output.secret(CERT), pulumi.Output.secret(KEY))
    recording = record(lambda: AksCluster("aks", aks_args(True, tls=tls, load_balancer_ip=ip)))
    extension = recording.one("azure-native:kubernetesconfiguration:Extension")
    settings = extension.inputs["configurationSettings"]
    assert (settings["allowInsecureConnections"], settings["sslCname"]) == ("False", "ml.contoso.com")
    assert extension.inputs["configurationProtectedSettings"] == SECRET_MASK
    assert "cert" not in repr([r.inputs for r in recording.resources])
    protected = unwrap_secret(mock_gaps["aks-azureml-extension"]["configurationProtectedSettings"])
    assert protected == protected_tls_settings(CERT, KEY)
    zone = recording.one("azure-native:privatedns:PrivateZone")
    link = recording.one("azure-native:privatedns:VirtualNetworkLink")
    assert zone.inputs["privateZoneName"] == "ml.contoso.com" and zone.inputs["location"] == "global"
    assert link.inputs["virtualNetwork"] == {"id": VNET_ID} and link.inputs["registrationEnabled"] is False
    records = recording.of_type("azure-native:privatedns:PrivateRecordSet")
    if ip is None:
        assert records == []
    else:
        (a_record,) = records
        assert a_record.inputs["recordType"] == "A" and a_record.inputs["relativeRecordSetName"] == "@"
        assert a_record.inputs["aRecords"] == [{"ipv4Address": ip}]
        assert a_record.inputs["privateZoneName"] == "ml.contoso.com" and zone.urn in a_record.dependencies


def test_aks_args_refuse_a_scoring_ip_without_a_host_name() -> None:
    with pytest.raises(ValueError, match="needs a host name"):
        aks_args(load_balancer_ip="10.10.16.50")


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
