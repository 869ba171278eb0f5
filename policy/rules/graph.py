"""A planned stack as a graph: which resource an id or a dependency points at, and who holds which role where."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Iterable, Mapping, Sequence

from . import types as t
from .values import as_list, as_map, get, known

# ARM collection segment of each type's id (the type's resource path), for id matching.
_COLLECTIONS = {
    t.RESOURCE_GROUP: "resourceGroups",
    t.STORAGE: "storageAccounts",
    t.KEY_VAULT: "vaults",
    t.REGISTRY: "registries",
    t.LOG_ANALYTICS: "workspaces",
    t.APP_INSIGHTS: "components",
    t.ML_WORKSPACE: "workspaces",
    t.ML_COMPUTE: "computes",
    t.AKS: "managedClusters",
    t.VNET: "virtualNetworks",
    t.SUBNET: "subnets",
    t.NSG: "networkSecurityGroups",
    t.NAT_GATEWAY: "natGateways",
    t.PUBLIC_IP: "publicIPAddresses",
    t.ROUTE_TABLE: "routeTables",
    t.PRIVATE_ENDPOINT: "privateEndpoints",
    t.NIC: "networkInterfaces",
    t.PRIVATE_DNS_ZONE: "privateDnsZones",
    t.VM: "virtualMachines",
    t.USER_IDENTITY: "userAssignedIdentities",
    t.DATA_COLLECTION_RULE: "dataCollectionRules",
}
# Input that holds the physical name where it is not `<kind>Name`, `resourceName` or `name`.
_NAME_KEYS = {
    t.STORAGE: "accountName",
    t.VM: "vmName",
    t.NSG: "networkSecurityGroupName",
    t.PUBLIC_IP: "publicIpAddressName",
    t.PRIVATE_DNS_ZONE: "privateZoneName",
}


def physical_name(resource_type: str, props: Mapping[str, Any]) -> str | None:
    """The Azure name a resource will have, from its inputs (None where the plan does not hold it)."""
    kind = resource_type.rsplit(":", 1)[-1]
    for key in (
        _NAME_KEYS.get(resource_type, ""),
        f"{kind[0].lower()}{kind[1:]}Name",
        "resourceName",
        "name",
    ):
        value = props.get(key) if key in props else None
        if isinstance(value, str) and known(value):
            return value
    return None


FROM_DEPENDENCIES = object()
"""`Stack.targets` without a value: what the input depends on decides."""


def id_segments(resource_id: str) -> dict[str, str]:
    """An ARM id's collection -> name pairs, keys lowercased (`/a/x/b/y` -> {"a": "x", "b": "y"})."""
    parts = [part for part in resource_id.split("/") if part]
    return {parts[i].lower(): parts[i + 1] for i in range(0, len(parts) - 1, 2)}


def is_arm_id(value: Any) -> bool:
    return isinstance(value, str) and value.lower().startswith("/subscriptions/")


@dataclass(frozen=True, eq=False)
class PlannedResource:
    """One resource as a stack rule sees it: type, logical name, inputs and what its inputs depend on.

    Compared by identity: a stack holds one object per planned resource.
    """

    type: str
    name: str
    props: Mapping[str, Any]
    urn: str = ""
    property_dependencies: Mapping[str, tuple[str, ...]] | None = None
    """Input name -> URNs its value comes from; None when the plan did not record them (older plans)."""
    dependencies: tuple[str, ...] = ()

    @property
    def arm_name(self) -> str | None:
        return physical_name(self.type, self.props)

    def depends_via(self, prop: str) -> tuple[str, ...]:
        """URNs the input `prop` comes from (every dependency when the plan lacks property dependencies)."""
        if self.property_dependencies is None:
            return self.dependencies
        return self.property_dependencies.get(prop, ())

    def same_group(self, group: Any) -> bool:
        mine = self.props.get("resourceGroupName")
        return not (known(mine) and isinstance(group, str) and str(mine).lower() != group.lower())


def refers_to(resource_id: Any, resource: PlannedResource) -> bool:
    """Whether the ARM id names this planned resource (collection, name, and its group and parents)."""
    if not is_arm_id(resource_id) or resource.arm_name is None:
        return False
    last = resource_id.rstrip("/").rsplit("/", 2)
    if len(last) < 3 or last[-1].lower() != resource.arm_name.lower():
        return False
    collection = _COLLECTIONS.get(resource.type)
    kind = resource.type.rsplit(":", 1)[-1]
    # The second form is what a naive plural makes of the kind (older offline plans' mock ids).
    if collection and last[-2].lower() not in (collection.lower(), f"{kind.lower()}s"):
        return False
    segments = id_segments(resource_id)
    if resource.type != t.RESOURCE_GROUP and not resource.same_group(segments.get("resourcegroups")):
        return False
    vnet = resource.props.get("virtualNetworkName") if resource.type == t.SUBNET else None
    named_vnet = segments.get("virtualnetworks")
    return not (known(vnet) and named_vnet is not None and named_vnet.lower() != str(vnet).lower())


@dataclass(frozen=True, eq=False)
class Grant:
    """A planned role assignment: the role, the identities it is for, what its scope points at."""

    assignment: PlannedResource
    role: str
    principals: tuple[PlannedResource, ...]
    scope: Any
    scope_targets: tuple[PlannedResource, ...]


@dataclass
class Stack:
    """Every planned resource of one stack, with the lookups cross-resource rules share."""

    resources: Sequence[PlannedResource]
    _by_urn: dict[str, PlannedResource] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_urn = {resource.urn: resource for resource in self.resources if resource.urn}

    def of_type(self, *types: str) -> list[PlannedResource]:
        return [resource for resource in self.resources if resource.type in types]

    def by_urns(self, urns: Iterable[str]) -> list[PlannedResource]:
        return [self._by_urn[urn] for urn in urns if urn in self._by_urn]

    def targets(
        self, resource: PlannedResource, prop: str, types: Sequence[str], value: Any = FROM_DEPENDENCIES
    ) -> list[PlannedResource]:
        """The planned resources of `types` that input `prop` points at; `value` is the id found inside it.

        A known id decides (an id of nothing planned points outside the stack), and no value points at nothing;
        an id computed during the update (unknown in a preview) falls back to the input's dependencies.
        """
        if value is None:
            return []
        if is_arm_id(value):
            return [other for other in self.of_type(*types) if refers_to(value, other)]
        return [other for other in self.by_urns(resource.depends_via(prop)) if other.type in types]

    def named(self, resource_type: str, name: Any, group: Any = None) -> list[PlannedResource]:
        """Planned resources of a type with this Azure name (and resource group, where given)."""
        if not isinstance(name, str) or not known(name):
            return []
        return [
            other
            for other in self.of_type(resource_type)
            if other.arm_name is not None
            and other.arm_name.lower() == name.lower()
            and other.same_group(group)
        ]

    def resource_group_of(self, resource: PlannedResource) -> list[PlannedResource]:
        return self.named(t.RESOURCE_GROUP, resource.props.get("resourceGroupName"))

    @cached_property
    def grants(self) -> list[Grant]:
        """Every planned role assignment, resolved to principals and scope targets."""
        grants = []
        for assignment in self.of_type(t.ROLE_ASSIGNMENT):
            scope = assignment.props.get("scope")
            scope_targets = tuple(self._scope_targets(assignment, scope))
            principal_urns = assignment.depends_via("principalId")
            if (
                assignment.property_dependencies is None
            ):  # older plans: the dependencies that are not the scope
                principal_urns = tuple(u for u in principal_urns if u not in {r.urn for r in scope_targets})
            grants.append(
                Grant(
                    assignment,
                    role_guid(assignment),
                    tuple(self.by_urns(principal_urns)),
                    scope,
                    scope_targets,
                )
            )
        return grants

    def _scope_targets(self, assignment: PlannedResource, scope: Any) -> list[PlannedResource]:
        if is_arm_id(scope):
            return [other for other in self.resources if refers_to(scope, other)]
        return self.by_urns(assignment.depends_via("scope"))

    def has_role(self, principal: PlannedResource, roles: Iterable[str], target: PlannedResource) -> bool:
        """Whether a planned assignment gives `principal` one of `roles` on `target` (or a scope above it)."""
        wanted = {role.lower() for role in roles}
        return any(
            grant.role in wanted and principal in grant.principals and self.covers(grant, target)
            for grant in self.grants
        )

    def covers(self, grant: Grant, target: PlannedResource) -> bool:
        """Whether the grant's scope is the target, its resource group or its subscription."""
        if target in grant.scope_targets:
            return True
        if any(scope.type == t.RESOURCE_GROUP for scope in grant.scope_targets):
            return any(group in grant.scope_targets for group in self.resource_group_of(target))
        return (
            is_arm_id(grant.scope) and re.fullmatch(r"/subscriptions/[^/]+/?", str(grant.scope)) is not None
        )

    def identities_of(self, resource: PlannedResource) -> list[PlannedResource]:
        """The identities a resource runs as: itself when system-assigned, plus its user-assigned ones."""
        identity = as_map(resource.props.get("identity"))
        kind = str(identity.get("type") or "")
        found = [resource] if "SystemAssigned" in kind else []
        user = identity.get("userAssignedIdentities")
        ids = list(user) if isinstance(user, Mapping) else as_list(user)
        for identity_id in ids:
            found += self.targets(resource, "identity", [t.USER_IDENTITY], identity_id)
        if not ids and "UserAssigned" in kind:
            found += self.targets(resource, "identity", [t.USER_IDENTITY])
        return list(dict.fromkeys(found))

    def workspace_identities(self, workspace: PlannedResource) -> list[PlannedResource]:
        """The identity Azure ML acts as for a workspace: its primary user-assigned one, else its system one."""
        primary = workspace.props.get("primaryUserAssignedIdentity")
        if primary is not None:
            return self.targets(workspace, "primaryUserAssignedIdentity", [t.USER_IDENTITY], primary)
        return [workspace] if "SystemAssigned" in str(get(workspace.props, "identity.type") or "") else []

    def workspace_of(self, resource: PlannedResource) -> list[PlannedResource]:
        """The planned workspace a compute (or other workspace child) belongs to."""
        return self.named(
            t.ML_WORKSPACE, resource.props.get("workspaceName"), resource.props.get("resourceGroupName")
        )

    def subnet_of(self, resource: PlannedResource, prop: str, subnet_id: Any) -> list[PlannedResource]:
        """The planned subnet that a subnet id inside input `prop` of `resource` names."""
        return self.targets(resource, prop, [t.SUBNET], subnet_id)

    def computes_of(self, workspace: PlannedResource) -> list[PlannedResource]:
        return [compute for compute in self.of_type(t.ML_COMPUTE) if workspace in self.workspace_of(compute)]

    def private_endpoints_to(self, target: PlannedResource) -> list[tuple[PlannedResource, frozenset[str]]]:
        """The planned private endpoints to `target`, each with the group ids (sub-resources) it connects."""
        found = []
        for endpoint in self.of_type(t.PRIVATE_ENDPOINT):
            groups: set[str] = set()
            for key in ("privateLinkServiceConnections", "manualPrivateLinkServiceConnections"):
                for connection in as_list(endpoint.props.get(key)):
                    if target in self.targets(
                        endpoint, key, [target.type], connection.get("privateLinkServiceId")
                    ):
                        groups.update(str(group).lower() for group in as_list(connection.get("groupIds")))
            if groups:
                found.append((endpoint, frozenset(groups)))
        return found


def role_guid(assignment: PlannedResource) -> str:
    """The role definition GUID of an assignment (the last segment of roleDefinitionId), lowercased."""
    return str(assignment.props.get("roleDefinitionId") or "").rsplit("/", 1)[-1].lower()
