"""Workspace and compute rules on both sides, in both isolation designs (AZURE-FACTS 1, 2, 9, 24, 31)."""

from __future__ import annotations

import pytest

from policy import rules as r
from tests._policy_cases import (
    DELETE,
    ENVIRONMENTS,
    LOCATION,
    adding,
    assert_resource_case,
    assert_stack_case,
    breaking,
    build,
    chain,
    drop,
    edit,
    resource_findings,
    stack_findings,
    storage_id,
)

APPROVED_WITH_BATCH_RULES = {
    "isolationMode": "AllowOnlyApprovedOutbound",
    "outboundRules": {
        group: {
            "type": "PrivateEndpoint",
            "destination": {"serviceResourceId": storage_id(), "subresourceTarget": group},
        }
        for group in ("queue", "table")
    },
}

RESOURCE_CASES = [
    ("workspace-system-identity", r.ML_WORKSPACE, breaking(identity__type="UserAssigned")),
    ("workspace-v1-legacy-mode-off", r.ML_WORKSPACE, breaking(v1LegacyMode=True)),
    ("workspace-identity-datastore-auth", r.ML_WORKSPACE, breaking(systemDatastoresAuthMode="accessKey")),
    ("workspace-public-network-disabled", r.ML_WORKSPACE, breaking(publicNetworkAccess="Enabled")),
    (
        "workspace-managed-network-isolated",
        r.ML_WORKSPACE,
        breaking(managedNetwork__isolationMode="AllowInternetOutbound", provisionNetworkNow=True),
    ),
    (
        "workspace-managed-network-provisioned",
        r.ML_WORKSPACE,
        breaking(managedNetwork=APPROVED_WITH_BATCH_RULES),
    ),
    (
        "workspace-managed-network-batch-outbound",
        r.ML_WORKSPACE,
        breaking(managedNetwork__isolationMode="AllowOnlyApprovedOutbound", provisionNetworkNow=True),
    ),
    ("workspace-no-customer-managed-keys", r.ML_WORKSPACE, breaking(encryption__status="Enabled")),
    ("compute-no-node-public-ip", r.ML_COMPUTE, breaking(properties__properties__enableNodePublicIp=True)),
    (
        "compute-ssh-disabled",
        r.ML_COMPUTE,
        breaking(properties__properties__remoteLoginPortPublicAccess="Enabled"),
    ),
    ("compute-local-auth-disabled", r.ML_COMPUTE, breaking(properties__disableLocalAuth=False)),
]

ATTACHED_VM = adding(
    r.ML_COMPUTE,
    "attached-vm",
    lambda b: {
        "computeName": "attached-vm",
        "workspaceName": "mlw-taxi",
        "location": LOCATION,
        "properties": {
            "computeType": "VirtualMachine",
            "resourceId": "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachines/dsvm",
        },
    },
)
KUBERNETES_ELSEWHERE = adding(
    r.ML_COMPUTE,
    "kubernetes-compute",
    lambda b: {
        "computeName": "k8s",
        "workspaceName": "mlw-taxi",
        "location": LOCATION,
        "properties": {
            "computeType": "Kubernetes",
            "resourceId": "/subscriptions/s/resourceGroups/g/providers/Microsoft.ContainerService/managedClusters/other",
        },
    },
)
AGENTS_SUBNET = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-taxi-001{env}/providers/Microsoft.Network/virtualNetworks/vnet-taxi/subnets/snet-agents"

STACK_CASES = [
    ("managed-network-compute-placement", "managedVnet", KUBERNETES_ELSEWHERE),
    ("managed-network-compute-placement", "managedVnet", ATTACHED_VM),
    ("workspace-image-build-compute", "customerVnet", edit("workspace", "imageBuildCompute", DELETE)),
    ("workspace-image-build-compute", "managedVnet", edit("workspace", "imageBuildCompute", "gpu-cluster")),
    (
        "private-workspace-kubernetes-requirements",
        "customerVnet",
        edit("aks-cluster", "location", "northeurope"),
    ),
    (
        "private-workspace-kubernetes-requirements",
        "customerVnet",
        edit("storage-account", "networkRuleSet.bypass", "None"),
    ),
    ("private-workspace-batch-network", "customerVnet", drop("storage-table")),
    ("private-workspace-batch-network", "customerVnet", drop("storage-queue")),
]


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize(
    ("rule", "resource_type", "breaks"), RESOURCE_CASES, ids=[c[0] for c in RESOURCE_CASES]
)
def test_a_broken_workspace_setting_is_reported_by_its_rule(
    rule: str, resource_type: str, breaks, env: str
) -> None:
    assert_resource_case(rule, resource_type, breaks, env)


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize(
    ("rule", "design", "change"), STACK_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(STACK_CASES)]
)
def test_a_broken_workspace_stack_is_reported(rule: str, design, change, env: str) -> None:
    assert_stack_case(rule, design, env, change)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_a_cluster_in_your_subnet_breaks_a_managed_network(env: str) -> None:
    change = edit("compute-cluster", "properties.properties.subnet", {"id": AGENTS_SUBNET.format(env=env)})
    findings = assert_stack_case("managed-network-compute-placement", "managedVnet", env, change)
    assert "compute-cluster" in findings[0].message and "subnet" in findings[0].message


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_customer_vnet_design_takes_kubernetes_compute(env: str) -> None:
    # The same Kubernetes compute that a managed network refuses is the customer-VNet design's inference target.
    assert stack_findings(KUBERNETES_ELSEWHERE(build("customerVnet", env)), env) == []


@pytest.mark.parametrize(("env", "level"), [("dev", "advisory"), ("prod", "mandatory")])
def test_a_cluster_outside_any_vnet_breaks_isolation_and_private_batch(env: str, level: str) -> None:
    change = edit("compute-cluster", "properties.properties.subnet", DELETE)
    findings = assert_stack_case(
        "compute-network-isolated", "customerVnet", env, change, also=["private-workspace-batch-network"]
    )
    assert {f.level for f in findings if f.rule == "compute-network-isolated"} == {level}


@pytest.mark.parametrize(
    ("mode", "provisioned", "reported"),
    [
        ("Disabled", None, False),
        (None, None, False),
        ("AllowInternetOutbound", True, False),
        ("AllowInternetOutbound", None, True),
        ("AllowOnlyApprovedOutbound", False, True),
    ],
)
def test_a_managed_network_is_provisioned_at_create(
    mode: str | None, provisioned: bool | None, reported: bool
) -> None:
    breaks = breaking(managedNetwork__isolationMode=mode if mode else DELETE, provisionNetworkNow=provisioned)
    findings = resource_findings(r.ML_WORKSPACE, breaks, "dev")
    assert ("workspace-managed-network-provisioned" in {f.rule for f in findings}) is reported


@pytest.mark.parametrize(
    ("targets", "resource_id", "missing"),
    [
        (("queue", "table"), storage_id(), []),
        (("queue",), storage_id(), ["table"]),
        (("queue", "table"), storage_id().replace("sttaxi001", "stother"), ["queue", "table"]),
        ((), storage_id(), ["queue", "table"]),
    ],
)
def test_approved_outbound_reaches_the_default_storage_queue_and_table(
    targets: tuple[str, ...], resource_id: str, missing: list[str]
) -> None:
    rules = {
        t: {
            "type": "PrivateEndpoint",
            "destination": {"serviceResourceId": resource_id, "subresourceTarget": t},
        }
        for t in targets
    }
    network = {"isolationMode": "AllowOnlyApprovedOutbound", "outboundRules": rules}
    findings = resource_findings(
        r.ML_WORKSPACE, breaking(managedNetwork=network, provisionNetworkNow=True), "prod"
    )
    messages = [f.message for f in findings if f.rule == "workspace-managed-network-batch-outbound"]
    assert bool(messages) is bool(missing) and all(str(missing) in m for m in messages)


@pytest.mark.parametrize(
    ("private", "needed"),
    [
        ({"workspace", "storage-account", "container-registry"}, True),
        ({"container-registry"}, True),
        ({"storage-account"}, True),  # how-to-secure-workspace-vnet.md: the workspace "or any resource"
        ({"workspace"}, True),
        (set(), False),
    ],
)
def test_image_builds_need_a_cluster_once_anything_of_the_workspace_is_private(
    private: set[str], needed: bool
) -> None:
    edits = [edit("workspace", "imageBuildCompute", DELETE)]
    edits += [
        edit(name, "publicNetworkAccess", "Enabled")
        for name in ("workspace", "storage-account", "container-registry")
        if name not in private
    ]
    rules = {f.rule for f in stack_findings(chain(*edits)(build("managedVnet", "dev")), "dev")}
    assert ("workspace-image-build-compute" in rules) is needed


def test_a_resource_access_rule_for_the_workspace_lets_azure_ml_through_storage() -> None:
    rule = {
        "resourceId": "/subscriptions/s/resourceGroups/rg-taxi-001prod/providers/Microsoft.MachineLearningServices/workspaces/mlw-taxi",
        "tenantId": "t",
    }
    change = chain(
        edit("storage-account", "networkRuleSet.bypass", "None"),
        edit("storage-account", "networkRuleSet.resourceAccessRules", [rule]),
    )
    assert stack_findings(change(build("customerVnet", "prod")), "prod") == []


OTHER_CASES = ["compute-network-isolated"]  # tested above with the rule it also breaks
