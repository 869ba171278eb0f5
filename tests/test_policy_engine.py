"""The rule engine: one rule set for CrossGuard and `stacks check`, levels per environment, the pack script."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from policy import rules as r
from tests._policy_cases import MATRIX, build, compliant, stack_findings

FAMILY_TESTS = (
    "storage",
    "key_vault",
    "registry",
    "monitoring",
    "workspace",
    "network",
    "aks",
    "agents",
    "identity",
    "devops",
    "common",
)
PACK = Path(r.__file__).resolve().parent.parent


def _tested_rules() -> set[str]:
    names: set[str] = set()
    for family in FAMILY_TESTS:
        module = importlib.import_module(f"tests.test_policy_{family}")
        cases = [*module.RESOURCE_CASES, *module.STACK_CASES]
        names |= {case[0] for case in cases} | set(getattr(module, "OTHER_CASES", ()))
    return names


def test_every_rule_has_a_failing_case_in_its_family_tests() -> None:
    assert _tested_rules() == set(r.ALL_RULES)


def test_each_family_module_holds_one_concern_and_every_rule_belongs_to_one() -> None:
    assert [family.__name__.rsplit(".", 1)[-1] for family in r.FAMILIES] == list(FAMILY_TESTS)
    assert len(r.RULES) == sum(len(f.RULES) for f in r.FAMILIES)
    assert len(r.STACK_RULES) == sum(len(f.STACK_RULES) for f in r.FAMILIES)


@pytest.mark.parametrize(("design", "env"), MATRIX)
def test_both_designs_obey_every_rule_in_both_environments(design, env: str) -> None:
    assert stack_findings(build(design, env), env) == []


def test_rule_names_are_unique_policy_names() -> None:
    names = [each.name for each in r.ALL_RULES.values()]
    assert len(names) == len(set(names)) == len(r.RULES) + len(r.STACK_RULES)
    policies = [each.policy_name(level) for each in r.ALL_RULES.values() for level in each.levels()]
    assert len(policies) == len(set(policies)) and all(re.fullmatch(r"[a-z0-9-]+", name) for name in policies)


@pytest.mark.parametrize("name", sorted(r.ALL_RULES))
def test_every_rule_says_what_it_requires_and_how_to_fix_it(name: str) -> None:
    each = r.ALL_RULES[name]
    assert each.summary.endswith(".") and each.remediation and each.summary in each.description


@pytest.mark.parametrize("name", sorted(n for n, each in r.ALL_RULES.items() if each.facts))
def test_an_azure_fact_is_mandatory_in_both_environments_and_names_its_source(name: str) -> None:
    each = r.ALL_RULES[name]
    assert each.level("dev") == each.level("prod") == "mandatory"
    assert set(each.facts) <= set(r.FACTS) and not set(each.facts) & set(r.NOT_PLAN_BREAKABLE)
    # An article file and section, or a repository path or issue.
    assert re.search(r"\.md|\.py|\.json|#\d+|\.tf", each.source), each.source
    assert each.source in each.description and f"AZURE-FACTS {each.facts[0]}" in each.description


@pytest.mark.parametrize(
    ("rule", "environment", "level"),
    [
        ("storage-public-network-disabled", "dev", "advisory"),
        ("storage-public-network-disabled", "prod", "mandatory"),
        ("aks-private-api-server", "dev", "advisory"),
        ("storage-no-public-blob-access", "dev", "mandatory"),
        ("devops-service-connection-federated", "prod", "advisory"),
        ("compute-network-isolated", "dev", "advisory"),
        ("aks-inference-router-ha-nodes", "dev", "mandatory"),
    ],
)
def test_dev_relaxes_network_isolation_only(rule: str, environment: r.Environment, level: str) -> None:
    assert r.ALL_RULES[rule].level(environment) == level


@pytest.mark.parametrize(
    ("tags", "fallback", "expected"),
    [
        ({"environment": "dev"}, "prod", "dev"),
        ({"environment": "prod"}, "dev", "prod"),
        (None, "dev", "dev"),
        (None, "staging", "prod"),
        ({}, "", "prod"),
    ],
)
def test_environment_comes_from_the_tag_then_the_stack(
    tags: dict | None, fallback: str, expected: str
) -> None:
    assert r.environment_of({} if tags is None else {"tags": tags}, fallback) == expected


@pytest.mark.parametrize(
    ("urn", "stack"),
    [
        ("urn:pulumi:dev::aml-platform::azure-native:storage:StorageAccount::st", "dev"),
        ("urn:pulumi:prod::aml-platform::a$b::c", "prod"),
        ("not-a-urn", ""),
    ],
)
def test_stack_of_urn(urn: str, stack: str) -> None:
    assert r.stack_of_urn(urn) == stack


def test_the_pack_masks_secrets_as_the_plan_does() -> None:
    # The pack runs on its own (no stacks import), so it keeps a copy of the mask the plan writes.
    from stacks.model import SECRET_MASK

    assert r.SECRET_MASK == SECRET_MASK


# --- CrossGuard adapters, with pulumi_policy's own resource objects and unknown-checking proxies ---


@dataclass
class _Opts:
    protect: bool = False


@dataclass
class _Args:
    """pulumi_policy.ResourceValidationArgs's fields the validators read (constructing a pack would serve gRPC)."""

    resource_type: str
    props: Any
    urn: str
    opts: _Opts = field(default_factory=_Opts)
    name: str = ""


def _reporter() -> tuple[list[tuple[str, str | None]], Any]:
    reports: list[tuple[str, str | None]] = []
    return reports, lambda message, urn=None: reports.append((message, urn))


@pytest.mark.parametrize(
    ("stack", "level", "reported"),
    [
        ("prod", "mandatory", True),
        ("prod", "advisory", False),
        ("dev", "mandatory", False),
        ("dev", "advisory", True),
    ],
)
def test_crossguard_splits_a_relaxed_rule_by_environment(
    stack: str, level: r.Enforcement, reported: bool
) -> None:
    rule = r.RULES_BY_NAME["workspace-public-network-disabled"]
    props = {**compliant()[r.ML_WORKSPACE], "publicNetworkAccess": "Enabled", "tags": {}}
    reports, report = _reporter()
    rule.validator(level)(_Args(r.ML_WORKSPACE, props, f"urn:pulumi:{stack}::p::t::n"), report)
    assert bool(reports) is reported
    suffix = "" if level == "mandatory" else "-advisory"
    assert rule.policy_name(level) == f"workspace-public-network-disabled{suffix}"


def test_crossguard_reads_protect_from_the_resource_options() -> None:
    rule = r.RULES_BY_NAME["prod-stateful-protected"]
    reports, report = _reporter()
    urn = "urn:pulumi:prod::p::azure-native:keyvault:Vault::kv"
    rule.validator("mandatory")(
        _Args(r.KEY_VAULT, compliant()[r.KEY_VAULT], urn, _Opts(protect=True)), report
    )
    assert reports == []
    rule.validator("mandatory")(
        _Args(r.KEY_VAULT, compliant()[r.KEY_VAULT], urn, _Opts(protect=False)), report
    )
    assert len(reports) == 1


def test_values_unknown_during_preview_read_as_unknown_instead_of_stopping_the_policy() -> None:
    from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy

    props = compliant()[r.VM]
    props["networkProfile"]["networkInterfaces"][0]["id"] = UNKNOWN_STRING_VALUE
    props["osProfile"]["customData"] = UNKNOWN_STRING_VALUE
    proxied = unknown_checking_proxy(props)
    with pytest.raises(UnknownValueError):
        proxied["osProfile"]["customData"]
    assert r.values.plain(proxied)["osProfile"]["customData"] == r.values.UNKNOWN
    reports, report = _reporter()
    for each in r.RULES:
        for level in each.levels():
            each.validator(level)(_Args(r.VM, proxied, "urn:pulumi:prod::p::t::vm", _Opts(True)), report)
    assert reports == []


def _policy_resources(resources: list[r.PlannedResource]) -> list[Any]:
    """The stack as CrossGuard hands it to stack policies: PolicyResource objects with proxied props."""
    from pulumi_policy import PolicyResource, PolicyResourceOptions
    from pulumi_policy.proxy import unknown_checking_proxy

    opts = PolicyResourceOptions(False, [], False, [], None, [])
    made = {
        res.urn: PolicyResource(
            res.type, unknown_checking_proxy(dict(res.props)), res.urn, res.name, opts, None, None, [], {}
        )
        for res in resources
    }
    for res in resources:
        made[res.urn].property_dependencies = {
            prop: [made[u] for u in urns] for prop, urns in (res.property_dependencies or {}).items()
        }
        made[res.urn].dependencies = [made[u] for u in res.dependencies]
    return list(made.values())


@dataclass
class _StackArgs:
    resources: list[Any]


@pytest.mark.parametrize(("design", "env"), MATRIX)
def test_crossguard_stack_policies_pass_both_designs(design, env: str) -> None:
    args = _StackArgs(_policy_resources(build(design, env)))
    reports, report = _reporter()
    for each in r.STACK_RULES:
        for level in each.levels():
            each.validator(level)(args, report)
    assert reports == []


def test_crossguard_stack_policies_report_the_offending_resource_urn() -> None:
    resources = [res for res in build("customerVnet", "prod") if res.name != "ci-storage-blob"]
    reports, report = _reporter()
    r.STACK_RULES_BY_NAME["ci-identity-storage-data-role"].validator("mandatory")(
        _StackArgs(_policy_resources(resources)), report
    )
    assert len(reports) == 1 and reports[0][1].endswith("::service-connection-identity")  # type: ignore[union-attr]


def test_crossguard_stack_policies_use_the_environment_tag_over_the_stack_name() -> None:
    def renamed(urn: str) -> str:
        return urn.replace(":dev::", ":dev-alice::")

    resources = [
        r.PlannedResource(
            res.type,
            res.name,
            res.props,
            renamed(res.urn),
            {prop: tuple(map(renamed, urns)) for prop, urns in (res.property_dependencies or {}).items()},
            tuple(map(renamed, res.dependencies)),
        )
        for res in build("customerVnet", "dev")
        if res.name != "compute-cluster"
    ]
    resources.append(
        r.PlannedResource(
            r.ML_COMPUTE,
            "loose-cluster",
            {
                "computeName": "loose",
                "workspaceName": "mlw-taxi",
                "resourceGroupName": "rg-taxi-001dev",
                "tags": {"environment": "dev"},
                "properties": {"computeType": "AmlCompute"},
            },
            "urn:pulumi:dev-alice::p::compute::loose",
        )
    )
    rule = r.STACK_RULES_BY_NAME["compute-network-isolated"]
    mandatory, report_mandatory = _reporter()
    advisory, report_advisory = _reporter()
    rule.validator("mandatory")(_StackArgs(_policy_resources(resources)), report_mandatory)
    rule.validator("advisory")(_StackArgs(_policy_resources(resources)), report_advisory)
    assert mandatory == [] and advisory


# --- The pack script, run as the Pulumi CLI runs it: from the pack folder ---

_RUN_PACK = """
import json, runpy, sys
import pulumi_policy

class RecordingPack:
    def __init__(self, name, enforcement_level, policies):
        reported = []
        registry = next(p for p in policies if p.name == "registry-admin-user-disabled")
        args = type("Args", (), {"resource_type": "azure-native:containerregistry:Registry",
                                 "props": {"adminUserEnabled": True}, "urn": "urn:pulumi:prod::p::r::cr",
                                 "opts": None})()
        registry.validate(args, lambda message, urn=None: reported.append(message))
        print(json.dumps({"name": name, "policies": [[p.name, str(p.enforcement_level)] for p in policies],
                          "reported": reported, "imported_as": sorted(m for m in sys.modules if m.endswith("rules"))}))

pulumi_policy.PolicyPack = RecordingPack
runpy.run_path("__main__.py", run_name="__main__")
"""


def test_the_pack_script_builds_one_policy_per_rule_and_level_from_its_sibling_rules_package() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _RUN_PACK], cwd=PACK, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    pack = json.loads(result.stdout)
    expected = sorted(each.policy_name(level) for each in r.ALL_RULES.values() for level in each.levels())
    assert sorted(name for name, _ in pack["policies"]) == expected
    assert "rules" in pack["imported_as"] and "policy.rules" not in pack["imported_as"]
    assert pack["reported"] and "admin user is on" in pack["reported"][0]
    levels = dict(pack["policies"])
    assert (
        "MANDATORY" in levels["aks-inference-router-ha-nodes"]
        and "ADVISORY" in levels["aks-private-api-server-advisory"]
    )


def test_the_pack_entry_point_only_builds_the_pack() -> None:
    text = (PACK / "__main__.py").read_text()
    assert (
        text.count("PolicyPack(") == 1
        and "def " not in text
        and "from rules import RULES, STACK_RULES" in text
    )


def _as_preview(value: Any) -> Any:
    """A planned value as a preview of a new stack sees it: every resource id still unknown (ids are computed);
    role definition ids stay known (the subscription comes from an invoke, the GUID is a constant)."""
    from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

    if isinstance(value, dict):
        return {key: item if key == "roleDefinitionId" else _as_preview(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_preview(item) for item in value]
    return UNKNOWN_STRING_VALUE if isinstance(value, str) and value.startswith("/subscriptions/") else value


@pytest.mark.parametrize(("design", "env"), MATRIX)
def test_a_preview_of_a_new_stack_with_every_id_unknown_passes_on_dependencies(design, env: str) -> None:
    resources = [
        r.PlannedResource(
            res.type,
            res.name,
            _as_preview(dict(res.props)),
            res.urn,
            res.property_dependencies,
            res.dependencies,
        )
        for res in build(design, env)
    ]
    reports, report = _reporter()
    from pulumi_policy.proxy import unknown_checking_proxy

    for res in resources:
        for each in r.RULES:
            for level in each.levels():
                each.validator(level)(
                    _Args(res.type, unknown_checking_proxy(dict(res.props)), res.urn, _Opts(True)), report
                )
    for each in r.STACK_RULES:
        for level in each.levels():
            each.validator(level)(_StackArgs(_policy_resources(resources)), report)
    assert reports == []


def test_a_preview_with_unknown_ids_still_finds_a_missing_grant() -> None:
    resources = [
        r.PlannedResource(
            res.type,
            res.name,
            _as_preview(dict(res.props)),
            res.urn,
            res.property_dependencies,
            res.dependencies,
        )
        for res in build("customerVnet", "prod")
        if res.name != "compute-storage-queue"
    ]
    reports, report = _reporter()
    r.STACK_RULES_BY_NAME["compute-identity-batch-roles"].validator("mandatory")(
        _StackArgs(_policy_resources(resources)), report
    )
    assert len(reports) == 1 and "Storage Queue Data Contributor" in reports[0][0]
