"""Shared vocabulary of every component: common args, child options, tag merging, role assignment naming."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping

import pulumi

if TYPE_CHECKING:
    import pulumi_azure_native.managedidentity as managedidentity

# Fixed namespace: role assignment names (Azure resource names) stay stable across runs and machines.
ROLE_ASSIGNMENT_NAMESPACE = uuid.UUID("6f1c7e52-8a0e-4d5e-9a51-3b0c2f8b7a10")


class BuiltInRole:
    """Ids of the Azure built-in role definitions the platform grants (stable across tenants)."""

    CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
    STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
    STORAGE_FILE_DATA_PRIVILEGED_CONTRIBUTOR = "69566ab7-960f-475b-8e7c-b3118f30c6bd"
    KEY_VAULT_ADMINISTRATOR = "00482a5a-887f-4fb3-b363-3b7fe8e74483"
    KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
    ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
    ACR_PUSH = "8311e382-0749-4cb8-b61a-304f252e45ec"
    AZUREML_DATA_SCIENTIST = "f6c7c914-8db3-469d-8ca1-694a8f32e121"
    NETWORK_CONTRIBUTOR = "4d97b98b-1d4f-4787-a291-c67834d212e7"
    READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
    AZUREML_REGISTRY_USER = "1823dd4f-9b8c-4ab6-ab4e-7397a3684615"


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
    resource_name: str, grant: RoleGrant, subscription_id: pulumi.Input[str], parent: pulumi.Resource
) -> pulumi.CustomResource:
    """Declare the role assignment for `grant` as a child of `parent`, with a deterministic uuid5 name."""
    import pulumi_azure_native.authorization as authorization  # deferred: only components granting roles pay

    return authorization.RoleAssignment(
        resource_name,
        role_assignment_name=role_assignment_name(grant.scope_key, grant.principal_key, grant.role),
        scope=grant.scope,
        principal_id=grant.principal_id,
        principal_type="ServicePrincipal",
        role_definition_id=role_definition_id(subscription_id, grant.role),
        opts=child_opts(parent),
    )


def user_identity(
    resource_name: str, identity_name: str, common: CommonArgs, parent: pulumi.Resource
) -> managedidentity.UserAssignedIdentity:
    """A user-assigned managed identity in the component's group, location and tags, child of `parent`."""
    import pulumi_azure_native.managedidentity as managedidentity  # deferred, as in assign_role

    return managedidentity.UserAssignedIdentity(
        resource_name,
        resource_name_=identity_name,
        resource_group_name=common.resource_group_name,
        location=common.location,
        tags=common.tags_with(),
        opts=child_opts(parent),
    )
