"""Monitoring rules on both sides: retention boundary, diagnostics, Container Insights' data collection rule."""

from __future__ import annotations

import pytest

from policy import rules as r
from tests._policy_cases import (
    DELETE,
    ENVIRONMENTS,
    assert_resource_case,
    assert_stack_case,
    breaking,
    drop,
    edit,
    resource_findings,
)

RESOURCE_CASES = [
    ("log-analytics-retention", r.LOG_ANALYTICS, breaking(retentionInDays=7)),
    ("app-insights-workspace-based", r.APP_INSIGHTS, breaking(workspaceResourceId=DELETE)),
    (
        "diagnostics-to-log-analytics",
        r.DIAGNOSTIC_SETTING,
        breaking(logs=[{"categoryGroup": "allLogs", "enabled": False}]),
    ),
    ("diagnostics-to-log-analytics", r.DIAGNOSTIC_SETTING, breaking(workspaceId=DELETE)),
]
STACK_CASES = [
    ("container-insights-data-collection-rule", "customerVnet", drop("container-insights-association")),
    (
        "container-insights-data-collection-rule",
        "customerVnet",
        drop("container-insights-association", "container-insights-rule"),
    ),
    (
        "container-insights-data-collection-rule",
        "customerVnet",
        edit(
            "container-insights-rule",
            "dataSources.extensions",
            [{"name": "syslog", "extensionName": "Syslog", "streams": ["Microsoft-Syslog"]}],
        ),
    ),
    (
        "container-insights-data-collection-rule",
        "customerVnet",
        edit("container-insights-rule", "destinations", {}),
    ),
    (
        "container-insights-data-collection-rule",
        "customerVnet",
        edit(
            "container-insights-association",
            "resourceUri",
            "/subscriptions/s/resourceGroups/other/providers/Microsoft.ContainerService/managedClusters/aks-other",
        ),
    ),
]


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize(
    ("rule", "resource_type", "breaks"), RESOURCE_CASES, ids=[c[0] for c in RESOURCE_CASES]
)
def test_a_broken_monitoring_setting_is_reported_by_its_rule(
    rule: str, resource_type: str, breaks, env: str
) -> None:
    assert_resource_case(rule, resource_type, breaks, env)


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize(
    ("rule", "design", "change"), STACK_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(STACK_CASES)]
)
def test_a_broken_monitoring_stack_is_reported(rule: str, design, change, env: str) -> None:
    assert_stack_case(rule, design, env, change)


@pytest.mark.parametrize(
    ("days", "reported"), [(29, True), (29.0, True), (30, False), (30.0, False), ("30", True)]
)
def test_retention_is_at_least_thirty_days(days: object, reported: bool) -> None:
    findings = resource_findings(r.LOG_ANALYTICS, breaking(retentionInDays=days), "prod")
    assert bool(findings) is reported


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_container_insights_without_aad_auth_needs_no_rule(env: str) -> None:
    from tests._policy_cases import build, chain, stack_findings

    change = chain(
        edit("aks-cluster", "addonProfiles.omsagent.config.useAADAuth", "false"),
        drop("container-insights-association"),
    )
    assert stack_findings(change(build("customerVnet", env)), env) == []
