"""Rules every family shares: the required tags, and protection of stateful prod resources."""

from __future__ import annotations

from . import types as t
from .core import M, Rule, StackRule, Subject, rule
from .values import as_map

REQUIRED_TAGS = ("environment", "project", "owner")

# Azure resources of the program that accept tags (child resources such as subnets and blob services do not).
TAGGABLE = (
    t.RESOURCE_GROUP,
    t.STORAGE,
    t.KEY_VAULT,
    t.REGISTRY,
    t.LOG_ANALYTICS,
    t.APP_INSIGHTS,
    t.DATA_COLLECTION_RULE,
    t.ML_WORKSPACE,
    t.ML_COMPUTE,
    t.AKS,
    t.VNET,
    t.NSG,
    t.NAT_GATEWAY,
    t.PUBLIC_IP,
    t.ROUTE_TABLE,
    t.PRIVATE_ENDPOINT,
    t.NIC,
    t.VM,
    t.USER_IDENTITY,
    t.PRIVATE_DNS_ZONE,
    t.PRIVATE_DNS_LINK,
    t.MANAGED_DEVOPS_POOL,
)
# Resources whose loss loses data or identities that other systems trust: protected and retained in prod.
STATEFUL = (t.STORAGE, t.KEY_VAULT, t.REGISTRY, t.LOG_ANALYTICS, t.ML_WORKSPACE)


def _tags(subject: Subject) -> str | None:
    tags = as_map(subject.props.get("tags"))
    missing = [tag for tag in REQUIRED_TAGS if not tags.get(tag)]
    return f"tags {missing} are missing" if missing else None


def _protected_in_prod(subject: Subject) -> str | None:
    if subject.environment != "prod" or subject.protect:
        return None
    return "a stateful prod resource is not protected"


RULES: tuple[Rule, ...] = (
    rule(
        "tags-required",
        TAGGABLE,
        M,
        "Every taggable resource carries environment, project and owner tags.",
        "pass CommonArgs.tags_with() as tags",
        _tags,
    ),
    rule(
        "prod-stateful-protected",
        STATEFUL,
        M,
        "Stateful prod resources are protected and retained.",
        "create them with protect=True and retain_on_delete=True (child_opts(self, common.protect))",
        _protected_in_prod,
    ),
)

STACK_RULES: tuple[StackRule, ...] = ()
