"""Alerts, action group, Prometheus and Grafana under the mock runtime, per profile, and their config."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.alerts import (
    DRIFT_RULE,
    LOG_RULES,
    METRIC_RULES,
    AlertsArgs,
    AlertThresholds,
    error_rate_query,
    iso_minutes,
    p99_latency_query,
    request_count_query,
    workbook_name,
)
from stacks.config import ConfigError, example_config
from stacks.mockrun import SECRET_MASK, Recording, run_program
from stacks.model import StackConfig
from stacks.platform import build_platform
from tests.test_components import common, install_mock_gaps

GRAFANA_ADMIN_ID = "4f9c2b1e-7d3a-4e8b-9c5f-1a2b3c4d5e6f"


def plan(cfg: StackConfig) -> Recording:
    with pytest.MonkeyPatch.context() as monkeypatch:
        install_mock_gaps(monkeypatch)
        return run_program(lambda: build_platform(cfg), stack=cfg.stack)


@pytest.fixture(scope="module")
def prod() -> tuple[StackConfig, Recording]:
    cfg = example_config(
        "prod",
        namespace="tx",
        enablePrometheusGrafana="true",
        grafanaAdminObjectIds=json.dumps([GRAFANA_ADMIN_ID]),
        alertWebhookUrl="https://hooks.example.com/alerts?token=abc",
    )
    return cfg, plan(cfg)


@pytest.fixture(scope="module")
def dev_default() -> tuple[StackConfig, Recording]:
    cfg = example_config("dev")
    return cfg, plan(cfg)


def rules(recording: Recording, type_token: str) -> dict[str, Any]:
    return {resource.inputs["ruleName"]: resource for resource in recording.of_type(type_token)}


# ------------------------------------------------------------------ per profile


def test_dev_declares_no_alert_and_no_grafana_unless_switched_on(
    dev_default: tuple[StackConfig, Recording],
) -> None:
    cfg, recording = dev_default
    assert cfg.alerts is None and cfg.prometheus is None
    for kind in ("monitor:ActionGroup", "monitor:ScheduledQueryRule", "monitor:MetricAlert", "dashboard:Grafana",
                 "monitor:AzureMonitorWorkspace", "eventgrid:SystemTopic"):  # fmt: skip
        assert recording.of_type(f"azure-native:{kind}") == [], kind
    assert "actionGroupId" not in recording.outputs
    assert recording.outputs["driftThreshold"] == 0.1
    aks = recording.one("azure-native:containerservice:ManagedCluster")
    assert "azureMonitorProfile" not in aks.inputs


def test_dev_switched_on_gets_lenient_informational_alerts() -> None:
    recording = plan(example_config("dev", enableAlerts="true"))
    log_rules = rules(recording, "azure-native:monitor:ScheduledQueryRule")
    assert {rule.inputs["severity"] for rule in log_rules.values()} == {3}
    assert log_rules["ep-taxi-001dev-5xx-rate"].inputs["criteria"]["allOf"][0]["threshold"] == 10


def test_prod_action_group_notifies_the_configured_receivers(prod: tuple[StackConfig, Recording]) -> None:
    _, recording = prod
    group = recording.one("azure-native:monitor:ActionGroup")
    assert group.inputs["groupShortName"] == "mltxprod" and len(group.inputs["groupShortName"]) <= 12
    assert group.inputs["emailReceivers"] == [
        {"name": "email-0", "emailAddress": "ml-oncall@contoso.com", "useCommonAlertSchema": True}
    ]
    # The webhook URL carries a token: it reaches Pulumi only as a secret.
    (webhook,) = group.inputs["webhookReceivers"]
    assert webhook["serviceUri"] == SECRET_MASK and webhook["useCommonAlertSchema"] is True
    assert any(path.startswith("webhookReceivers") for path in group.secret_paths)
    assert "token=abc" not in json.dumps(group.inputs)
    assert recording.outputs["actionGroupId"].endswith(
        "/providers/Microsoft.Insights/actionGroups/ag-tx-001prod"
    )
    assert recording.outputs["alertEmails"] == ["ml-oncall@contoso.com"]


def test_prod_log_alerts_watch_the_endpoint_without_needing_it(prod: tuple[StackConfig, Recording]) -> None:
    cfg, recording = prod
    log_rules = rules(recording, "azure-native:monitor:ScheduledQueryRule")
    endpoint = cfg.names.online_endpoint
    assert set(log_rules) == {f"{endpoint}-5xx-rate", f"{endpoint}-p99-latency", f"{endpoint}-no-traffic"}
    expected = {  # (measure column, operator, threshold, window) from the prod profile
        "5xx-rate": ("error_rate", "GreaterThan", 2, "PT15M"),
        "p99-latency": ("p99", "GreaterThan", 500, "PT15M"),
        "no-traffic": ("requests", "LessThan", 1, "PT30M"),
    }
    for role, (measure, operator, threshold, window) in expected.items():
        rule = log_rules[f"{endpoint}-{role}"].inputs
        condition = rule["criteria"]["allOf"][0]
        assert (condition["metricMeasureColumn"], condition["operator"], condition["threshold"]) == (
            measure, operator, threshold,
        )  # fmt: skip
        assert rule["windowSize"] == window and rule["severity"] == 1 and rule["kind"] == "LogAlert"
        assert (
            rule["skipQueryValidation"] is True
        ), "the tables exist only after the endpoint logged a request"
        assert rule["scopes"] == [recording.outputs["logAnalyticsWorkspaceId"]]
        assert "union isfuzzy=true" in condition["query"]
        if recording.outputs["onlineTarget"] == "managed":
            assert f'where EndpointName == "{endpoint}"' in condition["query"]
            assert "AmlOnlineEndpointTrafficLog" in condition["query"]
        else:  # prod's customer-VNet design serves from AKS: the inference server's Application Insights
            assert f'tostring(Properties["Service Name"]) has "{endpoint}"' in condition["query"]
            assert "(AppRequests)" in condition["query"]
        assert rule["actions"]["actionGroups"] == [recording.outputs["actionGroupId"]]


def test_prod_metric_alerts_use_the_names_azure_publishes(prod: tuple[StackConfig, Recording]) -> None:
    _, recording = prod
    metric_rules = rules(recording, "azure-native:monitor:MetricAlert")
    by_metric = {
        rule.inputs["criteria"]["allOf"][0]["metricName"]: rule.inputs for rule in metric_rules.values()
    }
    # Literals from Learn: supported metrics of Microsoft.MachineLearningServices/workspaces ("Failed Runs",
    # "Unusable Nodes" with dimension ClusterName) and Microsoft.ContainerService/managedClusters.
    assert set(by_metric) == {
        "Failed Runs", "Unusable Nodes", "node_cpu_usage_percentage", "node_memory_working_set_percentage",
    }  # fmt: skip
    workspace_id = recording.outputs["workspaceId"]
    assert by_metric["Failed Runs"]["scopes"] == [workspace_id]
    assert by_metric["Failed Runs"]["criteria"]["allOf"][0]["metricNamespace"] == (
        "Microsoft.MachineLearningServices/workspaces"
    )
    assert by_metric["Unusable Nodes"]["criteria"]["allOf"][0]["dimensions"] == [
        {"name": "ClusterName", "operator": "Include", "values": ["cpu-cluster"]}
    ]
    cpu = by_metric["node_cpu_usage_percentage"]
    assert cpu["scopes"] == [recording.outputs["aksClusterId"]]
    assert cpu["criteria"]["allOf"][0]["metricNamespace"] == "Microsoft.ContainerService/managedClusters"
    assert cpu["criteria"]["allOf"][0]["threshold"] == 80
    assert by_metric["node_memory_working_set_percentage"]["criteria"]["allOf"][0]["threshold"] == 85
    for rule in by_metric.values():
        assert rule["criteria"]["odataType"] == "Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria"
        assert rule["actions"] == [{"actionGroupId": recording.outputs["actionGroupId"]}]


def test_prod_model_drift_events_reach_the_action_group(prod: tuple[StackConfig, Recording]) -> None:
    _, recording = prod
    topic = recording.one("azure-native:eventgrid:SystemTopic").inputs
    assert topic["topicType"] == "Microsoft.MachineLearningServices.Workspaces"
    assert topic["source"] == recording.outputs["workspaceId"]
    subscription = recording.one("azure-native:eventgrid:SystemTopicEventSubscription").inputs
    # Literals from Learn how-to-monitor-model-performance.md, "Integrate ... with Event Grid".
    assert subscription["filter"]["includedEventTypes"] == [
        "Microsoft.MachineLearningServices.RunStatusChanged"
    ]
    assert subscription["filter"]["advancedFilters"] == [
        {
            "operatorType": "StringContains",
            "key": "data.RunTags.azureml_modelmonitor_threshold_breached",
            "values": ["has failed due to one or more features violating metric thresholds"],
        }
    ]
    assert subscription["destination"]["endpointType"] == "MonitorAlert"
    assert subscription["destination"]["actionGroups"] == [recording.outputs["actionGroupId"]]
    assert subscription["destination"]["severity"] == "Sev1"


def test_prod_workbook_shows_the_endpoint(prod: tuple[StackConfig, Recording]) -> None:
    cfg, recording = prod
    workbook = recording.one("azure-native:applicationinsights:Workbook").inputs
    assert workbook["resourceName"] == workbook_name(f"{cfg.names.workspace}/{cfg.names.online_endpoint}")
    content = json.loads(workbook["serializedData"])
    titles = [item["content"].get("title") for item in content["items"] if item["type"] == 3]
    assert titles == [
        "Requests per 5 minutes", "Latency percentiles (ms)", "Errors (4xx, 5xx) per 5 minutes",
        "Traffic split by deployment", "Model monitor drift alerts",
    ]  # fmt: skip
    assert workbook["sourceId"] == recording.outputs["logAnalyticsWorkspaceId"]


def test_prod_prometheus_and_grafana_are_wired_and_private(prod: tuple[StackConfig, Recording]) -> None:
    _, recording = prod
    aks = recording.one("azure-native:containerservice:ManagedCluster").inputs
    assert aks["azureMonitorProfile"] == {"metrics": {"enabled": True}}
    workspace = recording.one("azure-native:monitor:AzureMonitorWorkspace").inputs
    assert workspace["publicNetworkAccess"] == "Disabled"
    # Container Insights has its own rule (components/container_insights.py); this is Prometheus's.
    (rule,) = [
        r.inputs
        for r in recording.of_type("azure-native:monitor:DataCollectionRule")
        if "prometheusForwarder" in r.inputs["dataSources"]
    ]
    assert rule["dataSources"]["prometheusForwarder"][0]["streams"] == ["Microsoft-PrometheusMetrics"]
    assert rule["dataFlows"] == [
        {"streams": ["Microsoft-PrometheusMetrics"], "destinations": ["MonitoringAccount1"]}
    ]
    associations = {r.inputs["associationName"]: r.inputs for r in recording.of_type(
        "azure-native:monitor:DataCollectionRuleAssociation")}  # fmt: skip
    assert set(associations) == {
        "MSProm-westeurope-aks-tx-001prod",
        "configurationAccessEndpoint",
        "ContainerInsightsExtension",
    }
    assert {a["resourceUri"] for a in associations.values()} == {recording.outputs["aksClusterId"]}
    grafana = recording.one("azure-native:dashboard:Grafana").inputs
    assert grafana["properties"]["publicNetworkAccess"] == "Disabled"
    assert grafana["properties"]["grafanaIntegrations"]["azureMonitorWorkspaceIntegrations"] == [
        {"azureMonitorWorkspaceResourceId": recording.outputs["azureMonitorWorkspaceId"]}
    ]
    endpoints = [r.inputs for r in recording.of_type("azure-native:network:PrivateEndpoint")]
    grafana_endpoint = [e for e in endpoints if e["privateEndpointName"] == "pe-amg-tx-001prod"]
    assert grafana_endpoint[0]["privateLinkServiceConnections"][0]["groupIds"] == ["grafana"]
    managed = recording.one("azure-native:dashboard:ManagedPrivateEndpoint").inputs
    assert managed["groupIds"] == ["prometheusMetrics"]
    # Role ids from Learn "Azure built-in roles": Monitoring Data Reader, Monitoring Reader, Grafana Admin.
    roles = {r.inputs["roleDefinitionId"].rsplit("/", 1)[1]: r.inputs for r in recording.of_type(
        "azure-native:authorization:RoleAssignment") if r.parent and "prometheus" in r.parent}  # fmt: skip
    assert set(roles) == {
        "b0d8363b-8ddd-447d-831f-62ca05bff136", "43d0d8ad-25c7-4714-9337-8ba259a9fe05",
        "22926164-76b3-42b3-bc55-97df8dab3e41",
    }  # fmt: skip
    assert roles["22926164-76b3-42b3-bc55-97df8dab3e41"]["principalId"] == GRAFANA_ADMIN_ID
    assert roles["22926164-76b3-42b3-bc55-97df8dab3e41"]["principalType"] == "User"


# ------------------------------------------------------------------ pure parts


@pytest.mark.parametrize(("minutes", "duration"), [(5, "PT5M"), (15, "PT15M"), (60, "PT1H"), (90, "PT1H30M")])
def test_iso_minutes(minutes: int, duration: str) -> None:
    assert iso_minutes(minutes) == duration


@pytest.mark.parametrize("build", [error_rate_query, p99_latency_query, request_count_query])
def test_kubernetes_queries_read_the_inference_servers_application_insights_requests(build: Any) -> None:
    query = build("kubernetes", "ep-x")
    assert "AppRequests" in query and "AmlOnlineEndpointTrafficLog" not in query
    assert 'Properties["Service Name"]) has "ep-x"' in query


def test_queries_quote_the_endpoint_name() -> None:
    assert 'EndpointName == "ep-\\"x"' in error_rate_query("managed", 'ep-"x')


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"emails": (), "webhook_url": None}, "needs a receiver"),
        ({"action_group_short_name": "much-too-long-name"}, "1-12 characters"),
    ],
)
def test_alerts_args_refuse_a_group_nobody_reads(kwargs: dict, message: str) -> None:
    base = dict(
        common=common(), action_group_name="ag", action_group_short_name="ag", emails=("a@b.co",),
        log_analytics_workspace_id="la", workspace_id="w", workspace_name="mlw", endpoint_name="ep",
        compute_cluster_name="cpu-cluster",
    )  # fmt: skip
    with pytest.raises(ValueError, match=message):
        AlertsArgs(**{**base, **kwargs})


@pytest.mark.parametrize(
    ("kwargs", "message"), [({"severity": 5}, "0 \\(critical\\) to 4"), ({"no_traffic_minutes": 2}, "5-1440")]
)
def test_alert_thresholds_refuse_what_azure_refuses(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AlertThresholds(**kwargs)


@pytest.mark.parametrize(
    ("overrides", "key", "message"),
    [
        ({"alertEmails": None}, "enableAlerts", "alerts need a receiver"),
        ({"alertEmails": '["not-an-email"]'}, "alertEmails", "must be a list of email addresses"),
        ({"alertWebhookUrl": "http://hooks.example.com/x"}, "alertWebhookUrl", "must be an https:// URL"),
        ({"alertSeverity": "7"}, "alertSeverity", "from 0 to 4"),
        ({"alertNoTrafficMinutes": "2"}, "alertNoTrafficMinutes", "from 5 to 1440"),
        ({"driftThreshold": "zero"}, "driftThreshold", "must be a number above 0"),
        (
            {"enablePrometheusGrafana": "true", "enableAks": "false"},
            "enablePrometheusGrafana",
            "needs enableAks",
        ),
        (
            {"enablePrometheusGrafana": "true", "namespace": "taxifaresnyc"},
            "enablePrometheusGrafana",
            "Azure allows 2-23",
        ),
        ({"grafanaAdminObjectIds": '["bob"]'}, "grafanaAdminObjectIds", "Entra object ids"),
    ],
)
def test_alert_config_problems_name_the_key_and_the_fix(overrides: dict, key: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        example_config("prod", **overrides)
    problems = [problem for problem in raised.value.problems if problem.key == f"aml-platform:{key}"]
    assert problems and message in problems[0].message, raised.value


def test_a_webhook_in_plaintext_is_refused() -> None:
    from stacks.config import example_values, parse_config

    values = example_values(alertWebhookUrl="https://hooks.example.com/x")
    with pytest.raises(ConfigError, match="alertWebhookUrl.*stored in plaintext"):
        parse_config(values, stack="prod", secret_keys=frozenset())


def test_alert_config_defaults_follow_the_profile() -> None:
    prod = example_config("prod").alerts
    assert prod is not None and (prod.severity, prod.error_rate_percent, prod.p99_latency_ms) == (1, 2, 500)
    dev = example_config("dev", enableAlerts="true", alertSeverity="0").alerts
    assert dev is not None and (dev.severity, dev.no_traffic_minutes) == (0, 240)


def test_the_readme_cost_table_lists_every_rule_prod_declares(prod: tuple[StackConfig, Recording]) -> None:
    cfg, recording = prod
    declared = {
        resource.inputs["ruleName"]
        for kind in ("ScheduledQueryRule", "MetricAlert")
        for resource in recording.of_type(f"azure-native:monitor:{kind}")
    }
    expected = {f"{cfg.names.online_endpoint}-{role}" for role in LOG_RULES} | {
        f"{cfg.names.workspace}-{role}" for role in METRIC_RULES
    }
    assert declared == expected
    subscription = recording.one("azure-native:eventgrid:SystemTopicEventSubscription")
    assert subscription.inputs["eventSubscriptionName"] == DRIFT_RULE
