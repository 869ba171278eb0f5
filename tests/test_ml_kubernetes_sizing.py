"""Kubernetes sizing and instance types: quantities, AKS reservations, the fit of a deployment, the manifest."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlops.backends.azure.instance_types import applied, instance_type_problems, load_instance_types
from mlops.backends.azure.kubernetes_sizing import (
    EVICTION_THRESHOLD_MI,
    KUBE_RESERVED_CPU_M,
    NODE_SIZES,
    DeploymentFit,
    Resources,
    SizingError,
    cpu_millicores,
    memory_mebibytes,
    node_allocatable,
)
from mlops.pipeline_spec import check_spec_file

SPECS = Path(__file__).resolve().parents[1] / "mlops" / "azureml"
MANIFEST = SPECS / "deploy" / "online" / "instance-types.yml"


@pytest.mark.parametrize(
    ("quantity", "millicores"),
    [("500m", 500), ("1", 1000), ("0.5", 500), (2, 2000), ("100m", 100), ("1.25", 1250)],
)
def test_cpu_quantities(quantity: object, millicores: int) -> None:
    assert cpu_millicores(quantity) == millicores


@pytest.mark.parametrize(
    ("quantity", "mebibytes"),
    [("1500Mi", 1500), ("2Gi", 2048), ("0.5Gi", 512), ("2G", 1908), ("1024Ki", 1), ("1Ti", 1048576)],
)
def test_memory_quantities(quantity: object, mebibytes: int) -> None:
    assert memory_mebibytes(quantity) == mebibytes


@pytest.mark.parametrize("quantity", ["", "0", "0m", "two", "-1", "1 core"])
def test_bad_cpu_quantities_are_refused(quantity: object) -> None:
    with pytest.raises(SizingError, match="CPU quantity"):
        cpu_millicores(quantity)


@pytest.mark.parametrize("quantity", ["", "0Mi", "2Gb", "lots", "512"])
def test_bad_memory_quantities_are_refused(quantity: object) -> None:
    with pytest.raises(SizingError, match="memory quantity"):
        memory_mebibytes(quantity)


def test_kube_reserved_cpu_is_microsofts_table() -> None:
    # node-resource-reservations.md, "CPU reservations": 1 core 60, 2 cores 100, 4 cores 140, 8 cores 180,
    # 16 cores 260, 32 cores 420, 64 cores 740 (millicores).
    assert dict(KUBE_RESERVED_CPU_M) == {1: 60, 2: 100, 4: 140, 8: 180, 16: 260, 32: 420, 64: 740}
    # "memory.available<100Mi eviction rule by default" (AKS 1.29 and later).
    assert EVICTION_THRESHOLD_MI == 100


@pytest.mark.parametrize(
    ("size", "cores", "memory_gib"),
    [
        # dv5-dsv5-series.md
        ("Standard_D2s_v5", 2, 8),
        ("Standard_D4s_v5", 4, 16),
        ("Standard_D8s_v5", 8, 32),
        # dv2-dsv2-series.md
        ("Standard_DS2_v2", 2, 7),
        ("Standard_DS3_v2", 4, 14),
        # dv3-dsv3-series.md
        ("Standard_D4s_v3", 4, 16),
        # bv1-series.md
        ("Standard_B2s", 2, 4),
    ],
)
def test_node_sizes_are_microsofts(size: str, cores: int, memory_gib: float) -> None:
    assert NODE_SIZES[size] == (cores, memory_gib)


def test_allocatable_follows_the_aks_example() -> None:
    # node-resource-reservations.md: 8 GB and 30 pods -> 20 MB x 30 + 50 MB = 650 MB reserved, plus the
    # 100 Mi eviction threshold. A D2s_v5 (2 cores, 8 GiB) keeps 2000 - 100 millicores.
    assert node_allocatable("Standard_D2s_v5") == Resources(1900, 8192 - 650 - 100)
    # "4 GB and 70 pods: 25 % x 4 GB = 1000 MB, less than 20 MB x 70 + 50 MB = 1450 MB": a B2s (4 GiB).
    assert node_allocatable("Standard_B2s", max_pods=70).memory_mi == 4096 - 1024 - 100
    assert node_allocatable("Standard_D4s_v5", max_pods=70).memory_mi == 16384 - 1450 - 100
    assert node_allocatable("standard_d4s_v5") == node_allocatable("Standard_D4s_v5")


def test_an_unknown_node_size_names_the_table() -> None:
    with pytest.raises(SizingError, match="NODE_SIZES"):
        node_allocatable("Standard_Q1")


def fit(**changes: object) -> DeploymentFit:
    values: dict[str, object] = dict(
        requests=Resources(2000, 4096),
        limits=Resources(2000, 4096),
        instance_type="taxi-score",
        instance_type_limits=Resources(3000, 6144),
        node_size="Standard_D4s_v5",
        node_count=3,
        instance_count=1,
    )
    return DeploymentFit(**(values | changes))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({}, None),
        (
            {"requests": Resources(2500, 4096)},
            "requests (2500m CPU, 4096Mi memory) exceed the deployment's limits",
        ),
        ({"limits": Resources(3000, 4096)}, "must be less than instance type taxi-score's limits"),
        ({"limits": Resources(2000, 6144)}, "must be less than instance type taxi-score's limits"),
        (
            {"instance_type_limits": Resources(8000, 65536), "limits": Resources(4000, 4096)},
            "exceed what one Standard_D4s_v5 node can allocate (3860m CPU",
        ),
        # Blue/green: two deployments of 2 CPU do not fit one 4-core node (3860m allocatable); two nodes do.
        ({"node_count": 1}, "blue/green needs 4000m CPU, 8192Mi memory of requests"),
        ({"node_count": 2}, None),
        # AZURE-FACTS 29: an MLflow model's deployment needs 2 CPU and 4 GB (4 GB = 3815Mi).
        ({"requests": Resources(1999, 4096)}, "below the 2 CPU and 4 GB an MLflow model's deployment needs"),
        ({"requests": Resources(2000, 3814)}, "below the 2 CPU and 4 GB an MLflow model's deployment needs"),
        ({"requests": Resources(2000, 3815), "limits": Resources(2000, 3815)}, None),
    ],
)
def test_deployment_fit(changes: dict[str, object], problem: str | None) -> None:
    problems = fit(**changes).problems()
    if problem is None:
        assert problems == []
    else:
        assert any(problem in found for found in problems), problems


def test_the_shipped_manifest_defines_the_instance_type_the_deployment_names() -> None:
    deployment = yaml.safe_load((SPECS / "deploy" / "online" / "kubernetes-deployment.yml").read_text())
    defined = load_instance_types(MANIFEST)
    assert deployment["instance_type"] in defined
    limits = defined[deployment["instance_type"]].limits
    assert limits == Resources(3000, 6144)
    assert check_spec_file(MANIFEST) == []


def _manifest(**spec: object) -> dict[str, object]:
    resources = {"requests": {"cpu": "100m", "memory": "100Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
    return {
        "apiVersion": "amlarc.azureml.com/v1alpha1",
        "kind": "InstanceType",
        "metadata": {"name": "small"},
        "spec": {"resources": resources} | spec,
    }


@pytest.mark.parametrize(
    ("manifest", "field"),
    [
        (_manifest() | {"apiVersion": "v1"}, "apiVersion"),
        (_manifest() | {"kind": "Pod"}, "kind"),
        (_manifest() | {"metadata": {}}, "(instance type).metadata.name"),
        (_manifest(nodeSelector={"pool": 3}), "(instance type).spec.nodeSelector"),
        (
            _manifest(resources={"limits": {"cpu": "1", "memory": "1Gi"}}),
            "(instance type).spec.resources.requests",
        ),
        (
            _manifest(
                resources={"requests": {"cpu": "0", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
            ),
            "(instance type).spec.resources.requests",
        ),
        (
            _manifest(
                resources={
                    "requests": {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": 1},
                    "limits": {"cpu": "1", "memory": "1Gi"},
                }
            ),
            "(instance type).spec.resources.requests.nvidia.com/gpu",
        ),
        (
            {
                "apiVersion": "amlarc.azureml.com/v1alpha1",
                "kind": "InstanceTypeList",
                "items": [{**_manifest(), "apiVersion": None}, _manifest()],
            },
            "items[1].metadata.name",
        ),
    ],
)
def test_manifest_rules_from_microsofts_page(manifest: dict[str, object], field: str) -> None:
    assert field in [found for found, _ in instance_type_problems(manifest)]


def test_a_broken_manifest_is_reported_by_check_specs(tmp_path: Path) -> None:
    path = tmp_path / "instance-types.yml"
    path.write_text(yaml.safe_dump(_manifest(nodeSelector=["not", "a", "map"])))
    assert [problem.field for problem in check_spec_file(path)] == ["(instance type).spec.nodeSelector"]


def test_kubectl_output_is_read_per_instance_type() -> None:
    logs = (
        "instancetype.amlarc.azureml.com/taxi-score created\ninstancetype.amlarc.azureml.com/big unchanged\n"
    )
    assert applied(logs) == {"taxi-score": "created", "big": "unchanged"}
