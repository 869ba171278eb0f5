"""Shared vocabulary of every component: common args, child options, tags, roles and their assignment."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable, Mapping, Sequence

import pulumi

if TYPE_CHECKING:
    import pulumi_azure_native.managedidentity as managedidentity

# Fixed namespace: role assignment names (Azure resource names) stay stable across runs and machines.
ROLE_ASSIGNMENT_NAMESPACE = uuid.UUID("6f1c7e52-8a0e-4d5e-9a51-3b0c2f8b7a10")


class BuiltInRole:
    """Ids of the Azure built-in role definitions the platform grants (stable across tenants).

    Source: Microsoft Learn, "Azure built-in roles" (role-based-access-control/built-in-roles.md); the
    tests hold each id against a literal copied from that page.
    """

    CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
    READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
    ROLE_BASED_ACCESS_CONTROL_ADMINISTRATOR = "f58310d9-a9f6-439a-9e8d-f62e7b41a168"
    STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
    STORAGE_FILE_DATA_PRIVILEGED_CONTRIBUTOR = "69566ab7-960f-475b-8e7c-b3118f30c6bd"
    STORAGE_QUEUE_DATA_CONTRIBUTOR = "974c5e8b-45b9-4653-ba55-5f855dd0fb88"
    STORAGE_TABLE_DATA_CONTRIBUTOR = "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"
    KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
    ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
    AZUREML_DATA_SCIENTIST = "f6c7c914-8db3-469d-8ca1-694a8f32e121"
    NETWORK_CONTRIBUTOR = "4d97b98b-1d4f-4787-a291-c67834d212e7"
    AKS_RBAC_ADMIN = "3498e952-d568-435e-9b2c-8d77e338d7f7"
    MONITORING_DATA_READER = "b0d8363b-8ddd-447d-831f-62ca05bff136"
    MONITORING_READER = "43d0d8ad-25c7-4714-9337-8ba259a9fe05"
    GRAFANA_ADMIN = "22926164-76b3-42b3-bc55-97df8dab3e41"
    AZUREML_REGISTRY_USER = "1823dd4f-9b8c-4ab6-ab4e-7397a3684615"


# The roles `pulumi up` grants to workload identities. The CI identity may assign exactly these (its Role
# Based Access Control Administrator assignment carries a condition listing them), so a role missing here
# would make a CI-run `pulumi up` fail with 403: assign_role refuses it up front instead.
DELEGABLE_ROLES: frozenset[str] = frozenset(
    {
        BuiltInRole.READER,
        BuiltInRole.STORAGE_BLOB_DATA_CONTRIBUTOR,
        BuiltInRole.STORAGE_FILE_DATA_PRIVILEGED_CONTRIBUTOR,
        BuiltInRole.STORAGE_QUEUE_DATA_CONTRIBUTOR,
        BuiltInRole.STORAGE_TABLE_DATA_CONTRIBUTOR,
        BuiltInRole.KEY_VAULT_SECRETS_USER,
        BuiltInRole.ACR_PULL,
        BuiltInRole.AZUREML_DATA_SCIENTIST,
        BuiltInRole.NETWORK_CONTRIBUTOR,
        BuiltInRole.AKS_RBAC_ADMIN,
        BuiltInRole.MONITORING_DATA_READER,
        BuiltInRole.MONITORING_READER,
        BuiltInRole.GRAFANA_ADMIN,
        BuiltInRole.AZUREML_REGISTRY_USER,
    }
)
# The CI identity's own deploy rights: only the bootstrapping administrator may create or change these.
BOOTSTRAP_ROLES: frozenset[str] = frozenset(
    {BuiltInRole.CONTRIBUTOR, BuiltInRole.ROLE_BASED_ACCESS_CONTROL_ADMINISTRATOR}
)
PRINCIPAL_TYPES = ("User", "Group", "ServicePrincipal")
CONDITION_VERSION = "2.0"
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def delegation_condition(role_guids: Iterable[str], principal_types: Sequence[str]) -> str:
    """ABAC condition letting a delegate add and remove assignments of only `role_guids` to `principal_types`.

    The form of Microsoft's "Constrain roles and principal types" example (Learn: "Examples to delegate
    Azure role assignment management with conditions"): writes are checked on the request, deletes on the
    existing assignment, so each action gets its own clause.
    """
    roles = sorted(set(role_guids))
    bad = [role for role in roles if not _GUID.match(role)]
    if not roles or bad:
        raise ValueError(f"a delegation condition needs lowercase role definition GUIDs, got {roles}")
    unknown = [kind for kind in principal_types if kind not in PRINCIPAL_TYPES]
    if not principal_types or unknown:
        raise ValueError(f"principal types must be some of {PRINCIPAL_TYPES}, got {list(principal_types)}")
    role_set = "{" + ", ".join(roles) + "}"
    type_set = "{" + ", ".join(f"'{kind}'" for kind in principal_types) + "}"

    def clause(action: str, source: str) -> str:
        return (
            f"((!(ActionMatches{{'Microsoft.Authorization/roleAssignments/{action}'}})) OR "
            f"(@{source}[Microsoft.Authorization/roleAssignments:RoleDefinitionId] "
            f"ForAnyOfAnyValues:GuidEquals {role_set} AND "
            f"@{source}[Microsoft.Authorization/roleAssignments:PrincipalType] "
            f"ForAnyOfAnyValues:StringEqualsIgnoreCase {type_set}))"
        )

    return f"{clause('write', 'Request')} AND {clause('delete', 'Resource')}"


@dataclass(frozen=True)
class CommonArgs:
    """The fields every component takes, with the same names everywhere."""

    location: str
    """Azure region of every child resource."""
    resource_group_name: pulumi.Input[str]
    """Resource group the children live in."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags applied to every taggable child (environment, project, owner)."""
    protect: bool = False
    """Protect stateful children and retain them when the stack is destroyed (prod)."""

    def tags_with(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """This component's tags merged with resource-specific ones."""
        return merge_tags(self.tags, extra or {})


def merge_tags(base: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, str]:
    """Tags of `base` overlaid with `extra`; `extra` wins on conflicts (a resource refines its component)."""
    return {**base, **extra}


def child_opts(parent: pulumi.Resource, protect: bool = False, **kwargs: object) -> pulumi.ResourceOptions:
    """Options of a child: parented to its component; a protected child is also retained on delete."""
    return pulumi.ResourceOptions(parent=parent, protect=protect, retain_on_delete=protect, **kwargs)


def role_assignment_name(scope_key: str, principal_key: str, role_definition_guid: str) -> str:
    """Deterministic role assignment name (a GUID) from stable names of scope, principal and role.

    Azure requires a GUID; deriving it with uuid5 from names that are known at preview keeps the plan
    stable and makes a repeated deployment update the same assignment instead of colliding.
    """
    return str(uuid.uuid5(ROLE_ASSIGNMENT_NAMESPACE, f"{scope_key}|{principal_key}|{role_definition_guid}"))


def role_definition_id(subscription_id: pulumi.Input[str], role_definition_guid: str) -> pulumi.Output[str]:
    """Full resource id of a built-in role definition in the subscription."""
    return pulumi.Output.concat(
        "/subscriptions/",
        subscription_id,
        "/providers/Microsoft.Authorization/roleDefinitions/",
        role_definition_guid,
    )


def principal_id_of(identity: pulumi.Output[object]) -> pulumi.Output[str | None]:
    """Principal id of a resource's managed identity output, None-safe (absent until Azure creates it)."""
    return identity.apply(lambda value: getattr(value, "principal_id", None) if value else None)


@dataclass(frozen=True)
class RoleGrant:
    """One role for one principal on one scope; the `*_key` stable names derive the assignment name."""

    role: str
    """Built-in role definition GUID (see BuiltInRole)."""
    scope: pulumi.Input[str]
    """Resource id the role applies to."""
    scope_key: str
    """Stable name of the scope (its Azure name)."""
    principal_id: pulumi.Input[str]
    """Object id of the identity receiving the role."""
    principal_key: str
    """Stable name of the principal (its identity's or owning resource's Azure name)."""


def assign_role(
    resource_name: str,
    grant: RoleGrant,
    subscription_id: pulumi.Input[str],
    parent: pulumi.Resource,
    *,
    condition: str | None = None,
    aliases: Sequence[pulumi.Alias] = (),
) -> pulumi.CustomResource:
    """Declare the role assignment for `grant` as a child of `parent`, with a deterministic uuid5 name.

    Only roles the CI identity may delegate (or its own bootstrap roles) are accepted, so every grant a
    CI-run `pulumi up` makes is one its conditioned Role Based Access Control Administrator role allows.
    """
    import pulumi_azure_native.authorization as authorization  # deferred: only components granting roles pay

    if grant.role not in DELEGABLE_ROLES | BOOTSTRAP_ROLES:
        raise ValueError(
            f"role {grant.role} ({resource_name}) is not in components.common.DELEGABLE_ROLES: add it there, "
            "so the CI identity's role assignment condition lets it grant the role"
        )
    return authorization.RoleAssignment(
        resource_name,
        role_assignment_name=role_assignment_name(grant.scope_key, grant.principal_key, grant.role),
        scope=grant.scope,
        principal_id=grant.principal_id,
        principal_type="ServicePrincipal",
        role_definition_id=role_definition_id(subscription_id, grant.role),
        condition=condition,
        condition_version=CONDITION_VERSION if condition else None,
        opts=child_opts(parent, aliases=list(aliases)),
    )


def user_identity(
    resource_name: str,
    identity_name: str,
    common: CommonArgs,
    parent: pulumi.Resource,
    aliases: Sequence[pulumi.Alias] = (),
) -> managedidentity.UserAssignedIdentity:
    """A user-assigned managed identity in the component's group, location and tags, child of `parent`."""
    import pulumi_azure_native.managedidentity as managedidentity  # deferred, as in assign_role

    return managedidentity.UserAssignedIdentity(
        resource_name,
        resource_name_=identity_name,
        resource_group_name=common.resource_group_name,
        location=common.location,
        tags=common.tags_with(),
        opts=child_opts(parent, aliases=list(aliases)),
    )
