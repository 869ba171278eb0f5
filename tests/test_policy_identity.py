"""Identity and role rules on both sides (AZURE-FACTS 7, 8, 9, 10, 27): who holds which role where."""

from __future__ import annotations

import pytest

from policy import rules as r
from policy.rules.azure import Role
from tests._policy_cases import (
    DELETE,
    DESIGNS,
    ENVIRONMENTS,
    SUB,
    Builder,
    adding,
    assert_resource_case,
    assert_stack_case,
    breaking,
    build,
    chain,
    drop,
    edit,
    granting,
    resource_findings,
    stack_findings,
)

ROLE_ID = f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/"
RESOURCE_CASES = [
    (
        "role-assignment-no-privileged-role",
        r.ROLE_ASSIGNMENT,
        breaking(roleDefinitionId=ROLE_ID + Role.OWNER),
    ),
    (
        "role-assignment-no-privileged-role",
        r.ROLE_ASSIGNMENT,
        breaking(roleDefinitionId=ROLE_ID + Role.USER_ACCESS_ADMINISTRATOR),
    ),
    (
        "rbac-administrator-conditioned",
        r.ROLE_ASSIGNMENT,
        breaking(roleDefinitionId=ROLE_ID + Role.RBAC_ADMINISTRATOR, condition=DELETE),
    ),
    (
        "rbac-administrator-conditioned",
        r.ROLE_ASSIGNMENT,
        breaking(
            roleDefinitionId=ROLE_ID + Role.RBAC_ADMINISTRATOR,
            condition="@Request[x:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {" + Role.OWNER + "}",
            conditionVersion="2.0",
        ),
    ),
    (
        "rbac-administrator-conditioned",
        r.ROLE_ASSIGNMENT,
        breaking(
            roleDefinitionId=ROLE_ID + Role.RBAC_ADMINISTRATOR,
            condition="@Request[x:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {" + Role.READER + "}",
            conditionVersion="1.0",
        ),
    ),
    ("federated-credential-exchange", r.FEDERATED_CREDENTIAL, breaking(issuer="http://insecure.example")),
    (
        "federated-credential-exchange",
        r.FEDERATED_CREDENTIAL,
        breaking(audiences=["api://AzureADTokenExchange", "other"]),
    ),
]

STACK_CASES = [
    (
        "no-grants-azure-ml-makes",
        "customerVnet",
        granting("ws-blob", Role.STORAGE_BLOB_DATA_CONTRIBUTOR, "workspace", "storage-account"),
    ),
    (
        "no-grants-azure-ml-makes",
        "managedVnet",
        granting("ws-vault", Role.KEY_VAULT_ADMINISTRATOR, "workspace", "key-vault"),
    ),
    (
        "no-grants-azure-ml-makes",
        "managedVnet",
        granting("ws-push", "8311e382-0749-4cb8-b61a-304f252e45ec", "workspace", "container-registry"),
    ),
    ("ci-identity-storage-data-role", "customerVnet", drop("ci-storage-blob")),
    ("ci-identity-storage-data-role", "managedVnet", drop("ci-storage-blob")),
    ("compute-identity-batch-roles", "customerVnet", drop("compute-storage-queue")),
    ("compute-identity-batch-roles", "managedVnet", drop("compute-storage-table")),
    ("compute-identity-batch-roles", "managedVnet", edit("compute-cluster", "identity", DELETE)),
    ("workspace-identity-reads-storage-endpoints", "customerVnet", drop("workspace-reads-blob-endpoint")),
    ("workspace-identity-reads-storage-endpoints", "managedVnet", drop("workspace-reads-file-endpoint")),
]


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize(
    ("rule", "resource_type", "breaks"), RESOURCE_CASES, ids=[c[0] for c in RESOURCE_CASES]
)
def test_a_broken_role_setting_is_reported_by_its_rule(
    rule: str, resource_type: str, breaks, env: str
) -> None:
    assert_resource_case(rule, resource_type, breaks, env)


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize(
    ("rule", "design", "change"), STACK_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(STACK_CASES)]
)
def test_a_broken_identity_stack_is_reported(rule: str, design, change, env: str) -> None:
    assert_stack_case(rule, design, env, change)


def test_a_role_at_the_resource_group_or_subscription_covers_the_storage() -> None:
    for scope in ("resource-group",):
        change = chain(
            drop("ci-storage-blob"),
            granting(
                "ci-blob-group", Role.STORAGE_BLOB_DATA_CONTRIBUTOR, "service-connection-identity", scope
            ),
        )
        assert stack_findings(change(build("managedVnet", "prod")), "prod") == []
    subscription = chain(
        drop("ci-storage-blob"),
        granting(
            "ci-blob-sub", Role.STORAGE_BLOB_DATA_CONTRIBUTOR, "service-connection-identity", "resource-group"
        ),
        edit("ci-blob-sub", "scope", f"/subscriptions/{SUB}"),
    )
    assert stack_findings(subscription(build("managedVnet", "prod")), "prod") == []


def test_blob_data_owner_also_serves_the_ci_identity() -> None:
    change = chain(
        drop("ci-storage-blob"),
        granting("ci-owner", Role.STORAGE_BLOB_DATA_OWNER, "service-connection-identity", "storage-account"),
    )
    assert stack_findings(change(build("customerVnet", "prod")), "prod") == []


def test_a_data_role_of_another_identity_does_not_count() -> None:
    change = chain(
        drop("ci-storage-blob"),
        granting("agent-blob", Role.STORAGE_BLOB_DATA_CONTRIBUTOR, "agent-vm-identity", "storage-account"),
    )
    assert {f.rule for f in stack_findings(change(build("customerVnet", "prod")), "prod")} == {
        "ci-identity-storage-data-role"
    }


@pytest.mark.parametrize("design", DESIGNS)
def test_with_account_keys_callers_need_no_data_roles(design) -> None:
    change = chain(
        drop("ci-storage-blob", "compute-storage-queue", "compute-storage-table"),
        edit("storage-account", "allowSharedKeyAccess", True),
        edit("workspace", "systemDatastoresAuthMode", "accessKey"),
    )
    rules = {f.rule for f in stack_findings(change(build(design, "prod")), "prod")}
    assert rules == {"storage-shared-key-disabled", "workspace-identity-datastore-auth"}


@pytest.mark.parametrize(
    ("design", "also"),
    # In the customer VNet, SMB to public storage leaves through Storage.<region>, which the training NSG denies.
    [("managedVnet", set()), ("customerVnet", {"training-subnet-nsg-outbound"})],
)
def test_public_storage_needs_no_reader_on_endpoints(design, also: set[str]) -> None:
    change = chain(
        drop("workspace-reads-blob-endpoint", "workspace-reads-file-endpoint"),
        edit("storage-account", "publicNetworkAccess", "Enabled"),
    )
    rules = {f.rule for f in stack_findings(change(build(design, "dev")), "dev")}
    assert rules == {"storage-public-network-disabled", *also}


def _user_assigned_primary(with_grants: bool):
    identity_id = f"/subscriptions/{SUB}/resourceGroups/rg-taxi-001prod/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-mlw"
    edits = [
        adding(
            r.USER_IDENTITY,
            "workspace-identity",
            lambda b: {"resourceName": "id-mlw", "location": "westeurope"},
        ),
        edit(
            "workspace",
            "identity",
            {"type": "SystemAssigned,UserAssigned", "userAssignedIdentities": [identity_id]},
        ),
        edit("workspace", "primaryUserAssignedIdentity", identity_id),
    ]
    if with_grants:
        for target in ("workspace", "storage-account", "key-vault", "container-registry", "app-insights"):
            edits.append(granting(f"uai-{target}", Role.CONTRIBUTOR, "workspace-identity", target))
        edits.append(
            granting("uai-kv-admin", Role.KEY_VAULT_ADMINISTRATOR, "workspace-identity", "key-vault")
        )
        for role in (Role.READER, Role.KUBERNETES_EXTENSION_CONTRIBUTOR, Role.AKS_CLUSTER_ADMIN):
            edits.append(granting(f"uai-aks-{role}", role, "workspace-identity", "aks-cluster"))
        for group in ("blob", "file"):
            edits.append(
                granting(f"uai-reads-{group}", Role.READER, "workspace-identity", f"storage-{group}")
            )
    return chain(*edits)


def test_a_user_assigned_primary_identity_needs_the_roles_azure_ml_would_grant() -> None:
    findings = assert_stack_case(
        "user-assigned-workspace-identity-grants",
        "customerVnet",
        "prod",
        _user_assigned_primary(with_grants=False),
        also=["workspace-identity-reads-storage-endpoints"],
    )
    messages = " ".join(f.message for f in findings)
    assert "Kubernetes Extension Contributor" in messages and "Key Vault Administrator" in messages


def test_a_user_assigned_primary_identity_with_its_roles_passes() -> None:
    resources = _user_assigned_primary(with_grants=True)(build("customerVnet", "prod"))
    assert stack_findings(resources, "prod") == []


def test_grants_to_the_system_identity_elsewhere_are_not_azure_mls() -> None:
    # Reader on the private endpoints is the user's to grant (fact 10): not one Azure ML makes itself.
    change = granting("ws-reads-vault-endpoint", Role.READER, "workspace", "key-vault-vault")
    assert stack_findings(change(build("customerVnet", "prod")), "prod") == []


def test_an_older_plan_without_property_dependencies_still_resolves_principals() -> None:
    from dataclasses import replace

    resources = [replace(res, property_dependencies=None) for res in build("customerVnet", "prod")]
    assert stack_findings(resources, "prod") == []
    broken = [res for res in resources if res.name != "ci-storage-blob"]
    assert {f.rule for f in stack_findings(broken, "prod")} == {"ci-identity-storage-data-role"}


def test_builder_grants_resolve_to_their_principal() -> None:
    b = Builder("prod")
    group = b.add(r.RESOURCE_GROUP, "rg", {"resourceGroupName": b.group, "location": "westeurope"})
    who = b.add(r.USER_IDENTITY, "who", {"resourceName": "id-who", "location": "westeurope"})
    b.grant("who-reads", Role.READER, who, group)
    stack = r.Stack(b.resources)
    assert stack.has_role(who, {Role.READER}, group) and not stack.has_role(who, {Role.CONTRIBUTOR}, group)
    assert not resource_findings(r.ROLE_ASSIGNMENT, breaking(), "prod")


OTHER_CASES = ["user-assigned-workspace-identity-grants"]  # tested above: a whole identity set-up
