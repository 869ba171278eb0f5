"""The deploy specs for both online targets and batch: what azure-ai-ml loads them as, and what check-specs
adds where the loaders accept a spec Azure would refuse or misread."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlops.pipeline_spec import SPECS_ROOT, check_spec_file

ONLINE = SPECS_ROOT / "deploy" / "online"
BATCH = SPECS_ROOT / "deploy" / "batch"


@pytest.mark.parametrize(
    ("file", "entity"),
    [
        ("online-endpoint.yml", "ManagedOnlineEndpoint"),
        ("online-deployment.yml", "ManagedOnlineDeployment"),
        ("kubernetes-endpoint.yml", "KubernetesOnlineEndpoint"),
        ("kubernetes-deployment.yml", "KubernetesOnlineDeployment"),
    ],
)
def test_online_specs_load_as_their_target(file: str, entity: str) -> None:
    from azure.ai.ml import load_online_deployment, load_online_endpoint

    loader = load_online_deployment if "deployment" in file else load_online_endpoint
    assert type(loader(ONLINE / file)).__name__ == entity
    assert check_spec_file(ONLINE / file) == []


def test_the_kubernetes_endpoint_uses_key_auth_on_the_attached_compute() -> None:
    from azure.ai.ml import load_online_endpoint

    endpoint = load_online_endpoint(ONLINE / "kubernetes-endpoint.yml")
    # concept-endpoints-online-auth.md: Kubernetes endpoints take key or aml_token auth.
    assert endpoint.auth_mode == "key" and endpoint.compute == "aks-inference"


def _copy(
    tmp_path: Path, source: Path, change: dict[str, object] | None = None, drop: str | None = None
) -> Path:
    spec = yaml.safe_load(source.read_text())
    spec |= change or {}
    if drop:
        spec.pop(drop)
    target = source.parent / f"_test_{tmp_path.name}_{source.name}"
    target.write_text(yaml.safe_dump(spec, sort_keys=False))
    return target


@pytest.fixture
def scratch(tmp_path: Path):
    made: list[Path] = []

    def copy(source: Path, change: dict[str, object] | None = None, drop: str | None = None) -> Path:
        # Beside the original: code_configuration points at the scoring script next to it.
        made.append(_copy(tmp_path, source, change, drop))
        return made[-1]

    yield copy
    for path in made:
        path.unlink()


def test_a_kubernetes_deployment_without_type_is_caught(scratch) -> None:
    path = scratch(ONLINE / "kubernetes-deployment.yml", drop="type")
    problems = check_spec_file(path)
    assert any(p.field == "type" and "needs `type: kubernetes`" in p.message for p in problems), problems


def test_a_batch_deployment_ignoring_failed_mini_batches_is_caught(scratch) -> None:
    path = scratch(BATCH / "batch-deployment.yml", {"error_threshold": -1})
    problems = check_spec_file(path)
    assert [p.field for p in problems] == ["error_threshold"] and "AZURE-FACTS 19" in problems[0].message


def test_the_batch_deployment_uses_its_own_environment_and_counts_every_failure() -> None:
    spec = yaml.safe_load((BATCH / "batch-deployment.yml").read_text())
    assert spec["environment"] == "azureml:taxi-batch-env@latest" and spec["error_threshold"] == 0
    conda = yaml.safe_load((BATCH / "batch-conda.yml").read_text())
    pins = dict(line.split("==") for line in conda["dependencies"][-1]["pip"])
    # how-to-use-batch-model-deployments.md: azureml-core and azureml-dataset-runtime[fuse] are required.
    assert {"azureml-core", "azureml-dataset-runtime[fuse]"} <= set(pins)
    major, minor, patch = (int(part) for part in pins["numpy"].split("."))
    assert (major, minor, patch) < (
        2,
        3,
        3,
    ), "azureml-dataset-runtime 1.62 needs numpy < 2.3.3 (AZURE-FACTS 18)"
