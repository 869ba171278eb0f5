"""Dry run of the Azure hook against intercepted ARM: only reads are sent, and the plan names every step."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlops.backends.azure import PlanItem, environment_version
from mlops.backends.base import DataSpec, EnvironmentSpec
from tests.test_ml_azure_contract import (
    OUTPUTS,
    PIPELINE,
    WORKSPACE_PATH,
    FakeArm,
    Recorder,
    StaticCredential,
    intercepted_arm,
    make_backend,
    write_conda,
    write_data,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def arm(monkeypatch: Any) -> Iterator[FakeArm]:
    with intercepted_arm(monkeypatch) as fake:
        yield fake


pytestmark = pytest.mark.skipif(
    not PIPELINE.exists(), reason="mlops/azureml/train/pipeline.yml not written yet"
)
SERVING = "taxi-fare-model-v3"


def seed_workspace(arm: FakeArm, environment: EnvironmentSpec) -> None:
    """A workspace after one earlier deploy: environment, compute, model v1-3, endpoint serving v3."""
    arm.put(
        f"/environments/{environment.name}/versions/{environment_version(environment)}",
        {"properties": {"image": "i"}},
    )
    arm.put(
        "/computes/cpu-cluster",
        {
            "properties": {
                "computeType": "AmlCompute",
                "provisioningState": "Succeeded",
                "properties": {
                    "vmSize": "STANDARD_DS3_V2",
                    "scaleSettings": {"minNodeCount": 0, "maxNodeCount": 2},
                },
            }
        },
    )
    for version in ("1", "2", "3"):
        arm.put(
            f"/models/taxi-fare-model/versions/{version}",
            {"properties": {"modelUri": f"azureml://m/{version}", "flavors": {}, "tags": {}}},
        )
    arm.put(
        "/onlineEndpoints/taxi-fare-online",
        {"properties": {"authMode": "Key", "traffic": {SERVING: 100}, "properties": {}}},
    )
    arm.put(
        f"/onlineEndpoints/taxi-fare-online/deployments/{SERVING}",
        {
            "properties": {
                "model": f"{WORKSPACE_PATH}/models/taxi-fare-model/versions/3",
                "endpointComputeType": "Managed",
            },
            "sku": {"name": "Default", "capacity": 1},
        },
    )


def plan_states(plan: list[PlanItem]) -> dict[str, list[str]]:
    states: dict[str, list[str]] = {}
    for item in plan:
        states.setdefault(item.step, []).append(item.state)
    return states


def test_dry_run_sends_only_reads_and_plans_every_step(arm: FakeArm, tmp_path: Path) -> None:  # noqa: F811
    from mlops.orchestrate import DeployRequest, Progress, deploy

    environment = EnvironmentSpec(
        "taxi-train-env", "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04", write_conda(tmp_path)
    )
    seed_workspace(arm, environment)
    seeded = len(arm.calls)
    recorder = Recorder()
    backend = make_backend(recorder, dry_run=True)
    request = DeployRequest(
        environment=environment,
        data=DataSpec("taxi-data", write_data(tmp_path)),
        compute="cpu-cluster",
        pipeline=PIPELINE,
        experiment="taxi-fare-training",
        model_name="taxi-fare-model",
        online_endpoint="taxi-fare-online",
        batch_endpoint="taxi-fare-batch",
        request_sample=REPO / "mlops" / "data" / "request-sample.json",
        batch_sample=REPO / "mlops" / "data" / "batch-sample.csv",
    )

    summary = deploy(backend, request, Progress(stream=io.StringIO()))

    methods = {method for method, _ in arm.calls[seeded:]}
    assert methods == {"GET"}, f"dry run sent {methods - {'GET'}}"
    states = plan_states(backend.plan)
    assert states["environment"] == ["exists", "would create"], "training env exists, scoring env is new"
    assert states["data"] == ["would upload taxi-data.csv and create"]
    assert states["compute"] == ["exists (Succeeded)"]
    assert states["training"] == ["would submit and wait"]
    assert states["gate"] == ["assumes a new champion (version 4)"]
    assert states["endpoint"][0].startswith("exists")
    assert states["deployment"] == ["would create azureml:taxi-fare-model:4, Standard_DS3_v2"]
    assert states["smoke"][0].startswith("would POST")
    assert states["traffic"] == [f"would set {{'{SERVING}': 0, 'taxi-fare-model-v4': 100}}"]
    assert states["batch"][:2] == ["would create", "would create azureml:taxi-fare-model:4"]
    assert summary.model_version == "4"
    assert all(str(item) in recorder.lines for item in backend.plan)


def test_cli_dry_run_prints_the_plan_and_exits_zero(
    arm: FakeArm,
    tmp_path: Path,
    monkeypatch: Any,
    capsys: Any,  # noqa: F811
) -> None:
    from mlops import cli

    environment = EnvironmentSpec("taxi-train-env", cli.ENVIRONMENT_IMAGE, cli.CONDA_FILE)
    seed_workspace(arm, environment)
    outputs = tmp_path / "outputs.json"
    outputs.write_text(
        json.dumps(
            {
                "subscriptionId": OUTPUTS.subscription_id,
                "resourceGroupName": OUTPUTS.resource_group,
                "workspaceName": OUTPUTS.workspace_name,
                "location": OUTPUTS.location,
                "computeClusterName": OUTPUTS.compute_cluster_name,
                "environment": OUTPUTS.environment,
            }
        )
    )
    monkeypatch.setattr("azure.identity.DefaultAzureCredential", StaticCredential)
    seeded = len(arm.calls)

    code = cli.main(
        [
            "deploy",
            "--target",
            "azure",
            "--outputs",
            str(outputs),
            "--data",
            str(write_data(tmp_path)),
            "--dry-run",
        ]
    )

    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert {method for method, _ in arm.calls[seeded:]} == {"GET"}
    for step in ("environment", "data", "compute", "training", "deployment", "traffic", "batch"):
        assert f"plan: {step}" in printed.err
    assert "== deploy summary ==" in printed.out


@pytest.mark.parametrize("target", ["azure", "local"])
def test_missing_data_file_is_a_usage_error_before_any_call(
    target: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlops import cli

    extra = (
        ["--outputs", str(tmp_path / "never-read.json")]
        if target == "azure"
        else ["--workdir", str(tmp_path)]
    )
    code = cli.main(["deploy", "--target", target, "--data", str(tmp_path / "typo.csv"), *extra])

    assert code == 2
    assert "typo.csv: no such file" in capsys.readouterr().err
