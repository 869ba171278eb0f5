"""ARM resource ids as Azure forms them: each azure-native type's resource path, filled from its inputs."""

from __future__ import annotations

import re
from typing import Any, Mapping

GROUP = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}"

# The REST path of each type the program (and its siblings' components) declares, as the Azure REST API
# reference and azure-rest-api-specs spell it and `pulumi import` takes it. `{name}` is the resource's own
# name; every other placeholder is the camelCase input of that name (a parent's name, or a scope id).
# Collections are spelled out, never derived: `registries`, `userAssignedIdentities`, `publicIPAddresses`.
ARM_PATHS: Mapping[str, str] = {
    "azure-native:resources:ResourceGroup": "/subscriptions/{subscriptionId}/resourceGroups/{name}",
    "azure-native:storage:StorageAccount": GROUP + "/providers/Microsoft.Storage/storageAccounts/{name}",
    "azure-native:storage:BlobServiceProperties": GROUP
    + "/providers/Microsoft.Storage/storageAccounts/{accountName}/blobServices/default",
    "azure-native:storage:BlobContainer": GROUP
    + "/providers/Microsoft.Storage/storageAccounts/{accountName}/blobServices/default/containers/{name}",
    "azure-native:storage:FileServiceProperties": GROUP
    + "/providers/Microsoft.Storage/storageAccounts/{accountName}/fileServices/default",
    "azure-native:storage:QueueServiceProperties": GROUP
    + "/providers/Microsoft.Storage/storageAccounts/{accountName}/queueServices/default",
    "azure-native:storage:TableServiceProperties": GROUP
    + "/providers/Microsoft.Storage/storageAccounts/{accountName}/tableServices/default",
    "azure-native:containerregistry:Registry": GROUP
    + "/providers/Microsoft.ContainerRegistry/registries/{name}",
    "azure-native:keyvault:Vault": GROUP + "/providers/Microsoft.KeyVault/vaults/{name}",
    "azure-native:keyvault:Secret": GROUP + "/providers/Microsoft.KeyVault/vaults/{vaultName}/secrets/{name}",
    "azure-native:operationalinsights:Workspace": GROUP
    + "/providers/Microsoft.OperationalInsights/workspaces/{name}",
    "azure-native:applicationinsights:Component": GROUP + "/providers/Microsoft.Insights/components/{name}",
    "azure-native:monitor:DiagnosticSetting": "{resourceUri}/providers/Microsoft.Insights/diagnosticSettings/{name}",
    "azure-native:monitor:DataCollectionRule": GROUP
    + "/providers/Microsoft.Insights/dataCollectionRules/{name}",
    "azure-native:monitor:DataCollectionEndpoint": GROUP
    + "/providers/Microsoft.Insights/dataCollectionEndpoints/{name}",
    "azure-native:monitor:DataCollectionRuleAssociation": "{resourceUri}"
    "/providers/Microsoft.Insights/dataCollectionRuleAssociations/{name}",
    "azure-native:monitor:ActionGroup": GROUP + "/providers/Microsoft.Insights/actionGroups/{name}",
    "azure-native:monitor:ScheduledQueryRule": GROUP
    + "/providers/Microsoft.Insights/scheduledQueryRules/{name}",
    "azure-native:monitor:MetricAlert": GROUP + "/providers/Microsoft.Insights/metricAlerts/{name}",
    "azure-native:monitor:AzureMonitorWorkspace": GROUP + "/providers/Microsoft.Monitor/accounts/{name}",
    "azure-native:dashboard:Grafana": GROUP + "/providers/Microsoft.Dashboard/grafana/{name}",
    "azure-native:dashboard:ManagedPrivateEndpoint": GROUP
    + "/providers/Microsoft.Dashboard/grafana/{workspaceName}/managedPrivateEndpoints/{name}",
    "azure-native:applicationinsights:Workbook": GROUP + "/providers/Microsoft.Insights/workbooks/{name}",
    "azure-native:eventgrid:SystemTopic": GROUP + "/providers/Microsoft.EventGrid/systemTopics/{name}",
    "azure-native:eventgrid:SystemTopicEventSubscription": GROUP
    + "/providers/Microsoft.EventGrid/systemTopics/{systemTopicName}/eventSubscriptions/{name}",
    "azure-native:machinelearningservices:Workspace": GROUP
    + "/providers/Microsoft.MachineLearningServices/workspaces/{name}",
    "azure-native:machinelearningservices:Compute": GROUP
    + "/providers/Microsoft.MachineLearningServices/workspaces/{workspaceName}/computes/{name}",
    "azure-native:machinelearningservices:Registry": GROUP
    + "/providers/Microsoft.MachineLearningServices/registries/{name}",
    "azure-native:containerservice:ManagedCluster": GROUP
    + "/providers/Microsoft.ContainerService/managedClusters/{name}",
    "azure-native:containerservice:AgentPool": GROUP
    + "/providers/Microsoft.ContainerService/managedClusters/{resourceName}/agentPools/{name}",
    "azure-native:containerservice:TrustedAccessRoleBinding": GROUP
    + "/providers/Microsoft.ContainerService/managedClusters/{resourceName}/trustedAccessRoleBindings/{name}",
    "azure-native:kubernetesconfiguration:Extension": GROUP
    + "/providers/{clusterRp}/{clusterResourceName}/{clusterName}/providers/Microsoft.KubernetesConfiguration"
    "/extensions/{name}",
    "azure-native:network:VirtualNetwork": GROUP + "/providers/Microsoft.Network/virtualNetworks/{name}",
    "azure-native:network:Subnet": GROUP
    + "/providers/Microsoft.Network/virtualNetworks/{virtualNetworkName}/subnets/{name}",
    "azure-native:network:NetworkSecurityGroup": GROUP
    + "/providers/Microsoft.Network/networkSecurityGroups/{name}",
    "azure-native:network:SecurityRule": GROUP
    + "/providers/Microsoft.Network/networkSecurityGroups/{networkSecurityGroupName}/securityRules/{name}",
    "azure-native:network:RouteTable": GROUP + "/providers/Microsoft.Network/routeTables/{name}",
    "azure-native:network:NatGateway": GROUP + "/providers/Microsoft.Network/natGateways/{name}",
    "azure-native:network:PublicIPAddress": GROUP + "/providers/Microsoft.Network/publicIPAddresses/{name}",
    "azure-native:network:PrivateEndpoint": GROUP + "/providers/Microsoft.Network/privateEndpoints/{name}",
    "azure-native:network:PrivateDnsZoneGroup": GROUP
    + "/providers/Microsoft.Network/privateEndpoints/{privateEndpointName}/privateDnsZoneGroups/{name}",
    "azure-native:network:NetworkInterface": GROUP + "/providers/Microsoft.Network/networkInterfaces/{name}",
    "azure-native:privatedns:PrivateZone": GROUP + "/providers/Microsoft.Network/privateDnsZones/{name}",
    "azure-native:privatedns:VirtualNetworkLink": GROUP
    + "/providers/Microsoft.Network/privateDnsZones/{privateZoneName}/virtualNetworkLinks/{name}",
    "azure-native:privatedns:PrivateRecordSet": GROUP
    + "/providers/Microsoft.Network/privateDnsZones/{privateZoneName}/{recordType}/{name}",
    "azure-native:compute:VirtualMachine": GROUP + "/providers/Microsoft.Compute/virtualMachines/{name}",
    "azure-native:authorization:RoleAssignment": "{scope}/providers/Microsoft.Authorization/roleAssignments/{name}",
    "azure-native:authorization:RoleDefinition": "{scope}/providers/Microsoft.Authorization/roleDefinitions/{name}",
    "azure-native:managedidentity:UserAssignedIdentity": GROUP
    + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}",
    "azure-native:managedidentity:FederatedIdentityCredential": GROUP
    + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{resourceName}/federatedIdentityCredentials/{name}",
    "azure-native:devcenter:DevCenter": GROUP + "/providers/Microsoft.DevCenter/devcenters/{name}",
    "azure-native:devcenter:Project": GROUP + "/providers/Microsoft.DevCenter/projects/{name}",
    "azure-native:devopsinfrastructure:Pool": GROUP
    + "/providers/Microsoft.DevOpsInfrastructure/pools/{name}",
}

# Inputs that hold a resource's own name where `<type>Name` does not (after the SDK's camelCasing).
NAME_INPUTS: Mapping[str, str] = {
    "StorageAccount": "accountName",
    "VirtualMachine": "vmName",
    "FederatedIdentityCredential": "federatedIdentityCredentialResourceName",
    "ServiceEndpointAzureRM": "serviceEndpointName",
    "PublicIPAddress": "publicIpAddressName",
    "DataCollectionRuleAssociation": "associationName",
    "PrivateRecordSet": "relativeRecordSetName",
    "DiagnosticSetting": "name",
    "SystemTopicEventSubscription": "eventSubscriptionName",
}
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def physical_name(type_token: str, logical_name: str, inputs: Mapping[str, Any]) -> str:
    """The resource's Azure name from its inputs (`<type>Name`, a known alias, `resourceName`, `name`)."""
    kind = type_token.rsplit(":", 1)[-1]
    for key in (f"{kind[0].lower()}{kind[1:]}Name", NAME_INPUTS.get(kind, ""), "resourceName", "name"):
        value = inputs.get(key)
        if isinstance(value, str) and value:
            return value
    return logical_name


def arm_id(type_token: str, name: str, inputs: Mapping[str, Any], subscription_id: str) -> str:
    """The id ARM gives a `type_token` resource named `name` with these inputs (scopes, parents, group)."""
    try:
        path = ARM_PATHS[type_token]
    except KeyError:
        raise ValueError(
            f"no ARM resource path known for {type_token}: add it to stacks/arm_ids.py ARM_PATHS, spelled as "
            "in the type's `pulumi import` id (its page in the Pulumi registry)"
        ) from None
    values = {**inputs, "subscriptionId": subscription_id, "name": name}

    def fill(match: re.Match[str]) -> str:
        key = match.group(1)
        value = values.get(key)
        if not isinstance(value, str) or not value:
            raise ValueError(f"{type_token} {name!r}: its id needs the input {key!r}, which is missing")
        return value.rstrip("/") if key in ("scope", "resourceUri") else value

    return _PLACEHOLDER.sub(fill, path)
