"""Dry runs of the Azure hook through the CLI against intercepted ARM, on both online targets: only reads
are sent, and the plan names every step, for a first deploy and for a re-run after a real deploy."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from mlops.stack_outputs import REQUIRED_KEYS, StackOutputs
from tests._fake_arm import KUBERNETES_OUTPUTS, OUTPUTS, FakeArm, StaticCredential, arm, write_data

REPO = Path(__file__).resolve().parents[1]
TARGETS = {"managed": OUTPUTS, "kubernetes": KUBERNETES_OUTPUTS}
PREDICTIONS = "".join(f"batch-sample.csv {row} {10 + row}.5\n" for row in range(100))
__all__ = ["arm"]

OUTPUT_KEYS = {
    "isolation_design": "isolationDesign",
    "online_target": "onlineTarget",
    "workspace_public_network_access": "workspacePublicNetworkAccess",
    "aks_cluster_name": "aksClusterName",
    "aks_compute_name": "aksComputeName",
    "aks_node_vm_size": "aksNodeVmSize",
    "aks_node_count": "aksNodeCount",
    "inference_scoring_host": "inferenceScoringHost",
    "inference_load_balancer_ip": "inferenceLoadBalancerIp",
    "storage_account_name": "storageAccountName",
}


def outputs_file(tmp_path: Path, outputs: StackOutputs) -> Path:
    """The stack outputs as `pulumi stack output --json` prints them (camelCase)."""
    fields = asdict(outputs)
    raw = {key: fields[field] for key, field in REQUIRED_KEYS.items()}
    raw |= {key: fields[field] for field, key in OUTPUT_KEYS.items() if fields[field] is not None}
    path = tmp_path / "stack-outputs.json"
    path.write_text(json.dumps(raw))
    return path


def seed_pulumi_resources(arm: FakeArm, outputs: StackOutputs) -> None:
    """What `pulumi up` leaves in the workspace before the hook ever ran: the cluster (and the AKS attach)."""
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
    if outputs.aks_compute_name:
        arm.seed_kubernetes_compute()


@pytest.fixture
def cli_env(arm: FakeArm, monkeypatch: Any) -> FakeArm:
    """The CLI's default credential and the step outputs jobs.download would fetch, for any MLClient."""
    from azure.ai.ml.operations import JobOperations

    monkeypatch.setattr("azure.identity.DefaultAzureCredential", StaticCredential)
    verdict = {
        "child-register/model_info_output_path": (
            "model_info.json",
            {"model_name": "taxi-fare-model", "model_version": "1", "registered": True, "deploy_flag": 1},
        ),
        "child-evaluate/evaluation_output": (
            "metrics.json",
            {"r2": 0.91, "rmse": 3.2, "mae": 2.1, "deploy_flag": 1, "reason": "no champion yet"},
        ),
    }

    def download(self: Any, name: str, *, download_path: str, output_name: str, **kwargs: Any) -> None:
        folder = Path(download_path) / "named-outputs" / output_name
        folder.mkdir(parents=True)
        if output_name == "score":
            (folder / "predictions.csv").write_text(PREDICTIONS)
            return
        file_name, content = verdict[f"{name}/{output_name}"]
        (folder / file_name).write_text(json.dumps(content))

    monkeypatch.setattr(JobOperations, "download", download)
    arm.step_statuses = dict.fromkeys(("prep", "train", "evaluate", "register"), "Completed")
    return arm


def run_cli(tmp_path: Path, outputs: StackOutputs, capsys: Any, *extra: str) -> tuple[int, str, str]:
    from mlops import cli

    code = cli.main(
        [
            "deploy",
            "--target",
            "azure",
            "--outputs",
            str(outputs_file(tmp_path, outputs)),
            "--data",
            str(write_data(tmp_path)),
            *extra,
        ]
    )
    printed = capsys.readouterr()
    return code, printed.out, printed.err


def plan_lines(err: str) -> list[str]:
    return [line.split("] ", 1)[1] for line in err.splitlines() if "] plan: " in line]


def plan_states(lines: list[str]) -> dict[str, list[str]]:
    states: dict[str, list[str]] = {}
    for line in lines:
        step, rest = line.removeprefix("plan: ").split(maxsplit=1)
        states.setdefault(step, []).append(rest)
    return states


def dry_run(arm: FakeArm, tmp_path: Path, outputs: StackOutputs, capsys: Any) -> list[str]:
    before = len(arm.calls)
    code, out, err = run_cli(tmp_path, outputs, capsys, "--dry-run")
    assert code == 0, err
    sent = {method for method, _ in arm.calls[before:]}
    assert sent <= {"GET", "BLOB HEAD"} and "GET" in sent, f"a dry run sent {sent - {'GET'}}"
    assert "== deploy summary ==" in out
    return plan_lines(err)


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_first_deploy_dry_run_plans_every_step_with_reads_only(
    cli_env: FakeArm, tmp_path: Path, capsys: Any, target: str
) -> None:
    outputs = TARGETS[target]
    seed_pulumi_resources(cli_env, outputs)

    states = plan_states(dry_run(cli_env, tmp_path, outputs, capsys))

    environments = [state.split(":", 1)[0] for state in states["environment"]]
    assert environments == ["taxi-train-env", "taxi-score-env", "taxi-batch-env"]
    assert all(state.endswith("would create") for state in states["environment"])
    assert states["data"][0].endswith("would upload taxi-data.csv and create")
    assert states["compute"][0].endswith("exists (Succeeded)")
    assert states["training"][0].endswith("would submit and wait")
    assert states["gate"] == [
        "model taxi-fare-model                            assumes a new champion (version 1)"
    ]
    assert states["endpoint"][0].endswith(f"would create ({target}, key auth)")
    assert states["deployment"][0].split()[0] == "ep-mlops-dev/taxi-fare-model-v1"
    assert "would create azureml:taxi-fare-model:1" in states["deployment"][0]
    assert states["traffic"][0].endswith("would set {'taxi-fare-model-v1': 100}")
    assert states["batch"][0].endswith("would create")
    if target == "kubernetes":
        assert "instance type taxi-score" in states["deployment"][0]
        assert states["instancetype"][0].endswith("would apply (AKS run command: kubectl apply)")
        assert "https://scoring.taxi.internal/api/v1/endpoint/ep-mlops-dev/score" in states["smoke"][0]
        assert "quota" not in states
    else:
        assert "Standard_DS3_v2 x 1" in states["deployment"][0]
        assert states["quota"][0].endswith("8 cores needed, 24 of 24 free")
        assert "https://ep-mlops-dev.westeurope.inference.ml.azure.com/score" in states["smoke"][0]
        assert "instancetype" not in states


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_a_rerun_after_a_deploy_plans_no_change_with_reads_only(
    cli_env: FakeArm, tmp_path: Path, capsys: Any, target: str
) -> None:
    outputs = TARGETS[target]
    seed_pulumi_resources(cli_env, outputs)
    cli_env.auto_complete_jobs = True
    cli_env.seed_model("1", {"champion": "true"})  # what the register step of the real run registers
    code, out, err = run_cli(tmp_path, outputs, capsys)
    assert code == 0, err
    assert "traffic: taxi-fare-model-v1=100" in out

    lines = dry_run(cli_env, tmp_path, outputs, capsys)
    states = plan_states(lines)

    assert all(state.endswith("exists") for state in states["environment"][:1])
    assert states["data"][0].endswith("exists")
    assert states["training"][0].endswith("exists (Completed); would attach, nothing submitted")
    assert states["gate"][0].endswith("deploy_flag 1, registered version 1")
    assert states["endpoint"][0].endswith("exists (traffic {'taxi-fare-model-v1': 100})")
    assert "deployment" not in states and "traffic" not in states and "batch" not in states


def test_a_kubernetes_override_on_a_managed_vnet_stack_is_refused_before_any_call(
    cli_env: FakeArm, tmp_path: Path, capsys: Any
) -> None:
    managed_vnet = OUTPUTS.__class__(**{**OUTPUTS.__dict__, "isolation_design": "managedVnet"})
    before = len(cli_env.calls)

    code, _, err = run_cli(tmp_path, managed_vnet, capsys, "--online-target", "kubernetes", "--dry-run")

    assert code == 2
    assert "does not support Kubernetes compute" in err and "how-to-managed-network.md" in err
    assert cli_env.calls[before:] == []


def test_a_private_workspace_refuses_a_github_hosted_runner(
    cli_env: FakeArm, tmp_path: Path, capsys: Any, monkeypatch: Any
) -> None:
    monkeypatch.setenv("RUNNER_ENVIRONMENT", "github-hosted")
    before = len(cli_env.calls)

    code, _, err = run_cli(tmp_path, KUBERNETES_OUTPUTS, capsys, "--dry-run")

    assert code == 2 and "self-hosted runner" in err and "aml-vnet-dev" in err
    assert cli_env.calls[before:] == []


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
