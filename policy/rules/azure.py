"""Azure's own names and numbers the rules hold plans to (each tested against a literal from its page)."""

from __future__ import annotations


class Role:
    """Built-in role definition GUIDs (built-in-roles.md of MicrosoftDocs/azure-docs)."""

    OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
    CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
    READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
    USER_ACCESS_ADMINISTRATOR = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"
    RBAC_ADMINISTRATOR = "f58310d9-a9f6-439a-9e8d-f62e7b41a168"
    STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
    STORAGE_BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
    STORAGE_FILE_DATA_PRIVILEGED_CONTRIBUTOR = "69566ab7-960f-475b-8e7c-b3118f30c6bd"
    STORAGE_QUEUE_DATA_CONTRIBUTOR = "974c5e8b-45b9-4653-ba55-5f855dd0fb88"
    STORAGE_TABLE_DATA_CONTRIBUTOR = "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"
    KEY_VAULT_ADMINISTRATOR = "00482a5a-887f-4fb3-b363-3b7fe8e74483"
    AKS_CLUSTER_ADMIN = "0ab0b1a8-8aac-4efd-b8c2-3ee1fb270be8"
    KUBERNETES_EXTENSION_CONTRIBUTOR = "85cb6faf-e071-4c9b-8136-154b5a04f717"


# Roles that can write role assignments: a workload identity holding one unconditioned can grant itself anything.
ROLE_GRANTING_ROLES = frozenset({Role.OWNER, Role.USER_ACCESS_ADMINISTRATOR, Role.RBAC_ADMINISTRATOR})
# A data role requirement is also met by the role above it on the same data.
BLOB_WRITERS = frozenset({Role.STORAGE_BLOB_DATA_CONTRIBUTOR, Role.STORAGE_BLOB_DATA_OWNER})

# Workspace managed network (how-to-managed-network.md): the two modes that create a managed VNet.
MANAGED_ISOLATION_MODES = frozenset({"AllowInternetOutbound", "AllowOnlyApprovedOutbound"})
APPROVED_OUTBOUND_ONLY = "AllowOnlyApprovedOutbound"
# Compute kinds a managed-network workspace cannot use (how-to-managed-network.md, Limitations).
UNSUPPORTED_IN_MANAGED_NETWORK = frozenset({"Kubernetes", "VirtualMachine"})

# Private endpoint group ids (sub-resources) of a storage account (private-endpoint-overview.md).
STORAGE_BLOB, STORAGE_FILE, STORAGE_QUEUE, STORAGE_TABLE = "blob", "file", "queue", "table"
BATCH_STORAGE_GROUPS = (STORAGE_BLOB, STORAGE_FILE, STORAGE_QUEUE, STORAGE_TABLE)
# Parallel Run Step (batch) needs queue and table beside blob (how-to-managed-network.md, batch scenario).
BATCH_EXTRA_STORAGE_GROUPS = (STORAGE_QUEUE, STORAGE_TABLE)
STUDIO_STORAGE_GROUPS = (STORAGE_BLOB, STORAGE_FILE)


class Extension:
    """The Azure ML extension's ARM settings (how-to-deploy-kubernetes-extension.md; the az CLI's
    AzureMLKubernetes.py and files/deployextension.json of Azure/AML-Kubernetes derive the rest)."""

    TYPE = "Microsoft.AzureML.Kubernetes"
    RELEASE_NAMESPACE = "azureml"
    ENABLE_INFERENCE = "enableInference"
    ALLOW_INSECURE = "allowInsecureConnections"
    SSL_CNAME = "sslCname"
    SSL_SECRET = "sslSecret"
    SCORING_SSL_SECRET = "scoringFe.sslSecret"
    SCORING_SSL_CERT = "scoringFe.sslCert"
    SCORING_SSL_KEY = "scoringFe.sslKey"
    ROUTER_HA = "inferenceRouterHA"
    ROUTER_SERVICE_TYPE = "inferenceRouterServiceType"
    ILB_PROVIDER = "internalLoadBalancerProvider"
    SCORING_ILB = "scoringFe.serviceType.internalLoadBalancer"
    CLUSTER_NAME = "cluster_name"
    CLUSTER_ID = "clusterId"
    LOCATION = "location"
    JOB_SCHEDULER_LOCATION = "jobSchedulerLocation"
    RELAY_ENABLED = "relayserver.enabled"
    SERVICE_BUS_ENABLED = "servicebus.enabled"
    NGINX_INGRESS_ENABLED = "nginxIngress.enabled"
    # What the CLI sets on an AKS cluster (managedClusters) before its ARM call, value as it sends it.
    FIXED_FOR_AKS = {RELAY_ENABLED: "false", SERVICE_BUS_ENABLED: "false", NGINX_INGRESS_ENABLED: "true"}


MIN_NODES_FOR_ROUTER_HA = 3
"""azureml-fe runs three replicas with inferenceRouterHA (its default), one per node."""
TRUSTED_ACCESS_ML_ROLE = "Microsoft.MachineLearningServices/workspaces/mlworkload"
CONTAINER_INSIGHTS_EXTENSION = "ContainerInsights"
CONTAINER_INSIGHTS_STREAM_PREFIX = "Microsoft-ContainerInsights-"

# AKS outbound types (egress-outboundtype.md; ARM enum OutboundType).
OUTBOUND_LOAD_BALANCER = "loadBalancer"
OUTBOUND_USER_DEFINED_ROUTING = "userDefinedRouting"
OUTBOUND_USER_NAT_GATEWAY = "userAssignedNATGateway"
OUTBOUND_MANAGED_NAT_GATEWAYS = frozenset({"managedNATGateway", "managedNATGatewayV2"})
OUTBOUND_NONE = frozenset({"none", "block"})

# Outbound a compute cluster without public IP needs (how-to-secure-training-vnet.md, "no public IP";
# the rest behind a deny-internet rule: how-to-access-azureml-behind-firewall.md, "Basic configuration").
# (service tag, protocol, port); "{region}" is the workspace's region as service tags spell it.
TRAINING_OUTBOUND: tuple[tuple[str, str, int], ...] = (
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
)
SMB_PORT = 445
"""Compute to the default storage account (how-to-secure-training-vnet.md, Limitations)."""
