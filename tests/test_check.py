"""Offline policy check (`stacks check`): the real dev and prod plans, plans of both designs, flipped settings."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

from policy.rules import ALL_RULES, PLAN_BREAKABLE_FACTS, PlannedResource
from stacks.check import check_plan, mandatory, plan_environment, plan_facts, render_markdown
from stacks.cli import main
from tests._policy_cases import MATRIX, build

ROOT = Path(__file__).resolve().parent.parent
Plan = dict[str, Any]

# Facts a plan of the shipped stacks may break: none (issue 8 made both obey every plan-breakable fact).
# A fact that breaks again is a regression; one a later change must leave broken on purpose goes here
# with its reason.
PENDING: dict[str, dict[int, str]] = {"dev": {}, "prod": {}}


@pytest.fixture(scope="module")
def plans(shipped_plans: dict[str, Plan]) -> dict[str, Plan]:
    """The offline plans of both shipped stacks (tests/conftest.py plans them once per test process)."""
    return shipped_plans


def plan_document(resources: list[PlannedResource], stack: str) -> Plan:
    """A plan JSON as `stacks plan --json` writes it, for a stack of planned resources."""
    return {
        "version": 1,
        "project": "aml-platform",
        "stack": stack,
        "config": {},
        "outputs": {},
        "resources": [
            {
                "urn": res.urn,
                "type": res.type,
                "name": res.name,
                "parent": None,
                "custom": True,
                "protect": True,
                "retainOnDelete": True,
                "provider": None,
                "inputs": res.props,
                "dependencies": list(res.dependencies),
                "propertyDependencies": {k: list(v) for k, v in (res.property_dependencies or {}).items()},
            }
            for res in resources
        ],
    }


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_real_plans_obey_every_plan_breakable_fact(plans: dict[str, Plan], stack: str) -> None:
    findings = check_plan(plans[stack])
    facts = plan_facts(findings)
    assert set(facts.broken) <= set(PENDING[stack]), {
        f: facts.broken[f] for f in set(facts.broken) - set(PENDING[stack])
    }
    assert facts.breakable == PLAN_BREAKABLE_FACTS
    assert all(ALL_RULES[f.rule].facts for f in mandatory(findings)), "a baseline rule (no fact) broke"


def test_the_plan_records_what_each_input_depends_on(plans: dict[str, Plan]) -> None:
    grant = next(r for r in plans["prod"]["resources"] if r["name"] == "ci-identity-contributor-role")
    assert [urn.rsplit("::", 1)[-1] for urn in grant["propertyDependencies"]["principalId"]] == [
        "ci-identity-identity"
    ]
    assert [urn.rsplit("::", 1)[-1] for urn in grant["propertyDependencies"]["scope"]] == [
        "resource-group-group"
    ]


@pytest.mark.parametrize(("design", "env"), MATRIX)
def test_check_passes_both_designs_in_both_environments(
    design, env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan_document(build(design, env), env)))
    assert main(["check", "--plan", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"AZURE-FACTS: {len(PLAN_BREAKABLE_FACTS)}/{len(PLAN_BREAKABLE_FACTS)} obeyed" in out
    assert f"policy check passed for stack {env}" in out


def _resource(plan: Plan, name: str) -> dict[str, Any]:
    return next(r for r in plan["resources"] if r["name"] == name)


def _flip(name: str, path: str, value: Any) -> Callable[[Plan], None]:
    def flip(plan: Plan) -> None:
        *parents, leaf = path.split(".")
        target = _resource(plan, name)
        for key in parents:
            target = target[key]
        target[leaf] = value

    return flip


FLIPS = [
    ("storage-no-public-blob-access", None, _flip("storage-account", "inputs.allowBlobPublicAccess", True)),
    ("keyvault-purge-protection", None, _flip("key-vault", "inputs.properties.enablePurgeProtection", False)),
    ("registry-admin-user-disabled", None, _flip("container-registry", "inputs.adminUserEnabled", True)),
    ("workspace-public-network-disabled", None, _flip("workspace", "inputs.publicNetworkAccess", "Enabled")),
    ("prod-stateful-protected", None, _flip("key-vault", "protect", False)),
    ("aks-extension-local-accounts", 11, _flip("aks-cluster", "inputs.disableLocalAccounts", True)),
    (
        "aks-extension-tls",
        13,
        _flip("azureml-extension", "inputs.configurationSettings.allowInsecureConnections", "True"),
    ),
    ("subnet-machines-have-egress", 3, _flip("agents-subnet", "inputs.natGateway", None)),
]


@pytest.mark.parametrize(("rule", "fact", "flip"), FLIPS, ids=[rule for rule, _, _ in FLIPS])
def test_flipping_a_setting_fails_the_check_naming_the_rule_and_the_fact(
    rule: str,
    fact: int | None,
    flip: Callable[[Plan], None],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    plan = plan_document(build("customerVnet", "prod"), "prod")
    flip(plan)
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    assert main(["check", "--plan", str(path)]) == 1
    out = capsys.readouterr().out
    assert rule in out
    facts_line = next(line for line in out.splitlines() if line.startswith("AZURE-FACTS:"))
    if fact is None:
        assert facts_line.startswith(f"AZURE-FACTS: {len(PLAN_BREAKABLE_FACTS)}/")
    else:
        assert f"broken: {fact} ({rule}" in facts_line or f"; {fact} ({rule}" in facts_line


def test_dev_network_isolation_flip_stays_advisory(tmp_path: Path) -> None:
    plan = plan_document(build("customerVnet", "dev"), "dev")
    _flip("aks-cluster", "inputs.apiServerAccessProfile.enablePrivateCluster", False)(plan)
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    assert main(["check", "--plan", str(path)]) == 0


def test_a_plan_written_before_property_dependencies_is_still_checked(tmp_path: Path) -> None:
    plan = plan_document([r for r in build("managedVnet", "prod") if r.name != "ci-storage-blob"], "prod")
    for resource in plan["resources"]:
        del resource["propertyDependencies"]
    assert {f.rule for f in check_plan(plan)} == {"ci-identity-storage-data-role"}


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


def test_markdown_shows_the_facts_and_a_table_of_findings() -> None:
    plan = plan_document(build("managedVnet", "prod"), "prod")
    _flip("container-registry", "inputs.adminUserEnabled", True)(plan)
    _flip("workspace", "inputs.provisionNetworkNow", False)(plan)
    markdown = render_markdown(plan, check_plan(plan))
    assert (
        ":x:" in markdown
        and "| mandatory | `registry-admin-user-disabled` | `container-registry` |" in markdown
    )
    assert (
        f"AZURE-FACTS: {len(PLAN_BREAKABLE_FACTS) - 1}/{len(PLAN_BREAKABLE_FACTS)} obeyed; broken: 2 ("
        in markdown
    )


def test_cli_check_stack_plans_the_program_and_reports_the_facts() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "stacks", "check", "--stack", "prod"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    facts = re.search(r"AZURE-FACTS: (\d+)/(\d+) obeyed", result.stdout)
    assert facts and int(facts[2]) == len(PLAN_BREAKABLE_FACTS), result.stdout + result.stderr
    verdict = "passed" if result.returncode == 0 else "FAILED"
    assert result.returncode in (0, 1) and f"policy check {verdict} for stack prod" in result.stdout


def test_cli_check_reports_a_missing_plan_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--plan", str(tmp_path / "nope.json")]) == 2
    assert "python -m stacks plan" in capsys.readouterr().err


def test_every_finding_of_a_stack_rule_names_the_resource_at_fault() -> None:
    plan = plan_document([r for r in build("customerVnet", "prod") if r.name != "ci-storage-blob"], "prod")
    (finding,) = check_plan(copy.deepcopy(plan))
    assert (finding.resource_type, finding.name) == (
        "azure-native:managedidentity:UserAssignedIdentity",
        "service-connection-identity",
    )


def test_property_dependencies_tell_a_grants_principal_from_its_other_dependencies() -> None:
    # A grant to the CI identity that also waits for the workspace (depends_on): only its principalId says who.
    resources = build("customerVnet", "prod")
    workspace = next(r for r in resources if r.name == "workspace")
    resources = [
        r
        if r.name != "ci-storage-blob"
        else PlannedResource(
            r.type, r.name, r.props, r.urn, r.property_dependencies, (*r.dependencies, workspace.urn)
        )
        for r in resources
    ]
    plan = plan_document(resources, "prod")
    assert check_plan(plan) == []
    for resource in plan["resources"]:
        del resource["propertyDependencies"]
    # Without them (plans of older revisions) every dependency but the scope could be the principal.
    assert {f.rule for f in check_plan(plan)} == {"no-grants-azure-ml-makes"}
