"""Container registry rules: no shared admin or anonymous pull, private access that image builds survive."""

from __future__ import annotations

from . import types as t
from .core import M, Rule, StackRule, Subject, forbid, require, rule
from .values import get


def _private_registry_premium_trusted(subject: Subject) -> str | None:
    if get(subject.props, "publicNetworkAccess") != "Disabled":
        return None
    sku = get(subject.props, "sku.name")
    bypass = get(subject.props, "networkRuleBypassOptions")
    problems = []
    if sku != "Premium":
        problems.append(f"SKU is {sku!r} (private endpoints need Premium)")
    if bypass not in (None, "AzureServices"):  # ARM's default is AzureServices
        problems.append(
            f"`networkRuleBypassOptions` is {bypass!r}, so Azure ML cannot reach it as a trusted service"
        )
    return f"a private registry that Azure ML cannot use: {'; '.join(problems)}" if problems else None


def _no_quarantine(subject: Subject) -> str | None:
    status = str(get(subject.props, "policies.quarantinePolicy.status") or "").lower()
    return "quarantine is on, which batch deployments do not support" if status == "enabled" else None


RULES: tuple[Rule, ...] = (
    rule(
        "registry-admin-user-disabled",
        t.REGISTRY,
        M,
        "The registry's shared admin account is off.",
        "set admin_user_enabled=False; pull with AcrPull role assignments",
        require("adminUserEnabled", False, "the admin user is on"),
    ),
    rule(
        "registry-anonymous-pull-disabled",
        t.REGISTRY,
        M,
        "Images cannot be pulled anonymously.",
        "leave anonymous_pull_enabled unset or False",
        forbid("anonymousPullEnabled", True, "anonymous pull is on"),
    ),
    rule(
        "registry-public-network-disabled",
        t.REGISTRY,
        M,
        "The registry is reached through a private endpoint.",
        'Premium SKU with public_network_access="Disabled" and a registry private endpoint (prod profile)',
        require("publicNetworkAccess", "Disabled", "public network access is on"),
        network_isolation=True,
    ),
    rule(
        "registry-private-premium-trusted-services",
        t.REGISTRY,
        M,
        "A private registry is Premium and lets trusted Azure services (Azure ML) through.",
        'set sku=SkuArgs(name="Premium") and network_rule_bypass_options="AzureServices"',
        _private_registry_premium_trusted,
        facts=(24,),
        source="how-to-secure-workspace-vnet.md, Prerequisites (Azure Container Registry); "
        "how-to-secure-kubernetes-inferencing-environment.md, special notes",
    ),
    rule(
        "registry-no-quarantine",
        t.REGISTRY,
        M,
        "The registry does not quarantine images: batch endpoints do not support it.",
        'leave policies.quarantine_policy unset or status="disabled"',
        _no_quarantine,
        facts=(31,),
        source="how-to-secure-batch-endpoint.md, Securing batch endpoints (warning on Quarantine)",
    ),
)

STACK_RULES: tuple[StackRule, ...] = ()
