"""Planned stacks that obey every rule, in both isolation designs and both environments, and ways to break them.

The stacks are built the way the platform's issue describes the target designs (customer VNet with AKS
inference; managed VNet with managed online endpoints), with real azure-native input names (tests hold every
path to the SDK's schema) and ARM ids shaped as ARM forms them.
"""

from __future__ import annotations

import base64
import copy
from dataclasses import replace
from typing import Any, Callable, Iterable, Literal, Mapping, Sequence

from policy import rules as r
from policy.rules import PlannedResource
from policy.rules.azure import Role

Design = Literal["customerVnet", "managedVnet"]
SUB = "00000000-0000-0000-0000-000000000001"
TENANT = "00000000-0000-0000-0000-00000000000a"
LOCATION = "westeurope"
SCORING_HOST = "scoring.ml.contoso.internal"
DELETE = object()

_PROVIDERS = {
    r.STORAGE: ("Microsoft.Storage", "storageAccounts"),
    r.KEY_VAULT: ("Microsoft.KeyVault", "vaults"),
    r.REGISTRY: ("Microsoft.ContainerRegistry", "registries"),
    r.LOG_ANALYTICS: ("Microsoft.OperationalInsights", "workspaces"),
    r.APP_INSIGHTS: ("Microsoft.Insights", "components"),
    r.DATA_COLLECTION_RULE: ("Microsoft.Insights", "dataCollectionRules"),
    r.ML_WORKSPACE: ("Microsoft.MachineLearningServices", "workspaces"),
    r.AKS: ("Microsoft.ContainerService", "managedClusters"),
    r.VNET: ("Microsoft.Network", "virtualNetworks"),
    r.NSG: ("Microsoft.Network", "networkSecurityGroups"),
    r.NAT_GATEWAY: ("Microsoft.Network", "natGateways"),
    r.PUBLIC_IP: ("Microsoft.Network", "publicIPAddresses"),
    r.ROUTE_TABLE: ("Microsoft.Network", "routeTables"),
    r.PRIVATE_ENDPOINT: ("Microsoft.Network", "privateEndpoints"),
    r.NIC: ("Microsoft.Network", "networkInterfaces"),
    r.PRIVATE_DNS_ZONE: ("Microsoft.Network", "privateDnsZones"),
    r.VM: ("Microsoft.Compute", "virtualMachines"),
    r.USER_IDENTITY: ("Microsoft.ManagedIdentity", "userAssignedIdentities"),
}


# Extension resources scoped by an id, not a resource group.
_NO_GROUP = {r.RESOURCE_GROUP, r.ROLE_ASSIGNMENT, r.DIAGNOSTIC_SETTING, r.DATA_COLLECTION_RULE_ASSOCIATION}


class Builder:
    """Collects planned resources with URNs, ARM ids and the property dependencies of their references."""

    def __init__(self, env: str) -> None:
        self.env = env
        self.group = f"rg-taxi-001{env}"
        self.tags = {"environment": env, "project": "aml-platform", "owner": "ml-platform-team"}
        self.resources: list[PlannedResource] = []

    def add(
        self,
        type_: str,
        name: str,
        props: dict[str, Any],
        **depends: PlannedResource | Sequence[PlannedResource],
    ) -> PlannedResource:
        assert all(other.name != name for other in self.resources), f"logical name {name} is taken"
        if type_ in r.common.TAGGABLE:
            props = {**props, "tags": dict(self.tags)}
        if type_.startswith("azure-native") and type_ not in _NO_GROUP and "resourceGroupName" not in props:
            props = {**props, "resourceGroupName": self.group}
        deps = {
            key: tuple(d.urn for d in (v if isinstance(v, (list, tuple)) else [v]))
            for key, v in depends.items()
        }
        resource = PlannedResource(
            type_,
            name,
            props,
            f"urn:pulumi:{self.env}::aml-platform::{type_}::{name}",
            deps,
            tuple(u for urns in deps.values() for u in urns),
        )
        self.resources.append(resource)
        return resource

    def id(self, resource: PlannedResource) -> str:
        group = f"/subscriptions/{SUB}/resourceGroups/{self.group}"
        if resource.type == r.RESOURCE_GROUP:
            return group
        if resource.type == r.SUBNET:
            vnet = resource.props["virtualNetworkName"]
            return f"{group}/providers/Microsoft.Network/virtualNetworks/{vnet}/subnets/{resource.arm_name}"
        if resource.type == r.ML_COMPUTE:
            workspace = resource.props["workspaceName"]
            return f"{group}/providers/Microsoft.MachineLearningServices/workspaces/{workspace}/computes/{resource.arm_name}"
        namespace, collection = _PROVIDERS[resource.type]
        return f"{group}/providers/{namespace}/{collection}/{resource.arm_name}"

    def grant(
        self, name: str, role: str, principal: PlannedResource, scope: PlannedResource, **extra: Any
    ) -> None:
        self.add(
            r.ROLE_ASSIGNMENT,
            name,
            {
                "principalId": f"principal-of-{principal.name}",
                "principalType": "ServicePrincipal",
                "roleAssignmentName": f"guid-{name}",
                "roleDefinitionId": f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{role}",
                "scope": self.id(scope),
                **extra,
            },
            principalId=principal,
            scope=scope,
        )


def _nsg_rule(
    name: str, priority: int, tag: str, protocol: str, ports: list[str], access: str = "Allow"
) -> dict:
    return {
        "name": name,
        "priority": priority,
        "direction": "Outbound",
        "access": access,
        "protocol": protocol,
        "sourceAddressPrefix": "VirtualNetwork",
        "sourcePortRange": "*",
        "destinationAddressPrefix": tag,
        "destinationPortRanges": ports,
    }


DENY_INTERNET_INBOUND = {
    "name": "deny-internet-inbound",
    "priority": 4096,
    "direction": "Inbound",
    "access": "Deny",
    "protocol": "*",
    "sourceAddressPrefix": "Internet",
    "sourcePortRange": "*",
    "destinationAddressPrefix": "*",
    "destinationPortRange": "*",
}

TRAINING_NSG_RULES = [
    _nsg_rule("aml-tcp", 100, "AzureMachineLearning", "Tcp", ["443", "8787", "18881"]),
    _nsg_rule("aml-udp", 110, "AzureMachineLearning", "Udp", ["5831"]),
    _nsg_rule("batch", 120, "BatchNodeManagement.WestEurope", "*", ["443"]),
    _nsg_rule("storage", 130, "Storage.WestEurope", "Tcp", ["443"]),
    _nsg_rule("entra", 140, "AzureActiveDirectory", "Tcp", ["80", "443"]),
    _nsg_rule("arm", 150, "AzureResourceManager", "Tcp", ["443"]),
    _nsg_rule("mcr", 160, "MicrosoftContainerRegistry", "Tcp", ["443"]),
    _nsg_rule("frontdoor", 170, "AzureFrontDoor.FirstParty", "Tcp", ["443"]),
    _nsg_rule("monitor", 180, "AzureMonitor", "Tcp", ["443"]),
    _nsg_rule("vnet", 190, "VirtualNetwork", "Tcp", ["443", "445"]),
    _nsg_rule("deny-all-outbound", 4000, "*", "*", ["*"], access="Deny"),
    DENY_INTERNET_INBOUND,
]

CLOUD_INIT = """#cloud-config
runcmd:
  - |
    TOKEN=$(curl -s -H Metadata:true "http://169.254.169.254/metadata/identity/oauth2/token?resource=https://vault.azure.net&api-version=2018-02-01&client_id=$CLIENT_ID" | jq -r .access_token)
    AZP_TOKEN=$(curl -s -H "Authorization: Bearer $TOKEN" "https://kv-taxi-001.vault.azure.net/secrets/devops-pat?api-version=7.4" | jq -r .value)
    ./config.sh --unattended --auth pat --token "$AZP_TOKEN" --pool pool-taxi-001
"""
CONDITION = (
    "((!(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})) OR "
    "(@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals "
    f"{{{Role.STORAGE_BLOB_DATA_CONTRIBUTOR}, {Role.STORAGE_QUEUE_DATA_CONTRIBUTOR}, "
    f"{Role.STORAGE_TABLE_DATA_CONTRIBUTOR}, {Role.READER}}}))"
)


def _network(b: Builder, design: Design) -> dict[str, PlannedResource]:
    ip = b.add(
        r.PUBLIC_IP,
        "nat-ip",
        {
            "publicIpAddressName": "pip-nat",
            "location": LOCATION,
            "sku": {"name": "Standard"},
            "publicIPAllocationMethod": "Static",
        },
    )
    nat = b.add(
        r.NAT_GATEWAY,
        "nat",
        {
            "natGatewayName": "ng-taxi",
            "location": LOCATION,
            "sku": {"name": "Standard"},
            "publicIpAddresses": [{"id": b.id(ip)}],
        },
        publicIpAddresses=ip,
    )
    vnet = b.add(
        r.VNET,
        "vnet",
        {
            "virtualNetworkName": "vnet-taxi",
            "location": LOCATION,
            "addressSpace": {"addressPrefixes": ["10.10.0.0/16"]},
        },
    )
    made = {"vnet": vnet, "nat": nat}
    subnets = {"agents": "10.10.2.0/24", "private-endpoints": "10.10.3.0/24"}
    if design == "customerVnet":
        subnets |= {"training": "10.10.1.0/24", "aks": "10.10.16.0/20"}
    for role, prefix in subnets.items():
        rules = TRAINING_NSG_RULES if role == "training" else [DENY_INTERNET_INBOUND]
        nsg = b.add(
            r.NSG,
            f"{role}-nsg",
            {"networkSecurityGroupName": f"nsg-{role}", "location": LOCATION, "securityRules": rules},
        )
        props: dict[str, Any] = {
            "subnetName": f"snet-{role}",
            "virtualNetworkName": "vnet-taxi",
            "addressPrefix": prefix,
            "defaultOutboundAccess": False,
            "networkSecurityGroup": {"id": b.id(nsg)},
        }
        if role != "private-endpoints":
            props["natGateway"] = {"id": b.id(nat)}
        made[role] = b.add(
            r.SUBNET,
            f"{role}-subnet",
            props,
            networkSecurityGroup=nsg,
            natGateway=nat,
            virtualNetworkName=vnet,
        )
    return made


def _private_endpoint(
    b: Builder, name: str, target: PlannedResource, group: str, subnet: PlannedResource
) -> PlannedResource:
    return b.add(
        r.PRIVATE_ENDPOINT,
        name,
        {
            "privateEndpointName": f"pe-{name}",
            "location": LOCATION,
            "subnet": {"id": b.id(subnet)},
            "privateLinkServiceConnections": [
                {"name": f"pe-{name}", "privateLinkServiceId": b.id(target), "groupIds": [group]}
            ],
        },
        subnet=subnet,
        privateLinkServiceConnections=target,
    )


def _data(b: Builder) -> dict[str, PlannedResource]:
    law = b.add(
        r.LOG_ANALYTICS,
        "log-analytics",
        {
            "workspaceName": "log-taxi",
            "location": LOCATION,
            "retentionInDays": 90.0,
            "sku": {"name": "PerGB2018"},
        },
    )
    appi = b.add(
        r.APP_INSIGHTS,
        "app-insights",
        {
            "resourceName": "appi-taxi",
            "location": LOCATION,
            "kind": "web",
            "applicationType": "web",
            "workspaceResourceId": b.id(law),
        },
        workspaceResourceId=law,
    )
    storage = b.add(
        r.STORAGE,
        "storage-account",
        {
            "accountName": "sttaxi001",
            "location": LOCATION,
            "kind": "StorageV2",
            "sku": {"name": "Standard_ZRS"},
            "enableHttpsTrafficOnly": True,
            "minimumTlsVersion": "TLS1_2",
            "allowBlobPublicAccess": False,
            "allowSharedKeyAccess": False,
            "allowCrossTenantReplication": False,
            "publicNetworkAccess": "Disabled",
            "networkRuleSet": {"bypass": "AzureServices", "defaultAction": "Deny"},
        },
    )
    b.add(
        r.BLOB_SERVICE,
        "storage-blob-service",
        {
            "accountName": "sttaxi001",
            "blobServicesName": "default",
            "deleteRetentionPolicy": {"enabled": True, "days": 7.0},
            "containerDeleteRetentionPolicy": {"enabled": True, "days": 7.0},
        },
    )
    vault = b.add(
        r.KEY_VAULT,
        "key-vault",
        {
            "vaultName": "kv-taxi-001",
            "location": LOCATION,
            "properties": {
                "tenantId": TENANT,
                "sku": {"family": "A", "name": "standard"},
                "enableRbacAuthorization": True,
                "enablePurgeProtection": True,
                "enableSoftDelete": True,
                "softDeleteRetentionInDays": 90.0,
                "publicNetworkAccess": "Disabled",
            },
        },
    )
    registry = b.add(
        r.REGISTRY,
        "container-registry",
        {
            "registryName": "crtaxi001",
            "location": LOCATION,
            "sku": {"name": "Premium"},
            "adminUserEnabled": False,
            "anonymousPullEnabled": False,
            "publicNetworkAccess": "Disabled",
            "networkRuleBypassOptions": "AzureServices",
        },
    )
    b.add(
        r.DIAGNOSTIC_SETTING,
        "key-vault-diagnostics",
        {
            "name": "to-log-analytics",
            "resourceUri": b.id(vault),
            "workspaceId": b.id(law),
            "logs": [{"categoryGroup": "allLogs", "enabled": True}],
        },
        resourceUri=vault,
        workspaceId=law,
    )
    return {"law": law, "appi": appi, "storage": storage, "vault": vault, "registry": registry}


def _workspace(
    b: Builder, design: Design, data: dict[str, PlannedResource], net: dict[str, PlannedResource]
) -> PlannedResource:
    storage = data["storage"]
    managed: dict[str, Any] = {"isolationMode": "Disabled"}
    extra: dict[str, Any] = {}
    if design == "managedVnet":
        managed = {
            "isolationMode": "AllowOnlyApprovedOutbound",
            "outboundRules": {
                f"storage-{group}": {
                    "type": "PrivateEndpoint",
                    "category": "UserDefined",
                    "destination": {"serviceResourceId": b.id(storage), "subresourceTarget": group},
                }
                for group in ("queue", "table")
            }
            | {"pypi": {"type": "FQDN", "category": "UserDefined", "destination": "pypi.org"}},
        }
        extra = {"provisionNetworkNow": True}
    workspace = b.add(
        r.ML_WORKSPACE,
        "workspace",
        {
            "workspaceName": "mlw-taxi",
            "location": LOCATION,
            "kind": "Default",
            "sku": {"name": "Basic"},
            "identity": {"type": "SystemAssigned"},
            "storageAccount": b.id(storage),
            "keyVault": b.id(data["vault"]),
            "containerRegistry": b.id(data["registry"]),
            "applicationInsights": b.id(data["appi"]),
            "publicNetworkAccess": "Disabled",
            "systemDatastoresAuthMode": "identity",
            "v1LegacyMode": False,
            "imageBuildCompute": "cpu-cluster",
            "managedNetwork": managed,
            **extra,
        },
        storageAccount=storage,
        keyVault=data["vault"],
        containerRegistry=data["registry"],
        applicationInsights=data["appi"],
    )
    pe_subnet = net["private-endpoints"]
    groups = ("blob", "file", "queue", "table") if design == "customerVnet" else ("blob", "file")
    for group in groups:
        endpoint = _private_endpoint(b, f"storage-{group}", storage, group, pe_subnet)
        if group in ("blob", "file"):
            b.grant(f"workspace-reads-{group}-endpoint", Role.READER, workspace, endpoint)
    _private_endpoint(b, "key-vault-vault", data["vault"], "vault", pe_subnet)
    _private_endpoint(b, "registry", data["registry"], "registry", pe_subnet)
    workspace_endpoint = _private_endpoint(b, "workspace-endpoint", workspace, "amlworkspace", pe_subnet)
    b.add(
        r.PRIVATE_DNS_ZONE_GROUP,
        "workspace-endpoint-dns",
        {
            "privateDnsZoneGroupName": "default",
            "privateEndpointName": "pe-workspace-endpoint",
            "privateDnsZoneConfigs": [
                {"name": "api", "privateDnsZoneId": f"/subscriptions/{SUB}/x/privatelink.api.azureml.ms"}
            ],
        },
        privateEndpointName=workspace_endpoint,
    )
    return workspace


def _compute(b: Builder, design: Design, workspace: PlannedResource, data: dict, net: dict) -> None:
    identity = b.add(r.USER_IDENTITY, "compute-identity", {"resourceName": "id-cpu", "location": LOCATION})
    cluster: dict[str, Any] = {
        "enableNodePublicIp": False,
        "remoteLoginPortPublicAccess": "Disabled",
        "osType": "Linux",
        "vmSize": "Standard_DS3_v2",
        "scaleSettings": {"maxNodeCount": 4.0, "minNodeCount": 0.0},
    }
    if design == "customerVnet":
        cluster["subnet"] = {"id": b.id(net["training"])}
    b.add(
        r.ML_COMPUTE,
        "compute-cluster",
        {
            "computeName": "cpu-cluster",
            "workspaceName": "mlw-taxi",
            "location": LOCATION,
            "identity": {"type": "UserAssigned", "userAssignedIdentities": [b.id(identity)]},
            "properties": {"computeType": "AmlCompute", "disableLocalAuth": True, "properties": cluster},
        },
        identity=identity,
        workspaceName=workspace,
        properties=[net["training"]] if design == "customerVnet" else [],
    )
    for role, name in (
        (Role.STORAGE_BLOB_DATA_CONTRIBUTOR, "blob"),
        (Role.STORAGE_TABLE_DATA_CONTRIBUTOR, "table"),
        (Role.STORAGE_QUEUE_DATA_CONTRIBUTOR, "queue"),
    ):
        b.grant(f"compute-storage-{name}", role, identity, data["storage"])


def _ci(b: Builder, data: dict, group: PlannedResource) -> PlannedResource:
    identity = b.add(
        r.USER_IDENTITY, "service-connection-identity", {"resourceName": "id-sc", "location": LOCATION}
    )
    b.add(
        r.DEVOPS_SERVICE_CONNECTION,
        "service-connection",
        {
            "serviceEndpointName": "sc-azure-taxi",
            "projectId": "project-guid",
            "serviceEndpointAuthenticationScheme": "WorkloadIdentityFederation",
            "azurermSpnTenantid": TENANT,
            "azurermSubscriptionId": SUB,
            "azurermSubscriptionName": SUB,
            "credentials": {"serviceprincipalid": "client-of-id-sc"},
        },
        credentials=identity,
    )
    b.add(
        r.FEDERATED_CREDENTIAL,
        "service-connection-federated-credential",
        {
            "federatedIdentityCredentialResourceName": "azure-devops",
            "resourceName": "id-sc",
            "issuer": "https://vstoken.dev.azure.com/org-guid",
            "subject": "sc://contoso/mlops/sc-azure-taxi",
            "audiences": ["api://AzureADTokenExchange"],
        },
        resourceName=identity,
    )
    b.grant("ci-contributor", Role.CONTRIBUTOR, identity, group)
    b.grant("ci-storage-blob", Role.STORAGE_BLOB_DATA_CONTRIBUTOR, identity, data["storage"])
    b.grant(
        "ci-role-administrator",
        Role.RBAC_ADMINISTRATOR,
        identity,
        group,
        condition=CONDITION,
        conditionVersion="2.0",
    )
    return identity


def _aks(b: Builder, workspace: PlannedResource, data: dict, net: dict) -> None:
    prod = b.env == "prod"
    cluster = b.add(
        r.AKS,
        "aks-cluster",
        {
            "resourceName": "aks-taxi",
            "location": LOCATION,
            "dnsPrefix": "aks-taxi",
            "identity": {"type": "SystemAssigned"},
            "aadProfile": {"managed": True, "enableAzureRBAC": True},
            "apiServerAccessProfile": {"enablePrivateCluster": True, "enablePrivateClusterPublicFQDN": False},
            "networkProfile": {
                "networkPlugin": "azure",
                "networkPolicy": "azure",
                "outboundType": "userAssignedNATGateway",
                "loadBalancerSku": "standard",
            },
            "agentPoolProfiles": [
                {
                    "name": "system",
                    "mode": "System",
                    "count": 3.0 if prod else 1.0,
                    "vmSize": "Standard_D4s_v5",
                    "osType": "Linux",
                    "type": "VirtualMachineScaleSets",
                    "enableNodePublicIP": False,
                    "vnetSubnetID": b.id(net["aks"]),
                }
            ],
            "addonProfiles": {
                "omsagent": {
                    "enabled": True,
                    "config": {"logAnalyticsWorkspaceResourceID": b.id(data["law"]), "useAADAuth": "true"},
                }
            },
        },
        agentPoolProfiles=net["aks"],
        addonProfiles=data["law"],
    )
    dcr = b.add(
        r.DATA_COLLECTION_RULE,
        "container-insights-rule",
        {
            "dataCollectionRuleName": "dcr-ci-taxi",
            "location": LOCATION,
            "dataSources": {
                "extensions": [
                    {
                        "name": "ContainerInsightsExtension",
                        "extensionName": "ContainerInsights",
                        "streams": ["Microsoft-ContainerInsights-Group-Default"],
                    }
                ]
            },
            "destinations": {
                "logAnalytics": [{"name": "ciworkspace", "workspaceResourceId": b.id(data["law"])}]
            },
            "dataFlows": [
                {"streams": ["Microsoft-ContainerInsights-Group-Default"], "destinations": ["ciworkspace"]}
            ],
        },
        destinations=data["law"],
    )
    b.add(
        r.DATA_COLLECTION_RULE_ASSOCIATION,
        "container-insights-association",
        {
            "associationName": "ContainerInsightsExtension",
            "resourceUri": b.id(cluster),
            "dataCollectionRuleId": b.id(dcr),
        },
        resourceUri=cluster,
        dataCollectionRuleId=dcr,
    )
    settings = {
        "enableInference": "True",
        "enableTraining": "False",
        "inferenceRouterServiceType": "loadBalancer",
        "internalLoadBalancerProvider": "azure",
        "scoringFe.serviceType.internalLoadBalancer": "true",
        "inferenceRouterHA": "True" if prod else "False",
        "allowInsecureConnections": "False" if prod else "True",
        "cluster_name": b.id(cluster),
        "clusterId": b.id(cluster),
        "location": LOCATION,
        "jobSchedulerLocation": LOCATION,
        "relayserver.enabled": "false",
        "servicebus.enabled": "false",
        "nginxIngress.enabled": "true",
    }
    extension: dict[str, Any] = {
        "extensionName": "azureml",
        "clusterName": "aks-taxi",
        "clusterResourceName": "managedClusters",
        "clusterRp": "Microsoft.ContainerService",
        "extensionType": "Microsoft.AzureML.Kubernetes",
        "releaseTrain": "stable",
        "autoUpgradeMinorVersion": True,
        "identity": {"type": "SystemAssigned"},
        "scope": {"cluster": {"releaseNamespace": "azureml"}},
        "configurationSettings": settings,
    }
    if prod:
        settings["sslCname"] = SCORING_HOST
        extension["configurationProtectedSettings"] = {
            "scoringFe.sslCert": "[secret]",
            "scoringFe.sslKey": "[secret]",
        }
        _scoring_dns(b, net["vnet"])
    b.add(r.K8S_EXTENSION, "azureml-extension", extension, clusterName=cluster)
    b.add(
        r.ML_COMPUTE,
        "aks-compute",
        {
            "computeName": "aks-inference",
            "workspaceName": "mlw-taxi",
            "location": LOCATION,
            "identity": {"type": "SystemAssigned"},
            "properties": {
                "computeType": "Kubernetes",
                "resourceId": b.id(cluster),
                "properties": {"namespace": "azureml"},
            },
        },
        properties=cluster,
        workspaceName=workspace,
    )


def _scoring_dns(b: Builder, vnet: PlannedResource) -> None:
    zone = SCORING_HOST.split(".", 1)[1]
    b.add(r.PRIVATE_DNS_ZONE, "scoring-zone", {"privateZoneName": zone, "location": "global"})
    b.add(
        r.PRIVATE_DNS_LINK,
        "scoring-zone-link",
        {
            "privateZoneName": zone,
            "virtualNetworkLinkName": "link-vnet",
            "location": "global",
            "registrationEnabled": False,
            "virtualNetwork": {"id": b.id(vnet)},
        },
        virtualNetwork=vnet,
    )
    b.add(
        r.PRIVATE_DNS_RECORD,
        "scoring-record",
        {
            "privateZoneName": zone,
            "relativeRecordSetName": SCORING_HOST.split(".", 1)[0],
            "recordType": "A",
            "ttl": 300.0,
            "aRecords": [{"ipv4Address": "10.10.16.100"}],
        },
    )


def _agents(b: Builder, net: dict) -> None:
    identity = b.add(r.USER_IDENTITY, "agent-vm-identity", {"resourceName": "id-agent", "location": LOCATION})
    nic = b.add(
        r.NIC,
        "agent-vm-nic",
        {
            "networkInterfaceName": "nic-agent",
            "location": LOCATION,
            "ipConfigurations": [
                {
                    "name": "primary",
                    "privateIPAllocationMethod": "Dynamic",
                    "subnet": {"id": b.id(net["agents"])},
                }
            ],
        },
        ipConfigurations=net["agents"],
    )
    b.add(
        r.VM,
        "agent-vm",
        {
            "vmName": "vm-agent",
            "location": LOCATION,
            "hardwareProfile": {"vmSize": "Standard_B2s"},
            "identity": {"type": "UserAssigned", "userAssignedIdentities": [b.id(identity)]},
            "networkProfile": {"networkInterfaces": [{"id": b.id(nic), "primary": True}]},
            "osProfile": {
                "computerName": "vm-agent",
                "adminUsername": "azureuser",
                "customData": base64.b64encode(CLOUD_INIT.encode()).decode(),
                "linuxConfiguration": {
                    "disablePasswordAuthentication": True,
                    "ssh": {
                        "publicKeys": [
                            {"path": "/home/azureuser/.ssh/authorized_keys", "keyData": "ssh-ed25519 AAAA"}
                        ]
                    },
                },
            },
        },
        identity=identity,
        networkProfile=nic,
    )


def _devops(b: Builder) -> None:
    pool = b.add(
        r.DEVOPS_POOL, "devops-pool", {"name": "pool-taxi", "autoProvision": False, "poolType": "automation"}
    )
    b.add(
        r.DEVOPS_QUEUE,
        "devops-queue",
        {"projectId": "project-guid", "agentPoolId": "pool-id"},
        agentPoolId=pool,
    )
    environment = b.add(
        r.DEVOPS_ENVIRONMENT,
        "devops-environment",
        {"projectId": "project-guid", "name": b.env, "description": f"Deployments of the {b.env} platform"},
    )
    b.add(
        r.DEVOPS_VARIABLE_GROUP,
        "variable-group",
        {
            "projectId": "project-guid",
            "name": "vg-taxi",
            "variables": [
                {"name": "workspaceName", "value": "mlw-taxi"},
                {"name": "devopsPat", "secretValue": "[secret]", "isSecret": True},
            ],
        },
    )
    if b.env == "prod":
        b.add(
            r.DEVOPS_CHECK_APPROVAL,
            "prod-approval",
            {
                "projectId": "project-guid",
                "targetResourceId": "environment-id",
                "targetResourceType": "environment",
                "approvers": ["4f9c2b1e-7d3a-4e8b-9c5f-1a2b3c4d5e6f"],
                "requesterCanApprove": False,
            },
            targetResourceId=environment,
        )


def build(design: Design, env: str = "prod") -> list[PlannedResource]:
    """A complete planned stack of the design that obeys every rule."""
    b = Builder(env)
    group = b.add(r.RESOURCE_GROUP, "resource-group", {"resourceGroupName": b.group, "location": LOCATION})
    net = _network(b, design)
    data = _data(b)
    workspace = _workspace(b, design, data, net)
    _compute(b, design, workspace, data, net)
    _ci(b, data, group)
    if design == "customerVnet":
        _aks(b, workspace, data, net)
    _agents(b, net)
    _devops(b)
    return b.resources


DESIGNS: tuple[Design, ...] = ("customerVnet", "managedVnet")
ENVIRONMENTS = ("dev", "prod")
MATRIX = [(design, env) for design in DESIGNS for env in ENVIRONMENTS]

# Resources no design plans that still need a compliant form (for the resource rules of their type).
EXTRA: dict[str, dict[str, Any]] = {
    r.TRUSTED_ACCESS: {
        "resourceName": "aks-taxi",
        "resourceGroupName": "rg-taxi-001prod",
        "trustedAccessRoleBindingName": "azureml",
        "roles": ["Microsoft.MachineLearningServices/workspaces/mlworkload"],
        "sourceResourceId": f"/subscriptions/{SUB}/resourceGroups/rg-taxi-001prod/providers/Microsoft.MachineLearningServices/workspaces/mlw-taxi",
    },
    r.DEVOPS_PROJECT: {"name": "mlops", "visibility": "private"},
}


def compliant() -> dict[str, dict[str, Any]]:
    """One compliant props mapping per resource type (the prod customer-VNet stack's first of each)."""
    found: dict[str, dict[str, Any]] = {}
    for resource in build("customerVnet", "prod"):
        found.setdefault(resource.type, copy.deepcopy(dict(resource.props)))
    return {**found, **copy.deepcopy(EXTRA)}


def set_path(props: dict[str, Any], path: str, value: Any) -> None:
    """Set (or with DELETE remove) the value at a dotted path, creating objects on the way."""
    *parents, leaf = path.split(".")
    target = props
    for key in parents:
        target = target.setdefault(key, {})
    if value is DELETE:
        target.pop(leaf, None)
    else:
        target[leaf] = value


def with_props(props: Mapping[str, Any], **paths: Any) -> dict[str, Any]:
    """A deep copy of props with dotted paths (`__` for `.`) set; DELETE removes."""
    copied = copy.deepcopy(dict(props))
    for key, value in paths.items():
        set_path(copied, key.replace("__", "."), value)
    return copied


Edit = Callable[[list[PlannedResource]], list[PlannedResource]]


def edit(name: str, path: str, value: Any) -> Edit:
    """An edit of one planned resource (by logical name): the value at a dotted path."""

    def apply(resources: list[PlannedResource]) -> list[PlannedResource]:
        found = [res for res in resources if res.name == name]
        assert found, f"no planned resource {name}"
        props = copy.deepcopy(dict(found[0].props))
        set_path(props, path, value)
        return [replace(res, props=props) if res is found[0] else res for res in resources]

    return apply


def drop(*names: str) -> Edit:
    def apply(resources: list[PlannedResource]) -> list[PlannedResource]:
        assert all(any(res.name == n for res in resources) for n in names), names
        return [res for res in resources if res.name not in names]

    return apply


def chain(*edits: Edit) -> Edit:
    def apply(resources: list[PlannedResource]) -> list[PlannedResource]:
        for each in edits:
            resources = each(resources)
        return resources

    return apply


def adding(type_: str, name: str, env_props: Callable[[Builder], dict[str, Any]], **depends: str) -> Edit:
    """An edit that adds a resource (props built with the stack's builder; dependencies by logical name)."""

    def apply(resources: list[PlannedResource]) -> list[PlannedResource]:
        env = next(res for res in resources if res.type == r.RESOURCE_GROUP).urn.split(":")[2]
        b = Builder(env)
        b.resources = list(resources)
        deps = {key: next(res for res in resources if res.name == value) for key, value in depends.items()}
        b.add(type_, name, env_props(b), **deps)
        return b.resources

    return apply


def storage_id(env: str = "prod") -> str:
    """The ARM id of the fixtures' storage account."""
    return f"/subscriptions/{SUB}/resourceGroups/rg-taxi-001{env}/providers/Microsoft.Storage/storageAccounts/sttaxi001"


def stack_findings(resources: Iterable[PlannedResource], env: str) -> list[r.Finding]:
    """Resource and stack rule findings of a planned stack, as `stacks check` computes them."""
    resources = list(resources)
    findings = [
        finding
        for res in resources
        for finding in r.evaluate(res.type, res.props, protect=True, stack_environment=env)
    ]
    return findings + r.evaluate_stack(resources, env)


ResourceBreak = Callable[[dict[str, Any]], None]


def breaking(**paths: Any) -> ResourceBreak:
    """A break of one resource's props: dotted paths (`__` for `.`) set, DELETE removes."""

    def apply(props: dict[str, Any]) -> None:
        for key, value in paths.items():
            set_path(props, key.replace("__", "."), value)

    return apply


def resource_findings(
    resource_type: str, breaks: ResourceBreak, env: str, protect: bool = True
) -> list[r.Finding]:
    """The findings of the compliant resource of a type after `breaks`, judged in `env`."""
    props = compliant()[resource_type]
    if isinstance(props.get("tags"), dict):
        props["tags"]["environment"] = env
    breaks(props)
    return r.evaluate(resource_type, props, protect=protect, stack_environment=env)


def assert_resource_case(rule: str, resource_type: str, breaks: ResourceBreak, env: str) -> None:
    """The broken resource is reported by exactly that rule, at the rule's level in `env`, with its fix."""
    findings = resource_findings(resource_type, breaks, env, protect=rule != "prod-stateful-protected")
    assert [f.rule for f in findings] == [rule], [f.message for f in findings]
    assert findings[0].level == r.RULES_BY_NAME[rule].level(env)  # type: ignore[arg-type]
    assert "Fix:" in findings[0].message


def assert_stack_case(
    rule: str, design: Design, env: str, change: Edit, also: Iterable[str] = ()
) -> list[r.Finding]:
    """The changed stack breaks that rule (and no other but `also`), at its level in `env`, naming a resource."""
    findings = stack_findings(change(build(design, env)), env)
    assert {f.rule for f in findings} == {rule, *also}, [(f.rule, f.message) for f in findings]
    assert all(f.level == r.ALL_RULES[f.rule].level(env) for f in findings)  # type: ignore[arg-type]
    assert all("Fix:" in f.message and f.resource for f in findings if f.rule in r.STACK_RULES_BY_NAME)
    return findings


def granting(name: str, role: str, principal: str, scope: str, **extra: Any) -> Edit:
    """An edit that adds a role assignment of `role` to the identity of `principal` on `scope` (logical names)."""

    def apply(resources: list[PlannedResource]) -> list[PlannedResource]:
        env = next(res for res in resources if res.type == r.RESOURCE_GROUP).urn.split(":")[2]
        b = Builder(env)
        b.resources = list(resources)
        by_name = {res.name: res for res in resources}
        b.grant(name, role, by_name[principal], by_name[scope], **extra)
        return b.resources

    return apply
