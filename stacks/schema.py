"""The stack config keys: one table feeding Pulumi.yaml checks, validation, and the README reference."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PROJECT = "aml-platform"
ConfigType = Literal["string", "integer", "boolean", "array"]
PROFILE = "profile"
"""Marks a default that comes from the environment profile (dev or prod) rather than one constant."""
DESIGN = "design"
"""Marks a default that comes from the stack's isolation design (see the README's design section)."""


@dataclass(frozen=True)
class ConfigKey:
    """One `<project>:<name>` config key."""

    name: str
    type: ConfigType
    description: str
    default: object = None
    secret: bool = False


KEYS: tuple[ConfigKey, ...] = (
    ConfigKey(
        "namespace",
        "string",
        "Required. Short name of the platform instance: lowercase letters/digits, starting with "
        "a letter; every Azure name is derived from it, so its length is capped (see README).",
    ),
    ConfigKey(
        "postfix",
        "string",
        "Digits appended to names; change it to re-create soft-deleted Key Vaults or "
        "workspaces under new names.",
        "001",
    ),
    ConfigKey(
        "environment", "string", "Environment profile, dev or prod; defaults to the stack name.", "<stack>"
    ),
    ConfigKey("location", "string", "Azure region (AML-enabled), e.g. westeurope.", "westeurope"),
    ConfigKey("owner", "string", "Value of the owner tag on every resource.", "platform-team"),
    ConfigKey(
        "publicNetworkAccess",
        "string",
        "Public network access to workspace, storage, Key Vault and "
        "registry; dev only (prod refuses true).",
        PROFILE,
    ),
    ConfigKey("logRetentionDays", "integer", "Log Analytics retention in days (30-730).", PROFILE),
    ConfigKey("computeVmSize", "string", "VM size of the AML compute cluster.", "Standard_DS3_v2"),
    ConfigKey("computeMinNodes", "integer", "Minimum nodes of the compute cluster.", 0),
    ConfigKey("computeMaxNodes", "integer", "Maximum nodes of the compute cluster.", PROFILE),
    ConfigKey(
        "computeIdleSeconds", "integer", "Idle seconds before the cluster scales down (60-604800).", PROFILE
    ),
    ConfigKey("computePriority", "string", "Dedicated or LowPriority compute nodes.", PROFILE),
    ConfigKey("vnetAddressSpace", "string", "Address space of the VNET (CIDR).", "10.10.0.0/16"),
    ConfigKey(
        "trainingSubnet", "string", "Subnet of the compute cluster (CIDR inside the VNET).", "10.10.1.0/24"
    ),
    ConfigKey(
        "agentsSubnet", "string", "Subnet of the DevOps agent VM (CIDR inside the VNET).", "10.10.2.0/24"
    ),
    ConfigKey(
        "privateEndpointsSubnet",
        "string",
        "Subnet of the private endpoints (CIDR inside the VNET).",
        "10.10.3.0/24",
    ),
    ConfigKey("aksSubnet", "string", "Subnet of the AKS nodes (CIDR inside the VNET).", "10.10.16.0/20"),
    ConfigKey(
        "aksServiceCidr", "string", "Kubernetes service CIDR (must not overlap the VNET).", "10.100.0.0/16"
    ),
    ConfigKey(
        "aksDnsServiceIp", "string", "Kubernetes DNS service IP (inside aksServiceCidr).", "10.100.0.10"
    ),
    ConfigKey(
        "enableAks", "boolean", "Create the AKS inference cluster and attach it to the workspace.", True
    ),
    ConfigKey("aksNodeVmSize", "string", "VM size of the AKS nodes.", "Standard_D4s_v5"),
    ConfigKey("aksNodeCount", "integer", "Number of AKS nodes (1-100).", PROFILE),
    ConfigKey(
        "enableDevops",
        "boolean",
        "Create the Azure DevOps pool, service connection, variable group and " "environments.",
        False,
    ),
    ConfigKey("devopsOrgUrl", "string", "Azure DevOps organization URL, https://dev.azure.com/<org>.", None),
    ConfigKey(
        "devopsProject", "string", "Existing Azure DevOps project to fill (looked up, not created).", "mlops"
    ),
    ConfigKey(
        "devopsPat",
        "string",
        "Azure DevOps PAT (Agent Pools read & manage, Service Connections, Variable "
        "Groups, Project); set with --secret.",
        None,
        secret=True,
    ),
    ConfigKey(
        "serviceConnectionAuth",
        "string",
        "WorkloadIdentityFederation (no secret) or ServicePrincipal.",
        "WorkloadIdentityFederation",
    ),
    ConfigKey(
        "servicePrincipalClientId",
        "string",
        "Client id, only with serviceConnectionAuth=ServicePrincipal.",
        None,
    ),
    ConfigKey(
        "servicePrincipalSecret",
        "string",
        "Client secret, only with serviceConnectionAuth=" "ServicePrincipal; set with --secret.",
        None,
        secret=True,
    ),
    ConfigKey(
        "prodApprovers", "array", "Azure DevOps user/group ids that must approve prod deployments.", []
    ),
    ConfigKey(
        "enableAgentVm", "boolean", "Create the self-hosted DevOps agent VM (needs enableDevops).", False
    ),
    ConfigKey("agentVmSize", "string", "VM size of the agent VM.", "Standard_B2s"),
    ConfigKey("agentCount", "integer", "Agents installed on the VM (1-10).", 2),
    ConfigKey(
        "agentAdminUsername", "string", "Admin user of the agent VM (SSH key login only).", "azureuser"
    ),
    ConfigKey("agentSshPublicKey", "string", "OpenSSH public key for the agent VM admin.", None),
    ConfigKey(
        "postDeployHook",
        "boolean",
        "Run the ML post-deploy hook after `pulumi up` creates or updates the " "compute cluster.",
        False,
    ),
    ConfigKey(
        "enableAlerts",
        # A string, like publicNetworkAccess: a boolean key cannot carry the "unset: use the profile" marker.
        "string",
        "Action group and alert rules (endpoint 5xx rate, p99 latency, no traffic; failed runs; cluster "
        "and AKS nodes; model drift); dev has none unless switched on.",
        PROFILE,
    ),
    ConfigKey("alertEmails", "array", "Email addresses the action group notifies.", []),
    ConfigKey(
        "alertWebhookUrl",
        "string",
        "Optional https webhook the action group calls (common alert schema); set with --secret.",
        None,
        secret=True,
    ),
    # A string: 0 is a valid severity, so the integer "unset" marker 0 cannot stand for the profile default.
    ConfigKey("alertSeverity", "string", "Severity of the alerts, 0 (critical) to 4 (verbose).", PROFILE),
    ConfigKey(
        "alertErrorRatePercent",
        "integer",
        "Alert when more than this % of scoring requests get a 5xx.",
        PROFILE,
    ),
    ConfigKey(
        "alertP99LatencyMs", "integer", "Alert when the endpoint's p99 latency exceeds this (ms).", PROFILE
    ),
    ConfigKey(
        "alertNoTrafficMinutes",
        "integer",
        "Alert when the endpoint served nothing for this long (5-1440).",
        PROFILE,
    ),
    ConfigKey("alertNodeCpuPercent", "integer", "Alert when AKS nodes average more CPU than this %.", 80),
    ConfigKey("alertNodeMemoryPercent", "integer", "Alert when AKS nodes' working set exceeds this %.", 85),
    ConfigKey(
        "driftThreshold",
        "string",
        "Model monitor threshold: normalized Wasserstein (numerical) and Jensen-Shannon (categorical).",
        "0.1",
    ),
    ConfigKey(
        "enablePrometheusGrafana",
        "boolean",
        "Azure Monitor workspace, AKS managed Prometheus and Azure Managed Grafana (needs enableAks).",
        False,
    ),
    ConfigKey(
        "grafanaAdminObjectIds", "array", "Entra object ids of users given Grafana Admin on the Grafana.", []
    ),
    ConfigKey(
        "isolationDesign",
        "string",
        "Network isolation design: customerVnet (compute and AKS in our subnets, Kubernetes online "
        "endpoints) or managedVnet (Azure ML's managed network, managed online endpoints, no AKS).",
        PROFILE,
    ),
    ConfigKey(
        "storageSharedKeyAccess",
        "string",
        "Shared-key (account key) access on the workspace storage account, true or false; on where AKS "
        "serves inference (customerVnet), off otherwise (see the README's design section).",
        DESIGN,
    ),
    ConfigKey(
        "inferenceSslCname",
        "string",
        "Host name clients use for TLS to the AKS inference router (sslCname); required in prod with AKS. "
        "The stack owns a private DNS zone of that exact name, linked to the VNet.",
        None,
    ),
    ConfigKey(
        "inferenceSslCertPem",
        "string",
        "PEM certificate chain for inferenceSslCname (no passphrase); set with --secret.",
        None,
        secret=True,
    ),
    ConfigKey(
        "inferenceSslKeyPem",
        "string",
        "PEM private key of that certificate (unencrypted); set with --secret.",
        None,
        secret=True,
    ),
    ConfigKey(
        "inferenceLoadBalancerIp",
        "string",
        "The internal load balancer IP that azureml-fe got in the AKS subnet, once known; the scoring DNS "
        "record points at it (the extension cannot pin it, see the README).",
        None,
    ),
    ConfigKey(
        "githubRepository",
        "string",
        "GitHub <owner>/<repository> whose deploy jobs (GitHub environment named like the stack's) may sign "
        "in as the CI identity through OIDC; unset for none.",
        None,
    ),
    ConfigKey(
        "enableModelRegistry",
        "boolean",
        "Use the Azure ML registry mlr-<namespace>-<postfix> that dev and prod share for promotion; "
        "the prod stack creates it.",
        True,
    ),
    ConfigKey(
        "modelRegistryWriters",
        "array",
        "Prod only: object ids of the service principals or managed identities that run "
        "`python -m mlops promote` (granted AzureML Registry User on the registry).",
        [],
    ),
    ConfigKey(
        "modelRegistryRegions",
        "array",
        "Prod only: further regions the registry replicates to; a workspace (dev's too) must be in one of "
        "its regions.",
        [],
    ),
    ConfigKey(
        "modelRegistryReaders",
        "array",
        "Prod only: object ids of other service principals or managed identities that read the registry, "
        "e.g. the dev workspace's (granted Reader).",
        [],
    ),
)
KEYS_BY_NAME: dict[str, ConfigKey] = {key.name: key for key in KEYS}


def unset_marker(key: ConfigKey) -> object:
    """The Pulumi.yaml default of a key whose real default depends on the stack or is "not set".

    The CLI demands a value for every project key without a default, so optional keys carry a neutral
    default ("" or 0) that the program reads as "unset: use the environment profile".
    """
    if key.default in (PROFILE, DESIGN, None, "<stack>"):
        return 0 if key.type == "integer" else ""
    return None


def pulumi_yaml_config() -> dict[str, dict[str, object]]:
    """The `config:` section Pulumi.yaml must carry (a test keeps the file equal to it)."""
    section: dict[str, dict[str, object]] = {}
    for key in KEYS:
        marker = unset_marker(key)
        entry: dict[str, object] = {"type": key.type, "description": key.description}
        if key.type == "array":
            entry["items"] = {"type": "string"}
        if key.name == "namespace":
            pass  # required: no default, so `pulumi up` refuses a stack that lacks it
        elif marker is not None:
            entry["default"] = marker
        else:
            entry["default"] = key.default
        section[key.name] = entry
    return section


def _shown_default(key: ConfigKey) -> str:
    if key.name == "namespace":
        return "*(required)*"
    if key.default is PROFILE:
        return "profile (see below)"
    if key.default is DESIGN:
        return "from the isolation design"
    if key.default is None:
        return "unset"
    if key.default == "<stack>":
        return "stack name"
    if isinstance(key.default, bool):
        return f"`{str(key.default).lower()}`"
    return f"`{key.default}`" if key.default != [] else "`[]`"


def config_reference_markdown() -> str:
    """The README's config reference table (a test keeps the README block equal to this)."""
    rows = ["| key | type | default | description |", "| --- | --- | --- | --- |"]
    for key in KEYS:
        kind = f"{key.type}, secret" if key.secret else key.type
        rows.append(f"| `{PROJECT}:{key.name}` | {kind} | {_shown_default(key)} | {key.description} |")
    return "\n".join(rows)
