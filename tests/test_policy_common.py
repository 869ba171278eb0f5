"""Rules every family shares: required tags and protected stateful prod resources."""

from __future__ import annotations

import pytest

from policy import rules as r
from tests._policy_cases import assert_resource_case, breaking, resource_findings

RESOURCE_CASES = [
    ("tags-required", r.VNET, breaking(tags={"environment": "prod"})),
    ("tags-required", r.NAT_GATEWAY, breaking(tags__owner="")),
    ("prod-stateful-protected", r.STORAGE, breaking()),
]
STACK_CASES: list = []


@pytest.mark.parametrize(
    ("rule", "resource_type", "breaks"), RESOURCE_CASES, ids=[c[0] for c in RESOURCE_CASES]
)
def test_a_broken_common_setting_is_reported_by_its_rule(rule: str, resource_type: str, breaks) -> None:
    assert_resource_case(rule, resource_type, breaks, "prod")


def test_tags_are_required_in_dev_too() -> None:
    assert_resource_case("tags-required", r.VNET, breaking(tags={"environment": "dev"}), "dev")


@pytest.mark.parametrize(("env", "reported"), [("prod", True), ("dev", False)])
def test_only_prod_stateful_resources_must_be_protected(env: str, reported: bool) -> None:
    for resource_type in r.common.STATEFUL:
        findings = resource_findings(resource_type, breaking(), env, protect=False)
        assert ("prod-stateful-protected" in {f.rule for f in findings}) is reported
