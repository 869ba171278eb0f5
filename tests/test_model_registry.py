"""The Azure ML registry dev and prod share: the component and its roles under mocks, its config and ownership."""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from components.common import BuiltInRole, CommonArgs
from components.model_registry import ModelRegistry, ModelRegistryArgs, registry_grants
from stacks.config import ConfigError, example_config
from stacks.mockrun import Recording
from stacks.naming import derive_names, name_problems
from tests.test_components import assert_children_parented, component, record
from tests.test_platform import plan

# Built-in role ids as Microsoft lists them ("Azure built-in roles", learn.microsoft.com/en-us/azure/
# role-based-access-control/built-in-roles: General > Reader; AI + machine learning > AzureML Registry User).
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
AZUREML_REGISTRY_USER = "1823dd4f-9b8c-4ab6-ab4e-7397a3684615"
WRITER_ID = "6b1e8d2a-3c4f-4a5b-9c8d-7e6f5a4b3c2d"
READER_ID = "0a9b8c7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d"
REGISTRY = "azure-native:machinelearningservices:Registry"
ROLE = "azure-native:authorization:RoleAssignment"


def test_role_ids_are_microsofts() -> None:
    assert (BuiltInRole.READER, BuiltInRole.AZUREML_REGISTRY_USER) == (READER, AZUREML_REGISTRY_USER)


def registry_args(protect: bool = False, **overrides: Any) -> ModelRegistryArgs:
    values: dict[str, Any] = {
        "common": CommonArgs("westeurope", "rg-taxi-001prod", {"environment": "prod"}, protect),
        "registry_name": "mlr-taxi-001",
        "subscription_id": "00000000-0000-0000-0000-000000000001",
        "readers": {"mlw-taxi-001prod": "11111111-1111-1111-1111-111111111111"},
        "writers": {WRITER_ID: WRITER_ID},
    }
    return ModelRegistryArgs(**(values | overrides))


@pytest.mark.parametrize("protect", [False, True])
def test_registry_declares_regions_with_system_created_storage_and_acr(protect: bool) -> None:
    args = registry_args(protect, replication_locations=("northeurope", "westeurope"))
    recording = record(lambda: ModelRegistry("model-registry", args))
    registry = recording.one(REGISTRY)
    inputs = registry.inputs
    assert (inputs["registryName"], inputs["location"], inputs["resourceGroupName"]) == (
        "mlr-taxi-001",
        "westeurope",
        "rg-taxi-001prod",
    )
    assert inputs["identity"] == {"type": "SystemAssigned"} and inputs["tags"] == {"environment": "prod"}
    assert [region["location"] for region in inputs["regionDetails"]] == ["westeurope", "northeurope"]
    for region in inputs["regionDetails"]:
        storage = region["storageAccountDetails"][0]["systemCreatedStorageAccount"]
        assert storage == {
            "storageAccountType": "Standard_LRS",
            "storageAccountHnsEnabled": False,
            "allowBlobPublicAccess": False,
        }
        assert region["acrDetails"][0]["systemCreatedAcrAccount"] == {"acrAccountSku": "Premium"}
    assert (registry.protect, registry.retain_on_delete) == (protect, protect)
    assert_children_parented(recording, component(recording, "aml-platform:ml:ModelRegistry"))


def test_readers_get_reader_and_writers_registry_user_on_the_registry_only() -> None:
    recording = record(lambda: ModelRegistry("model-registry", registry_args()))
    registry = recording.one(REGISTRY)
    grants = {
        (a.inputs["principalId"], a.inputs["roleDefinitionId"].rsplit("/", 1)[-1])
        for a in recording.of_type(ROLE)
    }
    assert grants == {("11111111-1111-1111-1111-111111111111", READER), (WRITER_ID, AZUREML_REGISTRY_USER)}
    for assignment in recording.of_type(ROLE):
        assert assignment.inputs["scope"].endswith(
            "/resourceGroups/rg-taxi-001prod/providers/Microsoft.MachineLearningServices/registries/mlr-taxi-001"
        )
        assert registry.urn in assignment.dependencies
        assert assignment.inputs["principalType"] == "ServicePrincipal"


def test_grant_names_are_stable_and_distinct_per_principal_and_role() -> None:
    same = registry_args(readers={"a": "x", WRITER_ID: WRITER_ID}, writers={WRITER_ID: WRITER_ID})
    grants = registry_grants(same, "/registry/id")
    assert set(grants) == {"reader-a", f"reader-{WRITER_ID}", f"writer-{WRITER_ID}"}
    names = [grant.role + grant.principal_key for grant in grants.values()]
    assert len(set(names)) == 3


# ---------------------------------------------------------------- in the stacks


@pytest.fixture(scope="module")
def stacks() -> Iterator[dict[str, Recording]]:
    configs = {
        "dev": example_config("dev"),
        "prod": example_config(
            "prod", modelRegistryWriters=f'["{WRITER_ID}"]', modelRegistryReaders=f'["{READER_ID}"]'
        ),
    }
    yield {env: plan(cfg) for env, cfg in configs.items()}


def test_prod_owns_the_registry_and_dev_only_names_it(stacks: dict[str, Recording]) -> None:
    assert stacks["dev"].of_type(REGISTRY) == []
    assert stacks["prod"].one(REGISTRY).inputs["registryName"] == "mlr-taxi-001"
    assert (
        stacks["dev"].outputs["modelRegistryName"]
        == stacks["prod"].outputs["modelRegistryName"]
        == "mlr-taxi-001"
    )


def test_prod_grants_its_identities_and_the_configured_ones(stacks: dict[str, Recording]) -> None:
    prod = stacks["prod"]
    registry = prod.one(REGISTRY)
    on_registry = [a for a in prod.of_type(ROLE) if a.inputs["scope"].endswith("/registries/mlr-taxi-001")]
    roles = {a.inputs["principalId"]: a.inputs["roleDefinitionId"].rsplit("/", 1)[-1] for a in on_registry}
    workspace = prod.one("azure-native:machinelearningservices:Workspace")
    assert roles[WRITER_ID] == AZUREML_REGISTRY_USER and roles[READER_ID] == READER
    readers = [a for a in on_registry if a.inputs["roleDefinitionId"].endswith(READER)]
    assert len(readers) == 3, "the prod workspace, the prod compute identity and the configured reader"
    assert any(workspace.urn in a.dependencies for a in readers)
    assert all(registry.urn in a.dependencies for a in on_registry)
    # prod's hook job promotes as the CI identity (GitHub OIDC, Azure DevOps service connection): it writes.
    ci = next(
        r
        for r in prod.of_type("azure-native:managedidentity:UserAssignedIdentity")
        if r.name == "ci-identity-identity"
    )
    writers = [a for a in on_registry if a.inputs["roleDefinitionId"].endswith(AZUREML_REGISTRY_USER)]
    assert len(writers) == 2, "the configured writer and prod's CI identity"
    assert any(ci.urn in a.dependencies for a in writers)


def test_prod_replicates_the_registry_to_the_configured_regions() -> None:
    recording = plan(example_config("prod", modelRegistryRegions='["northeurope"]'))
    regions = [region["location"] for region in recording.one(REGISTRY).inputs["regionDetails"]]
    assert regions == ["westeurope", "northeurope"]


def test_without_the_registry_neither_stack_names_it() -> None:
    recording = plan(example_config("prod", enableModelRegistry="false"))
    assert recording.of_type(REGISTRY) == [] and "modelRegistryName" not in recording.outputs


@pytest.mark.parametrize(
    ("environment", "overrides", "key", "message"),
    [
        (
            "dev",
            {"modelRegistryWriters": f'["{WRITER_ID}"]'},
            "modelRegistryWriters",
            "the stack that owns the registry (prod)",
        ),
        (
            "dev",
            {"modelRegistryReaders": f'["{READER_ID}"]'},
            "modelRegistryReaders",
            "the stack that owns the registry (prod)",
        ),
        (
            "prod",
            {"modelRegistryWriters": '["ci-identity"]'},
            "modelRegistryWriters",
            "Entra object ids of service principals or managed identities (GUIDs)",
        ),
        (
            "prod",
            {"modelRegistryReaders": "not json"},
            "modelRegistryReaders",
            "Entra object ids of service principals or managed identities (GUIDs)",
        ),
        (
            "dev",
            {"modelRegistryRegions": '["northeurope"]'},
            "modelRegistryRegions",
            "the stack that owns the registry (prod)",
        ),
        ("prod", {"modelRegistryRegions": '["North Europe"]'}, "modelRegistryRegions", "Azure ML regions"),
    ],
)
def test_registry_config_errors_name_the_key_and_the_fix(
    environment: str, overrides: dict[str, str], key: str, message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        example_config(environment, **overrides)
    assert any(
        problem.key.endswith(f":{key}") and message in problem.message for problem in raised.value.problems
    )


@pytest.mark.parametrize(
    ("namespace", "postfix", "ok"),
    [("taxi", "001", True), ("a" * 24, "001", True), ("a" * 25, "0011", False)],
)
def test_registry_name_fits_azures_limit_of_32(namespace: str, postfix: str, ok: bool) -> None:
    name = derive_names(namespace, postfix, "prod").model_registry
    assert name == f"mlr-{namespace}-{postfix}"
    registry_problems = [
        p for p in name_problems(derive_names(namespace, postfix, "prod")) if "AML registry" in p
    ]
    assert (registry_problems == []) is ok
