"""Deterministic Azure names in the `<abbr>-<namespace>-<postfix><env>` style, with each type's rules."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields

from stacks.model import ResourceNames

# Compute targets are scoped to one workspace, so they keep the short fixed names the AML specs use.
COMPUTE_CLUSTER_NAME = "cpu-cluster"
AKS_COMPUTE_NAME = "aks-inference"


@dataclass(frozen=True)
class NameRule:
    """What Azure accepts for one resource type's name."""

    azure_type: str
    pattern: str
    min_length: int
    max_length: int
    allowed: str


_ALNUM_HYPHEN = r"^[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]$"
# Microsoft.Network names (NAT gateway, public IP): Learn "Naming rules and restrictions for Azure resources".
_NETWORK_NAME = r"^[a-zA-Z0-9]([\w.-]*\w)?$"
RULES: dict[str, NameRule] = {
    "resource_group": NameRule("resource group", r"^[-\w.()]*[-\w()]$", 1, 90, "letters, digits, -_.()"),
    "storage_account": NameRule("storage account", r"^[a-z0-9]+$", 3, 24, "lowercase letters and digits"),
    "container_registry": NameRule("container registry", r"^[a-zA-Z0-9]+$", 5, 50, "letters and digits"),
    "key_vault": NameRule(
        "Key Vault",
        r"^[a-zA-Z](?!.*--)[a-zA-Z0-9-]*[a-zA-Z0-9]$",
        3,
        24,
        "letters, digits and single hyphens, starting with a letter",
    ),
    "log_analytics": NameRule("Log Analytics workspace", _ALNUM_HYPHEN, 4, 63, "letters, digits, hyphens"),
    "app_insights": NameRule("Application Insights", r"^[^%&\\?/]+$", 1, 255, "no %&\\?/"),
    "workspace": NameRule("AML workspace", r"^[a-zA-Z0-9][\w-]*$", 3, 33, "letters, digits, _ and -"),
    "compute_cluster": NameRule("AML compute", r"^[a-zA-Z][a-zA-Z0-9-]*$", 2, 16, "letters, digits, hyphens"),
    "compute_identity": NameRule("managed identity", r"^[a-zA-Z0-9][\w-]*$", 3, 128, "letters, digits, _ -"),
    "vnet": NameRule("virtual network", r"^[a-zA-Z0-9][\w.-]*\w$", 2, 64, "letters, digits, _.-"),
    "nat_gateway": NameRule("NAT gateway", _NETWORK_NAME, 1, 80, "letters, digits, _.-"),
    "nat_public_ip": NameRule("public IP address", _NETWORK_NAME, 1, 80, "letters, digits, _.-"),
    "aks_cluster": NameRule("AKS cluster", r"^[a-zA-Z0-9][\w-]*[a-zA-Z0-9]$", 1, 63, "letters, digits, _ -"),
    "aks_identity": NameRule("managed identity", r"^[a-zA-Z0-9][\w-]*$", 3, 128, "letters, digits, _ -"),
    "aks_compute": NameRule("AML compute", r"^[a-zA-Z][a-zA-Z0-9-]*$", 2, 16, "letters, digits, hyphens"),
    "agent_vm": NameRule(
        "Linux VM", r"^[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]$", 1, 64, "letters, digits, hyphens"
    ),
    "agent_identity": NameRule("managed identity", r"^[a-zA-Z0-9][\w-]*$", 3, 128, "letters, digits, _ -"),
    "devops_pool": NameRule("Azure DevOps agent pool", r"^[^\\/:*?\"<>|]+$", 1, 64, 'no \\/:*?"<>|'),
    "service_connection": NameRule("service connection", r"^[^\\/:*?\"<>|]+$", 1, 64, 'no \\/:*?"<>|'),
    "service_connection_identity": NameRule(
        "managed identity", r"^[a-zA-Z0-9][\w-]*$", 3, 128, "letters, digits, _ -"
    ),
    "variable_group": NameRule("variable group", r"^[^\\/:*?\"<>|]+$", 1, 64, 'no \\/:*?"<>|'),
    "online_endpoint": NameRule(
        "AML endpoint", r"^[a-zA-Z][a-zA-Z0-9-]*$", 3, 32, "letters, digits, hyphens"
    ),
    "batch_endpoint": NameRule("AML endpoint", r"^[a-zA-Z][a-zA-Z0-9-]*$", 3, 32, "letters, digits, hyphens"),
    # how-to-manage-registries.md: 2-32 characters, alphanumerics, `-` and `_`, starting alphanumeric.
    "model_registry": NameRule(
        "AML registry",
        r"^[a-zA-Z0-9][a-zA-Z0-9_-]*$",
        2,
        32,
        "letters, digits, _ and -, starting alphanumeric",
    ),
}


def derive_names(namespace: str, postfix: str, environment: str) -> ResourceNames:
    """All resource names for one stack; pure, so a rename is visible in review before it happens."""
    suffix = f"{namespace}-{postfix}{environment}"
    compact = f"{namespace}{postfix}{environment}"
    return ResourceNames(
        resource_group=f"rg-{suffix}",
        storage_account=f"st{compact}",
        container_registry=f"cr{compact}",
        key_vault=f"kv-{suffix}",
        log_analytics=f"log-{suffix}",
        app_insights=f"appi-{suffix}",
        workspace=f"mlw-{suffix}",
        compute_cluster=COMPUTE_CLUSTER_NAME,
        compute_identity=f"id-cpu-{suffix}",
        vnet=f"vnet-{suffix}",
        nat_gateway=f"ng-{suffix}",
        nat_public_ip=f"pip-ng-{suffix}",
        aks_cluster=f"aks-{suffix}",
        aks_identity=f"id-aks-{suffix}",
        aks_compute=AKS_COMPUTE_NAME,
        agent_vm=f"vm-agent-{suffix}",
        agent_identity=f"id-agent-{suffix}",
        devops_pool=f"pool-{suffix}",
        service_connection=f"sc-azure-{suffix}",
        service_connection_identity=f"id-sc-{suffix}",
        variable_group=f"vg-{suffix}",
        # Endpoint names become DNS labels unique per Azure region, so they carry the full suffix.
        online_endpoint=f"ep-{suffix}",
        batch_endpoint=f"bep-{suffix}",
        # Shared by the dev and prod stacks of one namespace, so without the environment.
        model_registry=f"mlr-{namespace}-{postfix}",
    )


def name_problems(names: ResourceNames) -> list[str]:
    """Every derived name that Azure would refuse, each saying which rule it breaks."""
    problems = []
    for field in fields(names):
        value = getattr(names, field.name)
        rule = RULES[field.name]
        if not rule.min_length <= len(value) <= rule.max_length:
            problems.append(
                f"{rule.azure_type} name '{value}' has {len(value)} characters; "
                f"Azure allows {rule.min_length}-{rule.max_length}"
            )
        elif not re.match(rule.pattern, value):
            problems.append(f"{rule.azure_type} name '{value}' may only contain {rule.allowed}")
    return problems


def max_namespace_length(postfix: str, environment: str) -> int:
    """The longest namespace whose every derived name still fits its Azure limit."""
    longest = 0
    for length in range(1, 64):
        if name_problems(derive_names("a" * length, postfix, environment)):
            break
        longest = length
    return longest


def monitoring_names(namespace: str, postfix: str, environment: str) -> dict[str, str]:
    """Names of the alerting and Prometheus/Grafana resources (Grafana allows 2-23 characters)."""
    suffix = f"{namespace}-{postfix}{environment}"
    return {
        "action_group": f"ag-{suffix}",
        # Shown in notification texts; Azure allows at most 12 characters.
        "action_group_short": f"ml{namespace}{environment}"[:12],
        "monitor_workspace": f"amw-{suffix}",
        "grafana": f"amg-{suffix}",
    }
