"""Stack outputs for the post-deploy hook: parsing, the pulumi CLI call, and the ResourceHook's pure parts."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from mlops.stack_outputs import (
    StackOutputs,
    StackOutputsError,
    load_stack_outputs,
    parse_stack_outputs,
    pulumi_command,
)
from stacks.post_deploy import (
    HookError,
    deploy_command,
    hook_callback,
    outputs_from_resource,
    run_hook,
    run_streaming,
)

COMPLETE = {
    "subscriptionId": "sub-1",
    "resourceGroupName": "rg-mlops-dev",
    "location": "westeurope",
    "environment": "dev",
    "workspaceName": "mlw-mlops-dev",
    "computeClusterName": "cpu-cluster",
    "containerRegistryName": "crmlopsdev",
    "keyVaultName": "kv-mlops-dev",
    "storageAccountName": "stmlopsdev",
    "applicationInsightsName": "appi-mlops-dev",
}


def test_complete_outputs_become_typed_fields() -> None:
    outputs = parse_stack_outputs(COMPLETE | {"aksComputeName": "aks-inference"}, "test")
    assert outputs == StackOutputs(
        subscription_id="sub-1",
        resource_group="rg-mlops-dev",
        workspace_name="mlw-mlops-dev",
        location="westeurope",
        compute_cluster_name="cpu-cluster",
        environment="dev",
        registry="crmlopsdev",
        key_vault_name="kv-mlops-dev",
        storage_account_name="stmlopsdev",
        application_insights_name="appi-mlops-dev",
        aks_compute_name="aks-inference",
    )


def test_informational_outputs_are_optional() -> None:
    required_only = {
        key: COMPLETE[key]
        for key in (
            "subscriptionId",
            "resourceGroupName",
            "location",
            "environment",
            "workspaceName",
            "computeClusterName",
        )
    }
    outputs = parse_stack_outputs(required_only, "test")
    assert outputs.registry is None and outputs.aks_compute_name is None


@pytest.mark.parametrize(
    ("change", "messages"),
    [
        ({"subscriptionId": None}, ["missing required output 'subscriptionId'"]),
        ({"workspaceName": "", "location": "  "}, ["'workspaceName'", "'location'"]),
        ({"environment": "staging"}, ["output 'environment' is 'staging'; allowed: dev, prod"]),
        ({"computeClusterName": 3}, ["missing required output 'computeClusterName'"]),
        ({"keyVaultName": ["kv"]}, ["output 'keyVaultName' must be a string, got list"]),
    ],
)
def test_every_problem_is_listed_in_one_error(change: dict[str, Any], messages: list[str]) -> None:
    raw = {key: value for key, value in (COMPLETE | change).items() if value is not None}
    with pytest.raises(StackOutputsError) as raised:
        parse_stack_outputs(raw, "outputs.json")
    text = str(raised.value)
    assert "outputs.json" in text
    for message in messages:
        assert message in text


def test_outputs_file_is_read(tmp_path: Path) -> None:
    file = tmp_path / "outputs.json"
    file.write_text(json.dumps(COMPLETE))
    assert load_stack_outputs(None, file).workspace_name == "mlw-mlops-dev"


@pytest.mark.parametrize(
    ("content", "message"),
    [("{not json", r"are not JSON \(line 1"), ("[1, 2]", "must be a JSON object, got list")],
)
def test_malformed_outputs_file_is_explained(tmp_path: Path, content: str, message: str) -> None:
    file = tmp_path / "outputs.json"
    file.write_text(content)
    with pytest.raises(StackOutputsError, match=message):
        load_stack_outputs(None, file)


def test_missing_outputs_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(StackOutputsError, match="cannot read --outputs file .*nope.json"):
        load_stack_outputs(None, tmp_path / "nope.json")


def test_neither_stack_nor_file_is_a_usage_error() -> None:
    with pytest.raises(StackOutputsError, match=r"pass --stack dev\|prod or --outputs FILE"):
        load_stack_outputs(None, None)


def fake_pulumi(
    stdout: str = "", code: int = 0, stderr: str = ""
) -> tuple[list[list[str]], Callable[..., Any]]:
    calls: list[list[str]] = []

    def run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        calls.append(command)
        return subprocess.CompletedProcess(command, code, stdout, stderr)

    return calls, run


def test_outputs_come_from_pulumi_stack_output(monkeypatch: Any) -> None:
    monkeypatch.setattr("shutil.which", lambda name: "/usr/bin/pulumi")
    calls, run = fake_pulumi(json.dumps(COMPLETE))
    assert load_stack_outputs("prod", None, run=run).environment == "dev"
    assert calls == [["pulumi", "stack", "output", "--json", "--show-secrets", "--stack", "prod"]]
    assert list(pulumi_command("dev"))[-1] == "dev"


def test_missing_pulumi_cli_names_the_outputs_flag(monkeypatch: Any) -> None:
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(StackOutputsError, match="Pulumi CLI is not on PATH.*--outputs FILE"):
        load_stack_outputs("dev", None)


def test_failing_pulumi_reports_its_exit_code_and_stderr(monkeypatch: Any) -> None:
    monkeypatch.setattr("shutil.which", lambda name: "/usr/bin/pulumi")
    _, run = fake_pulumi(code=255, stderr="error: no stack named 'dev' found")
    with pytest.raises(StackOutputsError, match="exited 255: error: no stack named 'dev' found"):
        load_stack_outputs("dev", None, run=run)


# ---------------------------------------------------------------- the ResourceHook's pure parts

WORKSPACE_ID = (
    "/subscriptions/sub-1/resourceGroups/rg-mlops-dev"
    "/providers/Microsoft.MachineLearningServices/workspaces/mlw-dev"
)


@pytest.mark.parametrize(
    ("resource_id", "expected"),
    [
        (WORKSPACE_ID, {"workspaceName": "mlw-dev"}),
        (f"{WORKSPACE_ID}/computes/cpu-dev", {"workspaceName": "mlw-dev", "computeClusterName": "cpu-dev"}),
        (WORKSPACE_ID.replace("resourceGroups", "resourcegroups") + "/", {"workspaceName": "mlw-dev"}),
        (
            WORKSPACE_ID.replace("Microsoft.MachineLearningServices", "microsoft.machinelearningservices"),
            {"workspaceName": "mlw-dev"},
        ),
    ],
)
def test_outputs_are_derived_from_the_resource_id(resource_id: str, expected: dict[str, str]) -> None:
    outputs = outputs_from_resource(resource_id, "westeurope", "prod")
    assert outputs == {
        "subscriptionId": "sub-1",
        "resourceGroupName": "rg-mlops-dev",
        "location": "westeurope",
        "environment": "prod",
        **expected,
    }


@pytest.mark.parametrize(
    ("resource_id", "location", "message"),
    [
        (
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/st",
            "x",
            "not an AML",
        ),
        (f"{WORKSPACE_ID}/computes/cpu/extra", "x", "not an AML"),
        ("", "x", "not an AML"),
        (WORKSPACE_ID, None, "reported no location"),
    ],
)
def test_unusable_resources_are_refused(resource_id: str, location: str | None, message: str) -> None:
    with pytest.raises(HookError, match=message):
        outputs_from_resource(resource_id, location, "dev")


def test_hook_runs_the_deploy_cli_with_an_outputs_file(tmp_path: Path) -> None:
    data = tmp_path / "taxi.csv"
    data.write_text("cost\n1\n")
    seen: dict[str, Any] = {}

    def run(command: Sequence[str], log: Callable[[str], None], timeout_s: float) -> int:
        seen["command"] = list(command)
        outputs_file = Path(command[command.index("--outputs") + 1])
        seen["outputs"] = parse_stack_outputs(json.loads(outputs_file.read_text()), str(outputs_file))
        return 0

    run_hook(
        "dev",
        "dev",
        f"{WORKSPACE_ID}/computes/cpu-dev",
        {"location": "westeurope"},
        data=data,
        log=lambda line: None,
        known_outputs={"onlineEndpointName": "ep-taxi-001dev"},
        run=run,
    )

    assert seen["outputs"].endpoint_names() == ("ep-taxi-001dev", "bep-dev")
    assert seen["command"][1:8] == ["-m", "mlops", "deploy", "--target", "azure", "--stack", "dev"]
    assert seen["command"][-2:] == ["--data", str(data)]
    assert seen["outputs"].compute_cluster_name == "cpu-dev" and seen["outputs"].workspace_name == "mlw-dev"
    assert not Path(seen["command"][seen["command"].index("--outputs") + 1]).exists(), "temp file removed"


def test_hook_failure_names_the_exit_code(tmp_path: Path) -> None:
    data = tmp_path / "taxi.csv"
    data.write_text("cost\n1\n")
    with pytest.raises(HookError, match="exited 4"):
        run_hook(
            "prod",
            "prod",
            f"{WORKSPACE_ID}/computes/c",
            {"location": "x"},
            data=data,
            log=lambda line: None,
            run=lambda command, log, timeout: 4,
        )


def test_hook_without_training_data_says_how_to_make_it(tmp_path: Path) -> None:
    with pytest.raises(HookError, match="python -m mlops.data generate"):
        run_hook(
            "dev",
            "dev",
            f"{WORKSPACE_ID}/computes/c",
            {"location": "x"},
            data=tmp_path / "none.csv",
            log=lambda line: None,
            run=lambda command, log, timeout: 0,
        )


def test_deploy_command_is_the_documented_cli_line(tmp_path: Path) -> None:
    command = deploy_command("prod", tmp_path / "o.json", tmp_path / "d.csv", python="python")
    assert command == [
        "python",
        "-m",
        "mlops",
        "deploy",
        "--target",
        "azure",
        "--stack",
        "prod",
        "--outputs",
        str(tmp_path / "o.json"),
        "--data",
        str(tmp_path / "d.csv"),
    ]


@pytest.mark.parametrize(
    ("enabled", "preview", "runs"),
    [(False, False, False), (False, True, False), (True, True, False), (True, False, True)],
)
def test_hook_runs_only_when_switched_on_and_not_in_preview(
    tmp_path: Path, enabled: bool, preview: bool, runs: bool
) -> None:
    import pulumi

    calls: list[tuple[Any, ...]] = []
    callback = hook_callback(
        "dev",
        "dev",
        enabled=enabled,
        data=tmp_path / "d.csv",
        is_dry_run=lambda: preview,
        deploy=lambda *args, **kwargs: calls.append(args),
    )
    compute_id = f"{WORKSPACE_ID}/computes/cpu-dev"
    callback(
        pulumi.ResourceHookArgs(
            urn="urn:x", id=compute_id, name="cpu", type="t", new_outputs={"location": "westeurope"}
        )
    )
    assert calls == ([("dev", "dev", compute_id, {"location": "westeurope"})] if runs else [])


@pytest.mark.parametrize(
    ("namespace", "postfix", "environment"),
    [("taxi", "001", "dev"), ("taxi", "001", "prod"), ("abc", "7", "dev")],
)
def test_derived_endpoint_names_match_what_the_stack_exports(
    namespace: str, postfix: str, environment: str
) -> None:
    from stacks.naming import derive_names

    names = derive_names(namespace, postfix, environment)
    outputs = StackOutputs(
        "sub", names.resource_group, names.workspace, "westeurope", "cpu-cluster", environment
    )
    assert outputs.endpoint_names() == (names.online_endpoint, names.batch_endpoint)


def test_exported_endpoint_names_win() -> None:
    outputs = StackOutputs(
        "s", "rg", "mlw-x-1dev", "westeurope", "cpu", "dev", online_endpoint_name="ep-custom"
    )
    assert outputs.endpoint_names() == ("ep-custom", "bep-x-1dev")


def test_hook_deploy_is_stopped_at_its_deadline_even_when_it_prints_nothing() -> None:
    lines: list[str] = []
    with pytest.raises(HookError, match="ran over 1s"):
        run_streaming(
            [sys.executable, "-c", "import time; print('started', flush=True); time.sleep(30)"],
            lines.append,
            1.0,
        )
    assert lines == ["started"]
    assert run_streaming([sys.executable, "-c", "print('done')"], lines.append, 30.0) == 0


CONTRACT_OUTPUTS = {
    "isolationDesign": "customerVnet",
    "onlineTarget": "kubernetes",
    "workspacePublicNetworkAccess": "Disabled",
    "aksClusterName": "aks-taxi001prod",
    "aksComputeName": "aks-inference",
    "aksNodeVmSize": "Standard_D4s_v5",
    "aksNodeCount": 3,
    "inferenceScoringHost": "scoring.taxi.internal",
    "inferenceLoadBalancerIp": "10.0.4.250",
    "ciIdentityClientId": "c1",
    "ciIdentityPrincipalId": "p1",
    "agentPoolName": "pool-taxi001prod",
    "actionGroupId": "/subscriptions/s/resourceGroups/rg/providers/microsoft.insights/actionGroups/ag",
    "modelRegistryName": "mlr-taxi001",
}


def test_the_contract_outputs_of_this_round_become_typed_fields() -> None:
    outputs = parse_stack_outputs(COMPLETE | CONTRACT_OUTPUTS, "test")
    assert (outputs.isolation_design, outputs.online_target) == ("customerVnet", "kubernetes")
    assert outputs.private_workspace and outputs.aks_node_count == 3
    assert (outputs.aks_node_vm_size, outputs.inference_scoring_host) == (
        "Standard_D4s_v5",
        "scoring.taxi.internal",
    )
    assert outputs.model_registry_name == "mlr-taxi001" and outputs.agent_pool_name == "pool-taxi001prod"


def test_without_the_new_outputs_the_hook_still_reads_an_older_stack() -> None:
    outputs = parse_stack_outputs(COMPLETE, "test")
    assert outputs.online_target is None and outputs.aks_node_count is None and not outputs.private_workspace


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"onlineTarget": "serverless"},
            "output 'onlineTarget' is 'serverless'; allowed: kubernetes, managed",
        ),
        ({"isolationDesign": "none"}, "allowed: customerVnet, managedVnet"),
        ({"workspacePublicNetworkAccess": "disabled"}, "allowed: Enabled, Disabled"),
        ({"aksNodeCount": 0}, "'aksNodeCount' must be a whole number of at least 1, got 0"),
        ({"aksNodeCount": "3"}, "'aksNodeCount' must be a whole number of at least 1, got '3'"),
        ({"aksNodeVmSize": 4}, "output 'aksNodeVmSize' must be a string, got int"),
    ],
)
def test_malformed_contract_outputs_are_named(change: dict[str, Any], message: str) -> None:
    with pytest.raises(StackOutputsError) as raised:
        parse_stack_outputs(COMPLETE | CONTRACT_OUTPUTS | change, "test")
    assert message in str(raised.value)


def test_the_pulumi_hook_watchdog_outlasts_the_hooks_own_deadline() -> None:
    from mlops.orchestrate import HOOK_DEADLINE_S
    from stacks.post_deploy import HOOK_TIMEOUT_S

    assert HOOK_TIMEOUT_S > HOOK_DEADLINE_S
