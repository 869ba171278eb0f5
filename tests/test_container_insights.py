"""Container Insights sends data: the Entra-auth add-on, its data collection rule and the rule's association.

Expected names and settings are literals from Microsoft's onboarding template for managed-identity auth
(microsoft/Docker-Provider, scripts/onboarding/aks/onboarding-using-msi-auth/existingClusterOnboarding.json
and existingClusterParam.json), not the code's constants.
"""

from __future__ import annotations

import pytest

from components.container_insights import data_collection_rule_name
from stacks.config import example_config
from tests.test_identities import Run, plan


@pytest.mark.parametrize(
    ("region", "cluster", "name"),
    [
        ("westeurope", "aks-taxi-001prod", "MSCI-westeurope-aks-taxi-001prod"),
        ("eastus2", "a" * 60, ("MSCI-eastus2-" + "a" * 60)[:64]),
        ("eastus2", "a" * 51, "MSCI-eastus2-" + "a" * 51),  # exactly 64: kept whole
    ],
)
def test_rule_name_follows_the_template_and_its_64_character_cut(
    region: str, cluster: str, name: str
) -> None:
    assert data_collection_rule_name(region, cluster) == name
    assert len(data_collection_rule_name(region, cluster)) <= 64


@pytest.mark.parametrize(("region", "cluster"), [("", "aks"), ("westeurope", "")])
def test_rule_name_needs_region_and_cluster(region: str, cluster: str) -> None:
    with pytest.raises(ValueError, match="region and the cluster name"):
        data_collection_rule_name(region, cluster)


@pytest.fixture(scope="module")
def dev() -> Run:
    return plan(example_config("dev"))


def test_the_addon_authenticates_with_entra_and_names_the_workspace(dev: Run) -> None:
    cluster = dev.recording.one("azure-native:containerservice:ManagedCluster")
    workspace_id = dev.state["monitoring-log-analytics"]["id"]
    assert cluster.inputs["addonProfiles"]["omsagent"] == {
        "enabled": True,
        "config": {"logAnalyticsWorkspaceResourceID": workspace_id, "useAADAuth": "true"},
    }


def test_a_rule_tells_the_agent_what_to_send_and_where(dev: Run) -> None:
    cfg = example_config("dev")
    rule = dev.recording.one("azure-native:monitor:DataCollectionRule")
    workspace_id = dev.state["monitoring-log-analytics"]["id"]
    assert rule.inputs["dataCollectionRuleName"] == f"MSCI-{cfg.location}-{cfg.names.aks_cluster}"
    assert rule.inputs["kind"] == "Linux" and rule.inputs["location"] == cfg.location
    assert rule.inputs["dataSources"] == {
        "extensions": [
            {
                "name": "ContainerInsightsExtension",
                "extensionName": "ContainerInsights",
                "streams": ["Microsoft-ContainerInsights-Group-Default"],
                "extensionSettings": {
                    "dataCollectionSettings": {
                        "interval": "1m",
                        "namespaceFilteringMode": "Off",
                        "enableContainerLogV2": True,
                    }
                },
            }
        ]
    }
    assert rule.inputs["destinations"] == {
        "logAnalytics": [{"name": "ciworkspace", "workspaceResourceId": workspace_id}]
    }
    assert rule.inputs["dataFlows"] == [
        {"streams": ["Microsoft-ContainerInsights-Group-Default"], "destinations": ["ciworkspace"]}
    ]
    assert rule.inputs["tags"] == dict(cfg.tags)


def test_the_rule_is_associated_with_the_cluster(dev: Run) -> None:
    association = dev.recording.one("azure-native:monitor:DataCollectionRuleAssociation")
    assert association.inputs["associationName"] == "ContainerInsightsExtension"
    assert association.inputs["resourceUri"] == dev.state["aks-cluster"]["id"]
    assert association.inputs["dataCollectionRuleId"] == dev.state["aks-insights-rule"]["id"]
    aks = dev.recording.one("aml-platform:inference:AksCluster")
    assert association.parent == aks.urn


def test_without_aks_there_is_no_rule() -> None:
    result = plan(example_config("dev", enableAks="false"))
    assert not result.recording.of_type("azure-native:monitor:DataCollectionRule")
    assert not result.recording.of_type("azure-native:monitor:DataCollectionRuleAssociation")
