"""Container registry rules on both sides (AZURE-FACTS 24 and 31 included)."""

from __future__ import annotations

import pytest

from policy import rules as r
from tests._policy_cases import ENVIRONMENTS, assert_resource_case, breaking, resource_findings

RESOURCE_CASES = [
    ("registry-admin-user-disabled", r.REGISTRY, breaking(adminUserEnabled=True)),
    ("registry-anonymous-pull-disabled", r.REGISTRY, breaking(anonymousPullEnabled=True)),
    ("registry-public-network-disabled", r.REGISTRY, breaking(publicNetworkAccess="Enabled")),
    ("registry-private-premium-trusted-services", r.REGISTRY, breaking(sku__name="Standard")),
    ("registry-private-premium-trusted-services", r.REGISTRY, breaking(networkRuleBypassOptions="None")),
    ("registry-no-quarantine", r.REGISTRY, breaking(policies__quarantinePolicy__status="enabled")),
]
STACK_CASES: list = []


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize(
    ("rule", "resource_type", "breaks"), RESOURCE_CASES, ids=[c[0] for c in RESOURCE_CASES]
)
def test_a_broken_registry_setting_is_reported_by_its_rule(
    rule: str, resource_type: str, breaks, env: str
) -> None:
    assert_resource_case(rule, resource_type, breaks, env)


@pytest.mark.parametrize(
    ("access", "sku", "bypass", "reported"),
    [
        ("Disabled", "Premium", None, False),  # ARM defaults the bypass to AzureServices
        ("Disabled", "Basic", "AzureServices", True),
        ("Enabled", "Basic", "None", False),  # a public registry builds images itself
    ],
)
def test_only_a_private_registry_must_be_premium_with_trusted_services(
    access: str, sku: str, bypass: str | None, reported: bool
) -> None:
    findings = resource_findings(
        r.REGISTRY,
        breaking(publicNetworkAccess=access, sku__name=sku, networkRuleBypassOptions=bypass),
        "dev",
    )
    assert ("registry-private-premium-trusted-services" in {f.rule for f in findings}) is reported


@pytest.mark.parametrize(("status", "reported"), [("disabled", False), ("Enabled", True), (None, False)])
def test_quarantine_status(status: str | None, reported: bool) -> None:
    findings = resource_findings(r.REGISTRY, breaking(policies__quarantinePolicy__status=status), "prod")
    assert bool(findings) is reported
