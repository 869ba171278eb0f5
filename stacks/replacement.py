"""Which input changes make Azure replace a resource (delete + create), and which resources hold data."""

from __future__ import annotations

from typing import Mapping

# Properties every azure-native resource replaces on: the provider builds the ARM resource id from the
# URL path parameters (resource group, parent and resource names) and marks `location` force-new, so a
# change of any of them is a new resource in ARM (azure-native docs, "Resource names and replacement").
ALWAYS_REPLACE = ("location", "resourceGroupName")

# Create-only properties per resource type: name path parameter first, then body properties that ARM
# refuses to update. Source per entry in the trailing comment (Microsoft Learn REST/feature docs).
CREATE_ONLY: Mapping[str, tuple[str, ...]] = {
    "azure-native:resources:ResourceGroup": ("resourceGroupName",),  # path parameter
    "azure-native:storage:StorageAccount": (
        "accountName",  # path parameter
        "isHnsEnabled",  # hierarchical namespace: set at creation (the Gen2 upgrade is one-way, offline)
        "sku.name",  # Premium <-> Standard is a new account ("Change how a storage account is replicated")
        "kind",  # only StorageV1 -> StorageV2 upgrades in place; other kinds need a new account
    ),
    "azure-native:storage:BlobServiceProperties": ("accountName", "blobServicesName"),  # path parameters
    "azure-native:keyvault:Vault": (
        "vaultName",  # path parameter
        "properties.tenantId",  # a vault is bound to its tenant; moving tenants means a new vault
    ),
    "azure-native:containerregistry:Registry": ("registryName",),  # path parameter
    "azure-native:operationalinsights:Workspace": ("workspaceName",),  # path parameter
    "azure-native:applicationinsights:Component": (
        "resourceName",
        "kind",
    ),  # path parameter; kind is create-only
    "azure-native:monitor:DiagnosticSetting": ("name", "resourceUri"),  # path parameters
    "azure-native:machinelearningservices:Workspace": (
        "workspaceName",  # path parameter
        "storageAccount",  # "associated resources cannot be changed after creation" (AML workspace docs)
        "keyVault",  # idem
        "hbiWorkspace",  # high business impact flag is set at creation only
        "kind",  # Default / Hub / Project are different products
    ),
    "azure-native:machinelearningservices:Compute": (
        "computeName",
        "workspaceName",  # path parameters
        "properties.computeType",  # a compute target cannot change kind
        "properties.properties.vmSize",  # AmlCompute: VM size is fixed (`az ml compute update` lacks it)
        "properties.properties.subnet.id",  # AmlCompute: VNET placement is fixed at creation
        "properties.resourceId",  # Kubernetes compute: attached cluster cannot change
    ),
    "azure-native:containerservice:ManagedCluster": (
        "resourceName",  # path parameter
        "dnsPrefix",  # AKS: cannot be changed after creation
        "networkProfile.networkPlugin",  # AKS networking is fixed at creation (except overlay migration)
        "networkProfile.serviceCidr",  # idem
        "networkProfile.dnsServiceIP",  # idem
        "apiServerAccessProfile.enablePrivateCluster",  # cannot be toggled on an existing cluster
        "nodeResourceGroup",  # fixed at creation
        "agentPoolProfiles",  # pools inside the cluster resource cannot be updated through it (DESIGN.md §4)
    ),
    "azure-native:containerservice:TrustedAccessRoleBinding": (
        "resourceName",
        "trustedAccessRoleBindingName",
    ),
    "azure-native:kubernetesconfiguration:Extension": ("extensionName", "clusterName", "extensionType"),
    "azure-native:network:VirtualNetwork": ("virtualNetworkName",),  # path parameter
    "azure-native:network:Subnet": ("subnetName", "virtualNetworkName"),  # path parameters
    "azure-native:network:NetworkSecurityGroup": ("networkSecurityGroupName",),  # path parameter
    "azure-native:network:PrivateEndpoint": (
        "privateEndpointName",  # path parameter
        "subnet.id",  # a private endpoint's subnet is fixed (Private Link docs)
        "privateLinkServiceConnections",  # target and group ids are fixed; change means a new endpoint
    ),
    "azure-native:network:NetworkInterface": ("networkInterfaceName",),  # path parameter
    "azure-native:compute:VirtualMachine": (
        "vmName",  # path parameter
        "osProfile.adminUsername",  # osProfile is create-only (Compute REST reference)
        "osProfile.computerName",  # idem
        "osProfile.customData",  # cloud-init runs once; ARM rejects changes
        "storageProfile.imageReference",  # a different image is a new OS disk
    ),
    "azure-native:authorization:RoleAssignment": (
        "roleAssignmentName",
        "scope",  # path parameters
        "principalId",  # role assignments cannot be updated (REST: PUT on an existing one fails with 409)
        "roleDefinitionId",  # idem
    ),
    "azure-native:managedidentity:UserAssignedIdentity": ("resourceName",),  # path parameter
    "azure-native:managedidentity:FederatedIdentityCredential": (
        "federatedIdentityCredentialResourceName",
        "resourceName",  # path parameters
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
        "azure-native:resources:ResourceGroup",
        "azure-native:managedidentity:UserAssignedIdentity",
    }
)


def replacing_properties(resource_type: str) -> tuple[str, ...]:
    """Dotted input paths whose change replaces a resource of `resource_type`."""
    if not resource_type.startswith("azure-native:"):
        return ()
    return ALWAYS_REPLACE + CREATE_ONLY.get(resource_type, ())


def replaces(resource_type: str, changed_path: str) -> bool:
    """Whether changing `changed_path` (dotted, list items as [i]) replaces the resource."""
    for path in replacing_properties(resource_type):
        if changed_path == path or changed_path.startswith((f"{path}.", f"{path}[")):
            return True
    return False


def loses_data(resource_type: str) -> bool:
    """Whether replacing or deleting a resource of this type loses state that lives only in Azure."""
    return resource_type in STATEFUL
