"""Each rule of policy.rules with a complying and a violating resource, and the CrossGuard adapter."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest

from policy import rules as r

TAGS = {"environment": "prod", "project": "aml-platform", "owner": "ml-platform"}
SUBNET_ID = (
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/training"
)

# One resource per declared type that meets the whole prod baseline.
COMPLIANT: dict[str, dict[str, Any]] = {
    r.RESOURCE_GROUP: {"resourceGroupName": "rg-taxi-001prod", "location": "westeurope", "tags": TAGS},
    r.STORAGE: {
        "accountName": "sttaxi001prod",
        "enableHttpsTrafficOnly": True,
        "minimumTlsVersion": "TLS1_2",
        "allowBlobPublicAccess": False,
        "allowSharedKeyAccess": False,
        "allowCrossTenantReplication": False,
        "publicNetworkAccess": "Disabled",
        "tags": TAGS,
    },
    r.BLOB_SERVICE: {
        "deleteRetentionPolicy": {"enabled": True, "days": 7},
        "containerDeleteRetentionPolicy": {"enabled": True, "days": 14},
    },
    r.KEY_VAULT: {
        "properties": {
            "enableRbacAuthorization": True,
            "enablePurgeProtection": True,
            "enableSoftDelete": True,
            "softDeleteRetentionInDays": 90,
            "publicNetworkAccess": "Disabled",
        },
        "tags": TAGS,
    },
    r.REGISTRY: {"adminUserEnabled": False, "publicNetworkAccess": "Disabled", "tags": TAGS},
    r.LOG_ANALYTICS: {"retentionInDays": 90, "tags": TAGS},
    r.APP_INSIGHTS: {"workspaceResourceId": "/subscriptions/s/.../workspaces/log", "tags": TAGS},
    r.DIAGNOSTIC_SETTING: {
        "workspaceId": "/subscriptions/s/.../workspaces/log",
        "logs": [{"categoryGroup": "allLogs", "enabled": True}],
    },
    r.ML_WORKSPACE: {
        "identity": {"type": "SystemAssigned"},
        "systemDatastoresAuthMode": "identity",
        "publicNetworkAccess": "Disabled",
        "imageBuildCompute": "cpu-cluster",
        "managedNetwork": {"isolationMode": "AllowOnlyApprovedOutbound"},
        "tags": TAGS,
    },
    r.ML_COMPUTE: {
        "properties": {
            "computeType": "AmlCompute",
            "disableLocalAuth": True,
            "properties": {
                "enableNodePublicIp": False,
                "remoteLoginPortPublicAccess": "Disabled",
                "subnet": {"id": SUBNET_ID},
            },
        },
        "tags": TAGS,
    },
    r.AKS: {
        "identity": {"type": "SystemAssigned"},
        "disableLocalAccounts": False,
        "aadProfile": {"managed": True, "enableAzureRBAC": True},
        "networkProfile": {"networkPolicy": "azure"},
        "apiServerAccessProfile": {"enablePrivateCluster": True},
        "agentPoolProfiles": [{"name": "system", "enableNodePublicIp": False}],
        "tags": TAGS,
    },
    r.K8S_EXTENSION: {
        "extensionType": "Microsoft.AzureML.Kubernetes",
        "configurationSettings": {
            "inferenceRouterServiceType": "loadBalancer",
            "internalLoadBalancerProvider": "azure",
        },
    },
    r.VNET: {"addressSpace": {"addressPrefixes": ["10.10.0.0/16"]}, "tags": TAGS},
    r.SUBNET: {
        "subnetName": "training",
        "networkSecurityGroup": {"id": "/subscriptions/s/.../nsg"},
        "defaultOutboundAccess": False,
    },
    r.NSG: {
        "securityRules": [
            {
                "name": "allow-vnet-ssh",
                "direction": "Inbound",
                "access": "Allow",
                "sourceAddressPrefix": "VirtualNetwork",
                "destinationPortRange": "22",
            }
        ],
        "tags": TAGS,
    },
    r.PRIVATE_ENDPOINT: {
        "privateLinkServiceConnections": [
            {"privateLinkServiceId": "/subscriptions/s/.../st", "groupIds": ["blob"]}
        ],
        "tags": TAGS,
    },
    r.NIC: {"ipConfigurations": [{"name": "ipconfig", "subnet": {"id": SUBNET_ID}}], "tags": TAGS},
    r.VM: {
        "osProfile": {
            "linuxConfiguration": {
                "disablePasswordAuthentication": True,
                "ssh": {"publicKeys": [{"keyData": "ssh-ed25519 AAAA"}]},
            }
        },
        "tags": TAGS,
    },
    r.PRIVATE_DNS_ZONE: {"privateZoneName": "privatelink.blob.core.windows.net", "tags": TAGS},
    r.PRIVATE_DNS_LINK: {"registrationEnabled": False, "tags": TAGS},
    r.PRIVATE_DNS_ZONE_GROUP: {
        "privateDnsZoneConfigs": [{"name": "blob", "privateDnsZoneId": "/subscriptions/s/z"}]
    },
    r.TRUSTED_ACCESS: {"roles": ["Microsoft.MachineLearningServices/workspaces/mlworkload"]},
    r.DEVOPS_POOL: {"autoProvision": False, "name": "pool"},
    r.DEVOPS_QUEUE: {"agentPoolId": "1"},
    r.DEVOPS_ENVIRONMENT: {"name": "prod", "description": "Deployments of the prod platform"},
    r.ROLE_ASSIGNMENT: {
        "roleDefinitionId": "/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/"
        "b24988ac-6180-42a0-ab88-20f7382dd24c"
    },
    r.USER_IDENTITY: {"tags": TAGS},
    r.FEDERATED_CREDENTIAL: {
        "audiences": ["api://AzureADTokenExchange"],
        "issuer": "https://vstoken.dev.azure.com/x",
    },
    r.DEVOPS_PROJECT: {"name": "mlops", "visibility": "private"},
    r.DEVOPS_VARIABLE_GROUP: {
        "variables": [
            {"name": "namespace", "value": "taxi"},
            {"name": "devopsPat", "secretValue": "[secret]", "isSecret": True},
        ]
    },
    r.DEVOPS_SERVICE_CONNECTION: {"serviceEndpointAuthenticationScheme": "WorkloadIdentityFederation"},
    r.DEVOPS_CHECK_APPROVAL: {"approvers": ["platform-leads"], "requesterCanApprove": False},
}


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(props: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        target = props
        for key in parents:
            target = target.setdefault(key, {})
        if value is DELETE:
            target.pop(leaf, None)
        else:
            target[leaf] = value

    return mutate


DELETE = object()

# (rule, resource type, how to break the compliant resource)
VIOLATIONS: list[tuple[str, str, Callable[[dict[str, Any]], None]]] = [
    ("storage-https-only", r.STORAGE, _set("enableHttpsTrafficOnly", False)),
    ("storage-min-tls-1-2", r.STORAGE, _set("minimumTlsVersion", "TLS1_0")),
    ("storage-no-public-blob-access", r.STORAGE, _set("allowBlobPublicAccess", True)),
    ("storage-shared-key-disabled", r.STORAGE, _set("allowSharedKeyAccess", DELETE)),
    ("storage-no-cross-tenant-replication", r.STORAGE, _set("allowCrossTenantReplication", True)),
    ("storage-public-network-disabled", r.STORAGE, _set("publicNetworkAccess", "Enabled")),
    ("storage-blob-soft-delete", r.BLOB_SERVICE, _set("deleteRetentionPolicy.days", 1)),
    ("storage-container-soft-delete", r.BLOB_SERVICE, _set("containerDeleteRetentionPolicy.enabled", False)),
    ("keyvault-rbac-authorization", r.KEY_VAULT, _set("properties.enableRbacAuthorization", False)),
    ("keyvault-purge-protection", r.KEY_VAULT, _set("properties.enablePurgeProtection", DELETE)),
    ("keyvault-soft-delete-90-days", r.KEY_VAULT, _set("properties.softDeleteRetentionInDays", 7)),
    ("keyvault-public-network-disabled", r.KEY_VAULT, _set("properties.publicNetworkAccess", "Enabled")),
    ("registry-admin-user-disabled", r.REGISTRY, _set("adminUserEnabled", True)),
    ("registry-anonymous-pull-disabled", r.REGISTRY, _set("anonymousPullEnabled", True)),
    ("registry-public-network-disabled", r.REGISTRY, _set("publicNetworkAccess", "Enabled")),
    ("log-analytics-retention", r.LOG_ANALYTICS, _set("retentionInDays", 7)),
    ("app-insights-workspace-based", r.APP_INSIGHTS, _set("workspaceResourceId", DELETE)),
    (
        "diagnostics-to-log-analytics",
        r.DIAGNOSTIC_SETTING,
        _set("logs", [{"categoryGroup": "allLogs", "enabled": False}]),
    ),
    ("workspace-system-identity", r.ML_WORKSPACE, _set("identity.type", "UserAssigned")),
    ("workspace-v1-legacy-mode-off", r.ML_WORKSPACE, _set("v1LegacyMode", True)),
    ("workspace-identity-datastore-auth", r.ML_WORKSPACE, _set("systemDatastoresAuthMode", "accessKey")),
    ("workspace-public-network-disabled", r.ML_WORKSPACE, _set("publicNetworkAccess", "Enabled")),
    (
        "workspace-managed-network-isolated",
        r.ML_WORKSPACE,
        _set("managedNetwork.isolationMode", "AllowInternetOutbound"),
    ),
    ("workspace-image-build-compute", r.ML_WORKSPACE, _set("imageBuildCompute", DELETE)),
    ("compute-no-node-public-ip", r.ML_COMPUTE, _set("properties.properties.enableNodePublicIp", True)),
    (
        "compute-ssh-disabled",
        r.ML_COMPUTE,
        _set("properties.properties.remoteLoginPortPublicAccess", "Enabled"),
    ),
    ("compute-local-auth-disabled", r.ML_COMPUTE, _set("properties.disableLocalAuth", False)),
    ("aks-managed-identity", r.AKS, _set("identity", DELETE)),
    ("aks-azure-rbac", r.AKS, _set("aadProfile.enableAzureRBAC", False)),
    ("aks-network-policy", r.AKS, _set("networkProfile.networkPolicy", "none")),
    ("aks-private-api-server", r.AKS, _set("apiServerAccessProfile.enablePrivateCluster", False)),
    (
        "aks-no-node-public-ip",
        r.AKS,
        _set("agentPoolProfiles", [{"name": "system", "enableNodePublicIp": True}]),
    ),
    (
        "aks-inference-internal-load-balancer",
        r.K8S_EXTENSION,
        _set("configurationSettings.internalLoadBalancerProvider", DELETE),
    ),
    (
        "nsg-no-open-management-ports",
        r.NSG,
        _set(
            "securityRules",
            [
                {
                    "name": "ssh-world",
                    "direction": "Inbound",
                    "access": "Allow",
                    "sourceAddressPrefix": "*",
                    "destinationPortRanges": ["20-23"],
                }
            ],
        ),
    ),
    ("subnet-has-nsg", r.SUBNET, _set("networkSecurityGroup", DELETE)),
    ("private-endpoint-connection", r.PRIVATE_ENDPOINT, _set("privateLinkServiceConnections", [])),
    ("private-endpoint-dns", r.PRIVATE_DNS_ZONE_GROUP, _set("privateDnsZoneConfigs", [{"name": "blob"}])),
    ("private-dns-link-no-autoregistration", r.PRIVATE_DNS_LINK, _set("registrationEnabled", True)),
    ("subnet-no-default-outbound", r.SUBNET, _set("defaultOutboundAccess", DELETE)),
    (
        "aks-trusted-access-scoped",
        r.TRUSTED_ACCESS,
        _set("roles", ["Microsoft.ContainerService/managedClusters/x"]),
    ),
    ("devops-pool-not-auto-provisioned", r.DEVOPS_POOL, _set("autoProvision", True)),
    ("devops-queue-bound-to-pool", r.DEVOPS_QUEUE, _set("agentPoolId", DELETE)),
    ("devops-environment-described", r.DEVOPS_ENVIRONMENT, _set("description", "")),
    (
        "nic-no-public-ip",
        r.NIC,
        _set("ipConfigurations", [{"name": "ipconfig", "publicIPAddress": {"id": "pip"}}]),
    ),
    ("vm-ssh-key-only", r.VM, _set("osProfile.linuxConfiguration.disablePasswordAuthentication", False)),
    ("vm-ssh-key-only", r.VM, _set("osProfile.adminPassword", "hunter2")),
    (
        "role-assignment-no-privileged-role",
        r.ROLE_ASSIGNMENT,
        _set("roleDefinitionId", f"/providers/Microsoft.Authorization/roleDefinitions/{r.OWNER_ROLE}"),
    ),
    ("federated-credential-exchange", r.FEDERATED_CREDENTIAL, _set("issuer", "http://insecure.example")),
    (
        "devops-variable-group-secrets",
        r.DEVOPS_VARIABLE_GROUP,
        _set("variables", [{"name": "clientSecret", "value": "hunter2"}]),
    ),
    (
        "devops-service-connection-federated",
        r.DEVOPS_SERVICE_CONNECTION,
        _set("serviceEndpointAuthenticationScheme", "ServicePrincipal"),
    ),
    ("devops-prod-approval", r.DEVOPS_CHECK_APPROVAL, _set("requesterCanApprove", True)),
    ("devops-project-private", r.DEVOPS_PROJECT, _set("visibility", "public")),
    ("tags-required", r.VNET, _set("tags", {"environment": "prod"})),
    ("prod-stateful-protected", r.STORAGE, lambda props: None),
]


def _protected(rule: str) -> bool:
    # The protect rule is broken through the resource option, not the inputs.
    return rule != "prod-stateful-protected"


def test_the_pack_has_at_least_30_rules_each_with_remediation() -> None:
    assert len(r.RULES) >= 30
    assert all(rule.remediation and rule.description for rule in r.RULES)
    assert len(r.RULES_BY_NAME) == len(r.RULES), "rule names must be unique"


def test_every_declared_resource_type_has_a_rule() -> None:
    covered = {t for rule in r.RULES for t in rule.resource_types}
    assert set(COMPLIANT) - covered == set()


def test_every_rule_has_a_violation_case() -> None:
    assert {name for name, _, _ in VIOLATIONS} == set(r.RULES_BY_NAME)


@pytest.mark.parametrize("resource_type", sorted(COMPLIANT))
def test_a_compliant_resource_passes_every_rule(resource_type: str) -> None:
    assert r.evaluate(resource_type, COMPLIANT[resource_type], protect=True) == []


@pytest.mark.parametrize(("rule", "resource_type", "breaks"), VIOLATIONS, ids=[v[0] for v in VIOLATIONS])
def test_a_violating_resource_is_reported_by_its_rule(
    rule: str, resource_type: str, breaks: Callable[[dict[str, Any]], None]
) -> None:
    props = copy.deepcopy(COMPLIANT[resource_type])
    breaks(props)
    findings = r.evaluate(resource_type, props, protect=_protected(rule))
    assert [finding.rule for finding in findings] == [rule]
    assert findings[0].level == r.RULES_BY_NAME[rule].enforcement
    assert "Fix:" in findings[0].message


@pytest.mark.parametrize(
    ("rule", "environment", "level"),
    [
        ("storage-public-network-disabled", "dev", "advisory"),
        ("storage-public-network-disabled", "prod", "mandatory"),
        ("aks-private-api-server", "dev", "advisory"),
        ("storage-no-public-blob-access", "dev", "mandatory"),
        ("devops-service-connection-federated", "prod", "advisory"),
    ],
)
def test_dev_relaxes_network_isolation_only(rule: str, environment: r.Environment, level: str) -> None:
    assert r.RULES_BY_NAME[rule].level(environment) == level


@pytest.mark.parametrize(
    ("tags", "fallback", "expected"),
    [
        ({"environment": "dev"}, "prod", "dev"),
        ({"environment": "prod"}, "dev", "prod"),
        (None, "dev", "dev"),
        (None, "staging", "prod"),
        ({}, "", "prod"),
    ],
)
def test_environment_comes_from_the_tag_then_the_stack(
    tags: dict[str, str] | None, fallback: str, expected: str
) -> None:
    props = {} if tags is None else {"tags": tags}
    assert r.environment_of(props, fallback) == expected


@pytest.mark.parametrize(
    ("urn", "stack"),
    [
        ("urn:pulumi:dev::aml-platform::azure-native:storage:StorageAccount::st", "dev"),
        ("urn:pulumi:prod::aml-platform::a$b::c", "prod"),
        ("not-a-urn", ""),
    ],
)
def test_stack_of_urn(urn: str, stack: str) -> None:
    assert r.stack_of_urn(urn) == stack


@dataclass
class _Opts:
    protect: bool = False


@dataclass
class _Args:
    """Stand-in for pulumi_policy.ResourceValidationArgs (constructing the pack would start gRPC)."""

    resource_type: str
    props: dict[str, Any]
    urn: str
    opts: _Opts = field(default_factory=_Opts)
    name: str = ""


@pytest.mark.parametrize(
    ("stack", "level", "reported"),
    [
        ("prod", "mandatory", True),
        ("prod", "advisory", False),
        ("dev", "mandatory", False),
        ("dev", "advisory", True),
    ],
)
def test_crossguard_policies_split_a_relaxed_rule_by_environment(
    stack: str, level: r.Enforcement, reported: bool
) -> None:
    rule = r.RULES_BY_NAME["workspace-public-network-disabled"]
    props = {**COMPLIANT[r.ML_WORKSPACE], "publicNetworkAccess": "Enabled", "tags": {}}
    messages: list[str] = []
    rule.validator(level)(
        _Args(r.ML_WORKSPACE, props, f"urn:pulumi:{stack}::p::t::n"),
        lambda message, urn=None: messages.append(message),
    )
    assert bool(messages) is reported
    assert rule.policy_name(level) == (
        "workspace-public-network-disabled"
        if level == "mandatory"
        else "workspace-public-network-disabled-advisory"
    )


def test_crossguard_reads_protect_from_the_resource_options() -> None:
    rule = r.RULES_BY_NAME["prod-stateful-protected"]
    messages: list[str] = []
    report = lambda message, urn=None: messages.append(message)  # noqa: E731
    urn = "urn:pulumi:prod::p::azure-native:keyvault:Vault::kv"
    rule.validator("mandatory")(_Args(r.KEY_VAULT, COMPLIANT[r.KEY_VAULT], urn, _Opts(protect=True)), report)
    assert messages == []
    rule.validator("mandatory")(_Args(r.KEY_VAULT, COMPLIANT[r.KEY_VAULT], urn, _Opts(protect=False)), report)
    assert len(messages) == 1


def test_the_pack_entry_point_only_builds_the_pack() -> None:
    text = (Path(r.__file__).parent / "__main__.py").read_text()
    assert text.count("PolicyPack(") == 1 and "def " not in text


def test_every_rule_builds_a_crossguard_policy() -> None:
    from pulumi_policy import EnforcementLevel, ResourceValidationPolicy

    policies = [
        ResourceValidationPolicy(
            name=rule.policy_name(level),
            description=rule.description,
            validate=rule.validator(level),
            enforcement_level=EnforcementLevel.MANDATORY
            if level == "mandatory"
            else EnforcementLevel.ADVISORY,
        )
        for rule in r.RULES
        for level in rule.levels()
    ]
    names = [policy.name for policy in policies]
    assert len(names) == len(set(names)) and all(re.fullmatch(r"[a-z0-9-]+", name) for name in names)


def _stack(workspace_mode: str | None, subnet: bool) -> list[tuple[str, str, dict[str, Any]]]:
    compute = copy.deepcopy(COMPLIANT[r.ML_COMPUTE])
    if not subnet:
        del compute["properties"]["properties"]["subnet"]
    workspace = {"managedNetwork": {"isolationMode": workspace_mode}} if workspace_mode else {}
    return [(r.ML_WORKSPACE, "mlw", workspace), (r.ML_COMPUTE, "cpu-cluster", compute)]


@pytest.mark.parametrize(
    ("workspace_mode", "subnet", "violated"),
    [
        (None, True, False),
        ("AllowOnlyApprovedOutbound", False, False),
        ("Disabled", False, True),
        (None, False, True),
    ],
)
def test_compute_is_isolated_by_a_subnet_or_a_managed_network(
    workspace_mode: str | None, subnet: bool, violated: bool
) -> None:
    findings = r.evaluate_stack(_stack(workspace_mode, subnet))
    assert [f.rule for f in findings] == (["compute-network-isolated"] if violated else [])
    assert all("cpu-cluster" in f.message for f in findings)


@dataclass
class _StackArgs:
    resources: list[_Args]


@pytest.mark.parametrize(
    ("stack", "level", "reported"),
    [("prod", "mandatory", True), ("dev", "advisory", True), ("dev", "mandatory", False)],
)
def test_crossguard_stack_policy_uses_the_stack_environment(
    stack: str, level: r.Enforcement, reported: bool
) -> None:
    # Untagged resources: the environment falls back to the stack name in their URNs.
    args = _StackArgs(
        [
            _Args(
                kind,
                {k: v for k, v in props.items() if k != "tags"},
                f"urn:pulumi:{stack}::p::{kind}::{name}",
                name=name,
            )
            for kind, name, props in _stack(None, subnet=False)
        ]
    )
    messages: list[str] = []
    r.STACK_RULES[0].validator(level)(args, lambda message, urn=None: messages.append(message))
    assert bool(messages) is reported


def test_policy_pack_masks_secrets_as_the_plan_does() -> None:
    # The pack runs on its own (no stacks import), so it keeps a copy of the mask the plan writes.
    from stacks.model import SECRET_MASK

    assert r.SECRET_MASK == SECRET_MASK


def test_crossguard_stack_policy_takes_the_environment_tag_over_the_stack_name() -> None:
    resources = []
    for kind, name, props in _stack(None, subnet=False):
        tagged = {**props, "tags": {"environment": "dev"}}
        resources.append(_Args(kind, tagged, f"urn:pulumi:dev-alice::p::{kind}::{name}", name=name))
    messages: list[str] = []
    r.STACK_RULES[0].validator("advisory")(
        _StackArgs(resources), lambda message, urn=None: messages.append(message)
    )
    r.STACK_RULES[0].validator("mandatory")(
        _StackArgs(resources), lambda message, urn=None: messages.append("!")
    )
    assert messages and "!" not in messages
