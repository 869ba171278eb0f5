"""CI for issue 12: the PR model report only when mlops/ changes, and prod promoting instead of retraining."""

from __future__ import annotations

from pathlib import Path

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


def test_github_prod_promotes_then_deploys_the_promoted_version() -> None:
    deploy = yaml.safe_load((WORKFLOWS / "deploy.yml").read_text())["jobs"]["deploy"]
    hook = next(step for step in deploy["steps"] if "mlops promote" in step.get("run", ""))
    script = hook["run"]
    prod, dev = script.split("else", 1)
    assert prod.index("mlops promote --target azure --from dev --to prod") < prod.index(
        '--stack prod --model-version "$(cat .work/promoted-version)"'
    )
    assert "--model-version" not in dev, "dev still trains"


def test_azure_devops_prod_promotes_and_the_review_posts_the_model_report() -> None:
    text = (ROOT / ".ci" / "azure-pipelines.yml").read_text()
    prod = text.split("${{ if eq(target.stack, 'prod') }}:", 1)[1]
    assert prod.index("mlops promote --target azure --from dev --to prod") < prod.index("--stack prod")
    dev = text.split("${{ if ne(target.stack, 'prod') }}:", 1)[1].split(
        "${{ if eq(target.stack, 'prod') }}:"
    )[0]
    assert "--model-version" not in dev
    pipeline = yaml.safe_load(text)
    review = next(
        stage for stage in pipeline["stages"] if isinstance(stage, dict) and stage.get("stage") == "Review"
    )
    job = next(job for job in review["jobs"] if job["job"] == "model_report")
    script = job["steps"][2]["script"]
    assert "-- mlops/" in script and "exit 0" in script and "--azure-devops" in script
    assert job["steps"][2]["env"]["SYSTEM_ACCESSTOKEN"] == "$(System.AccessToken)"
