"""The Azure names and numbers the rules enforce, each against a literal copied from the page that defines it."""

from __future__ import annotations

from policy.rules import azure
from policy.rules.azure import Extension, Role


def test_role_definition_ids_are_azures() -> None:
    # MicrosoftDocs/azure-docs articles/role-based-access-control/built-in-roles.md (ID column of each section).
    assert Role.OWNER == "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"  # Privileged
    assert Role.CONTRIBUTOR == "b24988ac-6180-42a0-ab88-20f7382dd24c"  # Privileged
    assert Role.USER_ACCESS_ADMINISTRATOR == "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"  # Privileged
    assert Role.RBAC_ADMINISTRATOR == "f58310d9-a9f6-439a-9e8d-f62e7b41a168"  # Privileged
    assert Role.READER == "acdd72a7-3385-48ef-bd42-f606fba81ae7"  # General
    assert Role.STORAGE_BLOB_DATA_CONTRIBUTOR == "ba92f5b4-2d11-453d-a403-e96b0029c9fe"  # Storage
    assert Role.STORAGE_BLOB_DATA_OWNER == "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"  # Storage
    assert Role.STORAGE_FILE_DATA_PRIVILEGED_CONTRIBUTOR == "69566ab7-960f-475b-8e7c-b3118f30c6bd"  # Storage
    assert Role.STORAGE_QUEUE_DATA_CONTRIBUTOR == "974c5e8b-45b9-4653-ba55-5f855dd0fb88"  # Storage
    assert Role.STORAGE_TABLE_DATA_CONTRIBUTOR == "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"  # Storage
    assert Role.KEY_VAULT_ADMINISTRATOR == "00482a5a-887f-4fb3-b363-3b7fe8e74483"  # Security
    assert Role.AKS_CLUSTER_ADMIN == "0ab0b1a8-8aac-4efd-b8c2-3ee1fb270be8"  # Containers
    assert Role.KUBERNETES_EXTENSION_CONTRIBUTOR == "85cb6faf-e071-4c9b-8136-154b5a04f717"  # Containers


def test_azure_ml_extension_setting_names_are_the_clis() -> None:
    # Azure/azure-cli-extensions src/k8s-extension/azext_k8s_extension/partner_extensions/AzureMLKubernetes.py
    # (constants of AzureMLKubernetes.__init__ and what Create() and __validate_scoring_fe_settings set).
    assert Extension.TYPE == "Microsoft.AzureML.Kubernetes"
    assert Extension.RELEASE_NAMESPACE == "azureml"
    assert Extension.ENABLE_INFERENCE == "enableInference"
    assert Extension.ALLOW_INSECURE == "allowInsecureConnections"
    assert (Extension.SSL_CNAME, Extension.SSL_SECRET) == ("sslCname", "sslSecret")
    assert (Extension.SCORING_SSL_CERT, Extension.SCORING_SSL_KEY) == (
        "scoringFe.sslCert",
        "scoringFe.sslKey",
    )
    assert Extension.SCORING_SSL_SECRET == "scoringFe.sslSecret"
    assert Extension.ROUTER_HA == "inferenceRouterHA"
    assert Extension.ROUTER_SERVICE_TYPE == "inferenceRouterServiceType"
    assert Extension.ILB_PROVIDER == "internalLoadBalancerProvider"
    assert Extension.SCORING_ILB == "scoringFe.serviceType.internalLoadBalancer"
    assert (Extension.CLUSTER_NAME, Extension.CLUSTER_ID) == ("cluster_name", "clusterId")
    assert (Extension.LOCATION, Extension.JOB_SCHEDULER_LOCATION) == ("location", "jobSchedulerLocation")
    assert Extension.FIXED_FOR_AKS == {
        "relayserver.enabled": "false",
        "servicebus.enabled": "false",
        "nginxIngress.enabled": "true",
    }


def test_router_ha_needs_three_nodes() -> None:
    # how-to-deploy-kubernetes-extension.md: "deploys three inference router replicas for high availability,
    # which requires at least three worker nodes in a cluster".
    assert azure.MIN_NODES_FOR_ROUTER_HA == 3


def test_trusted_access_role_and_container_insights_names() -> None:
    # Azure/AML-Kubernetes docs/azureml-aks-ta-support.md.
    assert azure.TRUSTED_ACCESS_ML_ROLE == "Microsoft.MachineLearningServices/workspaces/mlworkload"
    # microsoft/Docker-Provider scripts/onboarding/aks/onboarding-msi-terraform (the DCR's extension source).
    assert azure.CONTAINER_INSIGHTS_EXTENSION == "ContainerInsights"
    assert "Microsoft-ContainerInsights-Group-Default".startswith(azure.CONTAINER_INSIGHTS_STREAM_PREFIX)


def test_managed_network_modes_and_storage_sub_resources() -> None:
    # how-to-managed-network.md (isolation modes; "Scenario: Use batch endpoints or ParallelRunStep": queue, table).
    assert azure.MANAGED_ISOLATION_MODES == {"AllowInternetOutbound", "AllowOnlyApprovedOutbound"}
    assert azure.BATCH_EXTRA_STORAGE_GROUPS == ("queue", "table")
    # how-to-secure-batch-endpoint.md: "blob, file, queue, and table private endpoints".
    assert set(azure.BATCH_STORAGE_GROUPS) == {"blob", "file", "queue", "table"}


def test_aks_outbound_types() -> None:
    # egress-outboundtype.md and the ARM OutboundType enum (loadBalancer, userDefinedRouting,
    # managedNATGateway, userAssignedNATGateway, none).
    assert azure.OUTBOUND_LOAD_BALANCER == "loadBalancer"
    assert azure.OUTBOUND_USER_DEFINED_ROUTING == "userDefinedRouting"
    assert azure.OUTBOUND_USER_NAT_GATEWAY == "userAssignedNATGateway"
    assert "managedNATGateway" in azure.OUTBOUND_MANAGED_NAT_GATEWAYS and "none" in azure.OUTBOUND_NONE


def test_training_outbound_is_what_the_articles_list() -> None:
    # how-to-secure-training-vnet.md, "no public IP" table; how-to-access-azureml-behind-firewall.md, Basic
    # configuration (outbound service tags); SMB 445 to storage from the training article's Limitations.
    required = {
        ("AzureMachineLearning", "Tcp", 443),
        ("AzureMachineLearning", "Tcp", 8787),
        ("AzureMachineLearning", "Tcp", 18881),
        ("AzureMachineLearning", "Udp", 5831),
        ("BatchNodeManagement.{region}", "Tcp", 443),
        ("Storage.{region}", "Tcp", 443),
        ("AzureActiveDirectory", "Tcp", 443),
        ("AzureResourceManager", "Tcp", 443),
        ("MicrosoftContainerRegistry", "Tcp", 443),
        ("AzureFrontDoor.FirstParty", "Tcp", 443),
        ("AzureMonitor", "Tcp", 443),
        ("VirtualNetwork", "Tcp", 443),
    }
    assert set(azure.TRAINING_OUTBOUND) == required and azure.SMB_PORT == 445
