"""Post a pull request's model report as one comment, updated in place (GitHub or Azure DevOps REST API).

`python -m mlops.pr_comment --body comment.md` in CI: the comment is found again by the marker on its
first line (mlops.report.COMMENT_MARKER), so every push edits the same comment instead of adding one.
- GitHub (REST, "Issues > Comments"): list the PR's issue comments, PATCH the marked one or POST a new
  one; needs GITHUB_TOKEN (pull-requests: write), GITHUB_REPOSITORY and the PR number.
- Azure DevOps (REST 7.1, "Git > Pull Request Threads"): list the PR's threads, PATCH the first comment
  of the marked thread or POST a new active thread; needs System.AccessToken (SYSTEM_ACCESSTOKEN),
  SYSTEM_COLLECTIONURI, SYSTEM_TEAMPROJECT, BUILD_REPOSITORY_ID, SYSTEM_PULLREQUEST_PULLREQUESTID.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import requests

from mlops.report import COMMENT_MARKER

GITHUB_API = "https://api.github.com"
AZURE_DEVOPS_API_VERSION = "7.1"
TIMEOUT_S = 30


class CommentError(RuntimeError):
    """The comment could not be posted; the message names the call and the status."""


def _checked(response: requests.Response, what: str) -> Any:
    if response.status_code >= 400:
        raise CommentError(f"{what}: HTTP {response.status_code} {response.text[:300]}")
    return response.json() if response.content else None


def upsert_github(repository: str, number: int, body: str, token: str, api: str = GITHUB_API) -> str:
    """Create or update the marked comment on PR `number` of `owner/repo`; returns 'created' or 'updated'."""
    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json"})
    url = f"{api}/repos/{repository}/issues/{number}/comments"
    page = 1
    while True:
        comments = _checked(
            session.get(url, params={"per_page": 100, "page": page}, timeout=TIMEOUT_S), "listing comments"
        )
        for comment in comments:
            if str(comment.get("body", "")).startswith(COMMENT_MARKER):
                patch = session.patch(
                    f"{api}/repos/{repository}/issues/comments/{comment['id']}",
                    json={"body": body},
                    timeout=TIMEOUT_S,
                )
                _checked(patch, "updating the comment")
                return "updated"
        if len(comments) < 100:
            break
        page += 1
    _checked(session.post(url, json={"body": body}, timeout=TIMEOUT_S), "creating the comment")
    return "created"


def upsert_azure_devops(
    collection: str, project: str, repository_id: str, pull_request: int, body: str, token: str
) -> str:
    """Create or update the marked thread's first comment on an Azure Repos PR; returns 'created' or 'updated'."""
    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {token}"})
    base = f"{collection.rstrip('/')}/{project}/_apis/git/repositories/{repository_id}/pullRequests/{pull_request}"
    params = {"api-version": AZURE_DEVOPS_API_VERSION}
    threads = _checked(session.get(f"{base}/threads", params=params, timeout=TIMEOUT_S), "listing threads")
    for thread in threads.get("value", []):
        comments = thread.get("comments") or []
        if comments and str(comments[0].get("content", "")).startswith(COMMENT_MARKER):
            url = f"{base}/threads/{thread['id']}/comments/{comments[0]['id']}"
            _checked(session.patch(url, params=params, json={"content": body}, timeout=TIMEOUT_S), "updating")
            return "updated"
    thread = {"comments": [{"parentCommentId": 0, "content": body, "commentType": 1}], "status": 1}
    _checked(session.post(f"{base}/threads", params=params, json=thread, timeout=TIMEOUT_S), "creating")
    return "created"


def _required(env: Mapping[str, str], *names: str) -> list[str]:
    missing = [name for name in names if not env.get(name)]
    if missing:
        raise CommentError(
            f"missing environment variables {missing}; run this inside the CI job of a pull request"
        )
    return [env[name] for name in names]


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] = os.environ) -> int:
    """Post --body to the pull request CI runs for (GitHub with --pr, Azure DevOps from its variables)."""
    parser = argparse.ArgumentParser(prog="python -m mlops.pr_comment", description=__doc__.splitlines()[0])
    parser.add_argument("--body", type=Path, required=True, help="the comment (mlops report's comment.md)")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--github-pr", type=int, help="the pull request number (GitHub)")
    where.add_argument("--azure-devops", action="store_true", help="the PR this Azure Pipelines run builds")
    args = parser.parse_args(argv)
    body = args.body.read_text()
    if not body.startswith(COMMENT_MARKER):
        print(
            f"error: {args.body} does not start with {COMMENT_MARKER}; pass mlops report's comment.md",
            file=sys.stderr,
        )
        return 2
    try:
        if args.github_pr is not None:
            repository, token = _required(env, "GITHUB_REPOSITORY", "GITHUB_TOKEN")
            action = upsert_github(repository, args.github_pr, body, token)
        else:
            collection, project, repo, number, token = _required(
                env,
                "SYSTEM_COLLECTIONURI",
                "SYSTEM_TEAMPROJECT",
                "BUILD_REPOSITORY_ID",
                "SYSTEM_PULLREQUEST_PULLREQUESTID",
                "SYSTEM_ACCESSTOKEN",
            )
            action = upsert_azure_devops(collection, project, repo, int(number), body, token)
    except (CommentError, requests.RequestException) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"model report comment {action}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
