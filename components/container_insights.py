"""Container Insights on AKS with Entra ID auth: the add-on, and the data collection rule that makes it send.

With `useAADAuth` the agent authenticates with the add-on's managed identity and sends only what a data
collection rule associated with the cluster tells it to; the add-on block alone sends nothing
(AZURE-FACTS 14; hashicorp/terraform-provider-azurerm#23510). Names, streams and settings follow
Microsoft's own onboarding template (microsoft/Docker-Provider,
scripts/onboarding/aks/onboarding-using-msi-auth/existingClusterOnboarding.json and its parameter file).
"""

from __future__ import annotations

from typing import Mapping

import pulumi
import pulumi_azure_native.containerservice as containerservice
import pulumi_azure_native.monitor as monitor

from components.common import CommonArgs, child_opts

ADDON_NAME = "omsagent"
EXTENSION_NAME = "ContainerInsights"
DATA_SOURCE_NAME = "ContainerInsightsExtension"
ASSOCIATION_NAME = "ContainerInsightsExtension"
DESTINATION_NAME = "ciworkspace"
STREAMS = ("Microsoft-ContainerInsights-Group-Default",)
"""The default stream group: logs (ContainerLogV2), events, inventories, metrics."""
RULE_NAME_MAX_LENGTH = 64


def data_collection_rule_name(workspace_region: str, cluster_name: str) -> str:
    """`MSCI-<workspace region>-<cluster>`, cut to 64 characters as Microsoft's template cuts it."""
    if not workspace_region or not cluster_name:
        raise ValueError("a Container Insights rule name needs the workspace region and the cluster name")
    return f"MSCI-{workspace_region}-{cluster_name}"[:RULE_NAME_MAX_LENGTH]


def data_collection_settings() -> dict[str, object]:
    """What the agent collects: every namespace each minute, logs in the ContainerLogV2 schema."""
    return {"interval": "1m", "namespaceFilteringMode": "Off", "enableContainerLogV2": True}


def container_insights_addon(
    log_analytics_workspace_id: pulumi.Input[str],
) -> Mapping[str, containerservice.ManagedClusterAddonProfileArgs]:
    """The omsagent add-on (Container Insights) sending to `log_analytics_workspace_id` with Entra auth."""
    return {
        ADDON_NAME: containerservice.ManagedClusterAddonProfileArgs(
            enabled=True,
            config={"logAnalyticsWorkspaceResourceID": log_analytics_workspace_id, "useAADAuth": "true"},
        )
    }


def send_container_insights(
    resource_name: str,
    cluster_id: pulumi.Input[str],
    cluster_name: str,
    log_analytics_workspace_id: pulumi.Input[str],
    common: CommonArgs,
    parent: pulumi.Resource,
) -> monitor.DataCollectionRuleAssociation:
    """The data collection rule for the cluster's Container Insights agent and its association, children of `parent`.

    The rule lives in the workspace's region (the platform keeps Log Analytics in `common.location`).
    """
    rule = monitor.DataCollectionRule(
        f"{resource_name}-rule",
        data_collection_rule_name=data_collection_rule_name(common.location, cluster_name),
        resource_group_name=common.resource_group_name,
        location=common.location,
        kind="Linux",
        description=f"Container Insights of {cluster_name}: what its agent collects and where it sends it.",
        data_sources=monitor.DataCollectionRuleDataSourcesArgs(
            extensions=[
                monitor.ExtensionDataSourceArgs(
                    name=DATA_SOURCE_NAME,
                    extension_name=EXTENSION_NAME,
                    streams=list(STREAMS),
                    extension_settings={"dataCollectionSettings": data_collection_settings()},
                )
            ]
        ),
        destinations=monitor.DataCollectionRuleDestinationsArgs(
            log_analytics=[
                monitor.LogAnalyticsDestinationArgs(
                    name=DESTINATION_NAME, workspace_resource_id=log_analytics_workspace_id
                )
            ]
        ),
        data_flows=[monitor.DataFlowArgs(streams=list(STREAMS), destinations=[DESTINATION_NAME])],
        tags=common.tags_with(),
        opts=child_opts(parent),
    )
    return monitor.DataCollectionRuleAssociation(
        f"{resource_name}-association",
        association_name=ASSOCIATION_NAME,
        resource_uri=cluster_id,
        data_collection_rule_id=rule.id,
        description=f"Links {cluster_name} to its Container Insights rule; without it the agent sends nothing.",
        opts=child_opts(parent),
    )
