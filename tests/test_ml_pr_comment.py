"""The model report's PR comment: one comment per PR, updated in place, on GitHub and Azure DevOps (HTTP intercepted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import responses

from mlops.pr_comment import main, upsert_azure_devops, upsert_github
from mlops.report import COMMENT_MARKER

GITHUB = "https://api.github.com/repos/contoso/aml-platform"
DEVOPS = "https://dev.azure.com/contoso/mlops/_apis/git/repositories/repo-1/pullRequests/7"
BODY = f"{COMMENT_MARKER}\n### Model report\n| RMSE | 2.1 |"


@responses.activate
def test_github_creates_the_comment_when_none_is_marked() -> None:
    responses.get(f"{GITHUB}/issues/12/comments", json=[{"id": 1, "body": "LGTM"}])
    responses.post(f"{GITHUB}/issues/12/comments", json={"id": 2})
    assert upsert_github("contoso/aml-platform", 12, BODY, "token") == "created"
    posted = responses.calls[-1].request
    assert json.loads(posted.body) == {"body": BODY} and posted.headers["Authorization"] == "Bearer token"


@responses.activate
def test_github_updates_the_marked_comment_in_place_even_on_a_later_page() -> None:
    first_page = [{"id": n, "body": "other"} for n in range(100)]
    responses.get(f"{GITHUB}/issues/12/comments", json=first_page)
    responses.get(f"{GITHUB}/issues/12/comments", json=[{"id": 555, "body": f"{COMMENT_MARKER}\nold"}])
    responses.patch(f"{GITHUB}/issues/comments/555", json={"id": 555})
    assert upsert_github("contoso/aml-platform", 12, BODY, "token") == "updated"
    assert [call.request.method for call in responses.calls] == ["GET", "GET", "PATCH"]
    assert "page=2" in responses.calls[1].request.url


@responses.activate
def test_azure_devops_updates_the_first_comment_of_the_marked_thread() -> None:
    threads = {
        "value": [
            {"id": 3, "comments": [{"id": 1, "content": "a review"}]},
            {
                "id": 9,
                "comments": [{"id": 1, "content": f"{COMMENT_MARKER}\nold"}, {"id": 2, "content": "reply"}],
            },
        ]
    }
    responses.get(f"{DEVOPS}/threads", json=threads)
    responses.patch(f"{DEVOPS}/threads/9/comments/1", json={})
    assert (
        upsert_azure_devops("https://dev.azure.com/contoso/", "mlops", "repo-1", 7, BODY, "tok") == "updated"
    )
    patch = responses.calls[-1].request
    assert json.loads(patch.body) == {"content": BODY} and "api-version=7.1" in patch.url


@responses.activate
def test_azure_devops_creates_an_active_thread_when_none_is_marked() -> None:
    responses.get(f"{DEVOPS}/threads", json={"value": []})
    responses.post(f"{DEVOPS}/threads", json={"id": 10})
    assert (
        upsert_azure_devops("https://dev.azure.com/contoso", "mlops", "repo-1", 7, BODY, "tok") == "created"
    )
    created = json.loads(responses.calls[-1].request.body)
    assert created["status"] == 1 and created["comments"][0]["content"] == BODY


@responses.activate
def test_a_refused_call_is_a_clear_error_exit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = tmp_path / "comment.md"
    body.write_text(BODY)
    responses.get(f"{GITHUB}/issues/12/comments", status=403, body="Resource not accessible by integration")
    env = {"GITHUB_REPOSITORY": "contoso/aml-platform", "GITHUB_TOKEN": "t"}
    assert main(["--body", str(body), "--github-pr", "12"], env=env) == 1
    assert "listing comments: HTTP 403 Resource not accessible" in capsys.readouterr().err


def test_a_body_without_the_marker_or_missing_ci_variables_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    unmarked = tmp_path / "report.md"
    unmarked.write_text("### Model report")
    assert main(["--body", str(unmarked), "--github-pr", "1"], env={}) == 2
    marked = tmp_path / "comment.md"
    marked.write_text(BODY)
    assert main(["--body", str(marked), "--azure-devops"], env={"SYSTEM_ACCESSTOKEN": "t"}) == 1
    assert "SYSTEM_COLLECTIONURI" in capsys.readouterr().err
