"""Storage rules on both sides, and their retention boundary."""

from __future__ import annotations

import pytest

from policy import rules as r
from tests._policy_cases import DELETE, ENVIRONMENTS, assert_resource_case, breaking, resource_findings

RESOURCE_CASES = [
    ("storage-https-only", r.STORAGE, breaking(enableHttpsTrafficOnly=False)),
    ("storage-min-tls-1-2", r.STORAGE, breaking(minimumTlsVersion="TLS1_0")),
    ("storage-no-public-blob-access", r.STORAGE, breaking(allowBlobPublicAccess=True)),
    ("storage-shared-key-disabled", r.STORAGE, breaking(allowSharedKeyAccess=DELETE)),
    ("storage-no-cross-tenant-replication", r.STORAGE, breaking(allowCrossTenantReplication=True)),
    ("storage-public-network-disabled", r.STORAGE, breaking(publicNetworkAccess="Enabled")),
    ("storage-blob-soft-delete", r.BLOB_SERVICE, breaking(deleteRetentionPolicy__days=1)),
    (
        "storage-container-soft-delete",
        r.BLOB_SERVICE,
        breaking(containerDeleteRetentionPolicy__enabled=False),
    ),
]
STACK_CASES: list = []


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize(
    ("rule", "resource_type", "breaks"), RESOURCE_CASES, ids=[c[0] for c in RESOURCE_CASES]
)
def test_a_broken_storage_setting_is_reported_by_its_rule(
    rule: str, resource_type: str, breaks, env: str
) -> None:
    assert_resource_case(rule, resource_type, breaks, env)


@pytest.mark.parametrize(
    ("days", "reported"), [(6, True), (6.0, True), (7, False), (7.0, False), (365, False), (None, True)]
)
def test_soft_delete_keeps_at_least_seven_days(days: float | None, reported: bool) -> None:
    findings = resource_findings(
        r.BLOB_SERVICE,
        breaking(deleteRetentionPolicy__days=days, containerDeleteRetentionPolicy__days=days),
        "prod",
    )
    assert {f.rule for f in findings} == (
        {"storage-blob-soft-delete", "storage-container-soft-delete"} if reported else set()
    )


@pytest.mark.parametrize(("version", "reported"), [("TLS1_1", True), ("TLS1_2", False), ("TLS1_3", False)])
def test_minimum_tls_version(version: str, reported: bool) -> None:
    findings = resource_findings(r.STORAGE, breaking(minimumTlsVersion=version), "prod")
    assert bool(findings) is reported


def test_shared_keys_stay_advisory_while_no_source_confirms_kubernetes_or_batch_without_them() -> None:
    rule = r.RULES_BY_NAME["storage-shared-key-disabled"]
    assert rule.levels() == ("advisory",) and rule.facts == () and "33" in rule.description
