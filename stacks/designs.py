"""The two network isolation designs as data: what each declares, where compute runs, how machines egress."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping

from stacks.model import IsolationDesign, IsolationMode, ManagedIsolationMode, OnlineTarget

if TYPE_CHECKING:
    from stacks.model import StackConfig

DESIGNS: tuple[IsolationDesign, ...] = ("customerVnet", "managedVnet")

SUBNET_ROLES: Mapping[IsolationDesign, tuple[str, ...]] = {
    # Compute cluster and AKS nodes join our subnets (AZURE-FACTS 1).
    "customerVnet": ("training", "aks", "agents", "private-endpoints"),
    # Azure ML runs compute in its managed VNet; ours hosts only the agents and the private endpoints (1).
    "managedVnet": ("agents", "private-endpoints"),
}
MACHINE_SUBNETS = frozenset({"training", "aks", "agents"})
"""Subnets whose VMs need an explicit outbound path (AZURE-FACTS 3, 4): each one egresses through the NAT."""

STORAGE_GROUPS_ALL = ("blob", "file", "queue", "table")
"""Batch in a customer VNet needs all four storage sub-resources private (AZURE-FACTS 31)."""
STORAGE_GROUPS_CLIENTS = ("blob", "file")
"""What clients in our VNet (agents, studio users) use when compute lives in the managed VNet."""
BATCH_STORAGE_RULES = ("queue", "table")
"""Managed-network private endpoint rules batch needs under approved outbound (AZURE-FACTS 9)."""


@dataclass(frozen=True)
class DesignPlan:
    """Everything that differs between the designs, decided once from the config (no Azure calls)."""

    design: IsolationDesign
    subnet_roles: tuple[str, ...]
    """Subnets declared in our VNet."""
    egress_roles: tuple[str, ...]
    """Subnets associated with the NAT gateway (the machine subnets of the design)."""
    private_endpoints: bool
    """Private endpoints (and their DNS zones) in our VNet."""
    storage_endpoint_groups: tuple[str, ...]
    """Storage sub-resources that get a private endpoint in our VNet."""
    workspace_isolation_mode: IsolationMode
    """The workspace's managed_network isolation mode."""
    provision_network_now: bool
    """Provision the managed network with the workspace (AZURE-FACTS 2)."""
    managed_storage_rules: tuple[str, ...]
    """Storage sub-resources that get a private endpoint outbound rule in the managed network."""
    compute_in_subnet: bool
    """The compute cluster joins the training subnet."""
    online_target: OnlineTarget
    """Where online deployments run: Kubernetes online endpoints on AKS, or managed online endpoints."""
    storage_shared_key_default: bool
    """Default of storageSharedKeyAccess: on only where keys-off has no Microsoft source (AZURE-FACTS 33)."""


def online_target(design: IsolationDesign, aks_enabled: bool) -> OnlineTarget:
    """Kubernetes when AKS is attached (customer VNet only), else managed online endpoints."""
    return "kubernetes" if design == "customerVnet" and aks_enabled else "managed"


def design_plan(
    design: IsolationDesign,
    *,
    public_network_access: bool,
    aks_enabled: bool,
    managed_isolation_mode: ManagedIsolationMode,
) -> DesignPlan:
    """The plan of `design` for a stack with the given public access, AKS switch and managed isolation mode."""
    if design == "customerVnet":
        # Always private endpoints here: a compute cluster without public IP reaches Azure ML only through the
        # workspace private endpoint (how-to-secure-training-vnet.md), and AKS in a VNet needs the workspace
        # and its resources on endpoints in that VNet (how-to-secure-kubernetes-inferencing-environment.md).
        target = online_target(design, aks_enabled)
        return DesignPlan(
            design=design,
            subnet_roles=SUBNET_ROLES[design],
            egress_roles=tuple(r for r in SUBNET_ROLES[design] if r in MACHINE_SUBNETS),
            private_endpoints=True,
            storage_endpoint_groups=STORAGE_GROUPS_ALL,
            workspace_isolation_mode="Disabled",
            provision_network_now=False,
            managed_storage_rules=(),
            compute_in_subnet=True,
            online_target=target,
            # Kubernetes online endpoints with shared keys off have no Microsoft source (33).
            storage_shared_key_default=target == "kubernetes",
        )
    approved = managed_isolation_mode == "AllowOnlyApprovedOutbound"
    return DesignPlan(
        design=design,
        subnet_roles=SUBNET_ROLES[design],
        egress_roles=tuple(r for r in SUBNET_ROLES[design] if r in MACHINE_SUBNETS),
        # Our VNet needs endpoints only for what is closed to the internet: the agents reach it through them.
        private_endpoints=not public_network_access,
        storage_endpoint_groups=STORAGE_GROUPS_CLIENTS,
        workspace_isolation_mode=managed_isolation_mode,
        provision_network_now=True,
        # Internet outbound reaches public queue and table storage without endpoint rules; approved outbound
        # or private storage does not (9).
        managed_storage_rules=BATCH_STORAGE_RULES if approved or not public_network_access else (),
        compute_in_subnet=False,
        online_target="managed",
        # Managed online endpoints and Parallel Run Step are in how-to-disable-local-auth-storage.md's table.
        storage_shared_key_default=False,
    )


MANAGED_VNET_AKS_REFUSAL = (
    "managedVnet cannot host the AKS inference cluster: Kubernetes compute isn't supported in an Azure ML "
    'managed virtual network (AZURE-FACTS 1; how-to-managed-network.md, Limitations: "Kubernetes and attached '
    "VMs aren't supported in an Azure Machine Learning managed virtual network\"). Fix: set enableAks=false "
    "(inference runs on managed online endpoints) or isolationDesign=customerVnet"
)


def design_diagram(design: IsolationDesign) -> str:
    """Mermaid diagram of `design` as prod plans it (public access off, AKS on where the design allows it)."""
    plan = design_plan(
        design,
        public_network_access=False,
        aks_enabled=design == "customerVnet",
        managed_isolation_mode="AllowOnlyApprovedOutbound",
    )
    lines = ["```mermaid", "flowchart LR", '    internet(("internet"))', '    nat["NAT gateway + public IP"]']
    lines.append('    subgraph vnet["our VNet"]')
    for role in plan.subnet_roles:
        lines.append(f'        {_node(role)}["{_subnet_label(role, plan)}"]')
    lines.append("    end")
    lines += [f"    {_node(role)} --> nat" for role in plan.egress_roles]
    lines.append("    nat --> internet")
    lines.append('    paas["workspace, storage, Key Vault, registry"]')
    lines.append("    pe -->|private link| paas")
    lines.append("    agents -->|hook, smoke test| pe")
    if plan.compute_in_subnet:
        lines.append("    training --> pe")
    if plan.online_target == "kubernetes":
        lines.append("    aks --> pe")
        lines.append('    agents -->|"https://sslCname"| aks')
    if not plan.compute_in_subnet:
        lines.append('    subgraph managed["Azure ML managed VNet"]')
        lines.append('        cluster["compute cluster"]')
        lines.append('        endpoints["managed online endpoints"]')
        lines.append("    end")
        lines.append("    managed -->|private endpoint rules| paas")
        lines.append('    managed -->|"FQDN rules: package feeds"| internet')
    lines.append("```")
    return "\n".join(lines)


def _node(role: str) -> str:
    return {"private-endpoints": "pe"}.get(role, role)


def _subnet_label(role: str, plan: DesignPlan) -> str:
    labels = {
        "training": "snet-training: compute cluster, no public IP",
        "aks": "snet-aks: AKS, azureml-fe on an internal LB",
        "agents": "snet-agents: DevOps agents",
        "private-endpoints": "snet-private-endpoints: " + ", ".join(_endpoint_names(plan)),
    }
    return labels[role]


def _endpoint_names(plan: DesignPlan) -> list[str]:
    return ["workspace", *(f"storage {group}" for group in plan.storage_endpoint_groups), "vault", "registry"]


def plan_of(cfg: StackConfig) -> DesignPlan:
    """The design plan of a validated stack config."""
    managed_mode = cfg.workspace_isolation_mode
    return design_plan(
        cfg.isolation_design,
        public_network_access=cfg.public_network_access,
        aks_enabled=cfg.aks is not None,
        managed_isolation_mode="AllowInternetOutbound" if managed_mode == "Disabled" else managed_mode,
    )
