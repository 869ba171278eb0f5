"""Monitoring rules: log retention, workspace-based Application Insights, diagnostics, Container Insights."""

from __future__ import annotations

from typing import Any, Iterator, Mapping

from . import types as t
from .azure import CONTAINER_INSIGHTS_EXTENSION, CONTAINER_INSIGHTS_STREAM_PREFIX
from .core import M, Rule, StackRule, Subject, Violation, present, rule
from .graph import PlannedResource, Stack
from .values import as_list, as_map, get, truthy

MIN_RETENTION_DAYS = 30


def _log_retention(subject: Subject) -> str | None:
    days = get(subject.props, "retentionInDays")
    # Numbers cross the engine's wire as floats (90.0), so accept any number.
    if isinstance(days, (int, float)) and days >= MIN_RETENTION_DAYS:
        return None
    return f"`retentionInDays` is {days!r}, must be {MIN_RETENTION_DAYS} or more"


def _diagnostics(subject: Subject) -> str | None:
    if not get(subject.props, "workspaceId"):
        return "the diagnostic setting sends nowhere: `workspaceId` is not set"
    enabled = [
        item for key in ("logs", "metrics") for item in as_list(subject.props.get(key)) if item.get("enabled")
    ]
    return None if enabled else "no log category or metric is enabled"


def container_insights_addon(cluster: PlannedResource) -> Mapping[str, Any] | None:
    """The cluster's Container Insights addon when it is on (ARM spells its key omsagent or omsAgent)."""
    for key, addon in as_map(cluster.props.get("addonProfiles")).items():
        if key.lower() == "omsagent" and truthy(as_map(addon).get("enabled")):
            return as_map(addon)
    return None


def collects_container_insights(rule_props: Mapping[str, Any]) -> bool:
    """Whether a data collection rule has the ContainerInsights extension source sending to Log Analytics."""
    extensions = as_list(get(rule_props, "dataSources.extensions"))
    streams = [
        s
        for e in extensions
        if e.get("extensionName") == CONTAINER_INSIGHTS_EXTENSION
        for s in e.get("streams") or []
    ]
    destinations = as_list(get(rule_props, "destinations.logAnalytics"))
    return any(str(s).startswith(CONTAINER_INSIGHTS_STREAM_PREFIX) for s in streams) and bool(destinations)


def _container_insights_dcr(stack: Stack) -> Iterator[Violation]:
    for cluster in stack.of_type(t.AKS):
        addon = container_insights_addon(cluster)
        if addon is None or not truthy(get(addon, "config.useAADAuth")):
            continue
        associated = [
            dcr
            for association in stack.of_type(t.DATA_COLLECTION_RULE_ASSOCIATION)
            if cluster
            in stack.targets(association, "resourceUri", [t.AKS], association.props.get("resourceUri"))
            for dcr in stack.targets(
                association,
                "dataCollectionRuleId",
                [t.DATA_COLLECTION_RULE],
                association.props.get("dataCollectionRuleId"),
            )
        ]
        if not any(collects_container_insights(dcr.props) for dcr in associated):
            yield Violation(
                cluster,
                f"Container Insights on {cluster.name} uses AAD auth but no data collection rule with the "
                f"{CONTAINER_INSIGHTS_EXTENSION} extension is associated with the cluster: it sends nothing",
            )


RULES: tuple[Rule, ...] = (
    rule(
        "log-analytics-retention",
        t.LOG_ANALYTICS,
        M,
        "Logs are kept at least 30 days.",
        "set retention_in_days=30 or more (config logRetentionDays)",
        _log_retention,
    ),
    rule(
        "app-insights-workspace-based",
        t.APP_INSIGHTS,
        M,
        "Application Insights stores data in Log Analytics.",
        "set workspace_resource_id to the Log Analytics workspace id (classic resources are retired)",
        present("workspaceResourceId", "Application Insights is classic"),
    ),
    rule(
        "diagnostics-to-log-analytics",
        t.DIAGNOSTIC_SETTING,
        M,
        "Diagnostic settings send logs/metrics to Log Analytics.",
        "set workspace_id and enable at least one log category group or metric",
        _diagnostics,
    ),
)

STACK_RULES: tuple[StackRule, ...] = (
    StackRule(
        "container-insights-data-collection-rule",
        "Container Insights with AAD auth has a data collection rule associated with the cluster.",
        M,
        "declare a monitor.DataCollectionRule with a ContainerInsights extension data source "
        "(streams Microsoft-ContainerInsights-Group-Default) sending to the Log Analytics workspace, and a "
        "monitor.DataCollectionRuleAssociation from the cluster to it",
        _container_insights_dcr,
        facts=(14,),
        source="hashicorp/terraform-provider-azurerm#23510 (no logs without a DCR); microsoft/Docker-Provider "
        "scripts/onboarding/aks/onboarding-msi-terraform/main.tf (the DCR and its association)",
    ),
)
