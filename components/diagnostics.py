"""Diagnostic settings that send a resource's logs and metrics to the Log Analytics workspace."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_azure_native.monitor as monitor

from components.common import child_opts

DIAGNOSTIC_SETTING_NAME = "to-log-analytics"


def send_diagnostics(
    resource_name: str,
    resource_uri: pulumi.Input[str],
    workspace_id: pulumi.Input[str],
    parent: pulumi.Resource,
    *,
    logs: bool = True,
    metric_categories: Sequence[str] = ("AllMetrics",),
) -> pulumi.CustomResource:
    """Declare a diagnostic setting (all log categories, the metric categories) on `resource_uri`.

    Storage accounts and their services refuse "AllMetrics"; they take "Transaction" and "Capacity".
    """
    return monitor.DiagnosticSetting(
        resource_name,
        name=DIAGNOSTIC_SETTING_NAME,
        resource_uri=resource_uri,
        workspace_id=workspace_id,
        # Resource-specific tables are cheaper to query and are the default for new workspaces.
        log_analytics_destination_type="Dedicated",
        logs=[monitor.DiagnosticsLogSettingsArgs(category_group="allLogs", enabled=True)] if logs else None,
        metrics=[
            monitor.DiagnosticsMetricSettingsArgs(category=category, enabled=True)
            for category in metric_categories
        ]
        or None,
        opts=child_opts(parent),
    )
