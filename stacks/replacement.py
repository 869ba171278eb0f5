"""Which input changes replace a resource, which ones Azure refuses in place, and which resources hold data.

Two different outcomes, each entry with its source:
- REPLACES: the azure-native provider plans a replacement (delete + create). Its rule
  (pulumi-azure-native `provider/pkg/provider/diff.go`, `calculateDetailedDiff`): every URL path
  parameter (resource group, parent and resource names) and every force-new property, which comes from
  the Azure REST spec (`x-ms-mutability` with create but no update, `provider/pkg/gen/properties.go`)
  or from the provider's own list (`provider/pkg/gen/replacement.go`, `forceNewMap`).
- REFUSED: the provider sends an update and Azure refuses it, so `pulumi up` fails and nothing is
  replaced; each entry says the way out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

PATH_PARAMETER = "URL path parameter: the provider replaces on any change (pulumi-azure-native diff.go)"
FORCE_NEW_MAP = "pulumi-azure-native provider/pkg/gen/replacement.go, forceNewMap"
AKS_NETWORK = f"{FORCE_NEW_MAP} (networkProfile leaves since PR #4771)"
LOCATION = (
    "ARM: a resource cannot change region (location is x-ms-mutability read/create, which the provider "
    f"force-news; {FORCE_NEW_MAP} also lists it for ResourceGroup, StorageAccount, VirtualNetwork, "
    "ManagedCluster)"
)


@dataclass(frozen=True)
class Rule:
    """An input path whose change replaces the resource, and where that rule comes from."""

    path: str
    source: str


@dataclass(frozen=True)
class Refusal:
    """An input path Azure will not change on an existing resource, with the way out.

    `applies(old, new)` narrows the refusal to some changes (e.g. only Standard <-> Premium).
    """

    path: str
    source: str
    way_out: str
    applies: Callable[[Any, Any], bool] | None = None


def _path(*names: str) -> tuple[Rule, ...]:
    return tuple(Rule(name, PATH_PARAMETER) for name in names)


# Properties every azure-native resource replaces on (ResourceGroup's own name is resourceGroupName).
ALWAYS_REPLACE: tuple[Rule, ...] = (Rule("location", LOCATION), Rule("resourceGroupName", PATH_PARAMETER))

REPLACES: Mapping[str, tuple[Rule, ...]] = {
    "azure-native:resources:ResourceGroup": (),
    "azure-native:storage:StorageAccount": (
        *_path("accountName"),
        Rule("isHnsEnabled", FORCE_NEW_MAP),
    ),
    "azure-native:storage:BlobServiceProperties": _path("accountName", "blobServicesName"),
    "azure-native:keyvault:Vault": _path("vaultName"),
    "azure-native:containerregistry:Registry": _path("registryName"),
    "azure-native:operationalinsights:Workspace": _path("workspaceName"),
    "azure-native:applicationinsights:Component": _path("resourceName"),
    "azure-native:monitor:DiagnosticSetting": _path("name", "resourceUri"),
    "azure-native:machinelearningservices:Workspace": _path("workspaceName"),
    "azure-native:machinelearningservices:Compute": _path("computeName", "workspaceName"),
    "azure-native:machinelearningservices:Registry": _path("registryName"),
    "azure-native:containerservice:ManagedCluster": (
        *_path("resourceName"),
        *(
            Rule(name, FORCE_NEW_MAP)
            for name in (
                "diskEncryptionSetID",
                "dnsPrefix",
                "fqdnSubdomain",
                "linuxProfile",
                "nodeResourceGroup",
                "windowsProfile",
            )
        ),
        *(
            Rule(f"networkProfile.{name}", AKS_NETWORK)
            for name in (
                "serviceCidr",
                "serviceCidrs",
                "dnsServiceIP",
                "networkMode",
                "networkPlugin",
                "networkPluginMode",
                "podCidr",
                "networkDataplane",
                "networkPolicy",
                "outboundType",
            )
        ),
        # Inline pools update in place since pulumi-azure-native PR #2774; only their VM size is fixed
        # (see REFUSED), and a standalone AgentPool replaces on it (PR #3655).
    ),
    "azure-native:containerservice:AgentPool": (
        *_path("resourceName", "agentPoolName"),
        Rule("vmSize", f"{FORCE_NEW_MAP} (PR #3655)"),
        Rule("gpuInstanceProfile", f"{FORCE_NEW_MAP} (PR #3655)"),
    ),
    "azure-native:containerservice:TrustedAccessRoleBinding": _path(
        "resourceName", "trustedAccessRoleBindingName"
    ),
    "azure-native:kubernetesconfiguration:Extension": _path(
        "extensionName", "clusterName", "clusterResourceName", "clusterRp"
    ),
    "azure-native:network:VirtualNetwork": _path("virtualNetworkName"),
    "azure-native:network:Subnet": _path("subnetName", "virtualNetworkName"),
    "azure-native:network:NetworkSecurityGroup": _path("networkSecurityGroupName"),
    "azure-native:network:PrivateEndpoint": (*_path("privateEndpointName"), Rule("subnet", FORCE_NEW_MAP)),
    "azure-native:network:PrivateDnsZoneGroup": _path("privateEndpointName", "privateDnsZoneGroupName"),
    "azure-native:network:NetworkInterface": _path("networkInterfaceName"),
    "azure-native:privatedns:PrivateZone": _path("privateZoneName"),
    "azure-native:privatedns:VirtualNetworkLink": _path("privateZoneName", "virtualNetworkLinkName"),
    "azure-native:compute:VirtualMachine": _path("vmName"),
    "azure-native:authorization:RoleAssignment": (
        *_path("roleAssignmentName", "scope"),
        Rule("principalId", FORCE_NEW_MAP),
    ),
    "azure-native:managedidentity:UserAssignedIdentity": _path("resourceName"),
    "azure-native:managedidentity:FederatedIdentityCredential": _path(
        "federatedIdentityCredentialResourceName", "resourceName"
    ),
    # Egress, monitoring and alerting (their REST paths: stacks/arm_ids.py). Only the path parameters
    # are listed: no create-only body property of these types is set by the program.
    "azure-native:network:NatGateway": _path("natGatewayName"),
    "azure-native:network:PublicIPAddress": _path("publicIpAddressName"),
    "azure-native:keyvault:Secret": _path("vaultName", "secretName"),
    "azure-native:monitor:ActionGroup": _path("actionGroupName"),
    "azure-native:monitor:ScheduledQueryRule": _path("ruleName"),
    "azure-native:monitor:MetricAlert": _path("ruleName"),
    "azure-native:monitor:AzureMonitorWorkspace": _path("azureMonitorWorkspaceName"),
    "azure-native:monitor:DataCollectionEndpoint": _path("dataCollectionEndpointName"),
    "azure-native:monitor:DataCollectionRule": _path("dataCollectionRuleName"),
    "azure-native:monitor:DataCollectionRuleAssociation": _path("associationName", "resourceUri"),
    "azure-native:applicationinsights:Workbook": _path("resourceName"),
    "azure-native:dashboard:Grafana": _path("workspaceName"),
    "azure-native:dashboard:ManagedPrivateEndpoint": _path("workspaceName", "managedPrivateEndpointName"),
    "azure-native:eventgrid:SystemTopic": _path("systemTopicName"),
    "azure-native:eventgrid:SystemTopicEventSubscription": _path("systemTopicName", "eventSubscriptionName"),
}


def _tier_changes(old: Any, new: Any) -> bool:
    return str(old).split("_")[0] != str(new).split("_")[0]


def _not_v1_to_v2(old: Any, new: Any) -> bool:
    return not (old == "Storage" and new == "StorageV2")


VM_REBUILD = "revert it, or rebuild the VM: `pulumi destroy --target '<urn>'`, then `pulumi up`"
REFUSED: Mapping[str, tuple[Refusal, ...]] = {
    "azure-native:containerservice:ManagedCluster": (
        Refusal(
            "agentPoolProfiles[].vmSize",
            "Learn aks/manage-node-pools.md, Limitations: you can't change the VM size of a node pool after "
            "you create it",
            "add a pool with the new size (containerservice.AgentPool), cordon and drain the old one, then "
            "remove it from agentPoolProfiles",
        ),
        Refusal(
            "apiServerAccessProfile.enablePrivateCluster",
            "Learn aks/private-clusters.md, Limitations: no support for converting existing AKS clusters "
            "into private clusters",
            "create a new cluster (a new name) with the setting, move the workloads, delete the old one",
        ),
    ),
    "azure-native:storage:StorageAccount": (
        Refusal(
            "sku.name",
            "Learn storage/common/redundancy-migration.md: a Standard account cannot become Premium or the "
            "reverse",
            "create a new account (a new postfix) and copy the data over",
            _tier_changes,
        ),
        Refusal(
            "kind",
            "Learn storage/common/storage-account-upgrade.md: the only in-place change of kind is the "
            "one-way upgrade to StorageV2",
            "create a new account of that kind (a new postfix) and copy the data over",
            _not_v1_to_v2,
        ),
    ),
    "azure-native:machinelearningservices:Workspace": tuple(
        Refusal(
            name,
            "Azure REST, Workspace properties: 'This cannot be changed once the workspace has been created'",
            "keep it, or create a new workspace (a new postfix) and move the assets over",
        )
        for name in ("storageAccount", "keyVault")
    ),
    "azure-native:machinelearningservices:Compute": tuple(
        Refusal(
            f"properties.properties.{name}",
            "Azure REST, Compute - Update: an existing AmlCompute changes only its scale settings",
            "create a cluster under another name with the new setting, then delete the old one",
        )
        for name in ("vmSize", "vmPriority", "subnet.id")
    )
    + (
        Refusal(
            "properties.resourceId",
            "Learn how-to-troubleshoot-kubernetes-compute.md: Kubernetes compute cannot be updated in place",
            "detach the compute (delete the resource) and attach the cluster again",
        ),
    ),
    "azure-native:network:Subnet": (
        Refusal(
            "defaultOutboundAccess",
            "Azure REST, Subnet: 'can only be set at the time of subnet creation and cannot be updated for "
            "an existing subnet'",
            "create a new subnet with the setting and move the resources into it",
        ),
    ),
    "azure-native:compute:VirtualMachine": tuple(
        Refusal(
            f"osProfile.{name}",
            "Azure REST, VirtualMachine osProfile: 'This property cannot be updated after the VM is created'",
            VM_REBUILD,
        )
        for name in ("adminUsername", "computerName", "customData")
    ),
}

# Resources whose replacement or deletion loses data, secrets, images, logs or trusted identities.
STATEFUL: frozenset[str] = frozenset(
    {
        "azure-native:storage:StorageAccount",
        "azure-native:keyvault:Vault",
        "azure-native:containerregistry:Registry",
        "azure-native:operationalinsights:Workspace",
        "azure-native:applicationinsights:Component",
        "azure-native:machinelearningservices:Workspace",
        # The promoted models prod serves (their asset ids name the registry: how-to-manage-registries.md).
        "azure-native:machinelearningservices:Registry",
        "azure-native:resources:ResourceGroup",
        "azure-native:managedidentity:UserAssignedIdentity",
        # Prometheus metrics live in the Azure Monitor workspace; dashboards and users live in Grafana.
        "azure-native:monitor:AzureMonitorWorkspace",
        "azure-native:dashboard:Grafana",
    }
)


def _matches(rule_path: str, changed_path: str) -> bool:
    """Whether `changed_path` (dotted, list items as [i]) is `rule_path` or lies under it ([] = any item)."""
    pattern = re.sub(r"\[\d+\]", "[]", changed_path) if "[]" in rule_path else changed_path
    return pattern == rule_path or pattern.startswith((f"{rule_path}.", f"{rule_path}["))


def replacing_rules(resource_type: str) -> tuple[Rule, ...]:
    """The rules that make a change of `resource_type` a replacement."""
    if not resource_type.startswith("azure-native:"):
        return ()
    return ALWAYS_REPLACE + REPLACES.get(resource_type, ())


def replacing_properties(resource_type: str) -> tuple[str, ...]:
    """Dotted input paths whose change replaces a resource of `resource_type`."""
    return tuple(rule.path for rule in replacing_rules(resource_type))


def replaces(resource_type: str, changed_path: str) -> bool:
    """Whether changing `changed_path` (dotted, list items as [i]) replaces the resource."""
    return any(_matches(rule.path, changed_path) for rule in replacing_rules(resource_type))


def refusal(resource_type: str, changed_path: str, old: Any, new: Any) -> Refusal | None:
    """The refusal Azure gives this change of an existing resource, if it gives one."""
    for rule in REFUSED.get(resource_type, ()):
        if (
            _matches(rule.path, changed_path)
            and old is not None
            and (rule.applies is None or rule.applies(old, new))
        ):
            return rule
    return None


def loses_data(resource_type: str) -> bool:
    """Whether replacing or deleting a resource of this type loses state that lives only in Azure."""
    return resource_type in STATEFUL
