"""Environment profiles: what dev and prod mean when a config key is left unset."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from stacks.model import ComputePriority, Environment, IsolationDesign, ManagedIsolationMode


@dataclass(frozen=True)
class Profile:
    """Defaults and hard requirements of one environment."""

    isolation_design: IsolationDesign
    public_network_access: bool
    allow_public_network_access: bool
    protect_stateful: bool
    private_aks_api: bool
    inference_tls_required: bool
    managed_network_isolation_mode: ManagedIsolationMode
    storage_sku: str
    log_retention_days: int
    compute_max_nodes: int
    compute_idle_seconds: int
    compute_priority: ComputePriority
    aks_node_count: int
    alerts_enabled: bool
    alert_severity: int
    alert_error_rate_percent: int
    alert_p99_latency_ms: int
    alert_no_traffic_minutes: int
    owns_model_registry: bool
    """Declares the registry dev and prod share: prod, whose lifecycle (protected, retained) it follows."""


PROFILES: Mapping[Environment, Profile] = {
    # dev: prod's topology (customer VNet, AKS, private endpoints, NAT) so the same inference path is tested
    # before prod, but cheap and reachable: low-priority nodes that scale to zero, one AKS node, public access,
    # plain HTTP on the internal load balancer.
    "dev": Profile(
        isolation_design="customerVnet",
        public_network_access=True,
        allow_public_network_access=True,
        protect_stateful=False,
        private_aks_api=False,
        inference_tls_required=False,
        managed_network_isolation_mode="AllowInternetOutbound",
        storage_sku="Standard_LRS",
        log_retention_days=30,
        compute_max_nodes=2,
        compute_idle_seconds=120,
        compute_priority="LowPriority",
        # Two, not one: blue/green holds two Kubernetes deployments of 2 CPU each (an MLflow model's minimum,
        # AZURE-FACTS 29) while traffic moves, and one 4-core node allocates 3.86 cores to pods.
        aks_node_count=2,
        # Nobody is paged for a sandbox; switched on, its alerts are informational and lenient.
        alerts_enabled=False,
        alert_severity=3,
        alert_error_rate_percent=10,
        alert_p99_latency_ms=2000,
        alert_no_traffic_minutes=240,
        owns_model_registry=False,
    ),
    # prod: the full security baseline — no public access, private API server, TLS, protected state, ZRS.
    "prod": Profile(
        isolation_design="customerVnet",
        public_network_access=False,
        allow_public_network_access=False,
        protect_stateful=True,
        private_aks_api=True,
        inference_tls_required=True,
        managed_network_isolation_mode="AllowOnlyApprovedOutbound",
        storage_sku="Standard_ZRS",
        log_retention_days=90,
        compute_max_nodes=4,
        compute_idle_seconds=600,
        compute_priority="Dedicated",
        aks_node_count=3,
        alerts_enabled=True,
        alert_severity=1,
        alert_error_rate_percent=2,
        alert_p99_latency_ms=500,
        alert_no_traffic_minutes=30,
        owns_model_registry=True,
    ),
}


def profile_table_markdown() -> str:
    """The README's dev-vs-prod table (a test keeps the README block equal to this)."""
    dev, prod = PROFILES["dev"], PROFILES["prod"]
    rows = ["| setting | dev | prod |", "| --- | --- | --- |"]
    for name in Profile.__dataclass_fields__:
        shown = [
            str(getattr(profile, name)).lower()
            if isinstance(getattr(profile, name), bool)
            else str(getattr(profile, name))
            for profile in (dev, prod)
        ]
        rows.append(f"| {name.replace('_', ' ')} | {shown[0]} | {shown[1]} |")
    return "\n".join(rows)
