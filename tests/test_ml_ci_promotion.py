"""CI for issue 12: the PR model report only when mlops/ changes, and prod promoting instead of retraining.

The deploy scripts of each CI system run for real under bash, with `.venv/bin/python` a stub that records
its arguments (and writes the version a promotion would have copied), so what is asserted is what the
scripts do: prod promotes from dev's outputs into prod's, then deploys exactly that version, never trains.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"


def test_github_model_report_runs_only_for_mlops_changes_and_updates_one_comment() -> None:
    job = yaml.safe_load((WORKFLOWS / "pull-request.yml").read_text())["jobs"]["model-report"]
    steps = job["steps"]
    gate = next(step for step in steps if step.get("id") == "changes")
    assert "-- mlops/" in gate["run"]
    later = steps[steps.index(gate) + 1 :]
    assert all(step.get("if") == "steps.changes.outputs.mlops == 'true'" for step in later)
    script = "\n".join(step.get("run", "") for step in later)
    assert script.index("git worktree add .work/base") < script.index("mlops report")
    assert (
        "--against champion" in script and "mlops.pr_comment --body .work/model-report/comment.md" in script
    )
    assert job["permissions"]["pull-requests"] == "write"


def test_azure_devops_review_posts_the_model_report_only_for_mlops_changes() -> None:
    text = (ROOT / ".ci" / "azure-pipelines.yml").read_text()
    pipeline = yaml.safe_load(text)
    review = next(
        stage for stage in pipeline["stages"] if isinstance(stage, dict) and stage.get("stage") == "Review"
    )
    job = next(job for job in review["jobs"] if job["job"] == "model_report")
    script = job["steps"][2]["script"]
    assert "-- mlops/" in script and "exit 0" in script and "--azure-devops" in script
    assert job["steps"][2]["env"]["SYSTEM_ACCESSTOKEN"] == "$(System.AccessToken)"


STUB = """#!/bin/sh
printf '%s\\n' "$*" >> calls.log
if [ "$3" = promote ]; then
  while [ $# -gt 0 ]; do
    if [ "$1" = --version-file ]; then echo 7 > "$2"; fi
    shift
  done
fi
"""
"""Stands in for .venv/bin/python: logs `-m mlops <command> ...`; a promotion reports version 7."""


def _run(script: str, workdir: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-e", "-c", script],
        cwd=workdir,
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(STUB)
    python.chmod(0o755)
    (tmp_path / ".work").mkdir()
    for name in ("stack-outputs.json", "dev-outputs.json"):
        (tmp_path / ".work" / name).write_text(json.dumps({"workspaceName": name}))
    return tmp_path


def _calls(workdir: Path) -> list[str]:
    log = workdir / "calls.log"
    return [" ".join(line.split()) for line in log.read_text().splitlines()] if log.exists() else []


PROMOTE = (
    "-m mlops promote --target azure --from dev --to prod --from-outputs .work/dev-outputs.json "
    "--to-outputs .work/stack-outputs.json --model-version {version} --version-file .work/promoted-version"
)
DEPLOY_PROMOTED = (
    "-m mlops deploy --target azure --outputs .work/stack-outputs.json --skip-training --model-version 7 "
    "--deadline-minutes 330"
)
TRAIN = (
    "-m mlops deploy --target azure --outputs .work/stack-outputs.json --data .work/taxi-data.csv "
    "--deadline-minutes 330"
)


def _github_steps() -> dict[str, dict[str, Any]]:
    hook = yaml.safe_load((WORKFLOWS / "deploy.yml").read_text())["jobs"]["hook"]
    return {step.get("id") or step.get("name", ""): step for step in hook["steps"]}


@pytest.mark.parametrize("asked", ["", "3"])
def test_github_prod_promotes_from_dev_then_deploys_the_promoted_version(workdir: Path, asked: str) -> None:
    steps = _github_steps()
    promote, hook = (
        steps["promote"],
        steps[next(name for name in steps if name.startswith("Post-deploy hook"))],
    )
    assert promote["if"] == "env.STACK == 'prod'" and promote["timeout-minutes"] <= 10
    data = next(step for step in steps.values() if "mlops.data generate" in step.get("run", ""))
    assert "env.STACK != 'prod'" in data["if"], "prod never trains"
    assert list(steps).index("promote") < list(steps).index(next(n for n in steps if n.startswith("Post")))
    output = workdir / "github-output"
    env = {"STACK": "prod", "MODEL_VERSION": asked, "GITHUB_OUTPUT": str(output)}
    assert _run(promote["run"], workdir, env).returncode == 0
    promoted = dict(line.split("=", 1) for line in output.read_text().splitlines())["version"]
    assert hook["env"]["PROMOTED_VERSION"] == "${{ steps.promote.outputs.version }}"
    done = _run(hook["run"], workdir, env | {"PROMOTED_VERSION": promoted})
    assert done.returncode == 0, done.stderr
    assert _calls(workdir) == [PROMOTE.format(version=asked or "champion"), DEPLOY_PROMOTED]


def test_github_prod_without_a_promoted_version_deploys_nothing_and_dev_still_trains(workdir: Path) -> None:
    steps = _github_steps()
    hook = steps[next(name for name in steps if name.startswith("Post-deploy hook"))]
    refused = _run(hook["run"], workdir, {"STACK": "prod", "MODEL_VERSION": "3", "PROMOTED_VERSION": ""})
    assert refused.returncode == 1 and "promoted from dev" in refused.stdout and _calls(workdir) == []
    assert (
        _run(hook["run"], workdir, {"STACK": "dev", "MODEL_VERSION": "", "PROMOTED_VERSION": ""}).returncode
        == 0
    )
    assert _calls(workdir) == [TRAIN]


def test_github_prod_infra_hands_dev_outputs_to_the_hook() -> None:
    infra = yaml.safe_load((WORKFLOWS / "deploy.yml").read_text())["jobs"]["infra"]
    dev = next(
        step for step in infra["steps"] if "--stack dev > .work/dev-outputs.json" in step.get("run", "")
    )
    assert dev["if"] == "env.STACK == 'prod'"
    upload = next(step for step in infra["steps"] if str(step.get("uses", "")).startswith("actions/upload"))
    assert ".work/dev-outputs.json" in upload["with"]["path"]


def _ado_script(text: str, stack: str, workspace: Path) -> str:
    """What Azure DevOps runs: template expressions and the Pipeline.Workspace macro filled in."""
    return text.replace("${{ target.stack }}", stack).replace("$(Pipeline.Workspace)", str(workspace))


def _ado_hook_steps() -> list[dict[str, Any]]:
    pipeline = yaml.safe_load((ROOT / ".ci" / "azure-pipelines.yml").read_text())
    stage = pipeline["stages"][1]["${{ each target in parameters.targets }}"][0]
    hook = next(job for job in stage["jobs"] if job.get("job") == "hook")
    return hook["steps"]


def test_azure_devops_prod_promotes_from_dev_then_deploys_the_promoted_version(workdir: Path) -> None:
    steps = _ado_hook_steps()
    [prod_only] = [step["${{ if eq(target.stack, 'prod') }}"] for step in steps if len(step) == 1 and
                   "${{ if eq(target.stack, 'prod') }}" in step]  # fmt: skip
    download, promote = prod_only
    assert download["artifact"] == "dev-outputs" and promote["timeoutInMinutes"] <= 10
    hook = next(step for step in steps if step.get("task") == "AzureCLI@2")
    data = next(step for step in steps if "mlops.data generate" in step.get("script", ""))
    assert "ne('${{ target.stack }}', 'prod')" in data["condition"], "prod never trains"
    published = workdir / "pipeline" / "dev-outputs"
    published.mkdir(parents=True)
    (workdir / ".work" / "dev-outputs.json").rename(published / "dev-outputs.json")
    env = {"MODEL_VERSION": " "}
    done = _run(_ado_script(promote["inputs"]["inlineScript"], "prod", workdir / "pipeline"), workdir, env)
    assert done.returncode == 0, done.stderr
    [promoted] = re.findall(r"##vso\[task\.setvariable variable=PROMOTED_VERSION\](\S+)", done.stdout)
    script = _ado_script(hook["inputs"]["inlineScript"], "prod", workdir / "pipeline")
    assert _run(script, workdir, env | {"PROMOTED_VERSION": promoted}).returncode == 0
    assert _calls(workdir) == [PROMOTE.format(version="champion"), DEPLOY_PROMOTED]
    refused = _run(script, workdir, {"MODEL_VERSION": "3"})
    assert refused.returncode == 1 and "promoted from dev" in refused.stdout
    assert _run(_ado_script(hook["inputs"]["inlineScript"], "dev", workdir), workdir, env).returncode == 0
    assert _calls(workdir)[-1] == TRAIN


def _jenkins_prod_hook_scripts() -> list[str]:
    text = (ROOT / ".ci" / "Jenkinsfile").read_text()
    stage = text[text.index("stage('post-deploy hook prod')") :]
    return re.findall(r"sh '''(.*?)'''", stage, re.DOTALL)


def test_jenkins_prod_promotes_from_dev_then_deploys_the_promoted_version(workdir: Path) -> None:
    text = (ROOT / ".ci" / "Jenkinsfile").read_text()
    up = text[text.index("stage('pulumi up prod')") : text.index("stage('post-deploy hook prod')")]
    assert "--stack dev > .work/dev-outputs.json" in up and ".work/dev-outputs.json'" in up
    scripts = _jenkins_prod_hook_scripts()
    assert "mlops.data generate" not in "".join(scripts), "prod never trains"
    for script in scripts[1:]:  # the first installs and checks the agent (hook-runner)
        done = _run(script, workdir, {"MODEL_VERSION": ""})
        assert done.returncode == 0, done.stderr
    assert _calls(workdir) == [PROMOTE.format(version="champion"), DEPLOY_PROMOTED]
