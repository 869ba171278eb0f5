"""The offline plan CLI: stack files plus overrides, masked secrets, tree and JSON, project file in sync."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from stacks.plan import ROOT, PlanInputError, render_tree, run_plan, stack_input
from stacks.schema import KEYS, pulumi_yaml_config

P = "aml-platform"


@pytest.fixture(scope="module", params=["dev", "prod"])
def plan(request: pytest.FixtureRequest) -> dict:
    return run_plan(stack_input(request.param))


def test_stack_file_secure_values_get_masked_stand_ins() -> None:
    stack_in = stack_input("prod")
    assert f"{P}:devopsPat" in stack_in.secret_keys
    assert stack_in.values[f"{P}:devopsPat"].startswith("stand-in-for-")
    assert stack_in.values[f"{P}:prodApprovers"] == '["4f9c2b1e-7d3a-4e8b-9c5f-1a2b3c4d5e6f"]'
    assert stack_in.values[f"{P}:enableAks"] == "true"


def test_overrides_win_and_secret_keys_stay_secret() -> None:
    stack_in = stack_input("dev", [f"{P}:namespace=other", f"{P}:devopsPat=plain-override"])
    assert stack_in.values[f"{P}:namespace"] == "other"
    assert f"{P}:devopsPat" in stack_in.secret_keys


@pytest.mark.parametrize("override", ["namespace=x", f"{P}:namespace"])
def test_malformed_override_is_refused(override: str) -> None:
    with pytest.raises(PlanInputError, match="KEY|aml-platform:<key>=<value>"):
        stack_input("dev", [override])


def test_unknown_stack_names_the_fix() -> None:
    with pytest.raises(PlanInputError, match="pulumi stack init staging"):
        stack_input("staging")


def test_plan_has_no_duplicate_urns_and_every_parent_exists(plan: dict) -> None:
    urns = [resource["urn"] for resource in plan["resources"]]
    assert len(urns) == len(set(urns))
    for resource in plan["resources"]:
        assert resource["parent"] is None or resource["parent"] in urns
        assert set(resource["dependencies"]) <= set(urns)


def test_plan_never_contains_secret_plaintext(plan: dict) -> None:
    text = json.dumps(plan)
    assert "stand-in-for-" not in text
    assert plan["config"][f"{P}:devopsPat"] == "[secret]"
    assert plan["outputs"]["applicationInsightsConnectionString"] == "[secret]"


def test_tree_lists_every_resource(plan: dict) -> None:
    tree = render_tree(plan)
    assert tree.count("\n") == len(plan["resources"])
    assert "azure-native:machinelearningservices:Workspace" in tree


def test_cli_writes_json_and_exits_zero(tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    result = subprocess.run(
        [sys.executable, "-m", "stacks", "plan", "--stack", "dev", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text())["stack"] == "dev"
    assert "azure-native:resources:ResourceGroup" in result.stdout


def test_cli_config_error_exits_2_naming_the_key(tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "stacks",
            "plan",
            "--stack",
            "prod",
            "--json",
            str(out),
            "--config",
            f"{P}:publicNetworkAccess=true",
            "--config",
            f"{P}:namespace=UPPER",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert f"{P}:publicNetworkAccess" in result.stderr and f"{P}:namespace" in result.stderr
    assert not out.exists()


def test_pulumi_yaml_config_matches_schema() -> None:
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["name"] == P
    assert project["runtime"]["options"]["virtualenv"] == ".venv"
    assert project["config"] == pulumi_yaml_config()


def test_stack_files_only_use_known_keys() -> None:
    known = {f"{P}:{key.name}" for key in KEYS}
    for stack in ("dev", "prod"):
        document = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())
        ours = {key for key in document["config"] if key.startswith(f"{P}:")}
        assert ours <= known, ours - known


@pytest.mark.parametrize(("switch", "bound"), [(None, False), ("false", False), ("true", True)])
def test_post_deploy_hook_is_bound_to_the_compute_only_when_switched_on(
    switch: str | None, bound: bool
) -> None:
    from stacks.config import example_values, secret_keys_of
    from stacks.mockrun import run_program
    from stacks.program import program

    values = example_values(postDeployHook=switch)
    recording = run_program(program, stack="dev", config=values, secret_keys=secret_keys_of(values))
    compute = recording.by_name("compute-cluster-compute")
    hooked = [resource.name for resource in recording.resources if resource.hooks]
    if bound:
        assert compute.hooks == {
            "after_create": ("mlops-post-deploy-dev",),
            "after_update": ("mlops-post-deploy-dev",),
        }
        assert hooked == ["compute-cluster-compute"]
    else:
        assert hooked == []


def test_cli_plans_several_stacks_in_one_process(shipped_plans: dict[str, dict]) -> None:
    # shipped_plans (tests/conftest.py) is one `stacks plan --stack dev --stack prod --json` subprocess.
    plans = shipped_plans
    assert {plan["stack"] for plan in plans.values()} == {"dev", "prod"}
    assert len(plans["prod"]["resources"]) > len(plans["dev"]["resources"])  # private endpoints, DNS zones


def test_cli_several_stacks_need_a_stack_placeholder(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "stacks",
            "plan",
            "--stack",
            "dev",
            "--stack",
            "prod",
            "--json",
            str(tmp_path / "plan.json"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "{stack}" in result.stderr


DESIGN_OVERRIDES = {
    "customerVnet": [f"{P}:isolationDesign=customerVnet"],
    "managedVnet": [f"{P}:isolationDesign=managedVnet", f"{P}:enableAks=false"],
}


def test_cli_plans_each_stack_in_each_design_and_each_passes_the_policy_check(tmp_path: Path) -> None:
    """The design matrix through the real CLI: the shipped stack files plus the design's overrides."""
    from stacks.check import check_plan, mandatory

    plans: dict[tuple[str, str], dict] = {}
    for design, overrides in DESIGN_OVERRIDES.items():
        pattern = str(tmp_path / f"{design}-{{stack}}.json")
        flags = [flag for override in overrides for flag in ("--config", override)]
        result = subprocess.run(
            [sys.executable, "-m", "stacks", "plan", "--stack", "dev", "--stack", "prod", "--quiet"]
            + ["--json", pattern, *flags],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr
        for stack in ("dev", "prod"):
            plans[(stack, design)] = json.loads((tmp_path / f"{design}-{stack}.json").read_text())
    for (stack, design), plan in plans.items():
        types = {resource["type"] for resource in plan["resources"]}
        assert ("azure-native:containerservice:ManagedCluster" in types) is (design == "customerVnet")
        assert "azure-native:network:NatGateway" in types
        assert plan["outputs"]["isolationDesign"] == design
        assert mandatory(check_plan(plan)) == [], (stack, design)
    for stack in ("dev", "prod"):
        # The managed VNet has no AKS, no training/AKS subnets and fewer private endpoints: a smaller plan.
        assert len(plans[(stack, "managedVnet")]["resources"]) < len(
            plans[(stack, "customerVnet")]["resources"]
        )


def test_cli_refuses_a_managed_vnet_with_aks_naming_the_limitation(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "stacks", "plan", "--stack", "dev", "--quiet"]
        + ["--json", str(tmp_path / "plan.json"), "--config", f"{P}:isolationDesign=managedVnet"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and not (tmp_path / "plan.json").exists()
    assert f"{P}:isolationDesign" in result.stderr and "AZURE-FACTS 1" in result.stderr
    assert "enableAks=false" in result.stderr
