"""Key Vault rules: RBAC authorization, purge protection, soft delete, private network access."""

from __future__ import annotations

from . import types as t
from .core import M, Rule, StackRule, Subject, require, rule
from .values import get

SOFT_DELETE_DAYS = 90


def _soft_delete(subject: Subject) -> str | None:
    days = get(subject.props, "properties.softDeleteRetentionInDays")
    enabled = get(subject.props, "properties.enableSoftDelete")
    if enabled is not False and days == SOFT_DELETE_DAYS:
        return None
    state = "off" if enabled is False else f"{days!r} days"
    return f"soft delete is {state}, must be on for {SOFT_DELETE_DAYS} days"


RULES: tuple[Rule, ...] = (
    rule(
        "keyvault-rbac-authorization",
        t.KEY_VAULT,
        M,
        "Key Vault is authorized by Azure RBAC, not access policies.",
        "set properties.enable_rbac_authorization=True and grant Key Vault roles",
        require("properties.enableRbacAuthorization", True, "access policies authorize the vault"),
    ),
    rule(
        "keyvault-purge-protection",
        t.KEY_VAULT,
        M,
        "Deleted vaults and secrets cannot be purged early.",
        "set properties.enable_purge_protection=True (it cannot be turned off again)",
        require("properties.enablePurgeProtection", True, "purge protection is off"),
    ),
    rule(
        "keyvault-soft-delete-90-days",
        t.KEY_VAULT,
        M,
        "Deleted vault objects are kept 90 days.",
        "set properties.enable_soft_delete=True and soft_delete_retention_in_days=90",
        _soft_delete,
    ),
    rule(
        "keyvault-public-network-disabled",
        t.KEY_VAULT,
        M,
        "Key Vault is reached through its private endpoint only.",
        'set properties.public_network_access="Disabled" and add a vault private endpoint (prod profile)',
        require("properties.publicNetworkAccess", "Disabled", "public network access is on"),
        network_isolation=True,
    ),
)

STACK_RULES: tuple[StackRule, ...] = ()
