"""Offline policy check on the real dev and prod plans, and on plans with one baseline setting flipped."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

from policy.rules import RULES_BY_NAME, STACK_RULES
from stacks.check import check_plan, mandatory, plan_environment, render_markdown
from stacks.cli import main

ROOT = Path(__file__).resolve().parent.parent
ALL_RULES = {**RULES_BY_NAME, **{rule.name: rule for rule in STACK_RULES}}
Plan = dict[str, Any]


@pytest.fixture(scope="module")
def plans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Plan]:
    """The offline plans of both stacks, planned in parallel subprocesses (each run owns the mock runtime)."""
    folder = tmp_path_factory.mktemp("plans")
    jobs = {
        stack: subprocess.Popen(
            [
                sys.executable,
                "-m",
                "stacks",
                "plan",
                "--stack",
                stack,
                "--quiet",
                "--json",
                str(folder / f"{stack}.json"),
            ],
            cwd=ROOT,
            stderr=subprocess.PIPE,
        )
        for stack in ("dev", "prod")
    }
    for stack, job in jobs.items():
        _, errors = job.communicate(timeout=300)
        assert job.returncode == 0, f"plan of {stack} failed: {errors.decode()}"
    return {stack: json.loads((folder / f"{stack}.json").read_text()) for stack in jobs}


def test_prod_passes_every_rule(plans: dict[str, Plan]) -> None:
    # The customer-VNet design keeps storage shared keys on (AZURE-FACTS 33): the one advisory finding.
    assert [f.rule for f in check_plan(plans["prod"])] == ["storage-shared-key-disabled"]


def test_dev_passes_mandatory_rules_and_lists_relaxed_network_isolation(plans: dict[str, Plan]) -> None:
    findings = check_plan(plans["dev"])
    assert mandatory(findings) == []
    assert findings, "dev relaxes network isolation, so advisory findings are expected"
    assert all(
        ALL_RULES[f.rule].network_isolation or ALL_RULES[f.rule].enforcement == "advisory" for f in findings
    )


def _resource(plan: Plan, type_: str) -> dict[str, Any]:
    return next(r for r in plan["resources"] if r["type"] == type_)


def _flip(type_: str, path: str, value: Any) -> Callable[[Plan], None]:
    def flip(plan: Plan) -> None:
        *parents, leaf = path.split(".")
        target = _resource(plan, type_)
        for key in parents:
            target = target[key]
        target[leaf] = value

    return flip


FLIPS = [
    (
        "storage-no-public-blob-access",
        _flip("azure-native:storage:StorageAccount", "inputs.allowBlobPublicAccess", True),
    ),
    (
        "keyvault-purge-protection",
        _flip("azure-native:keyvault:Vault", "inputs.properties.enablePurgeProtection", False),
    ),
    (
        "registry-admin-user-disabled",
        _flip("azure-native:containerregistry:Registry", "inputs.adminUserEnabled", True),
    ),
    (
        "workspace-public-network-disabled",
        _flip("azure-native:machinelearningservices:Workspace", "inputs.publicNetworkAccess", "Enabled"),
    ),
    ("prod-stateful-protected", _flip("azure-native:keyvault:Vault", "protect", False)),
]


@pytest.mark.parametrize(("rule", "flip"), FLIPS, ids=[rule for rule, _ in FLIPS])
def test_flipping_a_baseline_setting_fails_the_check_naming_the_rule(
    plans: dict[str, Plan],
    rule: str,
    flip: Callable[[Plan], None],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    plan = copy.deepcopy(plans["prod"])
    flip(plan)
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    assert main(["check", "--plan", str(path)]) == 1
    assert rule in capsys.readouterr().out


def test_dev_network_isolation_flip_stays_advisory(plans: dict[str, Plan], tmp_path: Path) -> None:
    plan = copy.deepcopy(plans["dev"])
    _flip(
        "azure-native:containerservice:ManagedCluster",
        "inputs.apiServerAccessProfile.enablePrivateCluster",
        False,
    )(plan)
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    assert main(["check", "--plan", str(path)]) == 0


@pytest.mark.parametrize(
    ("plan", "environment"),
    [
        ({"project": "p", "stack": "prod", "config": {}}, "prod"),
        ({"project": "p", "stack": "staging", "config": {"p:environment": "dev"}}, "dev"),
        ({"project": "p", "stack": "dev"}, "dev"),
    ],
)
def test_plan_environment(plan: Plan, environment: str) -> None:
    assert plan_environment(plan) == environment


def test_markdown_shows_a_table_of_findings() -> None:
    plan = {
        "project": "p",
        "stack": "prod",
        "config": {},
        "resources": [
            {
                "urn": "urn:pulumi:prod::p::azure-native:containerregistry:Registry::cr",
                "custom": True,
                "type": "azure-native:containerregistry:Registry",
                "name": "cr",
                "protect": True,
                "inputs": {
                    "adminUserEnabled": True,
                    "publicNetworkAccess": "Disabled",
                    "tags": {"environment": "prod", "project": "p", "owner": "o"},
                },
            }
        ],
    }
    markdown = render_markdown(plan, check_plan(plan))
    assert ":x:" in markdown and "| mandatory | `registry-admin-user-disabled` | `cr` |" in markdown


def test_cli_check_stack_prod_exits_zero() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "stacks", "check", "--stack", "prod"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "policy check passed for stack prod" in result.stdout


def test_cli_check_reports_a_missing_plan_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--plan", str(tmp_path / "nope.json")]) == 2
    assert "python -m stacks plan" in capsys.readouterr().err
