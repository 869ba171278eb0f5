"""Azure constants the program relies on, each held against a literal copied from Microsoft's own page.

Never compare a constant with itself: the expected values below are typed from the page named in the
comment above each block, so a wrong zone name, setting name, service tag or port in the code fails here.
"""

from __future__ import annotations

import ipaddress

import pytest

from components import aks as aks_component
from components.common import BuiltInRole
from components.nsg_rules import aml_compute_outbound_rules
from components.private_endpoint import zones_for
from components.workspace import TRAINING_PACKAGE_FEEDS
from stacks.designs import BATCH_STORAGE_RULES, STORAGE_GROUPS_ALL, design_plan

# ==== infra-identity: role definition ids and private DNS zones ====================================

# ---- role definition ids -------------------------------------------------------------------------
# Microsoft Learn, "Azure built-in roles" (MicrosoftDocs/azure-docs,
# articles/role-based-access-control/built-in-roles.md), column "ID" of each role's row.


@pytest.mark.parametrize(
    ("constant", "role_name", "page_id"),
    [
        ("CONTRIBUTOR", "Contributor", "b24988ac-6180-42a0-ab88-20f7382dd24c"),
        ("READER", "Reader", "acdd72a7-3385-48ef-bd42-f606fba81ae7"),
        (
            "ROLE_BASED_ACCESS_CONTROL_ADMINISTRATOR",
            "Role Based Access Control Administrator",
            "f58310d9-a9f6-439a-9e8d-f62e7b41a168",
        ),
        (
            "STORAGE_BLOB_DATA_CONTRIBUTOR",
            "Storage Blob Data Contributor",
            "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
        ),
        (
            "STORAGE_FILE_DATA_PRIVILEGED_CONTRIBUTOR",
            "Storage File Data Privileged Contributor",
            "69566ab7-960f-475b-8e7c-b3118f30c6bd",
        ),
        (
            "STORAGE_QUEUE_DATA_CONTRIBUTOR",
            "Storage Queue Data Contributor",
            "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
        ),
        (
            "STORAGE_TABLE_DATA_CONTRIBUTOR",
            "Storage Table Data Contributor",
            "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
        ),
        ("KEY_VAULT_SECRETS_USER", "Key Vault Secrets User", "4633458b-17de-408a-b874-0445c86b69e6"),
        ("ACR_PULL", "AcrPull", "7f951dda-4ed3-4680-a7ca-43fe172d538d"),
        ("AZUREML_DATA_SCIENTIST", "AzureML Data Scientist", "f6c7c914-8db3-469d-8ca1-694a8f32e121"),
        ("NETWORK_CONTRIBUTOR", "Network Contributor", "4d97b98b-1d4f-4787-a291-c67834d212e7"),
        ("AKS_RBAC_ADMIN", "Azure Kubernetes Service RBAC Admin", "3498e952-d568-435e-9b2c-8d77e338d7f7"),
        ("MONITORING_DATA_READER", "Monitoring Data Reader", "b0d8363b-8ddd-447d-831f-62ca05bff136"),
        ("MONITORING_READER", "Monitoring Reader", "43d0d8ad-25c7-4714-9337-8ba259a9fe05"),
        ("GRAFANA_ADMIN", "Grafana Admin", "22926164-76b3-42b3-bc55-97df8dab3e41"),
        # The row "AzureML Registry User | Can perform all actions on Machine Learning Services Registry
        # assets as well as get Registry resources." (how-to-registry-network-isolation.md names the role).
        ("AZUREML_REGISTRY_USER", "AzureML Registry User", "1823dd4f-9b8c-4ab6-ab4e-7397a3684615"),
    ],
)
def test_built_in_role_ids_match_the_built_in_roles_page(constant: str, role_name: str, page_id: str) -> None:
    assert getattr(BuiltInRole, constant) == page_id, f"{role_name}: the built-in roles page says {page_id}"


def test_every_role_the_program_names_is_checked_against_the_page() -> None:
    checked = {
        "CONTRIBUTOR",
        "READER",
        "ROLE_BASED_ACCESS_CONTROL_ADMINISTRATOR",
        "STORAGE_BLOB_DATA_CONTRIBUTOR",
        "STORAGE_FILE_DATA_PRIVILEGED_CONTRIBUTOR",
        "STORAGE_QUEUE_DATA_CONTRIBUTOR",
        "STORAGE_TABLE_DATA_CONTRIBUTOR",
        "KEY_VAULT_SECRETS_USER",
        "ACR_PULL",
        "AZUREML_DATA_SCIENTIST",
        "NETWORK_CONTRIBUTOR",
        "AKS_RBAC_ADMIN",
        "MONITORING_DATA_READER",
        "MONITORING_READER",
        "GRAFANA_ADMIN",
        "AZUREML_REGISTRY_USER",
    }
    named = {name for name in vars(BuiltInRole) if name.isupper()}
    assert named == checked, "a new BuiltInRole constant needs its row in the table above"


# ---- private DNS zones of private endpoint sub-resources -------------------------------------------
# Microsoft Learn, "Azure Private Endpoint DNS configuration" / "private DNS zone values" (MicrosoftDocs/azure-docs,
# articles/private-link/private-endpoint-dns.md), table "Azure services DNS zone configuration", columns
# "Subresource" and "Private DNS zone name" for Storage (blob, file), Key Vault (vault), Container Registry (registry) and
# Azure Machine Learning (amlworkspace: both zones).


@pytest.mark.parametrize(
    ("group_id", "page_zones"),
    [
        ("blob", ("privatelink.blob.core.windows.net",)),
        ("file", ("privatelink.file.core.windows.net",)),
        ("vault", ("privatelink.vaultcore.azure.net",)),
        ("registry", ("privatelink.azurecr.io",)),
        ("amlworkspace", ("privatelink.api.azureml.ms", "privatelink.notebooks.azure.net")),
    ],
)
def test_private_dns_zones_match_the_dns_zone_values_page(group_id: str, page_zones: tuple[str, ...]) -> None:
    assert zones_for(group_id) == page_zones


# ==== infra-network: isolation designs, NSG rules, private endpoints, the Azure ML extension =========


# ---- private DNS zones of the storage sub-resources batch needs --------------------------------------
# Microsoft Learn, "Azure Private Endpoint DNS configuration" (MicrosoftDocs/azure-docs,
# articles/private-link/private-endpoint-dns.md), table "Azure services DNS zone configuration":
# "Storage account (Microsoft.Storage/storageAccounts) / Queue (queue, queue_secondary) |
#  privatelink.queue.core.windows.net" and "... / Table (table, table_secondary) | privatelink.table.core.windows.net".


@pytest.mark.parametrize(
    ("group_id", "page_zone"),
    [("queue", "privatelink.queue.core.windows.net"), ("table", "privatelink.table.core.windows.net")],
)
def test_queue_and_table_zones_match_the_dns_zone_values_page(group_id: str, page_zone: str) -> None:
    assert zones_for(group_id) == (page_zone,)


def test_storage_sub_resources_are_the_group_ids_of_that_page() -> None:
    # Same table, subresource column: blob, file, queue, table (batch needs all four: how-to-secure-batch-endpoint.md).
    assert set(STORAGE_GROUPS_ALL) == {"blob", "file", "queue", "table"}


# ---- compute cluster without public IP: outbound service tags and ports --------------------------------
# Microsoft Learn, "Secure an Azure Machine Learning training environment with virtual networks"
# (articles/machine-learning/how-to-secure-training-vnet.md), "Compute instance/cluster or serverless compute
# with no public IP": "| `AzureMachineLearning` | TCP<br>UDP | 443/8787/18881<br>5831 |",
# "| `BatchNodeManagement.<region>` | ANY | 443|", "| `Storage.<region>` | TCP | 443 |"; Limitations:
# "__Port 445__ must be open for _private_ network communications between your compute instances and the
# default storage account".

PAGE_COMPUTE_OUTBOUND = {
    ("AzureMachineLearning", "Tcp", ("443", "8787", "18881")),
    ("AzureMachineLearning", "Udp", ("5831",)),
    ("BatchNodeManagement.westeurope", "*", ("443",)),
    ("Storage.westeurope", "Tcp", ("443",)),
    ("10.10.3.0/24", "Tcp", ("445",)),
}


def test_compute_outbound_rules_match_the_secure_training_page() -> None:
    rules = aml_compute_outbound_rules("westeurope", "10.10.3.0/24")
    assert {(rule.destination, rule.protocol, rule.ports) for rule in rules} == PAGE_COMPUTE_OUTBOUND
    assert {rule.direction for rule in rules} == {"Outbound"}, "no inbound rule is needed without a public IP"


# ---- managed network: package feeds and batch ---------------------------------------------------------
# Microsoft Learn, "Workspace Managed Virtual Network Isolation" (articles/machine-learning/how-to-managed-network.md),
# "Scenario: Access public machine learning packages" (include recommended-network-outbound.md): `anaconda.com`,
# `*.anaconda.com`, `*.anaconda.org`, `pypi.org`, and `*.pythonhosted.org` when the index is overwritten (pip
# downloads from files.pythonhosted.org); "Scenario: Use batch endpoints or ParallelRunStep": private endpoint
# rules to the default storage account's sub resources `queue` and `table`.


def test_package_feed_rules_match_the_managed_network_page() -> None:
    assert set(TRAINING_PACKAGE_FEEDS) == {
        "anaconda.com",
        "*.anaconda.com",
        "*.anaconda.org",
        "pypi.org",
        "*.pythonhosted.org",
    }


def test_batch_rules_match_the_managed_network_page() -> None:
    assert set(BATCH_STORAGE_RULES) == {"queue", "table"}
    plan = design_plan(
        "managedVnet",
        public_network_access=True,
        aks_enabled=False,
        managed_isolation_mode="AllowOnlyApprovedOutbound",
    )
    assert set(plan.managed_storage_rules) == {"queue", "table"}


# ---- the Azure ML extension's settings -----------------------------------------------------------------
# Setting names from three Microsoft sources, as the `az` CLI sends them to ARM:
# - Learn, "Deploy Azure Machine Learning extension on AKS or Arc Kubernetes cluster"
#   (articles/machine-learning/how-to-deploy-kubernetes-extension.md), configuration settings table:
#   enableTraining, enableInference, allowInsecureConnections, inferenceRouterServiceType,
#   internalLoadBalancerProvider, sslCname, inferenceRouterHA ("requires at least three worker nodes"),
#   installNvidiaDevicePlugin; protected: sslCertPemFile, sslKeyPemFile.
# - Azure/azure-cli-extensions, src/k8s-extension/azext_k8s_extension/partner_extensions/AzureMLKubernetes.py:
#   'cluster_name', 'domain' ('{}.cloudapp.azure.com'.format(cluster_location)), 'location',
#   'jobSchedulerLocation', 'cluster_name_friendly', 'servicebus.enabled', 'relayserver.enabled',
#   'nginxIngress.enabled', 'clusterPurpose' ('DevTest' below three nodes, else 'FastProd'),
#   'scoringFe.serviceType.internalLoadBalancer', the reference mapping 'cluster_name' ->
#   ['clusterId', 'prometheus.prometheusSpec.externalLabels.cluster_name'], and the protected
#   'scoringFe.sslCert' / 'scoringFe.sslKey' (base64 of the PEM files); DEFAULT_RELEASE_NAMESPACE = 'azureml'.
# - Azure/AML-Kubernetes files/deployextension.json: the same base settings, "extensionType":
#   "microsoft.azureml.kubernetes", "scope": {"cluster": {"releaseNamespace": "azureml"}}.

PAGE_SETTINGS = {
    "enableTraining",
    "enableInference",
    "allowInsecureConnections",
    "inferenceRouterServiceType",
    "internalLoadBalancerProvider",
    "inferenceRouterHA",
    "installNvidiaDevicePlugin",
    "cluster_name",
    "clusterId",
    "prometheus.prometheusSpec.externalLabels.cluster_name",
    "cluster_name_friendly",
    "domain",
    "location",
    "jobSchedulerLocation",
    "servicebus.enabled",
    "relayserver.enabled",
    "nginxIngress.enabled",
    "clusterPurpose",
    "scoringFe.serviceType.internalLoadBalancer",
}


@pytest.mark.parametrize(("host", "extra"), [(None, set()), ("ml.contoso.com", {"sslCname"})])
def test_extension_setting_names_are_the_ones_the_cli_sends(host: str | None, extra: set[str]) -> None:
    settings = aks_component.azureml_extension_settings("/subscriptions/x/id", "aks", "westeurope", 3, host)
    assert set(settings) == PAGE_SETTINGS | extra
    assert settings["domain"] == "westeurope.cloudapp.azure.com"
    assert settings["inferenceRouterServiceType"].lower() == "loadbalancer"
    assert settings["internalLoadBalancerProvider"] == "azure"


@pytest.mark.parametrize(("nodes", "purpose"), [(2, "DevTest"), (3, "FastProd")])
def test_cluster_purpose_follows_the_clis_three_node_threshold(nodes: int, purpose: str) -> None:
    assert (
        aks_component.azureml_extension_settings("id", "aks", "westeurope", nodes, None)["clusterPurpose"]
        == purpose
    )


def test_protected_settings_and_scope_match_the_cli() -> None:
    assert set(aks_component.protected_tls_settings("c", "k")) == {"scoringFe.sslCert", "scoringFe.sslKey"}
    assert aks_component.AZUREML_NAMESPACE == "azureml"
    assert aks_component.AZUREML_EXTENSION_TYPE.lower() == "microsoft.azureml.kubernetes"
    assert aks_component.HA_ROUTER_MIN_NODES == 3


# ---- Kubernetes online endpoint scoring URI -----------------------------------------------------------
# The v2 Kubernetes online endpoint's scoringUri has the shape `http://<ip>/api/v1/endpoint/<name>/score`
# (Azure/AML-Kubernetes#282: "scoringUri: http://10.0.227.236/api/v1/endpoint/dev-rec-ab/score"); with TLS the
# sslCname replaces the IP (how-to-secure-kubernetes-online-endpoint.md, "Update your DNS with an FQDN").


def test_scoring_uri_matches_the_endpoint_status_shape() -> None:
    assert aks_component.scoring_uri("ml.contoso.com", "dev-rec-ab") == (
        "https://ml.contoso.com/api/v1/endpoint/dev-rec-ab/score"
    )


# ---- subnet addresses Azure keeps ---------------------------------------------------------------------
# Microsoft Learn, "Azure Virtual Network frequently asked questions": "Azure reserves the first four and the
# last IP address for a total of 5 IP addresses within each subnet" (x.x.x.0-x.x.x.3 and the broadcast address).


@pytest.mark.parametrize(
    ("ip", "usable"), [("10.10.16.3", False), ("10.10.16.4", True), ("10.10.31.255", False)]
)
def test_the_load_balancer_ip_check_skips_the_five_reserved_addresses(ip: str, usable: bool) -> None:
    from stacks.config import ConfigError, example_values, parse_config, secret_keys_of

    values = example_values(inferenceLoadBalancerIp=ip)
    assert ipaddress.IPv4Address(ip) in ipaddress.IPv4Network("10.10.16.0/20")
    try:
        parse_config(values, stack="prod", secret_keys=secret_keys_of(values))
    except ConfigError:
        assert not usable
    else:
        assert usable
