"""Typed plan diff: crafted plan pairs (add, remove, change, replacement, secrets) and the --base-ref flow."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from stacks import diff as d
from stacks.cli import main
from stacks.replacement import ALWAYS_REPLACE, REFUSED, REPLACES, refusal, replaces

STORAGE = "azure-native:storage:StorageAccount"
VAULT = "azure-native:keyvault:Vault"
SUBNET = "azure-native:network:Subnet"
GROUP = "azuredevops:index/variableGroup:VariableGroup"
AKS = "azure-native:containerservice:ManagedCluster"


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
        ("a" * 100 + "b" * 100, "x", "a" * 60 + "…" + "b" * 59),
        (3.0, "count", "3"),
        ({"count": 2.0, "size": 1.5}, "x", '{"count": 2, "size": 1.5}'),
    ],
)
def test_display_masks_and_shortens(value: Any, path: str, shown: str | None) -> None:
    assert d.display(value, path) == shown


@pytest.mark.parametrize(
    ("type_", "path", "expected"),
    [
        (STORAGE, "accountName", True),
        (STORAGE, "isHnsEnabled", True),
        (STORAGE, "sku.name", False),  # Azure refuses Standard <-> Premium; nothing is replaced
        (STORAGE, "minimumTlsVersion", False),
        # Inline pools update in place since pulumi-azure-native PR #2774: a scale-up is no replacement.
        (AKS, "agentPoolProfiles[0].count", False),
        (AKS, "agentPoolProfiles[0].vmSize", False),
        (AKS, "networkProfile.serviceCidr", True),
        (AKS, "networkProfile.loadBalancerProfile.managedOutboundIPs.count", False),  # PR #4771
        (AKS, "dnsPrefix", True),
        ("azure-native:containerservice:AgentPool", "vmSize", True),
        ("azure-native:machinelearningservices:Workspace", "publicNetworkAccess", False),
        ("azure-native:network:PrivateEndpoint", "subnet.id", True),
        ("azure-native:authorization:RoleAssignment", "principalId", True),
        ("azuredevops:index/project:Project", "location", False),
    ],
)
def test_replacement_table(type_: str, path: str, expected: bool) -> None:
    assert replaces(type_, path) is expected


@pytest.mark.parametrize(
    ("type_", "path", "old", "new", "refused"),
    [
        (AKS, "agentPoolProfiles[0].vmSize", "Standard_D4s_v5", "Standard_D8s_v5", True),
        (AKS, "agentPoolProfiles[0].count", 1, 3, False),
        (STORAGE, "sku.name", "Standard_LRS", "Premium_LRS", True),
        (STORAGE, "sku.name", "Standard_LRS", "Standard_GRS", False),
        (STORAGE, "kind", "Storage", "StorageV2", False),
        (STORAGE, "kind", "StorageV2", "BlobStorage", True),
        ("azure-native:compute:VirtualMachine", "osProfile.customData", "[secret]", "[secret]", True),
        (SUBNET, "defaultOutboundAccess", True, False, True),
        (SUBNET, "defaultOutboundAccess", None, False, False),  # set for the first time: at creation
    ],
)
def test_refusal_table(type_: str, path: str, old: Any, new: Any, refused: bool) -> None:
    assert (refusal(type_, path, old, new) is not None) is refused


def test_every_replacement_and_refusal_rule_names_its_source() -> None:
    rules = [*ALWAYS_REPLACE, *(rule for rules in REPLACES.values() for rule in rules)]
    refusals = [rule for rules in REFUSED.values() for rule in rules]
    assert rules and refusals
    for rule in rules + refusals:
        assert (
            "pulumi-azure-native" in rule.source or "Learn " in rule.source or "Azure REST" in rule.source
        ), rule
    assert all(refused.way_out for refused in refusals)


def _sdk_arguments(type_token: str) -> set[str]:
    """The input names of an azure-native resource class, camelCase, from the installed SDK."""
    import importlib
    import inspect as inspect_module
    import re

    _, module, kind = type_token.split(":")
    resource = getattr(importlib.import_module(f"pulumi_azure_native.{module}"), kind)
    source = inspect_module.getsource(resource._internal_init)
    return set(re.findall(r'__props__\.__dict__\["(\w+)"\] = (?!None)', source))


@pytest.mark.parametrize("type_token", sorted(REPLACES))
def test_replacement_paths_are_inputs_of_the_sdk_resource(type_token: str) -> None:
    arguments = _sdk_arguments(type_token)
    for rule in REPLACES[type_token]:
        top = rule.path.split(".")[0].split("[")[0]
        snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", top).lower()
        assert snake in arguments, f"{type_token}: {rule.path} is not an input of the SDK resource"
    # The rules for every resource apply where the resource has the input (children have no location).
    scoped = {"scope", "resource_uri"} & arguments  # extension resources live under another resource's id
    assert "resource_group_name" in arguments or scoped or type_token.endswith(":ResourceGroup")


def test_replacement_table_covers_the_types_the_program_declares() -> None:
    from stacks.plan import run_plan, stack_input

    declared = {
        r["type"] for r in run_plan(stack_input("prod"))["resources"] if r["type"].startswith("azure-native:")
    }
    assert declared <= set(REPLACES), declared - set(REPLACES)


def test_every_path_parameter_is_an_input_of_the_sdk_resource() -> None:
    import importlib
    import inspect
    import sys

    from stacks.replacement import PATH_PARAMETER

    unknown = []
    for resource_type, rules in REPLACES.items():
        _, module, name = resource_type.split(":")
        cls = getattr(importlib.import_module(f"pulumi_azure_native.{module}"), name)
        sdk = sys.modules[cls.__module__]
        args = getattr(sdk, f"{name}InitArgs", None) or getattr(sdk, f"{name}Args")
        inputs = {
            re.sub(r"_(\w)", lambda m: m.group(1).upper(), p) for p in inspect.signature(args).parameters
        }
        unknown += [
            (resource_type, r.path) for r in rules if r.source == PATH_PARAMETER and r.path not in inputs
        ]
    assert unknown == []


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


def test_several_changes_at_once_keep_the_replacement_visible() -> None:
    head = _base()
    storage = head["resources"][0]["inputs"]
    storage.update(minimumTlsVersion="TLS1_3", accountName="sttaxi002", tags={"owner": "b"})
    change = _by_name(d.diff_plans(_base(), head), "storage-account")
    assert change.action == "replace" and change.data_loss
    assert {(c.path, c.replaces) for c in change.changes} == {
        ("accountName", True),
        ("minimumTlsVersion", False),
        ("tags.owner", False),
    }
    text = d.render_text(d.diff_plans(_base(), head))
    assert "accountName: sttaxi001 -> sttaxi002  (forces replacement)" in text
    assert "minimumTlsVersion: TLS1_2 -> TLS1_3\n" in text + "\n"


def test_a_protected_replacement_is_blocked_with_the_way_out() -> None:
    head = _base()
    head["resources"][0]["inputs"]["accountName"] = "sttaxi002"
    diff = d.diff_plans(_base(), head)
    change = _by_name(diff, "storage-account")
    assert change.blocked and "BLOCKED: protected" in d.render_text(diff)
    markdown = d.render_markdown(diff)
    assert (
        "pulumi state unprotect 'urn:pulumi:prod::aml-platform::azure-native:storage:StorageAccount::storage-account'"
        in markdown
    )
    assert "new postfix" in markdown and "1 blocked" in d.summary(diff)
    # Removing protection in the same change does not help: the deployed resource is still protected.
    head["resources"][0]["protect"] = False
    assert _by_name(d.diff_plans(_base(), head), "storage-account").blocked
    # An unprotected one is replaced, not blocked.
    base = _base()
    base["resources"][0]["protect"] = False
    assert not _by_name(d.diff_plans(base, head), "storage-account").blocked


def test_deleting_a_protected_resource_is_blocked() -> None:
    head = _base()
    head["resources"] = [r for r in head["resources"] if r["type"] != STORAGE]
    change = _by_name(d.diff_plans(_base(), head), "storage-account")
    assert change.action == "delete" and change.blocked


@pytest.mark.parametrize(
    ("old", "new", "secrecy"),
    [("[secret]", "hunter2", "secret -> plaintext"), ("hunter2", "[secret]", "plaintext -> secret")],
)
def test_a_value_moving_between_secret_and_plaintext_is_flagged_and_masked(
    old: str, new: str, secrecy: str
) -> None:
    base, head = _base(), _base()
    base["resources"][3]["inputs"]["variables"][0]["value"] = old
    head["resources"][3]["inputs"]["variables"][0]["value"] = new
    head["resources"][2]["inputs"]["addressPrefix"] = "10.0.2.0/24"  # another change in the same diff
    diff = d.diff_plans(base, head)
    [prop] = _by_name(diff, "variables").changes
    assert (prop.old, prop.new, prop.secrecy) == ("[secret]", "[secret]", secrecy)
    rendered = d.render_text(diff) + d.render_markdown(diff)
    assert "hunter2" not in rendered and secrecy in rendered
    assert _by_name(diff, "training-subnet").changes[0].new == "10.0.2.0/24"


def test_counts_are_integers() -> None:
    base, head = _base(), _base()
    base["resources"][2]["inputs"]["count"] = 2.0
    head["resources"][2]["inputs"]["count"] = 3.0
    head["resources"][2]["inputs"]["size"] = 2.5
    change = _by_name(d.diff_plans(base, head), "training-subnet")
    assert [(c.path, c.old, c.new) for c in change.changes] == [("count", "2", "3"), ("size", None, "2.5")]
    # 2 and 2.0 are the same value: no change.
    head["resources"][2]["inputs"].update(count=2, size=None)
    head["resources"][2]["inputs"].pop("size")
    assert not d.diff_plans(base, head).resources


def test_long_values_are_cut_around_the_change() -> None:
    prefix = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-taxi-001prod/providers/"
    old = prefix + "Microsoft.Network/virtualNetworks/vnet-taxi-001prod/subnets/snet-aks"
    new = prefix + "Microsoft.Network/virtualNetworks/vnet-taxi-001prod/subnets/snet-aks-2"
    shown_old, shown_new = d.display_pair(old, new, "subnet.id")
    assert shown_old is not None and shown_new is not None
    assert shown_old != shown_new and shown_new.endswith("snet-aks-2") and shown_old.endswith("snet-aks")
    assert shown_old.startswith("…") and len(shown_new) < len(new)
    middle_old, middle_new = "x" * 90 + "OLD" + "y" * 90, "x" * 90 + "NEW" + "y" * 90
    cut_old, cut_new = d.display_pair(middle_old, middle_new, "p")
    assert "OLD" in str(cut_old) and "NEW" in str(cut_new)
    assert d.display_pair("short", "also short", "p") == ("short", "also short")


def test_azure_refusals_are_marked_with_the_way_out() -> None:
    cluster = {
        "resourceName": "aks",
        "agentPoolProfiles": [{"name": "system", "vmSize": "Standard_D4s_v5", "count": 1}],
    }
    base = _plan("prod", _resource("prod", AKS, "aks-cluster", cluster))
    head = copy.deepcopy(base)
    head["resources"][0]["inputs"]["agentPoolProfiles"][0]["count"] = 3
    scale_up = d.diff_plans(base, head)
    assert scale_up.resources[0].action == "update" and not scale_up.resources[0].refused
    assert "forces replacement" not in d.render_text(scale_up)
    head["resources"][0]["inputs"]["agentPoolProfiles"][0]["vmSize"] = "Standard_D8s_v5"
    resize = d.diff_plans(base, head)
    change = resize.resources[0]
    assert change.action == "update" and change.refused
    text = d.render_text(resize)
    assert "AZURE REFUSES" in text and "manage-node-pools.md" in text and "drain" in text
    assert "1 refused by Azure" in d.summary(resize)


def test_one_summary_line_per_stack() -> None:
    head = _base()
    head["resources"][1]["inputs"]["vaultName"] = "kv-taxi-002"
    head["resources"].append(_resource("prod", SUBNET, "agents-subnet", {"subnetName": "agents"}))
    diffs = {"dev": d.diff_plans(_base("dev"), _base("dev")), "prod": d.diff_plans(_base(), head)}
    assert d.render_summary(diffs).splitlines() == [
        "dev: no changes",
        "prod: 1 to add, 0 to change, 1 to replace, 0 to remove, 1 losing data",
    ]
    table = d.render_summary(diffs, markdown=True).splitlines()
    assert table[0].startswith("| stack | to add | to change | to replace") and table[-1].startswith(
        "| prod | 1 | 0 | 1 | 0 | 1 |"
    )
