"""The typed, frozen stack configuration every component is built from (no Pulumi imports here)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Mapping

Environment = Literal["dev", "prod"]
ComputePriority = Literal["Dedicated", "LowPriority"]
ServiceConnectionAuth = Literal["WorkloadIdentityFederation", "ServicePrincipal"]
IsolationMode = Literal["Disabled", "AllowInternetOutbound", "AllowOnlyApprovedOutbound"]
ManagedIsolationMode = Literal["AllowInternetOutbound", "AllowOnlyApprovedOutbound"]
IsolationDesign = Literal["customerVnet", "managedVnet"]
"""customerVnet: compute and AKS in our subnets (workspace isolation Disabled); managedVnet: Azure ML's own."""
OnlineTarget = Literal["kubernetes", "managed"]

SECRET_MASK = "[secret]"
"""What a secret value is shown as in errors, plans and diffs (policy/rules.py keeps an equal copy)."""


class Secret:
    """A config value that must only ever reach Pulumi as a secret; its repr never shows the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The plaintext, for wrapping into `pulumi.Output.secret` and nothing else."""
        return self._value

    def __repr__(self) -> str:
        return "Secret(****)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class ResourceNames:
    """Azure names of every named resource, derived as `<abbr>-<namespace>-<postfix><env>`."""

    resource_group: str
    storage_account: str
    container_registry: str
    key_vault: str
    log_analytics: str
    app_insights: str
    workspace: str
    compute_cluster: str
    compute_identity: str
    vnet: str
    nat_gateway: str
    nat_public_ip: str
    aks_cluster: str
    aks_identity: str
    aks_compute: str
    agent_vm: str
    agent_identity: str
    devops_pool: str
    service_connection: str
    service_connection_identity: str
    variable_group: str
    online_endpoint: str
    batch_endpoint: str
    model_registry: str
    """The Azure ML registry dev and prod share (no environment in it: one registry, both stacks)."""


@dataclass(frozen=True)
class NetworkSettings:
    """VNET address plan (CIDRs validated and non-overlapping) and the isolation design it serves."""

    address_space: str
    training_subnet: str
    aks_subnet: str
    agents_subnet: str
    private_endpoints_subnet: str
    aks_service_cidr: str
    aks_dns_service_ip: str
    private_endpoints: bool
    design: IsolationDesign = "customerVnet"


@dataclass(frozen=True)
class ComputeSettings:
    """The AML compute cluster for training and image builds."""

    vm_size: str
    min_nodes: int
    max_nodes: int
    idle_seconds_before_scale_down: int
    priority: ComputePriority
    ssh_enabled: bool


@dataclass(frozen=True)
class InferenceTls:
    """TLS of the AKS inference router: the host name clients use and its PEM certificate chain and key."""

    ssl_cname: str
    cert_pem: Secret
    key_pem: Secret


@dataclass(frozen=True)
class AksSettings:
    """AKS inference cluster attached to the workspace."""

    node_vm_size: str
    node_count: int
    private_cluster: bool
    tls: InferenceTls | None = None
    """None serves plain HTTP on the internal load balancer (dev only)."""
    load_balancer_ip: str | None = None
    """The internal load balancer IP azureml-fe got, once known; the scoring DNS record points at it."""


@dataclass(frozen=True)
class AgentVmSettings:
    """Self-hosted Azure DevOps agent VM."""

    vm_size: str
    agent_count: int
    admin_username: str
    ssh_public_key: str


@dataclass(frozen=True)
class DevOpsSettings:
    """Azure DevOps objects: project, pool, service connection, variable group, environments."""

    org_url: str
    project_name: str
    pat: Secret
    service_connection_auth: ServiceConnectionAuth
    service_principal_client_id: str | None
    service_principal_secret: Secret | None
    prod_approvers: tuple[str, ...]


@dataclass(frozen=True)
class AlertSettings:
    """Who is told, and when: the action group's receivers and the alert thresholds."""

    emails: tuple[str, ...]
    webhook_url: Secret | None
    severity: int
    error_rate_percent: int
    p99_latency_ms: int
    no_traffic_minutes: int
    node_cpu_percent: int
    node_memory_percent: int


@dataclass(frozen=True)
class PrometheusSettings:
    """Managed Prometheus for AKS and Azure Managed Grafana over it."""

    grafana_admins: tuple[str, ...]


@dataclass(frozen=True)
class ModelRegistrySettings:
    """The Azure ML registry dev and prod share; promotion copies dev's champion into it."""

    owner: bool
    """This stack declares the registry and its role assignments (the prod stack, see profiles)."""
    writers: tuple[str, ...] = ()
    """Object ids of the identities that run `promote` (AzureML Registry User); owner only."""
    readers: tuple[str, ...] = ()
    """Object ids of other identities that read it, e.g. the dev workspace's (Reader); owner only."""
    regions: tuple[str, ...] = ()
    """Regions besides the stack's location the registry replicates to (how-to-manage-registries.md)."""


@dataclass(frozen=True)
class StackConfig:
    """Everything one stack needs, validated and with its environment profile applied."""

    project: str
    stack: str
    environment: Environment
    namespace: str
    postfix: str
    location: str
    owner: str
    names: ResourceNames
    tags: Mapping[str, str]
    public_network_access: bool
    protect_stateful: bool
    log_retention_days: int
    storage_sku: str
    workspace_isolation_mode: IsolationMode
    network: NetworkSettings
    compute: ComputeSettings
    aks: AksSettings | None
    agent_vm: AgentVmSettings | None
    devops: DevOpsSettings | None
    post_deploy_hook: bool = False
    alerts: AlertSettings | None = None
    prometheus: PrometheusSettings | None = None
    drift_threshold: float = 0.1
    isolation_design: IsolationDesign = "customerVnet"
    storage_shared_key_access: bool = False
    """Shared-key (account key) access on the workspace storage account (AZURE-FACTS 33: a switch)."""
    github_repository: str | None = None
    """GitHub <owner>/<repository> whose deploy jobs federate to the CI identity; None for none."""
    model_registry: ModelRegistrySettings | None = None
