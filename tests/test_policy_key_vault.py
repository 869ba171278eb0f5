"""Key Vault rules on both sides, and the soft-delete retention boundary."""

from __future__ import annotations

import pytest

from policy import rules as r
from tests._policy_cases import DELETE, ENVIRONMENTS, assert_resource_case, breaking, resource_findings

RESOURCE_CASES = [
    ("keyvault-rbac-authorization", r.KEY_VAULT, breaking(properties__enableRbacAuthorization=False)),
    ("keyvault-purge-protection", r.KEY_VAULT, breaking(properties__enablePurgeProtection=DELETE)),
    ("keyvault-soft-delete-90-days", r.KEY_VAULT, breaking(properties__softDeleteRetentionInDays=7)),
    ("keyvault-public-network-disabled", r.KEY_VAULT, breaking(properties__publicNetworkAccess="Enabled")),
]
STACK_CASES: list = []


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize(
    ("rule", "resource_type", "breaks"), RESOURCE_CASES, ids=[c[0] for c in RESOURCE_CASES]
)
def test_a_broken_vault_setting_is_reported_by_its_rule(
    rule: str, resource_type: str, breaks, env: str
) -> None:
    assert_resource_case(rule, resource_type, breaks, env)


@pytest.mark.parametrize(
    ("days", "enabled", "reported"),
    [(89, True, True), (90, True, False), (90.0, None, False), (90, False, True), (None, True, True)],
)
def test_soft_delete_is_on_for_exactly_ninety_days(
    days: float | None, enabled: bool | None, reported: bool
) -> None:
    findings = resource_findings(
        r.KEY_VAULT,
        breaking(properties__softDeleteRetentionInDays=days, properties__enableSoftDelete=enabled),
        "prod",
    )
    assert [f.rule for f in findings] == (["keyvault-soft-delete-90-days"] if reported else [])
