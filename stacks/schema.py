"""The stack config keys: one table feeding Pulumi.yaml checks, validation, and the README reference."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from stacks.addresses import AKS_SERVICE_CIDR_LONGEST_FORBIDDEN, SMALLEST_SUBNET_PREFIX
from stacks.designs import DESIGNS
from stacks.forms import (
    Address,
    Boolean,
    Choice,
    Cidr,
    Decimal,
    EmailList,
    Form,
    Guid,
    GuidList,
    HostName,
    HttpsUrl,
    Integer,
    PemCertificate,
    PemPrivateKey,
    SshPublicKey,
    Text,
    VmSize,
    form_for_type,
)

PROJECT = "aml-platform"
ConfigType = Literal["string", "integer", "boolean", "array"]
PROFILE = "profile"
"""Marks a default that comes from the environment profile (dev or prod) rather than one constant."""
DESIGN = "design"
"""Marks a default that comes from the stack's isolation design (see the README's design section)."""


@dataclass(frozen=True)
class ConfigKey:
    """One `<project>:<name>` config key: its type, documentation, default and allowed form.

    `form` checks the value on its own (stacks/forms.py); rules between keys live in stacks/config.py.
    A key appended without a form gets the one its type implies.
    """

    name: str
    type: ConfigType
    description: str
    default: object = None
    secret: bool = False
    form: Form | None = field(default=None, compare=False)

    @property
    def value_form(self) -> Form:
        return self.form if self.form is not None else form_for_type(self.type)


def _subnet(example: str) -> Cidr:
    return Cidr(example, smallest=SMALLEST_SUBNET_PREFIX, limits="Azure's smallest subnet is a /29")


DEVOPS_PROJECT_FORBIDDEN = "\\/:*?\"<>|;#$,'+=@%&"
KEYS: tuple[ConfigKey, ...] = (
    ConfigKey(
        "namespace",
        "string",
        "Required. Short name of the platform instance: lowercase letters/digits, starting with "
        "a letter; every Azure name is derived from it, so its length is capped (see README).",
        form=Text(
            "2 or more lowercase letters/digits starting with a letter (no hyphens)", r"^[a-z][a-z0-9]+$"
        ),
    ),
    ConfigKey(
        "postfix",
        "string",
        "Digits appended to names; change it to re-create soft-deleted Key Vaults or "
        "workspaces under new names.",
        "001",
        form=Text("1-6 digits, e.g. 001 (quoted in YAML, or it becomes the number 1)", r"^[0-9]{1,6}$"),
    ),
    ConfigKey(
        "environment",
        "string",
        "Environment profile, dev or prod; defaults to the stack name. A stack named dev or prod "
        "keeps its own profile unless environmentOverride is true.",
        "<stack>",
        form=Choice(("dev", "prod")),
    ),
    ConfigKey(
        "environmentOverride",
        "boolean",
        "Lets a stack named dev or prod run the other profile given in environment (e.g. a "
        "rehearsal of prod's hardening on the dev stack).",
        False,
        form=Boolean(),
    ),
    ConfigKey(
        "location",
        "string",
        "Azure region (AML-enabled), e.g. westeurope.",
        "westeurope",
        form=Text("an Azure region name offering Azure ML, lowercase without spaces, e.g. westeurope"),
    ),
    ConfigKey(
        "owner",
        "string",
        "Value of the owner tag on every resource.",
        "platform-team",
        form=Text("1-256 characters without <>%&\\?/ (it becomes a tag value)", r"^[^<>%&\\?/]+$", 256),
    ),
    ConfigKey(
        "publicNetworkAccess",
        "boolean",
        "Public network access to workspace, storage, Key Vault and "
        "registry; dev only (prod refuses true).",
        PROFILE,
        form=Boolean(),
    ),
    ConfigKey(
        "logRetentionDays",
        "integer",
        "Log Analytics retention in days (30-730).",
        PROFILE,
        form=Integer(30, 730, "days"),
    ),
    ConfigKey(
        "computeVmSize", "string", "VM size of the AML compute cluster.", "Standard_DS3_v2", form=VmSize()
    ),
    ConfigKey(
        "computeMinNodes",
        "integer",
        "Minimum nodes of the compute cluster.",
        0,
        form=Integer(0, 1000),
    ),
    ConfigKey(
        "computeMaxNodes",
        "integer",
        "Maximum nodes of the compute cluster (1-1000).",
        PROFILE,
        form=Integer(1, 1000),
    ),
    ConfigKey(
        "computeIdleSeconds",
        "integer",
        "Idle seconds before the cluster scales down (60-604800).",
        PROFILE,
        form=Integer(60, 604800, "seconds"),
    ),
    ConfigKey(
        "computePriority",
        "string",
        "Dedicated or LowPriority compute nodes.",
        PROFILE,
        form=Choice(("Dedicated", "LowPriority")),
    ),
    ConfigKey(
        "vnetAddressSpace",
        "string",
        "Address space of the VNET (CIDR).",
        "10.10.0.0/16",
        form=_subnet("10.10.0.0/16"),
    ),
    ConfigKey(
        "trainingSubnet",
        "string",
        "Subnet of the compute cluster (CIDR inside the VNET).",
        "10.10.1.0/24",
        form=_subnet("10.10.1.0/24"),
    ),
    ConfigKey(
        "agentsSubnet",
        "string",
        "Subnet of the DevOps agent VM (CIDR inside the VNET).",
        "10.10.2.0/24",
        form=_subnet("10.10.2.0/24"),
    ),
    ConfigKey(
        "privateEndpointsSubnet",
        "string",
        "Subnet of the private endpoints (CIDR inside the VNET).",
        "10.10.3.0/24",
        form=_subnet("10.10.3.0/24"),
    ),
    ConfigKey(
        "aksSubnet",
        "string",
        "Subnet of the AKS nodes (CIDR inside the VNET).",
        "10.10.16.0/20",
        form=_subnet("10.10.16.0/20"),
    ),
    ConfigKey(
        "aksServiceCidr",
        "string",
        "Kubernetes service CIDR (must not overlap the VNET).",
        "10.100.0.0/16",
        form=Cidr(
            "10.100.0.0/16",
            largest=AKS_SERVICE_CIDR_LONGEST_FORBIDDEN + 1,
            limits="AKS needs a service range smaller than a /12",
        ),
    ),
    ConfigKey(
        "aksDnsServiceIp",
        "string",
        "Kubernetes DNS service IP (inside aksServiceCidr).",
        "10.100.0.10",
        form=Address(),
    ),
    ConfigKey(
        "enableAks",
        "boolean",
        "Create the AKS inference cluster and attach it to the workspace.",
        True,
        form=Boolean(),
    ),
    ConfigKey("aksNodeVmSize", "string", "VM size of the AKS nodes.", "Standard_D4s_v5", form=VmSize()),
    ConfigKey(
        "aksNodeCount",
        "integer",
        "Number of AKS nodes (1-100).",
        PROFILE,
        form=Integer(1, 100),
    ),
    ConfigKey(
        "enableDevops",
        "boolean",
        "Create the Azure DevOps pool, service connection, variable group and " "environments.",
        False,
        form=Boolean(),
    ),
    ConfigKey(
        "devopsOrgUrl",
        "string",
        "Azure DevOps organization URL, https://dev.azure.com/<org>.",
        None,
        form=Text(
            "https://dev.azure.com/<organization> (the URL of your organization in Azure DevOps)",
            r"^https://dev\.azure\.com/[A-Za-z0-9][A-Za-z0-9-]{0,48}/?$",
        ),
    ),
    ConfigKey(
        "devopsProject",
        "string",
        "Existing Azure DevOps project to fill (looked up, not created).",
        "mlops",
        form=Text(
            f"1-64 characters without any of {DEVOPS_PROJECT_FORBIDDEN}",
            rf"^[^{re.escape(DEVOPS_PROJECT_FORBIDDEN)}]+$",
            64,
        ),
    ),
    ConfigKey(
        "devopsPat",
        "string",
        "Azure DevOps PAT (Agent Pools read & manage, Service Connections, Variable "
        "Groups, Project); set with --secret.",
        None,
        secret=True,
        form=Text("an Azure DevOps personal access token, set with --secret"),
    ),
    ConfigKey(
        "serviceConnectionAuth",
        "string",
        "WorkloadIdentityFederation (no secret) or ServicePrincipal.",
        "WorkloadIdentityFederation",
        form=Choice(("WorkloadIdentityFederation", "ServicePrincipal")),
    ),
    ConfigKey(
        "servicePrincipalClientId",
        "string",
        "Client id, only with serviceConnectionAuth=ServicePrincipal.",
        None,
        form=Guid("the application (client) id of the service principal"),
    ),
    ConfigKey(
        "servicePrincipalSecret",
        "string",
        "Client secret, only with serviceConnectionAuth=" "ServicePrincipal; set with --secret.",
        None,
        secret=True,
        form=Text("the service principal's client secret, set with --secret"),
    ),
    ConfigKey(
        "prodApprovers",
        "array",
        "Azure DevOps user/group ids (origin ids) that must approve prod deployments; required on prod "
        "with enableDevops.",
        None,
        form=GuidList("Azure DevOps user or group origin ids"),
    ),
    ConfigKey(
        "enableAgentVm",
        "boolean",
        "Create the self-hosted DevOps agent VM (needs enableDevops).",
        False,
        form=Boolean(),
    ),
    ConfigKey("agentVmSize", "string", "VM size of the agent VM.", "Standard_B2s", form=VmSize()),
    ConfigKey("agentCount", "integer", "Agents installed on the VM (1-10).", 2, form=Integer(1, 10)),
    ConfigKey(
        "agentAdminUsername",
        "string",
        "Admin user of the agent VM (SSH key login only).",
        "azureuser",
        form=Text(
            "a lowercase Linux user name of up to 32 characters, not root or admin",
            r"^[a-z_][a-z0-9_-]{0,31}$",
        ),
    ),
    ConfigKey(
        "agentSshPublicKey",
        "string",
        "OpenSSH public key for the agent VM admin.",
        None,
        form=SshPublicKey(),
    ),
    ConfigKey(
        "postDeployHook",
        "boolean",
        "Run the ML post-deploy hook after `pulumi up` creates or updates the " "compute cluster.",
        False,
        form=Boolean(),
    ),
    ConfigKey(
        "enableAlerts",
        "boolean",
        "Action group and alert rules (endpoint 5xx rate, p99 latency, no traffic; failed runs; cluster "
        "and AKS nodes; model drift); dev has none unless switched on.",
        PROFILE,
        form=Boolean(),
    ),
    ConfigKey(
        "alertEmails",
        "array",
        "Email addresses the action group notifies; prod needs a receiver (this or alertWebhookUrl).",
        [],
        form=EmailList("email addresses"),
    ),
    ConfigKey(
        "alertWebhookUrl",
        "string",
        "Optional https webhook the action group calls (common alert schema); set with --secret.",
        None,
        secret=True,
        form=HttpsUrl("the action group calls it with the alert"),
    ),
    ConfigKey(
        "alertSeverity",
        "integer",
        "Severity of the alerts, 0 (critical) to 4 (verbose).",
        PROFILE,
        form=Integer(0, 4),
    ),
    ConfigKey(
        "alertErrorRatePercent",
        "integer",
        "Alert when more than this % of scoring requests get a 5xx (1-100).",
        PROFILE,
        form=Integer(1, 100, "percent"),
    ),
    ConfigKey(
        "alertP99LatencyMs",
        "integer",
        "Alert when the endpoint's p99 latency exceeds this (10-120000 ms).",
        PROFILE,
        form=Integer(10, 120000, "ms"),
    ),
    ConfigKey(
        "alertNoTrafficMinutes",
        "integer",
        "Alert when the endpoint served nothing for this long (5-1440).",
        PROFILE,
        form=Integer(5, 1440, "minutes"),
    ),
    ConfigKey(
        "alertNodeCpuPercent",
        "integer",
        "Alert when AKS nodes average more CPU than this %.",
        80,
        form=Integer(1, 100, "percent"),
    ),
    ConfigKey(
        "alertNodeMemoryPercent",
        "integer",
        "Alert when AKS nodes' working set exceeds this %.",
        85,
        form=Integer(1, 100, "percent"),
    ),
    ConfigKey(
        "driftThreshold",
        "string",
        "Model monitor threshold: normalized Wasserstein (numerical) and Jensen-Shannon (categorical).",
        "0.1",
        form=Decimal(0, 10, "0.1", " (Azure ML's default)"),
    ),
    ConfigKey(
        "enablePrometheusGrafana",
        "boolean",
        "Azure Monitor workspace, AKS managed Prometheus and Azure Managed Grafana (needs enableAks).",
        False,
        form=Boolean(),
    ),
    ConfigKey(
        "grafanaAdminObjectIds",
        "array",
        "Entra object ids of users given Grafana Admin on the Grafana.",
        [],
        form=GuidList("Entra object ids"),
    ),
    ConfigKey(
        "isolationDesign",
        "string",
        "Network isolation design: customerVnet (compute and AKS in our subnets, Kubernetes online "
        "endpoints) or managedVnet (Azure ML's managed network, managed online endpoints, no AKS).",
        PROFILE,
        form=Choice(DESIGNS),
    ),
    ConfigKey(
        "storageSharedKeyAccess",
        "boolean",
        "Shared-key (account key) access on the workspace storage account, true or false; on where AKS "
        "serves inference (customerVnet), off otherwise (see the README's design section).",
        DESIGN,
        form=Boolean(),
    ),
    ConfigKey(
        "inferenceSslCname",
        "string",
        "Host name clients use for TLS to the AKS inference router (sslCname); required in prod with AKS. "
        "The stack owns a private DNS zone of that exact name, linked to the VNet.",
        None,
        form=HostName(),
    ),
    ConfigKey(
        "inferenceSslCertPem",
        "string",
        "PEM certificate chain for inferenceSslCname (no passphrase); set with --secret.",
        None,
        secret=True,
        form=PemCertificate("inferenceSslKeyPem"),
    ),
    ConfigKey(
        "inferenceSslKeyPem",
        "string",
        "PEM private key of that certificate (unencrypted); set with --secret.",
        None,
        secret=True,
        form=PemPrivateKey("inferenceSslCertPem"),
    ),
    ConfigKey(
        "inferenceLoadBalancerIp",
        "string",
        "The internal load balancer IP that azureml-fe got in the AKS subnet, once known; the scoring DNS "
        "record points at it (the extension cannot pin it, see the README).",
        None,
        form=Address(),
    ),
    ConfigKey(
        "githubRepository",
        "string",
        "GitHub <owner>/<repository> whose deploy jobs (GitHub environment named like the stack's) may sign "
        "in as the CI identity through OIDC; unset for none.",
        None,
        form=Text(
            "<owner>/<repository> as on github.com, e.g. contoso/aml-platform (owner up to 39 letters, digits "
            "or hyphens; repository up to 100 letters, digits, '.', '_' or '-')",
            r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}$",
        ),
    ),
    ConfigKey(
        "enableModelRegistry",
        "boolean",
        "Use the Azure ML registry mlr-<namespace>-<postfix> that dev and prod share for promotion; "
        "the prod stack creates it.",
        True,
        form=Boolean(),
    ),
    ConfigKey(
        "modelRegistryWriters",
        "array",
        "Prod only: object ids of the service principals or managed identities that run "
        "`python -m mlops promote` (granted AzureML Registry User on the registry).",
        [],
        form=GuidList("Entra object ids of service principals or managed identities"),
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
        form=GuidList("Entra object ids of service principals or managed identities"),
    ),
)
KEYS_BY_NAME: dict[str, ConfigKey] = {key.name: key for key in KEYS}


def declared_in_project(key: ConfigKey) -> bool:
    """Whether Pulumi.yaml declares `key`: the required namespace, and keys with a constant default.

    The CLI gives every declared key a value (its default) before the program runs
    (pulumi/pulumi pkg/workspace/config.go, mergeConfig), so a declared optional key could not be told
    apart from one set to its default. Keys whose default comes from the profile, or that are optional
    without a default, are left out of Pulumi.yaml: then "unset" reaches the program as unset, and an
    explicit `computeMaxNodes: 0` is refused instead of read as "use the profile".
    """
    return key.name == "namespace" or not (
        key.default is PROFILE or key.default is DESIGN or key.default is None or key.default == "<stack>"
    )


def pulumi_yaml_config() -> dict[str, dict[str, object]]:
    """The `config:` section Pulumi.yaml must carry (a test keeps the file equal to it)."""
    section: dict[str, dict[str, object]] = {}
    for key in KEYS:
        if not declared_in_project(key):
            continue
        entry: dict[str, object] = {"type": key.type, "description": key.description}
        if key.type == "array":
            entry["items"] = {"type": "string"}
        if key.name != "namespace":  # required: no default, so `pulumi up` refuses a stack that lacks it
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
