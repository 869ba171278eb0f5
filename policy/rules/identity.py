"""Identity and role rules: nothing Azure ML grants itself, the data roles each caller needs, scoped admins."""

from __future__ import annotations

from typing import Iterable, Iterator

from . import types as t
from .azure import BLOB_WRITERS, ROLE_GRANTING_ROLES, STUDIO_STORAGE_GROUPS, Role
from .core import M, Rule, StackRule, Subject, Violation, rule
from .graph import PlannedResource, Stack, role_guid
from .values import as_list, get

IDENTITY_SOURCE = "how-to-identity-based-service-authentication.md"
SHARED_KEY_SOURCE = "how-to-disable-local-auth-storage.md, Scenarios for role assignments"
ABOVE_OWNER_ROLES = (Role.OWNER, Role.USER_ACCESS_ADMINISTRATOR)


def _no_privileged_role(subject: Subject) -> str | None:
    role = role_guid(PlannedResource(subject.resource_type, "", subject.props))
    if role in ABOVE_OWNER_ROLES:
        return f"the assignment grants a role that can grant any role ({role})"
    return None


def _rbac_administrator_conditioned(subject: Subject) -> str | None:
    if role_guid(PlannedResource(subject.resource_type, "", subject.props)) != Role.RBAC_ADMINISTRATOR:
        return None
    condition = str(subject.props.get("condition") or "")
    if "roledefinitionid" not in condition.lower():
        return "Role Based Access Control Administrator without a condition on the roles it may assign"
    if subject.props.get("conditionVersion") != "2.0":
        return f"`conditionVersion` is {subject.props.get('conditionVersion')!r}, must be '2.0' for this condition"
    allowed_privileged = sorted(role for role in ROLE_GRANTING_ROLES if role in condition.lower())
    if allowed_privileged:
        return f"the condition lets it assign roles that can assign roles ({allowed_privileged})"
    return None


def _federated_audience(subject: Subject) -> str | None:
    audiences = as_list(subject.props.get("audiences"))
    issuer = str(subject.props.get("issuer") or "")
    if audiences == ["api://AzureADTokenExchange"] and issuer.startswith("https://"):
        return None
    return (
        f"audiences {audiences}, issuer {issuer!r}: need only api://AzureADTokenExchange and an https issuer"
    )


def associated_resources(stack: Stack, workspace: PlannedResource) -> list[PlannedResource]:
    """The storage, Key Vault, registry and Application Insights a workspace is created with."""
    links = (
        ("storageAccount", t.STORAGE),
        ("keyVault", t.KEY_VAULT),
        ("containerRegistry", t.REGISTRY),
        ("applicationInsights", t.APP_INSIGHTS),
    )
    return [
        r for prop, kind in links for r in stack.targets(workspace, prop, [kind], workspace.props.get(prop))
    ]


def _grants_azure_ml_makes(stack: Stack) -> Iterator[Violation]:
    for workspace in stack.of_type(t.ML_WORKSPACE):
        if "SystemAssigned" not in str(get(workspace.props, "identity.type") or ""):
            continue
        associated = associated_resources(stack, workspace)
        for grant in stack.grants:
            targets = [r for r in grant.scope_targets if r in associated]
            if workspace in grant.principals and targets:
                yield Violation(
                    grant.assignment,
                    f"role assignment {grant.assignment.name} gives workspace {workspace.name}'s system identity a "
                    f"role on {targets[0].name}, which Azure ML grants itself: `pulumi up` fails with 409 "
                    "RoleAssignmentExists",
                )


def _missing_roles(
    stack: Stack,
    principal: PlannedResource,
    target: PlannedResource,
    needs: Iterable[tuple[str, frozenset[str]]],
) -> list[str]:
    return [name for name, roles in needs if not stack.has_role(principal, roles, target)]


def _user_assigned_workspace_grants(stack: Stack) -> Iterator[Violation]:
    for workspace in stack.of_type(t.ML_WORKSPACE):
        if workspace.props.get("primaryUserAssignedIdentity") is None:
            continue
        for identity in stack.workspace_identities(workspace):
            for target in [workspace, *associated_resources(stack, workspace)]:
                needs = [("Contributor", frozenset({Role.CONTRIBUTOR}))]
                if (
                    target.type == t.KEY_VAULT
                    and get(target.props, "properties.enableRbacAuthorization") is True
                ):
                    needs.append(("Key Vault Administrator", frozenset({Role.KEY_VAULT_ADMINISTRATOR})))
                yield from _report_missing(
                    stack, identity, target, needs, f"the primary identity of {workspace.name}"
                )
            for cluster in _attached_clusters(stack, workspace):
                needs = [
                    ("Reader", frozenset({Role.READER})),
                    ("Kubernetes Extension Contributor", frozenset({Role.KUBERNETES_EXTENSION_CONTRIBUTOR})),
                    ("Azure Kubernetes Service Cluster Admin Role", frozenset({Role.AKS_CLUSTER_ADMIN})),
                ]
                yield from _report_missing(
                    stack, identity, cluster, needs, f"the primary identity of {workspace.name}"
                )


def _attached_clusters(stack: Stack, workspace: PlannedResource) -> list[PlannedResource]:
    return [
        cluster
        for compute in stack.computes_of(workspace)
        if get(compute.props, "properties.computeType") == "Kubernetes"
        for cluster in stack.targets(
            compute, "properties", [t.AKS], get(compute.props, "properties.resourceId")
        )
    ]


def _report_missing(
    stack: Stack,
    identity: PlannedResource,
    target: PlannedResource,
    needs: Iterable[tuple[str, frozenset[str]]],
    who: str,
) -> Iterator[Violation]:
    missing = _missing_roles(stack, identity, target, needs)
    if missing:
        yield Violation(identity, f"{identity.name} ({who}) lacks {missing} on {target.name}")


def identity_datastores(stack: Stack) -> list[tuple[PlannedResource, PlannedResource]]:
    """(workspace, storage) pairs where callers reach the storage with their own token, not the account key."""
    pairs = []
    for workspace in stack.of_type(t.ML_WORKSPACE):
        for storage in stack.targets(
            workspace, "storageAccount", [t.STORAGE], workspace.props.get("storageAccount")
        ):
            keys_off = storage.props.get("allowSharedKeyAccess") is False
            if keys_off or workspace.props.get("systemDatastoresAuthMode") == "identity":
                pairs.append((workspace, storage))
    return pairs


def ci_identities(stack: Stack) -> list[PlannedResource]:
    """The identities CI signs in as: the user-assigned identities that trust a federated credential."""
    found = []
    for credential in stack.of_type(t.FEDERATED_CREDENTIAL):
        named = stack.named(
            t.USER_IDENTITY, credential.props.get("resourceName"), credential.props.get("resourceGroupName")
        )
        found += named or stack.targets(credential, "resourceName", [t.USER_IDENTITY])
    return list(dict.fromkeys(found))


def _ci_data_roles(stack: Stack) -> Iterator[Violation]:
    for _, storage in identity_datastores(stack):
        for identity in ci_identities(stack):
            if not stack.has_role(identity, BLOB_WRITERS, storage):
                yield Violation(
                    identity,
                    f"CI identity {identity.name} has no Storage Blob Data Contributor on {storage.name}, whose data "
                    "callers reach with their own token: every upload and download of the post-deploy hook gets 403",
                )


def _compute_batch_roles(stack: Stack) -> Iterator[Violation]:
    needs = [
        ("Storage Table Data Contributor", frozenset({Role.STORAGE_TABLE_DATA_CONTRIBUTOR})),
        ("Storage Queue Data Contributor", frozenset({Role.STORAGE_QUEUE_DATA_CONTRIBUTOR})),
    ]
    for workspace, storage in identity_datastores(stack):
        for compute in stack.computes_of(workspace):
            if get(compute.props, "properties.computeType") != "AmlCompute":
                continue
            identities = stack.identities_of(compute)
            if not identities:
                yield Violation(
                    compute, f"compute cluster {compute.name} has no managed identity to run batch jobs as"
                )
            for identity in identities:
                missing = _missing_roles(stack, identity, storage, needs)
                if missing:
                    yield Violation(
                        compute,
                        f"identity {identity.name} of compute cluster {compute.name} lacks {missing} on "
                        f"{storage.name}: batch endpoints (Parallel Run Step) fail",
                    )


def _workspace_reads_endpoints(stack: Stack) -> Iterator[Violation]:
    for workspace in stack.of_type(t.ML_WORKSPACE):
        storages = stack.targets(
            workspace, "storageAccount", [t.STORAGE], workspace.props.get("storageAccount")
        )
        for storage in (s for s in storages if get(s.props, "publicNetworkAccess") == "Disabled"):
            for endpoint, groups in stack.private_endpoints_to(storage):
                if not groups & set(STUDIO_STORAGE_GROUPS):
                    continue
                for identity in stack.workspace_identities(workspace):
                    if not stack.has_role(identity, {Role.READER}, endpoint):
                        yield Violation(
                            endpoint,
                            f"workspace {workspace.name}'s identity has no Reader on private endpoint {endpoint.name} "
                            f"({', '.join(sorted(groups))}) of private storage {storage.name}: studio cannot show data",
                        )


RULES: tuple[Rule, ...] = (
    rule(
        "role-assignment-no-privileged-role",
        t.ROLE_ASSIGNMENT,
        M,
        "No assignment of Owner or User Access Administrator.",
        "grant the narrowest built-in role (e.g. Contributor on the resource group)",
        _no_privileged_role,
    ),
    rule(
        "rbac-administrator-conditioned",
        t.ROLE_ASSIGNMENT,
        M,
        "Role Based Access Control Administrator is only granted with a condition listing the roles it may assign.",
        'set condition (conditionVersion "2.0") constraining '
        "@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] to the roles `pulumi up` grants",
        _rbac_administrator_conditioned,
        facts=(8,),
        source="delegate-role-assignments-overview.md (azure-docs, role-based-access-control), "
        "A more secure method: Delegate role assignment management with conditions",
    ),
    rule(
        "federated-credential-exchange",
        t.FEDERATED_CREDENTIAL,
        M,
        "Federated credentials trust one https issuer.",
        'set audiences=["api://AzureADTokenExchange"] and the issuer of the Azure DevOps service connection',
        _federated_audience,
    ),
)

STACK_RULES: tuple[StackRule, ...] = (
    StackRule(
        "no-grants-azure-ml-makes",
        "Nothing is granted to a workspace's system identity on its storage, Key Vault, registry or Application "
        "Insights: Azure ML grants those itself.",
        M,
        "remove these role assignments (Azure ML owns them), or make a user-assigned identity the workspace's "
        "primary identity and grant its roles instead",
        _grants_azure_ml_makes,
        facts=(7,),
        source=f"{IDENTITY_SOURCE}, Workspace identity types (role assignment creation managed by Microsoft); "
        "MicrosoftDocs/azure-docs#80040",
    ),
    StackRule(
        "user-assigned-workspace-identity-grants",
        "A user-assigned primary workspace identity holds the roles Azure ML would otherwise grant, and those an "
        "attach of Kubernetes compute needs.",
        M,
        "grant the primary identity Contributor on the workspace, storage, Key Vault, registry and Application "
        "Insights (plus Key Vault Administrator on an RBAC vault), and Reader, Kubernetes Extension Contributor and "
        "Azure Kubernetes Service Cluster Admin Role on an attached AKS cluster",
        _user_assigned_workspace_grants,
        facts=(7, 27),
        source=f"{IDENTITY_SOURCE}, User-assigned managed identity; how-to-attach-kubernetes-to-workspace.md, "
        "Attach to workspace with user-assigned managed identity",
    ),
    StackRule(
        "ci-identity-storage-data-role",
        "With identity-based datastores or shared keys off, the CI identity has a blob data role on the storage.",
        M,
        "grant the CI (service connection) identity Storage Blob Data Contributor on the workspace storage "
        "(and Storage File Data Privileged Contributor where code snapshots go to the file share)",
        _ci_data_roles,
        facts=(8,),
        source=SHARED_KEY_SOURCE,
    ),
    StackRule(
        "compute-identity-batch-roles",
        "With identity-based datastores or shared keys off, the compute cluster's identity can use queues and tables.",
        M,
        "grant the compute cluster's identity Storage Table Data Contributor and Storage Queue Data Contributor on "
        "the workspace storage",
        _compute_batch_roles,
        facts=(9,),
        source=SHARED_KEY_SOURCE,
    ),
    StackRule(
        "workspace-identity-reads-storage-endpoints",
        "With storage public access off, the workspace identity has Reader on the storage's blob and file private "
        "endpoints.",
        M,
        "grant the workspace identity Reader on each blob and file private endpoint of the storage account",
        _workspace_reads_endpoints,
        facts=(10,),
        source="how-to-managed-network.md, Azure Machine Learning studio",
    ),
)
