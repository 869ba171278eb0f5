"""Mock ids are shaped exactly as ARM forms them, so a plan shows the ids a real deployment wires together.

Expected ids are written out by hand from each type's REST path in the Azure REST API reference (the path
of its PUT operation), never derived from stacks/arm_ids.py.
"""

from __future__ import annotations

import re

import pytest

from stacks.arm_ids import ARM_PATHS, arm_id, physical_name
from stacks.config import example_config
from tests.test_identities import Run, plan

SUB = "00000000-0000-0000-0000-000000000001"
RG_ID = f"/subscriptions/{SUB}/resourceGroups/rg-1"
ACCOUNT_ID = f"{RG_ID}/providers/Microsoft.Storage/storageAccounts/st1"
CLUSTER_ID = f"{RG_ID}/providers/Microsoft.ContainerService/managedClusters/aks-1"


@pytest.mark.parametrize(
    ("type_token", "name", "inputs", "expected"),
    [
        ("azure-native:resources:ResourceGroup", "rg-1", {}, RG_ID),
        (
            "azure-native:network:Subnet",
            "snet-aks",
            {"resourceGroupName": "rg-1", "virtualNetworkName": "vnet-1"},
            f"{RG_ID}/providers/Microsoft.Network/virtualNetworks/vnet-1/subnets/snet-aks",
        ),
        (
            "azure-native:containerregistry:Registry",
            "cr1",
            {"resourceGroupName": "rg-1"},
            f"{RG_ID}/providers/Microsoft.ContainerRegistry/registries/cr1",
        ),
        (
            "azure-native:managedidentity:UserAssignedIdentity",
            "id-ci",
            {"resourceGroupName": "rg-1"},
            f"{RG_ID}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-ci",
        ),
        (
            "azure-native:managedidentity:FederatedIdentityCredential",
            "github-prod",
            {"resourceGroupName": "rg-1", "resourceName": "id-ci"},
            f"{RG_ID}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-ci/federatedIdentityCredentials/github-prod",
        ),
        (
            "azure-native:authorization:RoleAssignment",
            "5f3c9a52-0000-4000-8000-000000000001",
            {"scope": ACCOUNT_ID},
            f"{ACCOUNT_ID}/providers/Microsoft.Authorization/roleAssignments/5f3c9a52-0000-4000-8000-000000000001",
        ),
        (
            "azure-native:kubernetesconfiguration:Extension",
            "azureml",
            {
                "resourceGroupName": "rg-1",
                "clusterRp": "Microsoft.ContainerService",
                "clusterResourceName": "managedClusters",
                "clusterName": "aks-1",
            },
            f"{CLUSTER_ID}/providers/Microsoft.KubernetesConfiguration/extensions/azureml",
        ),
        (
            "azure-native:monitor:DataCollectionRuleAssociation",
            "ContainerInsightsExtension",
            {"resourceUri": CLUSTER_ID},
            f"{CLUSTER_ID}/providers/Microsoft.Insights/dataCollectionRuleAssociations/ContainerInsightsExtension",
        ),
        # Monitoring types (REST reference PUT paths: Workbooks, System Topics, System Topic Event
        # Subscriptions, Managed Private Endpoints of Azure Managed Grafana).
        (
            "azure-native:applicationinsights:Workbook",
            "0b7c0f3e-0000-5000-8000-000000000001",
            {"resourceGroupName": "rg-1"},
            f"{RG_ID}/providers/Microsoft.Insights/workbooks/0b7c0f3e-0000-5000-8000-000000000001",
        ),
        (
            "azure-native:eventgrid:SystemTopic",
            "mlw-1-events",
            {"resourceGroupName": "rg-1"},
            f"{RG_ID}/providers/Microsoft.EventGrid/systemTopics/mlw-1-events",
        ),
        (
            "azure-native:eventgrid:SystemTopicEventSubscription",
            "drift",
            {"resourceGroupName": "rg-1", "systemTopicName": "mlw-1-events"},
            f"{RG_ID}/providers/Microsoft.EventGrid/systemTopics/mlw-1-events/eventSubscriptions/drift",
        ),
        (
            "azure-native:dashboard:ManagedPrivateEndpoint",
            "prometheus",
            {"resourceGroupName": "rg-1", "workspaceName": "amg-1"},
            f"{RG_ID}/providers/Microsoft.Dashboard/grafana/amg-1/managedPrivateEndpoints/prometheus",
        ),
        (
            "azure-native:monitor:DiagnosticSetting",
            "diag",
            {"resourceUri": ACCOUNT_ID},
            f"{ACCOUNT_ID}/providers/Microsoft.Insights/diagnosticSettings/diag",
        ),
        (
            "azure-native:storage:BlobServiceProperties",
            "st1",
            {"resourceGroupName": "rg-1", "accountName": "st1"},
            f"{ACCOUNT_ID}/blobServices/default",
        ),
        (
            "azure-native:keyvault:Secret",
            "devops-agent-pat",
            {"resourceGroupName": "rg-1", "vaultName": "kv-1"},
            f"{RG_ID}/providers/Microsoft.KeyVault/vaults/kv-1/secrets/devops-agent-pat",
        ),
        (
            "azure-native:machinelearningservices:Compute",
            "cpu-cluster",
            {"resourceGroupName": "rg-1", "workspaceName": "mlw-1"},
            f"{RG_ID}/providers/Microsoft.MachineLearningServices/workspaces/mlw-1/computes/cpu-cluster",
        ),
        (
            "azure-native:containerservice:TrustedAccessRoleBinding",
            "azureml-workspace",
            {"resourceGroupName": "rg-1", "resourceName": "aks-1"},
            f"{CLUSTER_ID}/trustedAccessRoleBindings/azureml-workspace",
        ),
        (
            "azure-native:network:PublicIPAddress",
            "pip-nat",
            {"resourceGroupName": "rg-1"},
            f"{RG_ID}/providers/Microsoft.Network/publicIPAddresses/pip-nat",
        ),
        (
            "azure-native:network:PrivateDnsZoneGroup",
            "default",
            {"resourceGroupName": "rg-1", "privateEndpointName": "pe-st1-blob"},
            f"{RG_ID}/providers/Microsoft.Network/privateEndpoints/pe-st1-blob/privateDnsZoneGroups/default",
        ),
        (
            "azure-native:privatedns:VirtualNetworkLink",
            "link-vnet-1",
            {"resourceGroupName": "rg-1", "privateZoneName": "privatelink.blob.core.windows.net"},
            f"{RG_ID}/providers/Microsoft.Network/privateDnsZones/privatelink.blob.core.windows.net"
            "/virtualNetworkLinks/link-vnet-1",
        ),
        (
            "azure-native:privatedns:PrivateRecordSet",
            "scoring",
            {"resourceGroupName": "rg-1", "privateZoneName": "ml.contoso.com", "recordType": "A"},
            f"{RG_ID}/providers/Microsoft.Network/privateDnsZones/ml.contoso.com/A/scoring",
        ),
    ],
)
def test_arm_id_is_the_rest_path_of_the_type(type_token: str, name: str, inputs: dict, expected: str) -> None:
    assert arm_id(type_token, name, inputs, SUB) == expected


def test_a_type_without_a_known_path_names_the_fix() -> None:
    with pytest.raises(ValueError, match=r"azure-native:network:ApplicationGateway.*ARM_PATHS"):
        arm_id("azure-native:network:ApplicationGateway", "agw", {"resourceGroupName": "rg"}, SUB)


def test_a_missing_parent_input_is_named() -> None:
    with pytest.raises(ValueError, match="'virtualNetworkName'"):
        arm_id("azure-native:network:Subnet", "snet", {"resourceGroupName": "rg"}, SUB)


@pytest.mark.parametrize(
    ("type_token", "inputs", "expected"),
    [
        ("azure-native:network:Subnet", {"subnetName": "snet-a", "resourceGroupName": "rg"}, "snet-a"),
        ("azure-native:storage:StorageAccount", {"accountName": "st1"}, "st1"),
        ("azure-native:network:PublicIPAddress", {"publicIpAddressName": "pip-1"}, "pip-1"),
        ("azure-native:monitor:DataCollectionRuleAssociation", {"associationName": "a"}, "a"),
        ("azure-native:privatedns:PrivateRecordSet", {"relativeRecordSetName": "scoring"}, "scoring"),
        ("azure-native:managedidentity:UserAssignedIdentity", {"resourceName": "id-1"}, "id-1"),
        ("azure-native:network:NatGateway", {}, "logical-name"),
    ],
)
def test_physical_name_reads_the_type_s_own_name_input(type_token: str, inputs: dict, expected: str) -> None:
    assert physical_name(type_token, "logical-name", inputs) == expected


def test_no_collection_is_a_pluralised_type_name() -> None:
    collections = {segment for path in ARM_PATHS.values() for segment in path.split("/") if segment}
    assert not {c for c in collections if re.search(r"[^aeiou]ys$", c)}  # registrys, userAssignedIdentitys


# ---- the ids in real plans -----------------------------------------------------------------------


@pytest.fixture(scope="module", params=["dev", "prod"])
def planned(request: pytest.FixtureRequest) -> Run:
    return plan(example_config(request.param))


def test_every_azure_resource_of_a_plan_has_its_arm_id(planned: Run) -> None:
    azure = [r for r in planned.recording.resources if r.custom and r.type.startswith("azure-native:")]
    assert azure and all(planned.state[r.name]["id"].startswith("/subscriptions/") for r in azure)
    ids = [planned.state[r.name]["id"] for r in azure]
    assert len(set(ids)) == len(ids)
    assert not [i for i in ids if "/registrys/" in i or "/userAssignedIdentitys/" in i]


def test_subnets_sit_under_their_virtual_network_and_nics_reference_them(planned: Run) -> None:
    vnet = planned.recording.one("azure-native:network:VirtualNetwork")
    vnet_id = planned.state[vnet.name]["id"]
    for subnet in planned.recording.of_type("azure-native:network:Subnet"):
        assert planned.state[subnet.name]["id"] == f"{vnet_id}/subnets/{subnet.inputs['subnetName']}"
    nic = planned.recording.one("azure-native:network:NetworkInterface")
    assert nic.inputs["ipConfigurations"][0]["subnet"]["id"].startswith(f"{vnet_id}/subnets/")


def test_role_assignments_sit_under_their_scope(planned: Run) -> None:
    for assignment in planned.recording.of_type("azure-native:authorization:RoleAssignment"):
        assert planned.state[assignment.name]["id"] == (
            f"{assignment.inputs['scope']}/providers/Microsoft.Authorization/roleAssignments/"
            f"{assignment.inputs['roleAssignmentName']}"
        )


def test_extensions_sit_under_their_cluster(planned: Run) -> None:
    cluster_id = planned.state["aks-cluster"]["id"]
    extension = planned.recording.one("azure-native:kubernetesconfiguration:Extension")
    assert planned.state[extension.name]["id"] == (
        f"{cluster_id}/providers/Microsoft.KubernetesConfiguration/extensions/{extension.inputs['extensionName']}"
    )
