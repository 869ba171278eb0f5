"""Monitoring: a Log Analytics workspace and a workspace-based Application Insights component."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_azure_native.applicationinsights as applicationinsights
import pulumi_azure_native.operationalinsights as operationalinsights

from components.common import CommonArgs, child_opts


@dataclass(frozen=True)
class MonitoringArgs:
    """Inputs of Monitoring."""

    common: CommonArgs
    """Location, resource group, tags, protect."""
    log_analytics_name: str
    """Azure name of the Log Analytics workspace."""
    app_insights_name: str
    """Azure name of the Application Insights component."""
    retention_days: int = 30
    """Days logs are kept (30-730)."""


class Monitoring(pulumi.ComponentResource):
    """Log Analytics (target of every diagnostic setting) and the Application Insights it backs."""

    log_analytics_workspace_id: pulumi.Output[str]
    """Azure resource id of the Log Analytics workspace (the diagnostics target of other components)."""
    log_analytics_workspace_name: pulumi.Output[str]
    """Azure name of the Log Analytics workspace."""
    app_insights_id: pulumi.Output[str]
    """Azure resource id of Application Insights."""
    app_insights_name: pulumi.Output[str]
    """Azure name of Application Insights."""
    app_insights_connection_string: pulumi.Output[str]
    """Connection string of Application Insights (a secret: it authorizes telemetry ingestion)."""

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("aml-platform:monitoring:Monitoring", name, None, opts)
        common = args.common
        workspace = operationalinsights.Workspace(
            f"{name}-log-analytics",
            workspace_name=args.log_analytics_name,
            resource_group_name=common.resource_group_name,
            location=common.location,
            sku=operationalinsights.WorkspaceSkuArgs(name="PerGB2018"),
            retention_in_days=args.retention_days,
            tags=common.tags_with(),
            opts=child_opts(self, common.protect),
        )
        insights = applicationinsights.Component(
            f"{name}-app-insights",
            resource_name_=args.app_insights_name,
            resource_group_name=common.resource_group_name,
            location=common.location,
            kind="web",
            application_type="web",
            # Workspace-based: telemetry lands in the Log Analytics workspace above (classic mode is retired).
            ingestion_mode="LogAnalytics",
            workspace_resource_id=workspace.id,
            tags=common.tags_with(),
            opts=child_opts(self, common.protect),
        )
        self.log_analytics_workspace_id = workspace.id
        self.log_analytics_workspace_name = workspace.name
        self.app_insights_id = insights.id
        self.app_insights_name = insights.name
        self.app_insights_connection_string = pulumi.Output.secret(
            insights.connection_string.apply(lambda value: value or "")
        )
        self.register_outputs(
            {
                "log_analytics_workspace_id": self.log_analytics_workspace_id,
                "log_analytics_workspace_name": self.log_analytics_workspace_name,
                "app_insights_id": self.app_insights_id,
                "app_insights_name": self.app_insights_name,
                "app_insights_connection_string": self.app_insights_connection_string,
            }
        )
