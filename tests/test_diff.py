"""Typed plan diff: crafted plan pairs (add, remove, change, replacement, secrets) and the --base-ref flow."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from stacks import diff as d
from stacks.cli import main
from stacks.replacement import CREATE_ONLY, replaces

STORAGE = "azure-native:storage:StorageAccount"
VAULT = "azure-native:keyvault:Vault"
SUBNET = "azure-native:network:Subnet"
GROUP = "azuredevops:index/variableGroup:VariableGroup"


def _resource(stack: str, type_: str, name: str, inputs: dict[str, Any], **options: Any) -> dict[str, Any]:
    return {
        "urn": f"urn:pulumi:{stack}::aml-platform::{type_}::{name}",
        "type": type_,
        "name": name,
        "parent": None,
        "custom": True,
        "protect": False,
        "retainOnDelete": False,
        "provider": None,
        "inputs": inputs,
        "dependencies": [],
        **options,
    }


def _plan(stack: str, *resources: dict[str, Any], config: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "version": 1,
        "project": "aml-platform",
        "stack": stack,
        "config": config or {},
        "resources": list(resources),
        "outputs": {},
    }


def _base(stack: str = "prod") -> dict[str, Any]:
    return _plan(
        stack,
        _resource(
            stack,
            STORAGE,
            "storage-account",
            {
                "accountName": "sttaxi001",
                "location": "westeurope",
                "minimumTlsVersion": "TLS1_2",
                "tags": {"owner": "a"},
            },
            protect=True,
            retainOnDelete=True,
        ),
        _resource(
            stack,
            VAULT,
            "key-vault",
            {
                "vaultName": "kv-taxi-001",
                "location": "westeurope",
                "properties": {"softDeleteRetentionInDays": 90},
            },
        ),
        _resource(
            stack, SUBNET, "training-subnet", {"subnetName": "training", "addressPrefix": "10.0.1.0/24"}
        ),
        _resource(
            stack, GROUP, "variables", {"variables": [{"name": "devopsPat", "secretValue": "[secret]"}]}
        ),
        config={"aml-platform:namespace": "taxi", "aml-platform:devopsPat": "[secret]"},
    )


def _by_name(diff: d.PlanDiff, name: str) -> d.ResourceChange:
    return next(change for change in diff.resources if change.name == name)


def test_identical_plans_have_no_changes() -> None:
    diff = d.diff_plans(_base(), _base())
    assert not diff.has_changes
    assert "no changes" in d.render_text(diff)


def test_added_and_removed_resources() -> None:
    head = _base()
    head["resources"] = [r for r in head["resources"] if r["name"] != "training-subnet"]
    head["resources"].append(_resource("prod", SUBNET, "agents-subnet", {"subnetName": "agents"}))
    diff = d.diff_plans(_base(), head)
    assert [(c.name, c.action) for c in diff.resources] == [
        ("agents-subnet", "create"),
        ("training-subnet", "delete"),
    ]
    assert not _by_name(diff, "training-subnet").data_loss


def test_an_in_place_property_change_shows_old_and_new() -> None:
    head = _base()
    head["resources"][0]["inputs"]["minimumTlsVersion"] = "TLS1_3"
    change = _by_name(d.diff_plans(_base(), head), "storage-account")
    assert change.action == "update" and not change.data_loss
    assert change.changes == (d.PropertyChange("minimumTlsVersion", "TLS1_2", "TLS1_3", False),)


@pytest.mark.parametrize(
    ("name", "path", "value", "data_loss"),
    [
        ("storage-account", "accountName", "sttaxi002", True),
        ("storage-account", "location", "northeurope", True),
        ("key-vault", "vaultName", "kv-taxi-002", True),
        ("training-subnet", "subnetName", "train", False),
    ],
)
def test_a_create_only_change_is_a_replacement(name: str, path: str, value: str, data_loss: bool) -> None:
    head = _base()
    next(r for r in head["resources"] if r["name"] == name)["inputs"][path] = value
    diff = d.diff_plans(_base(), head)
    change = _by_name(diff, name)
    assert change.action == "replace" and change.data_loss is data_loss
    assert [c.path for c in change.changes if c.replaces] == [path]
    assert "forces replacement" in d.render_markdown(diff)


def test_removing_a_stateful_resource_loses_data_unless_retained() -> None:
    head = _base()
    head["resources"] = [r for r in head["resources"] if r["type"] not in (STORAGE, VAULT)]
    diff = d.diff_plans(_base(), head)
    assert _by_name(diff, "key-vault").data_loss
    assert _by_name(diff, "storage-account").retained and not _by_name(diff, "storage-account").data_loss
    assert "data loss" in d.render_markdown(diff)


def test_secret_values_are_masked() -> None:
    base, head = _base(), _base()
    base["resources"][3]["inputs"]["variables"].append(
        {"name": "adminPassword", "value": "x", "adminPassword": "old-pw"}
    )
    head["resources"][3]["inputs"]["variables"].append(
        {"name": "adminPassword", "value": "x", "adminPassword": "new-pw"}
    )
    head["config"]["aml-platform:devopsPat"] = "leaked-in-plaintext"
    diff = d.diff_plans(base, head)
    rendered = d.render_markdown(diff) + d.render_text(diff)
    assert "old-pw" not in rendered and "new-pw" not in rendered and "leaked" not in rendered
    assert _by_name(diff, "variables").changes[0].old == d.SECRET_MASK


def test_protect_changes_are_listed() -> None:
    head = _base()
    head["resources"][0]["protect"] = False
    change = _by_name(d.diff_plans(_base(), head), "storage-account")
    assert [c.path for c in change.changes] == ["(protect)"]


def test_resources_match_across_stacks() -> None:
    assert d.resource_key("urn:pulumi:dev::p::t::n") == d.resource_key("urn:pulumi:prod::p::t::n")
    diff = d.diff_plans(_base("dev"), _base("prod"))
    assert not diff.resources


@pytest.mark.parametrize(
    ("value", "path", "shown"),
    [
        ("TLS1_2", "minimumTlsVersion", "TLS1_2"),
        ("hunter2", "osProfile.adminPassword", "[secret]"),
        ("[secret]", "anything", "[secret]"),
        ({"a": 1}, "x", '{"a": 1}'),
        (None, "x", None),
        ("a" * 100 + "b" * 100, "x", "a" * 26 + "…" + "b" * 53),
    ],
)
def test_display_masks_and_shortens(value: Any, path: str, shown: str | None) -> None:
    assert d.display(value, path) == shown


@pytest.mark.parametrize(
    ("type_", "path", "expected"),
    [
        (STORAGE, "accountName", True),
        (STORAGE, "sku.name", True),
        (STORAGE, "minimumTlsVersion", False),
        ("azure-native:containerservice:ManagedCluster", "agentPoolProfiles[0].count", True),
        ("azure-native:machinelearningservices:Workspace", "storageAccount", True),
        ("azure-native:machinelearningservices:Workspace", "publicNetworkAccess", False),
        ("azuredevops:index/project:Project", "location", False),
    ],
)
def test_replacement_table(type_: str, path: str, expected: bool) -> None:
    assert replaces(type_, path) is expected


def test_replacement_table_covers_the_required_types() -> None:
    required = {
        STORAGE,
        VAULT,
        "azure-native:machinelearningservices:Workspace",
        "azure-native:containerservice:ManagedCluster",
        "azure-native:network:VirtualNetwork",
    }
    assert required <= set(CREATE_ONLY)


def test_long_lists_collapse_in_markdown() -> None:
    head = _base()
    head["resources"] += [
        _resource("prod", SUBNET, f"subnet-{i}", {"subnetName": f"s{i}"}) for i in range(12)
    ]
    markdown = d.render_markdown(d.diff_plans(_base(), head))
    assert "<details><summary>12 resources</summary>" in markdown


def test_cli_exit_code_tells_changes_from_none(tmp_path: Path) -> None:
    base, head = tmp_path / "base.json", tmp_path / "head.json"
    base.write_text(json.dumps(_base()))
    head.write_text(json.dumps(_base()))
    assert main(["diff", str(base), str(head)]) == 0
    changed = _base()
    changed["resources"][0]["inputs"]["accountName"] = "other"
    head.write_text(json.dumps(changed))
    markdown = tmp_path / "comment.md"
    assert main(["diff", str(base), str(head), "--markdown", str(markdown)]) == 1
    assert "replace" in markdown.read_text()
    assert main(["diff", str(base), str(tmp_path / "missing.json")]) == 2


FAKE_STACKS_MAIN = """
import argparse, shutil, sys
parser = argparse.ArgumentParser()
parser.add_argument("command")
parser.add_argument("--stack", action="append")
parser.add_argument("--json")
parser.add_argument("--quiet", action="store_true")
args = parser.parse_args()
if len(args.stack) > 1 and open("cli-version").read().strip() == "old":
    sys.exit("error: argument --stack: one stack per call")  # a base ref that predates multi-stack plans
for stack in args.stack:
    shutil.copy(f"plan-{stack}.json", args.json.replace("{stack}", stack))
"""


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        check=True,
        capture_output=True,
    )


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_base_ref_diff_plans_the_committed_and_working_tree(tmp_path: Path) -> None:
    # A stand-in program whose `stacks plan` copies plan-<stack>.json: the test is about the worktree flow.
    repo = tmp_path / "repo"
    (repo / "stacks").mkdir(parents=True)
    (repo / "stacks" / "__init__.py").write_text("")
    (repo / "stacks" / "plan.py").write_text("")
    (repo / "stacks" / "__main__.py").write_text(textwrap.dedent(FAKE_STACKS_MAIN))
    (repo / "plan-prod.json").write_text(json.dumps(_base()))
    (repo / "cli-version").write_text("new")
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "base")
    changed = copy.deepcopy(_base())
    changed["resources"][1]["inputs"]["vaultName"] = "kv-taxi-009"
    (repo / "plan-prod.json").write_text(json.dumps(changed))
    diff = d.diff_against_ref("prod", "main", repo)
    assert [(c.name, c.action) for c in diff.resources] == [("key-vault", "replace")]
    listed = subprocess.run(
        ["git", "-C", str(repo), "worktree", "list"], capture_output=True, text=True
    ).stdout
    assert len(listed.strip().splitlines()) == 1, "the temporary worktree must be removed"
    with pytest.raises(d.DiffInputError, match="no-such-ref"):
        d.diff_against_ref("prod", "no-such-ref", repo)


def test_cli_requires_two_plans_or_a_base_ref(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["diff", "--base-ref", "main"])
    assert "--stack" in capsys.readouterr().err
    assert sys.executable


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
@pytest.mark.parametrize("base_cli", ["new", "old"])
def test_base_ref_diff_of_several_stacks_keeps_the_head_plans(tmp_path: Path, base_cli: str) -> None:
    repo = tmp_path / "repo"
    (repo / "stacks").mkdir(parents=True)
    (repo / "stacks" / "__init__.py").write_text("")
    (repo / "stacks" / "plan.py").write_text("")
    (repo / "stacks" / "__main__.py").write_text(textwrap.dedent(FAKE_STACKS_MAIN))
    (repo / "cli-version").write_text(base_cli)
    for stack in ("dev", "prod"):
        (repo / f"plan-{stack}.json").write_text(json.dumps(_base()))
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "base")
    (repo / "cli-version").write_text("new")
    changed = copy.deepcopy(_base())
    changed["resources"][1]["inputs"]["vaultName"] = "kv-taxi-009"
    (repo / "plan-prod.json").write_text(json.dumps(changed))
    saved = tmp_path / "head-{stack}.json"
    diffs = d.diff_stacks_against_ref(["dev", "prod"], "main", repo, save_head=str(saved))
    assert not diffs["dev"].has_changes
    assert [(c.name, c.action) for c in diffs["prod"].resources] == [("key-vault", "replace")]
    assert json.loads((tmp_path / "head-prod.json").read_text()) == changed
