"""Identities and their roles under the mock runtime: who gets which role on what, and what is never declared.

Role ids are the literals of Microsoft's "Azure built-in roles" page (role-based-access-control/built-in-roles.md),
never the code's own constants, so a wrong GUID in components/common.py fails here too.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import pytest

from components.common import (
    BOOTSTRAP_ROLES,
    DELEGABLE_ROLES,
    BuiltInRole,
    CommonArgs,
    RoleGrant,
    assign_role,
    delegation_condition,
)
from components.ci_identity import github_subject
from components.service_connection import ServiceConnection, ServiceConnectionArgs
from components.workspace import Workspace, WorkspaceArgs
from stacks import mockrun
from stacks.config import ConfigError, example_config
from stacks.forms import shown_value
from stacks.mockrun import SECRET_MASK, Recording, run_program
from stacks.model import StackConfig
from stacks.platform import build_platform
from tests.test_components import install_mock_gaps

# Literals from the built-in roles page (column "ID").
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
FILE_DATA_PRIVILEGED_CONTRIBUTOR = "69566ab7-960f-475b-8e7c-b3118f30c6bd"
QUEUE_DATA_CONTRIBUTOR = "974c5e8b-45b9-4653-ba55-5f855dd0fb88"
TABLE_DATA_CONTRIBUTOR = "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
AZUREML_DATA_SCIENTIST = "f6c7c914-8db3-469d-8ca1-694a8f32e121"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
RBAC_ADMINISTRATOR = "f58310d9-a9f6-439a-9e8d-f62e7b41a168"
AKS_RBAC_ADMIN = "3498e952-d568-435e-9b2c-8d77e338d7f7"
NETWORK_CONTRIBUTOR = "4d97b98b-1d4f-4787-a291-c67834d212e7"
AZUREML_REGISTRY_USER = "1823dd4f-9b8c-4ab6-ab4e-7397a3684615"
# Roles that Azure ML assigns its system identity on its own storage, Key Vault and registry (AZURE-FACTS 7).
ROLES_AZURE_ML_OWNS = {BLOB_DATA_CONTRIBUTOR, FILE_DATA_PRIVILEGED_CONTRIBUTOR, ACR_PULL, CONTRIBUTOR}
ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"

SUB = mockrun.SUBSCRIPTION_ID
RG = "rg-test"


def rid(kind: str, name: str) -> str:
    return f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/{kind}/{name}"


STORAGE_ID = rid("Microsoft.Storage/storageAccounts", "sttest")
VAULT_ID = rid("Microsoft.KeyVault/vaults", "kv-test")
REGISTRY_ID = rid("Microsoft.ContainerRegistry/registries", "crtest")
ENDPOINT_IDS = {
    "blob": rid("Microsoft.Network/privateEndpoints", "pe-sttest-blob"),
    "file": rid("Microsoft.Network/privateEndpoints", "pe-sttest-file"),
}


@dataclasses.dataclass
class Run:
    """What one program run registered, and the state the mocks answered each resource with."""

    recording: Recording
    state: dict[str, dict[str, Any]]

    def principal_of(self, logical_name: str) -> str:
        """Object id Azure (the mock) gave a resource's identity or a user-assigned identity."""
        state = self.state[logical_name]
        return state["identity"]["principalId"] if "identity" in state else state["principalId"]

    def grants(self) -> set[tuple[str, str, str]]:
        """(principal id, role GUID, scope id) of every role assignment."""
        return {
            (
                r.inputs["principalId"],
                r.inputs["roleDefinitionId"].rsplit("/", 1)[-1],
                r.inputs["scope"],
            )
            for r in self.recording.of_type(ROLE_ASSIGNMENT)
        }


def run(build: Callable[[], object], stack: str = "dev") -> Run:
    """Run `build` under the mocks, keeping each resource's answered state by logical name."""
    state: dict[str, dict[str, Any]] = {}
    with pytest.MonkeyPatch.context() as monkeypatch:
        install_mock_gaps(monkeypatch)
        answer = mockrun.RecordingMocks.new_resource

        def new_resource(self: Any, args: Any) -> tuple[str, dict]:
            resource_id, answered = answer(self, args)
            state[args.name] = answered
            return resource_id, answered

        monkeypatch.setattr(mockrun.RecordingMocks, "new_resource", new_resource)

        def program() -> Mapping[str, Any] | None:
            declared = build()  # the platform returns its stack outputs; a component returns itself
            return declared if isinstance(declared, Mapping) else None

        recording = run_program(program, stack=stack)
    return Run(recording, state)


def workspace_args(private: bool) -> WorkspaceArgs:
    return WorkspaceArgs(
        CommonArgs("westeurope", RG, {"environment": "test"}),
        "mlw-test",
        subscription_id=SUB,
        storage_account_id=STORAGE_ID,
        storage_account_name="sttest",
        key_vault_id=VAULT_ID,
        key_vault_name="kv-test",
        container_registry_id=REGISTRY_ID,
        container_registry_name="crtest",
        app_insights_id=rid("Microsoft.Insights/components", "appi-test"),
        image_build_compute="cpu-cluster",
        compute_identity_name="id-cpu-test",
        public_network_access=not private,
        storage_private_endpoint_ids=ENDPOINT_IDS if private else {},
    )


# ---- the delegation condition ---------------------------------------------------------------------

# Verbatim from Microsoft Learn, "Examples to delegate Azure role assignment management with conditions"
# (role-based-access-control/delegate-role-assignments-examples.md), "Example: Constrain roles and
# principal types", Azure PowerShell tab: Backup Contributor and Backup Reader, to users or groups.
DOCUMENTED_CONDITION = (
    "((!(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})) OR "
    "(@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals "
    "{5e467623-bb1f-42f4-a55d-6e525e11384b, a795c7a0-d4a2-40c1-ae25-d81f01202912} AND "
    "@Request[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase "
    "{'User', 'Group'})) AND ((!(ActionMatches{'Microsoft.Authorization/roleAssignments/delete'})) OR "
    "(@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals "
    "{5e467623-bb1f-42f4-a55d-6e525e11384b, a795c7a0-d4a2-40c1-ae25-d81f01202912} AND "
    "@Resource[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase "
    "{'User', 'Group'}))"
)


def test_delegation_condition_has_the_documented_form() -> None:
    roles = ["a795c7a0-d4a2-40c1-ae25-d81f01202912", "5e467623-bb1f-42f4-a55d-6e525e11384b"]
    assert delegation_condition(roles, ("User", "Group")) == DOCUMENTED_CONDITION


@pytest.mark.parametrize(
    ("roles", "kinds", "message"),
    [
        ([], ("ServicePrincipal",), "role definition GUIDs"),
        (["Reader"], ("ServicePrincipal",), "role definition GUIDs"),
        (["ACDD72A7-3385-48EF-BD42-F606FBA81AE7"], ("ServicePrincipal",), "lowercase"),
        ([READER], (), "principal types"),
        ([READER], ("ManagedIdentity",), "principal types"),
    ],
)
def test_delegation_condition_refuses_what_azure_would(roles: list[str], kinds: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        delegation_condition(roles, kinds)


def test_delegable_roles_never_include_a_role_that_grants_roles() -> None:
    # Owner, User Access Administrator and RBAC Administrator themselves (built-in roles page, "Privileged").
    privileged = {
        "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
        "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
        RBAC_ADMINISTRATOR,
    }
    assert not DELEGABLE_ROLES & privileged
    assert CONTRIBUTOR not in DELEGABLE_ROLES
    assert BOOTSTRAP_ROLES == {CONTRIBUTOR, RBAC_ADMINISTRATOR}


def test_assign_role_refuses_a_role_the_ci_identity_may_not_delegate() -> None:
    owner = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
    grant = RoleGrant(role=owner, scope=STORAGE_ID, scope_key="st", principal_id="p", principal_key="id")

    def build() -> None:
        import pulumi

        parent = pulumi.ComponentResource("test:index:Parent", "parent")
        assign_role("owner-role", grant, SUB, parent)

    with pytest.raises(ValueError, match="DELEGABLE_ROLES"):
        run_program(build)


# ---- workspace and compute identities --------------------------------------------------------------


@pytest.mark.parametrize("private", [False, True])
def test_workspace_declares_no_role_azure_ml_grants_its_system_identity(private: bool) -> None:
    result = run(lambda: Workspace("workspace", workspace_args(private)))
    workspace_principal = result.principal_of("workspace-workspace")
    own_resources = {STORAGE_ID, VAULT_ID, REGISTRY_ID}
    declared = [
        (role, scope) for principal, role, scope in result.grants() if principal == workspace_principal
    ]
    assert [grant for grant in declared if grant[1] in own_resources] == []
    assert not {role for role, _ in declared} & ROLES_AZURE_ML_OWNS


@pytest.mark.parametrize("private", [False, True])
def test_workspace_grants_the_compute_identity_its_data_plane_and_batch_roles(private: bool) -> None:
    result = run(lambda: Workspace("workspace", workspace_args(private)))
    compute = result.principal_of("workspace-compute-identity")
    workspace_id = result.state["workspace-workspace"]["id"]
    assert {(role, scope) for principal, role, scope in result.grants() if principal == compute} == {
        (BLOB_DATA_CONTRIBUTOR, STORAGE_ID),
        (TABLE_DATA_CONTRIBUTOR, STORAGE_ID),
        (QUEUE_DATA_CONTRIBUTOR, STORAGE_ID),
        (KEY_VAULT_SECRETS_USER, VAULT_ID),
        (ACR_PULL, REGISTRY_ID),
        (AZUREML_DATA_SCIENTIST, workspace_id),
    }


@pytest.mark.parametrize("private", [False, True])
def test_workspace_identity_reads_the_blob_and_file_endpoints_only_behind_private_endpoints(
    private: bool,
) -> None:
    result = run(lambda: Workspace("workspace", workspace_args(private)))
    workspace_principal = result.principal_of("workspace-workspace")
    expected = {(READER, ENDPOINT_IDS["blob"]), (READER, ENDPOINT_IDS["file"])} if private else set()
    assert {
        (role, scope) for principal, role, scope in result.grants() if principal == workspace_principal
    } == expected


def test_every_role_assignment_has_a_distinct_stable_name() -> None:
    first = run(lambda: Workspace("workspace", workspace_args(True))).recording.of_type(ROLE_ASSIGNMENT)
    again = run(lambda: Workspace("workspace", workspace_args(True))).recording.of_type(ROLE_ASSIGNMENT)
    names = [r.inputs["roleAssignmentName"] for r in first]
    assert len(set(names)) == len(names) == 8
    assert set(names) == {r.inputs["roleAssignmentName"] for r in again}
    assert all(r.inputs["principalType"] == "ServicePrincipal" for r in first)


# ---- the whole platform ----------------------------------------------------------------------------


def plan(cfg: StackConfig) -> Run:
    return run(lambda: build_platform(cfg), stack=cfg.stack)


@pytest.fixture(scope="module", params=["dev", "prod"])
def platform(request: pytest.FixtureRequest) -> Iterator[tuple[StackConfig, Run]]:
    cfg = example_config(request.param)
    yield cfg, plan(cfg)


def test_platform_never_redeclares_the_workspace_system_identity_roles(
    platform: tuple[StackConfig, Run],
) -> None:
    _, result = platform
    workspace_principal = result.principal_of("workspace-workspace")
    account, vault, registry = (
        result.state[name]["id"]
        for name in ("storage-account", "key-vault-vault", "container-registry-registry")
    )
    redeclared = [
        (role, scope)
        for principal, role, scope in result.grants()
        if principal == workspace_principal and scope in (account, vault, registry)
    ]
    assert redeclared == []


def test_platform_workspace_identity_reads_the_storage_private_endpoints_in_prod(
    platform: tuple[StackConfig, Run],
) -> None:
    cfg, result = platform
    workspace_principal = result.principal_of("workspace-workspace")
    registry = result.state.get("model-registry-registry", {}).get("id")
    readers = {
        scope
        for principal, role, scope in result.grants()
        if principal == workspace_principal and role == READER and scope != registry
    }
    endpoints = {
        r.inputs["privateEndpointName"]: result.state[r.name]["id"]
        for r in result.recording.of_type("azure-native:network:PrivateEndpoint")
    }
    account = cfg.names.storage_account
    expected = {endpoints[f"pe-{account}-blob"], endpoints[f"pe-{account}-file"]} if endpoints else set()
    assert readers == expected
    # Both shipped stacks are customer-VNet designs, which put storage behind private endpoints in dev too.
    assert bool(readers) is bool(endpoints)
    assert cfg.environment != "prod" or readers, "prod has private endpoints, so the Reader grants"


def test_every_granted_role_is_one_the_ci_identity_may_delegate(platform: tuple[StackConfig, Run]) -> None:
    _, result = platform
    roles = {role for _, role, _ in result.grants()}
    assert roles <= DELEGABLE_ROLES | BOOTSTRAP_ROLES
    assert BuiltInRole.ACR_PULL in roles


# ---- the CI identity -------------------------------------------------------------------------------

FEDERATED_CREDENTIAL = "azure-native:managedidentity:FederatedIdentityCredential"
USER_IDENTITY = "azure-native:managedidentity:UserAssignedIdentity"
SERVICE_ENDPOINT = "azuredevops:index/serviceEndpointAzureRM:ServiceEndpointAzureRM"
# Audience Entra expects in federated tokens (Learn: "Configure a user-assigned managed identity to trust
# an external identity provider"); issuer of GitHub's tokens (GitHub docs: "OpenID Connect reference").
ENTRA_TOKEN_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"
GITHUB_ACTIONS_ISSUER = "https://token.actions.githubusercontent.com"


def ci_grants(result: Run) -> set[tuple[str, str]]:
    ci = result.principal_of("ci-identity-identity")
    return {(role, scope) for principal, role, scope in result.grants() if principal == ci}


def condition_roles(condition: str) -> list[set[str]]:
    """The role GUID sets a delegation condition allows, one per clause (write, delete)."""
    return [set(group.split(", ")) for group in re.findall(r"GuidEquals \{([^}]*)\}", condition)]


def test_ci_identity_deploys_uploads_and_applies_instance_types(platform: tuple[StackConfig, Run]) -> None:
    cfg, result = platform
    group = result.state["resource-group-group"]["id"]
    account = result.state["storage-account"]["id"]
    workspace = result.state["workspace-workspace"]["id"]
    cluster = result.state["aks-cluster"]["id"]
    # prod owns the model registry, and its hook job promotes into it as this identity (tests/test_model_registry.py).
    registry = result.state.get("model-registry-registry", {}).get("id")
    assert ci_grants(result) == {
        (CONTRIBUTOR, group),
        (RBAC_ADMINISTRATOR, group),
        (BLOB_DATA_CONTRIBUTOR, account),
        (FILE_DATA_PRIVILEGED_CONTRIBUTOR, account),
        (AZUREML_DATA_SCIENTIST, workspace),
        (AKS_RBAC_ADMIN, cluster),
    } | ({(AZUREML_REGISTRY_USER, registry)} if cfg.environment == "prod" else set())
    aks_role = next(
        r for r in result.recording.of_type(ROLE_ASSIGNMENT) if r.name == "ci-identity-aks-rbac-admin-role"
    )
    assert result.recording.one("azure-native:containerservice:ManagedCluster").urn in aks_role.dependencies


def test_ci_identity_may_assign_exactly_the_roles_the_program_grants(
    platform: tuple[StackConfig, Run],
) -> None:
    cfg, result = platform
    delegation = next(
        r for r in result.recording.of_type(ROLE_ASSIGNMENT) if r.name == "ci-identity-role-assignments-role"
    )
    assert delegation.inputs["conditionVersion"] == "2.0"
    write, delete = condition_roles(delegation.inputs["condition"])
    granted = {role for _, role, _ in result.grants()} - {CONTRIBUTOR, RBAC_ADMINISTRATOR}
    assert write == delete
    # Roles only a switch the shipped stacks keep off grants (enablePrometheusGrafana: Grafana's reads, its admins).
    switched_off = {
        BuiltInRole.MONITORING_DATA_READER,
        BuiltInRole.MONITORING_READER,
        BuiltInRole.GRAFANA_ADMIN,
    }
    if cfg.environment == "prod":  # prod uses every other role
        assert write - switched_off == granted
    assert granted <= write and not write & {CONTRIBUTOR, RBAC_ADMINISTRATOR}
    assert "ForAnyOfAnyValues:StringEqualsIgnoreCase {'ServicePrincipal'}" in delegation.inputs["condition"]
    others = [r for r in result.recording.of_type(ROLE_ASSIGNMENT) if r is not delegation]
    assert all("condition" not in r.inputs for r in others)


def test_service_connection_federates_to_the_ci_identity(platform: tuple[StackConfig, Run]) -> None:
    _, result = platform
    endpoint = result.recording.one(SERVICE_ENDPOINT)
    identity = result.state["ci-identity-identity"]
    assert endpoint.inputs["serviceEndpointAuthenticationScheme"] == "WorkloadIdentityFederation"
    assert endpoint.inputs["credentials"] == {"serviceprincipalid": identity["clientId"]}
    credential = result.recording.one(FEDERATED_CREDENTIAL)
    assert credential.inputs["resourceName"] == identity["name"]
    assert (
        credential.inputs["issuer"]
        == result.state["service-connection-endpoint"]["workloadIdentityFederationIssuer"]
    )
    assert (
        credential.inputs["subject"]
        == result.state["service-connection-endpoint"]["workloadIdentityFederationSubject"]
    )
    assert credential.inputs["audiences"] == [ENTRA_TOKEN_EXCHANGE_AUDIENCE]
    assert result.recording.outputs["ciIdentityClientId"] == identity["clientId"]
    assert result.recording.outputs["ciIdentityPrincipalId"] == identity["principalId"]
    group = result.recording.one("azuredevops:index/variableGroup:VariableGroup")
    assert {"name": "ciIdentityClientId", "value": identity["clientId"]} in group.inputs["variables"]


def test_identity_and_contributor_role_keep_their_state_after_moving_out_of_the_service_connection(
    platform: tuple[StackConfig, Run],
) -> None:
    cfg, result = platform
    old_parent = (
        f"urn:pulumi:{cfg.stack}::aml-platform::aml-platform:devops:ServiceConnection::service-connection"
    )
    identity = result.recording.by_name("ci-identity-identity")
    contributor = result.recording.by_name("ci-identity-contributor-role")
    assert identity.aliases == (("service-connection-identity", old_parent),)
    assert contributor.aliases == (("service-connection-contributor-role", old_parent),)


KEY = "federatedIdentityCredentialResourceName"


def test_github_deploy_jobs_of_the_stacks_environment_may_sign_in() -> None:
    cfg = example_config("prod", githubRepository="contoso/aml-platform")
    result = plan(cfg)
    credentials = {
        r.inputs["federatedIdentityCredentialResourceName"]: r.inputs
        for r in result.recording.of_type(FEDERATED_CREDENTIAL)
    }
    assert credentials["github-prod"] == {
        "federatedIdentityCredentialResourceName": "github-prod",
        "resourceName": result.state["ci-identity-identity"]["name"],
        "resourceGroupName": cfg.names.resource_group,
        "issuer": GITHUB_ACTIONS_ISSUER,
        # GitHub docs, "About security hardening with OpenID Connect": repo:<owner>/<repo>:environment:<name>
        "subject": "repo:contoso/aml-platform:environment:prod",
        "audiences": [ENTRA_TOKEN_EXCHANGE_AUDIENCE],
    }
    assert set(credentials) == {"github-prod", "azure-devops"}
    # Entra refuses concurrent federated credential writes on one identity (409): they go one after the other.
    github, devops = (
        next(r for r in result.recording.of_type(FEDERATED_CREDENTIAL) if r.inputs[KEY] == name)
        for name in ("github-prod", "azure-devops")
    )
    assert github.urn in devops.dependencies


@pytest.mark.parametrize(
    ("overrides", "has_identity", "has_connection"),
    [
        ({"enableDevops": "false", "enableAgentVm": "false"}, False, False),
        ({"enableDevops": "false", "enableAgentVm": "false", "githubRepository": "contoso/aml"}, True, False),
        (
            {
                "serviceConnectionAuth": "ServicePrincipal",
                "servicePrincipalClientId": "6d2b2c1e-0f7a-4b8e-9c1d-2e3f4a5b6c7d",
                "servicePrincipalSecret": "sp-secret",
            },
            False,
            True,
        ),
    ],
)
def test_the_ci_identity_exists_only_where_something_federates_to_it(
    overrides: dict[str, str], has_identity: bool, has_connection: bool
) -> None:
    result = plan(example_config("dev", **overrides))
    names = {r.name for r in result.recording.of_type(USER_IDENTITY)}
    assert ("ci-identity-identity" in names) is has_identity
    assert bool(result.recording.of_type(SERVICE_ENDPOINT)) is has_connection
    assert ({"ciIdentityClientId", "ciIdentityPrincipalId"} <= set(result.recording.outputs)) is has_identity
    assert (
        not [r for r in result.recording.of_type(ROLE_ASSIGNMENT) if r.name.startswith("ci-identity")]
        or has_identity
    )


@pytest.mark.parametrize(
    ("repository", "environment", "message"),
    [
        ("contoso", "prod", "<owner>/<repository>"),
        ("contoso/aml/x", "prod", "<owner>/<repository>"),
        ("contoso/aml:x", "prod", "<owner>/<repository>"),
        ("contoso/aml", "", "environment"),
        ("contoso/aml", "a:b", "environment"),
    ],
)
def test_github_subject_refuses_what_github_never_sends(
    repository: str, environment: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        github_subject(repository, environment)


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("contoso/aml-platform", True),
        ("a/b", True),
        (f"{'o' * 39}/{'r' * 100}", True),
        (f"{'o' * 40}/r", False),
        (f"o/{'r' * 101}", False),
        ("-contoso/aml", False),
        ("contoso/", False),
        ("https://github.com/contoso/aml", False),
        ("contoso/aml platform", False),
    ],
)
def test_github_repository_config_is_validated_before_anything_is_declared(value: str, valid: bool) -> None:
    if valid:
        assert example_config("dev", githubRepository=value).github_repository == value
        return
    with pytest.raises(ConfigError) as raised:
        example_config("dev", githubRepository=value)
    assert f"aml-platform:githubRepository ('{shown_value(value, secret=False)}')" in str(raised.value)
    assert "<owner>/<repository>" in str(raised.value)


def test_service_connection_args_refuse_an_incomplete_federation() -> None:
    with pytest.raises(ValueError, match="CI identity's client id and name"):
        ServiceConnectionArgs(
            common=CommonArgs("westeurope", RG),
            project_id="project",
            connection_name="sc",
            subscription_id=SUB,
            subscription_name=SUB,
            tenant_id=mockrun.TENANT_ID,
        )


def test_service_connection_with_a_service_principal_keeps_the_secret_secret() -> None:
    args = ServiceConnectionArgs(
        common=CommonArgs("westeurope", RG),
        project_id="project",
        connection_name="sc",
        subscription_id=SUB,
        subscription_name=SUB,
        tenant_id=mockrun.TENANT_ID,
        auth="ServicePrincipal",
        service_principal_client_id="app-1",
        service_principal_secret="sp-secret-value",
    )
    result = run(lambda: ServiceConnection("connection", args))
    endpoint = result.recording.one(SERVICE_ENDPOINT)
    assert endpoint.inputs["credentials"] == {
        "serviceprincipalid": "app-1",
        "serviceprincipalkey": SECRET_MASK,
    }
    assert "sp-secret-value" not in repr([r.inputs for r in result.recording.resources])
    assert not result.recording.of_type(FEDERATED_CREDENTIAL)


# ---- the README tells the truth about identities and prerequisites -----------------------------------

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
ROLE_NAMES = {  # built-in roles page, "ID" column
    READER: "Reader",
    BLOB_DATA_CONTRIBUTOR: "Storage Blob Data Contributor",
    FILE_DATA_PRIVILEGED_CONTRIBUTOR: "Storage File Data Privileged Contributor",
    QUEUE_DATA_CONTRIBUTOR: "Storage Queue Data Contributor",
    TABLE_DATA_CONTRIBUTOR: "Storage Table Data Contributor",
    KEY_VAULT_SECRETS_USER: "Key Vault Secrets User",
    ACR_PULL: "AcrPull",
    AZUREML_DATA_SCIENTIST: "AzureML Data Scientist",
    CONTRIBUTOR: "Contributor",
    RBAC_ADMINISTRATOR: "Role Based Access Control Administrator",
    AKS_RBAC_ADMIN: "Azure Kubernetes Service RBAC Admin",
    NETWORK_CONTRIBUTOR: "Network Contributor",
    AZUREML_REGISTRY_USER: "AzureML Registry User",
}


def readme_section(title: str) -> str:
    start = README.index(f"### {title}\n")
    end = README.find("\n### ", start + 1)
    return README[start:end]


def test_readme_role_table_lists_exactly_what_prod_grants(platform: tuple[StackConfig, Run]) -> None:
    cfg, result = platform
    if cfg.environment != "prod":
        pytest.skip("the README table describes prod")
    principals = {
        result.principal_of("workspace-workspace"): "workspace",
        result.principal_of("workspace-compute-identity"): "compute",
        result.principal_of("ci-identity-identity"): "CI",
        result.principal_of("agent-vm-identity"): "agent VM",
        # The cluster's control plane identity: its own, or a user-assigned one where the design gives it one.
        (result.state.get("aks-identity") or result.state["aks-cluster"]["identity"])[
            "principalId"
        ]: "AKS cluster",
    }
    granted = {(principals[principal], ROLE_NAMES[role]) for principal, role, _ in result.grants()}
    rows = re.findall(r"^\| ([^|`(]+?) [`(][^|]*\| ([^|]+?) \|", readme_section("Identities and roles"), re.M)
    assert set(rows) == granted
    assert len(rows) == len(set(rows))


def test_readme_lists_the_resource_providers_the_plan_needs(platform: tuple[StackConfig, Run]) -> None:
    _, result = platform
    namespaces = {
        match
        for state in result.state.values()
        if isinstance(state.get("id"), str)
        for match in re.findall(r"/providers/(Microsoft\.\w+)/", state["id"])
    } - {"Microsoft.Authorization", "Microsoft.Resources"}
    listed = set(
        re.findall(
            r"Microsoft\.\w+",
            readme_section("What must exist before `pulumi up`").split("```sh")[1].split("```")[0],
        )
    )
    assert namespaces <= listed
    assert listed == namespaces or result.recording.stack == "dev"
