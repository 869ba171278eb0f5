"""The platform's security baseline as pure rules, for the CrossGuard pack and `python -m stacks check`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Literal, Mapping, Protocol, Sequence

Enforcement = Literal["mandatory", "advisory"]
Environment = Literal["dev", "prod"]

# Role definitions no workload identity of the platform may hold (privilege escalation).
OWNER_ROLE = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
USER_ACCESS_ADMINISTRATOR_ROLE = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"
REQUIRED_TAGS = ("environment", "project", "owner")
SECRET_LOOKING_NAME = re.compile(
    r"(secret|password|passwd|pat$|token|key$|apikey|connectionstring)", re.IGNORECASE
)
OPEN_SOURCES = {"*", "internet", "0.0.0.0/0", "any"}
MANAGEMENT_PORTS = {22, 3389}
SECRET_MASK = "[secret]"

STORAGE = "azure-native:storage:StorageAccount"
BLOB_SERVICE = "azure-native:storage:BlobServiceProperties"
KEY_VAULT = "azure-native:keyvault:Vault"
REGISTRY = "azure-native:containerregistry:Registry"
LOG_ANALYTICS = "azure-native:operationalinsights:Workspace"
APP_INSIGHTS = "azure-native:applicationinsights:Component"
DIAGNOSTIC_SETTING = "azure-native:monitor:DiagnosticSetting"
ML_WORKSPACE = "azure-native:machinelearningservices:Workspace"
ML_COMPUTE = "azure-native:machinelearningservices:Compute"
AKS = "azure-native:containerservice:ManagedCluster"
K8S_EXTENSION = "azure-native:kubernetesconfiguration:Extension"
VNET = "azure-native:network:VirtualNetwork"
SUBNET = "azure-native:network:Subnet"
NSG = "azure-native:network:NetworkSecurityGroup"
PRIVATE_ENDPOINT = "azure-native:network:PrivateEndpoint"
NIC = "azure-native:network:NetworkInterface"
VM = "azure-native:compute:VirtualMachine"
PRIVATE_DNS_ZONE = "azure-native:privatedns:PrivateZone"
PRIVATE_DNS_LINK = "azure-native:privatedns:VirtualNetworkLink"
PRIVATE_DNS_ZONE_GROUP = "azure-native:network:PrivateDnsZoneGroup"
TRUSTED_ACCESS = "azure-native:containerservice:TrustedAccessRoleBinding"
ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
USER_IDENTITY = "azure-native:managedidentity:UserAssignedIdentity"
FEDERATED_CREDENTIAL = "azure-native:managedidentity:FederatedIdentityCredential"
RESOURCE_GROUP = "azure-native:resources:ResourceGroup"
DEVOPS_PROJECT = "azuredevops:index/project:Project"
DEVOPS_VARIABLE_GROUP = "azuredevops:index/variableGroup:VariableGroup"
DEVOPS_SERVICE_CONNECTION = "azuredevops:index/serviceEndpointAzureRM:ServiceEndpointAzureRM"
DEVOPS_CHECK_APPROVAL = "azuredevops:index/checkApproval:CheckApproval"
DEVOPS_POOL = "azuredevops:index/pool:Pool"
DEVOPS_QUEUE = "azuredevops:index/queue:Queue"
DEVOPS_ENVIRONMENT = "azuredevops:index/environment:Environment"

# Azure resources of the program that accept tags (child resources such as subnets and blob services do not).
TAGGABLE = (
    RESOURCE_GROUP,
    STORAGE,
    KEY_VAULT,
    REGISTRY,
    LOG_ANALYTICS,
    APP_INSIGHTS,
    ML_WORKSPACE,
    ML_COMPUTE,
    AKS,
    VNET,
    NSG,
    PRIVATE_ENDPOINT,
    NIC,
    VM,
    USER_IDENTITY,
    PRIVATE_DNS_ZONE,
    PRIVATE_DNS_LINK,
)
# Resources whose loss loses data or identities that other systems trust: protected and retained in prod.
STATEFUL = (STORAGE, KEY_VAULT, REGISTRY, LOG_ANALYTICS, ML_WORKSPACE)


@dataclass(frozen=True)
class Subject:
    """What a rule looks at: one resource's type, inputs (camelCase), protect flag and environment."""

    resource_type: str
    props: Mapping[str, Any]
    protect: bool = False
    environment: Environment = "prod"


Check = Callable[[Subject], "str | None"]


class Report(Protocol):
    """CrossGuard's ReportViolation callback."""

    def __call__(self, message: str, urn: str | None = None) -> None: ...


def _levels(enforcement: Enforcement, network_isolation: bool) -> tuple[Enforcement, ...]:
    return (enforcement, "advisory") if network_isolation and enforcement != "advisory" else (enforcement,)


def _policy_name(name: str, enforcement: Enforcement, level: Enforcement) -> str:
    return name if level == enforcement else f"{name}-{level}"


@dataclass(frozen=True)
class Rule:
    """One baseline requirement: where it applies, how strictly, what is wrong and how to fix it."""

    name: str
    description: str
    resource_types: tuple[str, ...]
    enforcement: Enforcement
    remediation: str
    check: Check
    network_isolation: bool = False
    """Dev may relax network isolation: such a rule is advisory there, whatever its enforcement in prod."""

    def applies_to(self, resource_type: str) -> bool:
        return resource_type in self.resource_types

    def level(self, environment: Environment) -> Enforcement:
        """Enforcement in `environment`: network isolation rules are only advisory in dev."""
        return "advisory" if self.network_isolation and environment == "dev" else self.enforcement

    def violation(self, subject: Subject) -> str | None:
        """The violation message for `subject` (problem and remediation), or None when it complies."""
        if not self.applies_to(subject.resource_type):
            return None
        problem = self.check(subject)
        return None if problem is None else f"{problem}. Fix: {self.remediation}"

    def levels(self) -> tuple[Enforcement, ...]:
        """The distinct enforcement levels this rule takes across environments (prod's first)."""
        return _levels(self.enforcement, self.network_isolation)

    def policy_name(self, level: Enforcement) -> str:
        """CrossGuard policy name of this rule at `level`: the rule name, suffixed when relaxed for dev."""
        return _policy_name(self.name, self.enforcement, level)

    def validator(self, level: Enforcement) -> Callable[[Any, Report], None]:
        """A CrossGuard validate(args, report) for the resources whose environment puts the rule at `level`.

        One CrossGuard policy has one enforcement level, so a rule relaxed in dev becomes two policies:
        the mandatory one sees prod resources, the advisory one dev resources.
        """

        def validate(args: Any, report: Report) -> None:
            subject = Subject(
                args.resource_type,
                args.props,
                bool(getattr(args.opts, "protect", False)),
                environment_of(args.props, stack_of_urn(str(getattr(args, "urn", "")))),
            )
            message = self.violation(subject) if self.level(subject.environment) == level else None
            if message is not None:
                report(message)

        return validate


def stack_of_urn(urn: str) -> str:
    """The stack name inside a URN (urn:pulumi:<stack>::<project>::...), or "" for anything else."""
    parts = urn.split(":", 3)
    return parts[2] if len(parts) > 3 and parts[0] == "urn" else ""


def environment_of(props: Mapping[str, Any], fallback: str) -> Environment:
    """The resource's `environment` tag, else `fallback`; anything but dev is held to the prod baseline."""
    tags = props.get("tags")
    tagged = tags.get("environment") if isinstance(tags, Mapping) else None
    return "dev" if (tagged or fallback) == "dev" else "prod"


def stack_environment(resources: Sequence[Any]) -> Environment:
    """A stack's environment as its resources' rules see it: their one `environment` tag, else the stack
    name from the URNs (so a stack named `dev-alice` with environment=dev is judged as dev), else prod."""
    tags = {get(r.props, "tags.environment") for r in resources} - {None}
    stacks = {stack_of_urn(str(r.urn)) for r in resources} - {""}
    fallback = stacks.pop() if len(stacks) == 1 else "prod"
    return environment_of({"tags": {"environment": tags.pop()}} if len(tags) == 1 else {}, fallback)


def get(props: Any, path: str) -> Any:
    """The value at a dotted path of camelCase keys, or None where any step is missing."""
    value = props
    for key in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _require(path: str, expected: Any, what: str) -> Check:
    def check(subject: Subject) -> str | None:
        actual = get(subject.props, path)
        return None if actual == expected else f"{what}: `{path}` is {actual!r}, must be {expected!r}"

    return check


def _forbid(path: str, forbidden: Any, what: str) -> Check:
    def check(subject: Subject) -> str | None:
        actual = get(subject.props, path)
        return f"{what}: `{path}` is {actual!r}" if actual == forbidden else None

    return check


def _present(path: str, what: str) -> Check:
    def check(subject: Subject) -> str | None:
        return None if get(subject.props, path) not in (None, "", [], {}) else f"{what}: `{path}` is not set"

    return check


def _workspace_isolated(subject: Subject) -> str | None:
    # "Disabled" is the customer-VNet design: our VNet isolates compute (stack rule compute-network-isolated).
    mode = get(subject.props, "managedNetwork.isolationMode")
    if mode in ("AllowOnlyApprovedOutbound", "Disabled"):
        return None
    return f"outbound traffic is unrestricted: `managedNetwork.isolationMode` is {mode!r}"


def _public_access_disabled(path: str = "publicNetworkAccess") -> Check:
    return _require(path, "Disabled", "public network access is on")


def _tls(subject: Subject) -> str | None:
    version = get(subject.props, "minimumTlsVersion")
    return (
        None
        if version in ("TLS1_2", "TLS1_3")
        else f"`minimumTlsVersion` is {version!r}, must be TLS1_2 or later"
    )


def _retention(path: str, days: int) -> Check:
    def check(subject: Subject) -> str | None:
        policy = get(subject.props, path) or {}
        if policy.get("enabled") is True and (policy.get("days") or 0) >= days:
            return None
        return f"`{path}` is {policy or None!r}, must be enabled for at least {days} days"

    return check


def _kv_soft_delete(subject: Subject) -> str | None:
    days = get(subject.props, "properties.softDeleteRetentionInDays")
    enabled = get(subject.props, "properties.enableSoftDelete")
    if enabled is not False and days == 90:
        return None
    return f"soft delete is {'off' if enabled is False else f'{days!r} days'}, must be on for 90 days"


def _log_retention(subject: Subject) -> str | None:
    days = get(subject.props, "retentionInDays")
    # Numbers cross the engine's wire as floats (90.0), so accept any number.
    return (
        None
        if isinstance(days, (int, float)) and days >= 30
        else f"`retentionInDays` is {days!r}, must be 30 or more"
    )


def _diagnostics(subject: Subject) -> str | None:
    if not get(subject.props, "workspaceId"):
        return "the diagnostic setting sends nowhere: `workspaceId` is not set"
    enabled = [
        item for key in ("logs", "metrics") for item in subject.props.get(key) or [] if item.get("enabled")
    ]
    return None if enabled else "no log category or metric is enabled"


def _system_identity(path: str) -> Check:
    def check(subject: Subject) -> str | None:
        kind = str(get(subject.props, path) or "")
        return (
            None if "SystemAssigned" in kind else f"`{path}` is {kind or None!r}, must include SystemAssigned"
        )

    return check


def _managed_identity(subject: Subject) -> str | None:
    kind = str(get(subject.props, "identity.type") or "")
    return (
        None
        if kind in ("SystemAssigned", "UserAssigned")
        else "the cluster has no managed identity " f"(`identity.type` is {kind or None!r})"
    )


def _image_build_compute(subject: Subject) -> str | None:
    private = get(subject.props, "publicNetworkAccess") == "Disabled"
    if not private or get(subject.props, "imageBuildCompute"):
        return None
    return (
        "a private workspace cannot build environment images on its serverless builder: "
        "`imageBuildCompute` is not set"
    )


def _aml_compute(inner: Check) -> Check:
    """A check that only concerns AmlCompute clusters (Kubernetes compute has no such properties)."""

    def check(subject: Subject) -> str | None:
        return inner(subject) if get(subject.props, "properties.computeType") == "AmlCompute" else None

    return check


def _aks_rbac(subject: Subject) -> str | None:
    # Local accounts stay on: the Azure ML extension does not support AKS without them (AZURE-FACTS 11).
    managed = get(subject.props, "aadProfile.managed") is True
    azure_rbac = get(subject.props, "aadProfile.enableAzureRBAC") is True
    if managed and azure_rbac:
        return None
    return (
        f"Kubernetes authorization is not Entra ID + Azure RBAC (aadProfile.managed={managed}, "
        f"enableAzureRBAC={azure_rbac})"
    )


def _aks_network_policy(subject: Subject) -> str | None:
    policy = get(subject.props, "networkProfile.networkPolicy")
    return (
        None
        if policy in ("azure", "calico", "cilium")
        else f"`networkProfile.networkPolicy` is {policy!r}, pods can reach each other unrestricted"
    )


def _aks_node_public_ip(subject: Subject) -> str | None:
    pools = [
        pool.get("name")
        for pool in subject.props.get("agentPoolProfiles") or []
        if pool.get("enableNodePublicIp")
    ]
    return f"node pools {pools} give nodes public IPs" if pools else None


def _internal_inference(subject: Subject) -> str | None:
    if get(subject.props, "extensionType") != "Microsoft.AzureML.Kubernetes":
        return None
    settings = subject.props.get("configurationSettings") or {}
    router = settings.get("inferenceRouterServiceType")
    provider = settings.get("internalLoadBalancerProvider")
    if router == "loadBalancer" and provider == "azure":
        return None
    return (
        f"the inference router is exposed: inferenceRouterServiceType={router!r}, "
        f"internalLoadBalancerProvider={provider!r} (need loadBalancer + azure)"
    )


def _port_range_opens(ranges: Iterable[str]) -> bool:
    for text in ranges:
        if text == "*":
            return True
        low, _, high = str(text).partition("-")
        if low.isdigit() and any(int(low) <= port <= int(high or low) for port in MANAGEMENT_PORTS):
            return True
    return False


def _open_management_ports(subject: Subject) -> str | None:
    opened = []
    for rule in subject.props.get("securityRules") or []:
        sources = {
            str(s).lower()
            for s in [rule.get("sourceAddressPrefix"), *(rule.get("sourceAddressPrefixes") or [])]
        }
        ports = [rule.get("destinationPortRange"), *(rule.get("destinationPortRanges") or [])]
        inbound_allow = rule.get("direction") == "Inbound" and rule.get("access") == "Allow"
        if inbound_allow and sources & OPEN_SOURCES and _port_range_opens(p for p in ports if p):
            opened.append(rule.get("name"))
    return f"rules {opened} open SSH/RDP to the internet" if opened else None


def _subnet_nsg(subject: Subject) -> str | None:
    # Azure forbids an NSG on these platform subnets.
    if get(subject.props, "subnetName") in ("GatewaySubnet", "AzureFirewallSubnet", "AzureBastionSubnet"):
        return None
    return (
        None if get(subject.props, "networkSecurityGroup.id") else "the subnet has no network security group"
    )


def _private_link(subject: Subject) -> str | None:
    connections = subject.props.get("privateLinkServiceConnections") or []
    if connections and all(c.get("privateLinkServiceId") and c.get("groupIds") for c in connections):
        return None
    return "the private endpoint has no private link connection with a target id and group ids"


def _dns_zone_configs(subject: Subject) -> str | None:
    configs = subject.props.get("privateDnsZoneConfigs") or []
    if configs and all(config.get("privateDnsZoneId") for config in configs):
        return None
    return "the private endpoint's name would resolve publicly: no private DNS zone is configured"


def _trusted_access_roles(subject: Subject) -> str | None:
    roles = subject.props.get("roles") or []
    foreign = [
        role for role in roles if not str(role).startswith("Microsoft.MachineLearningServices/workspaces/")
    ]
    if roles and not foreign:
        return None
    return f"roles {foreign or roles} reach beyond the AML workspace's workload role"


def _nic_public_ip(subject: Subject) -> str | None:
    public = [c.get("name") for c in subject.props.get("ipConfigurations") or [] if c.get("publicIPAddress")]
    return f"IP configurations {public} attach a public IP" if public else None


def _vm_ssh_key_only(subject: Subject) -> str | None:
    if subject.props.get("osProfile") == SECRET_MASK:
        # A secret customData makes the SDK mask the whole osProfile in an offline plan; CrossGuard sees it
        # unmasked during a real preview, so the rule is enforced there.
        return None
    password_off = get(subject.props, "osProfile.linuxConfiguration.disablePasswordAuthentication") is True
    keys = get(subject.props, "osProfile.linuxConfiguration.ssh.publicKeys") or []
    if password_off and keys and not get(subject.props, "osProfile.adminPassword"):
        return None
    return (
        f"password login is possible or no SSH key is set (disablePasswordAuthentication={password_off}, "
        f"{len(keys)} key(s))"
    )


def _no_privileged_role(subject: Subject) -> str | None:
    role = str(get(subject.props, "roleDefinitionId") or "").rsplit("/", 1)[-1].lower()
    if role in (OWNER_ROLE, USER_ACCESS_ADMINISTRATOR_ROLE):
        return f"the assignment grants a role that can grant roles ({role})"
    return None


def _federated_audience(subject: Subject) -> str | None:
    audiences = subject.props.get("audiences") or []
    issuer = str(subject.props.get("issuer") or "")
    if audiences == ["api://AzureADTokenExchange"] and issuer.startswith("https://"):
        return None
    return (
        f"audiences {audiences}, issuer {issuer!r}: need only api://AzureADTokenExchange and an https issuer"
    )


def _variable_group_secrets(subject: Subject) -> str | None:
    leaked = [
        v.get("name")
        for v in subject.props.get("variables") or []
        if SECRET_LOOKING_NAME.search(str(v.get("name") or "")) and v.get("value") not in (None, "")
    ]
    return f"variables {leaked} hold secrets in plain `value`" if leaked else None


def _approval(subject: Subject) -> str | None:
    if not subject.props.get("approvers"):
        return "the approval check has no approvers"
    if subject.props.get("requesterCanApprove") is True:
        return "the requester can approve their own deployment (`requesterCanApprove` is true)"
    return None


def _tags(subject: Subject) -> str | None:
    tags = subject.props.get("tags") or {}
    missing = [tag for tag in REQUIRED_TAGS if not tags.get(tag)]
    return f"tags {missing} are missing" if missing else None


def _protected_in_prod(subject: Subject) -> str | None:
    if subject.environment != "prod" or subject.protect:
        return None
    return "a stateful prod resource is not protected"


def _rule(
    name: str,
    types: str | tuple[str, ...],
    enforcement: Enforcement,
    description: str,
    remediation: str,
    check: Check,
    network_isolation: bool = False,
) -> Rule:
    return Rule(
        name,
        description,
        (types,) if isinstance(types, str) else types,
        enforcement,
        remediation,
        check,
        network_isolation,
    )


M: Enforcement = "mandatory"
A: Enforcement = "advisory"

RULES: tuple[Rule, ...] = (
    _rule(
        "storage-https-only",
        STORAGE,
        M,
        "Storage accepts HTTPS only.",
        "set enable_https_traffic_only=True",
        _require("enableHttpsTrafficOnly", True, "plain HTTP is accepted"),
    ),
    _rule(
        "storage-min-tls-1-2",
        STORAGE,
        M,
        "Storage requires TLS 1.2 or later.",
        'set minimum_tls_version="TLS1_2"',
        _tls,
    ),
    _rule(
        "storage-no-public-blob-access",
        STORAGE,
        M,
        "No anonymous read access to blobs.",
        "set allow_blob_public_access=False",
        _require("allowBlobPublicAccess", False, "blobs can be made public"),
    ),
    _rule(
        "storage-shared-key-disabled",
        STORAGE,
        A,
        "Shared key (account key) access is off; AML uses identities. Advisory: Kubernetes online endpoints "
        "with keys off have no Microsoft source (AZURE-FACTS 33), so the customer-VNet design keeps them on.",
        'set allow_shared_key_access=False and the workspace\'s system_datastores_auth_mode="identity"',
        _require("allowSharedKeyAccess", False, "account keys authorize requests"),
    ),
    _rule(
        "storage-no-cross-tenant-replication",
        STORAGE,
        A,
        "Objects are not replicated to other tenants.",
        "set allow_cross_tenant_replication=False",
        _forbid("allowCrossTenantReplication", True, "cross-tenant replication is allowed"),
    ),
    _rule(
        "storage-public-network-disabled",
        STORAGE,
        M,
        "Storage is reached through private endpoints only.",
        'set public_network_access="Disabled" and add blob/file private endpoints (prod profile)',
        _public_access_disabled(),
        network_isolation=True,
    ),
    _rule(
        "storage-blob-soft-delete",
        BLOB_SERVICE,
        M,
        "Deleted blobs are kept at least 7 days.",
        "set delete_retention_policy=DeleteRetentionPolicyArgs(enabled=True, days=7 or more)",
        _retention("deleteRetentionPolicy", 7),
    ),
    _rule(
        "storage-container-soft-delete",
        BLOB_SERVICE,
        M,
        "Deleted containers are kept at least 7 days.",
        "set container_delete_retention_policy=DeleteRetentionPolicyArgs(enabled=True, days=7 or more)",
        _retention("containerDeleteRetentionPolicy", 7),
    ),
    _rule(
        "keyvault-rbac-authorization",
        KEY_VAULT,
        M,
        "Key Vault is authorized by Azure RBAC, not access policies.",
        "set properties.enable_rbac_authorization=True and grant Key Vault roles",
        _require("properties.enableRbacAuthorization", True, "access policies authorize the vault"),
    ),
    _rule(
        "keyvault-purge-protection",
        KEY_VAULT,
        M,
        "Deleted vaults and secrets cannot be purged early.",
        "set properties.enable_purge_protection=True (it cannot be turned off again)",
        _require("properties.enablePurgeProtection", True, "purge protection is off"),
    ),
    _rule(
        "keyvault-soft-delete-90-days",
        KEY_VAULT,
        M,
        "Deleted vault objects are kept 90 days.",
        "set properties.enable_soft_delete=True and soft_delete_retention_in_days=90",
        _kv_soft_delete,
    ),
    _rule(
        "keyvault-public-network-disabled",
        KEY_VAULT,
        M,
        "Key Vault is reached through its private endpoint only.",
        'set properties.public_network_access="Disabled" and add a vault private endpoint (prod profile)',
        _public_access_disabled("properties.publicNetworkAccess"),
        network_isolation=True,
    ),
    _rule(
        "registry-admin-user-disabled",
        REGISTRY,
        M,
        "The registry's shared admin account is off.",
        "set admin_user_enabled=False; pull with AcrPull role assignments",
        _require("adminUserEnabled", False, "the admin user is on"),
    ),
    _rule(
        "registry-anonymous-pull-disabled",
        REGISTRY,
        M,
        "Images cannot be pulled anonymously.",
        "leave anonymous_pull_enabled unset or False",
        _forbid("anonymousPullEnabled", True, "anonymous pull is on"),
    ),
    _rule(
        "registry-public-network-disabled",
        REGISTRY,
        M,
        "The registry is reached through a private endpoint.",
        'Premium SKU with public_network_access="Disabled" and a registry private endpoint (prod profile)',
        _public_access_disabled(),
        network_isolation=True,
    ),
    _rule(
        "log-analytics-retention",
        LOG_ANALYTICS,
        M,
        "Logs are kept at least 30 days.",
        "set retention_in_days=30 or more (config logRetentionDays)",
        _log_retention,
    ),
    _rule(
        "app-insights-workspace-based",
        APP_INSIGHTS,
        M,
        "Application Insights stores data in Log Analytics.",
        "set workspace_resource_id to the Log Analytics workspace id (classic resources are retired)",
        _present("workspaceResourceId", "Application Insights is classic"),
    ),
    _rule(
        "diagnostics-to-log-analytics",
        DIAGNOSTIC_SETTING,
        M,
        "Diagnostic settings send logs/metrics to Log Analytics.",
        "set workspace_id and enable at least one log category group or metric",
        _diagnostics,
    ),
    _rule(
        "workspace-system-identity",
        ML_WORKSPACE,
        M,
        "The AML workspace has a system-assigned identity.",
        'set identity=ManagedServiceIdentityArgs(type="SystemAssigned")',
        _system_identity("identity.type"),
    ),
    _rule(
        "workspace-v1-legacy-mode-off",
        ML_WORKSPACE,
        M,
        "The workspace does not run in v1 legacy mode.",
        "leave v1_legacy_mode unset or False",
        _forbid("v1LegacyMode", True, "v1 legacy mode is on"),
    ),
    _rule(
        "workspace-identity-datastore-auth",
        ML_WORKSPACE,
        M,
        "Datastores authenticate with the workspace identity.",
        'set system_datastores_auth_mode="identity" (lets storage keep shared keys off)',
        _require("systemDatastoresAuthMode", "identity", "datastores use account keys"),
    ),
    _rule(
        "workspace-public-network-disabled",
        ML_WORKSPACE,
        M,
        "The workspace is reached through its private endpoint.",
        'set public_network_access="Disabled" and add an amlworkspace private endpoint (prod profile)',
        _public_access_disabled(),
        network_isolation=True,
    ),
    _rule(
        "workspace-managed-network-isolated",
        ML_WORKSPACE,
        M,
        "Workspace outbound traffic is limited to approved rules, or the workspace runs its compute in our "
        "VNet (isolation Disabled, the customer-VNet design of how-to-managed-network.md).",
        'set managed_network.isolation_mode="AllowOnlyApprovedOutbound" with FQDN rules for package feeds, '
        'or "Disabled" with the compute cluster in the training subnet',
        _workspace_isolated,
        network_isolation=True,
    ),
    _rule(
        "workspace-image-build-compute",
        ML_WORKSPACE,
        M,
        "A private workspace builds images on its compute cluster.",
        "set image_build_compute to the compute cluster name",
        _image_build_compute,
    ),
    _rule(
        "compute-no-node-public-ip",
        ML_COMPUTE,
        M,
        "Compute cluster nodes have no public IP.",
        "set properties.properties.enable_node_public_ip=False and place the cluster in a subnet",
        _aml_compute(_require("properties.properties.enableNodePublicIp", False, "nodes get public IPs")),
        network_isolation=True,
    ),
    _rule(
        "compute-ssh-disabled",
        ML_COMPUTE,
        M,
        "No SSH port is open on compute cluster nodes.",
        'set properties.properties.remote_login_port_public_access="Disabled"',
        _aml_compute(
            _require("properties.properties.remoteLoginPortPublicAccess", "Disabled", "SSH is open")
        ),
    ),
    _rule(
        "compute-local-auth-disabled",
        ML_COMPUTE,
        M,
        "Compute uses Entra ID, not local keys.",
        "set properties.disable_local_auth=True",
        _aml_compute(_require("properties.disableLocalAuth", True, "local authentication is on")),
    ),
    _rule(
        "aks-managed-identity",
        AKS,
        M,
        "The AKS cluster runs with a managed identity.",
        'set identity=ManagedClusterIdentityArgs(type="SystemAssigned")',
        _managed_identity,
    ),
    _rule(
        "aks-azure-rbac",
        AKS,
        M,
        "Kubernetes access is Entra ID + Azure RBAC (local accounts stay on for the Azure ML extension: "
        "how-to-deploy-kubernetes-extension.md, Limitations).",
        "set aad_profile=ManagedClusterAADProfileArgs(managed=True, enable_azure_rbac=True)",
        _aks_rbac,
    ),
    _rule(
        "aks-network-policy",
        AKS,
        M,
        "Pod traffic is governed by a network policy engine.",
        'set network_profile.network_policy="azure" (or calico/cilium)',
        _aks_network_policy,
    ),
    _rule(
        "aks-private-api-server",
        AKS,
        M,
        "The Kubernetes API server has no public endpoint.",
        "set api_server_access_profile.enable_private_cluster=True (prod profile)",
        _require("apiServerAccessProfile.enablePrivateCluster", True, "the API server is public"),
        network_isolation=True,
    ),
    _rule(
        "aks-no-node-public-ip",
        AKS,
        M,
        "AKS nodes have no public IP.",
        "set enable_node_public_ip=False on every agent pool profile",
        _aks_node_public_ip,
    ),
    _rule(
        "aks-inference-internal-load-balancer",
        K8S_EXTENSION,
        M,
        "AML inference is served on an internal load balancer.",
        'set configuration_settings inferenceRouterServiceType="loadBalancer", '
        'internalLoadBalancerProvider="azure"',
        _internal_inference,
    ),
    _rule(
        "nsg-no-open-management-ports",
        NSG,
        M,
        "No NSG rule opens SSH or RDP to the internet.",
        "remove the rule or restrict its source to a known address range / the agents subnet",
        _open_management_ports,
    ),
    _rule(
        "subnet-has-nsg",
        SUBNET,
        M,
        "Every workload subnet has a network security group.",
        "set network_security_group=NetworkSecurityGroupArgs(id=<nsg id>)",
        _subnet_nsg,
    ),
    _rule(
        "private-endpoint-connection",
        PRIVATE_ENDPOINT,
        M,
        "A private endpoint targets a resource and group.",
        "set private_link_service_connections with private_link_service_id and group_ids",
        _private_link,
    ),
    _rule(
        "private-endpoint-dns",
        PRIVATE_DNS_ZONE_GROUP,
        M,
        "Private endpoints register in a private DNS zone.",
        "add a PrivateDnsZoneGroup with the privatelink zone of the endpoint's group id",
        _dns_zone_configs,
    ),
    _rule(
        "private-dns-link-no-autoregistration",
        PRIVATE_DNS_LINK,
        M,
        "Private link zones are linked for resolution only.",
        "set registration_enabled=False",
        _require("registrationEnabled", False, "VMs auto-register into a private link zone"),
    ),
    _rule(
        "subnet-no-default-outbound",
        SUBNET,
        A,
        "Subnets have no implicit internet outbound access.",
        "set default_outbound_access=False (egress through the managed network or a NAT gateway)",
        _require("defaultOutboundAccess", False, "VMs get implicit outbound internet access"),
    ),
    _rule(
        "aks-trusted-access-scoped",
        TRUSTED_ACCESS,
        M,
        "The workspace's trusted access to AKS uses its ML role only.",
        'set roles=["Microsoft.MachineLearningServices/workspaces/mlworkload"]',
        _trusted_access_roles,
    ),
    _rule(
        "devops-pool-not-auto-provisioned",
        DEVOPS_POOL,
        M,
        "The agent pool is not offered to every project.",
        "set auto_provision=False and add a Queue in the platform project only",
        _forbid("autoProvision", True, "the pool is provisioned into every project of the organization"),
    ),
    _rule(
        "devops-queue-bound-to-pool",
        DEVOPS_QUEUE,
        M,
        "The project queue points at the platform's pool.",
        "set agent_pool_id to the platform pool's id",
        _present("agentPoolId", "the queue has no pool"),
    ),
    _rule(
        "devops-environment-described",
        DEVOPS_ENVIRONMENT,
        A,
        "Pipeline environments say what they deploy.",
        "set description (e.g. 'Deployments of the prod platform')",
        _present("description", "the environment has no description"),
    ),
    _rule(
        "nic-no-public-ip",
        NIC,
        M,
        "Agent VM network interfaces have no public IP.",
        "remove public_ip_address from the IP configurations; reach agents through Azure DevOps only",
        _nic_public_ip,
    ),
    _rule(
        "vm-ssh-key-only",
        VM,
        M,
        "Linux VMs accept SSH keys only.",
        "set os_profile.linux_configuration.disable_password_authentication=True with an SSH public key "
        "and no admin_password",
        _vm_ssh_key_only,
    ),
    _rule(
        "role-assignment-no-privileged-role",
        ROLE_ASSIGNMENT,
        M,
        "No assignment of Owner or User Access Administrator.",
        "grant the narrowest built-in role (e.g. Contributor on the resource group)",
        _no_privileged_role,
    ),
    _rule(
        "federated-credential-exchange",
        FEDERATED_CREDENTIAL,
        M,
        "Federated credentials trust one https issuer.",
        'set audiences=["api://AzureADTokenExchange"] and the issuer of the Azure DevOps service connection',
        _federated_audience,
    ),
    _rule(
        "devops-variable-group-secrets",
        DEVOPS_VARIABLE_GROUP,
        M,
        "Variable group secrets are stored as secrets.",
        "move the value to secret_value (is_secret=True) or link the group to Key Vault",
        _variable_group_secrets,
    ),
    _rule(
        "devops-service-connection-federated",
        DEVOPS_SERVICE_CONNECTION,
        A,
        "The Azure service connection uses workload identity federation (no client secret).",
        'set service_endpoint_authentication_scheme="WorkloadIdentityFederation" '
        "(config serviceConnectionAuth)",
        _require(
            "serviceEndpointAuthenticationScheme", "WorkloadIdentityFederation", "a client secret is stored"
        ),
    ),
    _rule(
        "devops-prod-approval",
        DEVOPS_CHECK_APPROVAL,
        M,
        "Deployments wait for a named approver.",
        "set approvers (config prodApprovers) and leave requester_can_approve False",
        _approval,
    ),
    _rule(
        "devops-project-private",
        DEVOPS_PROJECT,
        M,
        "The Azure DevOps project is private.",
        'leave visibility unset or "private"',
        _forbid("visibility", "public", "the project is public"),
    ),
    _rule(
        "tags-required",
        TAGGABLE,
        M,
        "Every taggable resource carries environment, project and owner tags.",
        "pass CommonArgs.tags_with() as tags",
        _tags,
    ),
    _rule(
        "prod-stateful-protected",
        STATEFUL,
        M,
        "Stateful prod resources are protected and retained.",
        "create them with protect=True and retain_on_delete=True (child_opts(self, common.protect))",
        _protected_in_prod,
    ),
)

RULES_BY_NAME: dict[str, Rule] = {rule.name: rule for rule in RULES}


@dataclass(frozen=True)
class StackRule:
    """A requirement that spans resources (CrossGuard StackValidationPolicy): checked on the whole stack."""

    name: str
    description: str
    enforcement: Enforcement
    remediation: str
    check: Callable[[Sequence[tuple[str, str, Mapping[str, Any]]]], list[str]]
    """(resource type, name, props) of every resource -> one problem per offending resource."""
    network_isolation: bool = False

    def level(self, environment: Environment) -> Enforcement:
        return "advisory" if self.network_isolation and environment == "dev" else self.enforcement

    def levels(self) -> tuple[Enforcement, ...]:
        return _levels(self.enforcement, self.network_isolation)

    def policy_name(self, level: Enforcement) -> str:
        return _policy_name(self.name, self.enforcement, level)

    def violations(self, resources: Sequence[tuple[str, str, Mapping[str, Any]]]) -> list[str]:
        return [f"{problem}. Fix: {self.remediation}" for problem in self.check(resources)]

    def validator(self, level: Enforcement) -> Callable[[Any, Report], None]:
        """A CrossGuard stack validate(args, report) for stacks whose environment puts the rule at `level`."""

        def validate(args: Any, report: Report) -> None:
            resources = [(r.resource_type, r.name, r.props) for r in args.resources]
            environment = stack_environment(args.resources)
            if self.level(environment) == level:
                for message in self.violations(resources):
                    report(message)

        return validate


def _compute_network_isolated(resources: Sequence[tuple[str, str, Mapping[str, Any]]]) -> list[str]:
    # A cluster is isolated in our subnet, or in the workspace's managed VNET (which forbids a subnet).
    managed = any(
        kind == ML_WORKSPACE
        and get(props, "managedNetwork.isolationMode")
        in ("AllowOnlyApprovedOutbound", "AllowInternetOutbound")
        for kind, _, props in resources
    )
    return [
        f"compute {name} is neither in a subnet nor in a managed-network workspace"
        for kind, name, props in resources
        if kind == ML_COMPUTE
        and get(props, "properties.computeType") == "AmlCompute"
        and not get(props, "properties.properties.subnet.id")
        and not managed
    ]


STACK_RULES: tuple[StackRule, ...] = (
    StackRule(
        "compute-network-isolated",
        "Compute clusters run in the platform VNET or the workspace's managed network.",
        M,
        "set properties.properties.subnet to the training subnet, or give the workspace a managed network "
        "(managed_network.isolation_mode AllowOnlyApprovedOutbound)",
        _compute_network_isolated,
        network_isolation=True,
    ),
)


@dataclass(frozen=True)
class Finding:
    """A rule a resource breaks, with the enforcement that applies in its environment."""

    rule: str
    level: Enforcement
    message: str


def evaluate(
    resource_type: str, props: Mapping[str, Any], *, protect: bool = False, stack_environment: str = "prod"
) -> list[Finding]:
    """Every rule a resource breaks; its environment is its `environment` tag, else `stack_environment`."""
    env = environment_of(props, stack_environment)
    subject = Subject(resource_type, props, protect, env)
    findings = []
    for rule in RULES:
        message = rule.violation(subject)
        if message is not None:
            findings.append(Finding(rule.name, rule.level(env), message))
    return findings


def evaluate_stack(
    resources: Sequence[tuple[str, str, Mapping[str, Any]]], stack_environment: str = "prod"
) -> list[Finding]:
    """Every stack rule the resources (type, name, props) break, at the stack environment's level."""
    env = environment_of({}, stack_environment)
    return [
        Finding(rule.name, rule.level(env), message)
        for rule in STACK_RULES
        for message in rule.violations(resources)
    ]
