"""Alerts: an action group, endpoint log alerts, workspace/cluster/AKS metric alerts, drift events, a workbook.

Nothing here needs the online endpoint to exist: the log alerts query the tables Azure ML fills once the
hook has deployed it, and skip Azure's query validation (a table that has never received a row does not
exist yet, and validation would refuse the rule). Their queries union an empty table of the same schema
(`union isfuzzy=true`), so they evaluate to "no requests" instead of failing before the first request.

Sources: tables and columns, Learn azure-monitor/reference/tables/amlonlineendpointtrafficlog (managed
endpoints) and apprequests (the AML inference server's Application Insights requests, which is what a
Kubernetes online endpoint has: the traffic and console log tables are written for managed endpoints);
metric names, Learn azure-monitor/reference/supported-metrics/microsoft-machinelearningservices-workspaces-
metrics and microsoft-containerservice-managedclusters-metrics; model monitor events, Learn
how-to-monitor-model-performance.md "Integrate ... with Event Grid" (RunStatusChanged filtered on the run tag
azureml_modelmonitor_threshold_breached), delivered to the action group by Event Grid's Azure Monitor alert
destination.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Literal, Mapping

import pulumi
import pulumi_azure_native.applicationinsights as applicationinsights
import pulumi_azure_native.eventgrid as eventgrid
import pulumi_azure_native.monitor as monitor

from components.common import CommonArgs, child_opts

OnlineTarget = Literal["managed", "kubernetes"]
WORKSPACE_METRICS = "Microsoft.MachineLearningServices/workspaces"
AKS_METRICS = "Microsoft.ContainerService/managedClusters"
MODEL_MONITOR_EVENT = "Microsoft.MachineLearningServices.RunStatusChanged"
MODEL_MONITOR_BREACH_TAG = "data.RunTags.azureml_modelmonitor_threshold_breached"
MODEL_MONITOR_BREACH_TEXT = "has failed due to one or more features violating metric thresholds"
WORKBOOK_NAMESPACE = uuid.UUID("2b8e4f0e-6c0b-4a55-9d0c-7f1f3c5e9a21")
# Azure limits: action group short names are shown in SMS and emails, at most 12 characters.
SHORT_NAME_MAX = 12
LOG_EVALUATION_MINUTES = 15
"""Log alerts run every 15 minutes (or their window, when shorter): the cheapest log alert frequency."""
METRIC_EVALUATION = "PT5M"
LOG_RULES = ("5xx-rate", "p99-latency", "no-traffic")
METRIC_RULES = ("failed-runs", "unusable-nodes", "aks-node-cpu", "aks-node-memory")
DRIFT_RULE = "model-monitor-threshold-breached"

# Azure Monitor list prices in USD (azure.microsoft.com/pricing/details/monitor, "Alert rules" and
# "Notifications"; Event Grid pricing, basic tier), as read for this project; not verifiable offline.
PRICE_LOG_ALERT_15_MIN = 0.50
"""Per log search alert rule and monitored time series, per month, at a 15-minute frequency."""
PRICE_METRIC_SERIES = 0.10
"""Per monitored metric time series, per month."""
FREE_EMAILS = 1000
FREE_EVENT_GRID_OPERATIONS = 100_000


def alert_cost_markdown() -> str:
    """The README's alert cost table: every rule this component declares, its kind, frequency and price."""
    rows = [
        "| alert rule | kind | evaluated | time series | USD / month |",
        "| --- | --- | --- | ---: | ---: |",
    ]
    total = 0.0
    for role in LOG_RULES:
        rows.append(f"| `<endpoint>-{role}` | log search | every {LOG_EVALUATION_MINUTES} min | 1 | "
                    f"{PRICE_LOG_ALERT_15_MIN:.2f} |")  # fmt: skip
        total += PRICE_LOG_ALERT_15_MIN
    for role in METRIC_RULES:
        note = " (with AKS)" if role.startswith("aks-") else ""
        rows.append(f"| `<workspace>-{role}`{note} | metric | every 5 min | 1 | {PRICE_METRIC_SERIES:.2f} |")
        total += PRICE_METRIC_SERIES
    rows.append(
        f"| `{DRIFT_RULE}` | Event Grid to Azure Monitor alert | per monitor run (daily) | - | "
        f"0.00 (about 30 events, first {FREE_EVENT_GRID_OPERATIONS:,} operations free) |"
    )
    rows.append(
        f"| action group | email notifications | per alert | - | 0.00 (first {FREE_EMAILS:,} emails free) |"
    )
    rows.append(f"| **total** | | | | **{total:.2f}** |")
    return "\n".join(rows)


@dataclass(frozen=True)
class AlertThresholds:
    """Severity and thresholds of every rule (validated config, per environment profile)."""

    severity: int = 2
    error_rate_percent: float = 5.0
    p99_latency_ms: float = 1000.0
    no_traffic_minutes: int = 60
    failed_runs: int = 0
    node_cpu_percent: float = 80.0
    node_memory_percent: float = 85.0

    def __post_init__(self) -> None:
        if not 0 <= self.severity <= 4:
            raise ValueError(f"alert severity {self.severity}: Azure takes 0 (critical) to 4 (verbose)")
        if not 5 <= self.no_traffic_minutes <= 1440:
            raise ValueError(f"no-traffic window {self.no_traffic_minutes} min: log alerts look 5-1440 back")


@dataclass(frozen=True)
class AlertsArgs:
    """Inputs of Alerts."""

    common: CommonArgs
    """Location, resource group, tags."""
    action_group_name: str
    """Azure name of the action group."""
    action_group_short_name: str
    """Short name (at most 12 characters) shown in notifications."""
    emails: tuple[str, ...]
    """Email receivers."""
    log_analytics_workspace_id: pulumi.Input[str]
    """Where endpoint traffic logs and Application Insights requests land."""
    workspace_id: pulumi.Input[str]
    """The AML workspace (metrics: failed runs, compute nodes; events: model monitor runs)."""
    workspace_name: str
    """Azure name of the workspace (names the Event Grid system topic)."""
    endpoint_name: str
    """The online endpoint the hook creates (queries filter on it)."""
    compute_cluster_name: str
    """The training cluster (the unusable-nodes alert filters on it)."""
    online_target: OnlineTarget = "managed"
    """Managed online endpoint or Kubernetes online endpoint: which tables carry the traffic."""
    webhook_url: pulumi.Input[str] | None = None
    """Optional webhook receiver (a secret: URLs often carry tokens)."""
    aks_cluster_id: pulumi.Input[str] | None = None
    """AKS cluster for node CPU/memory alerts; None without AKS."""
    thresholds: AlertThresholds = field(default_factory=AlertThresholds)
    """Severity and thresholds."""

    def __post_init__(self) -> None:
        if not self.emails and self.webhook_url is None:
            raise ValueError("an action group needs a receiver: give emails or a webhook URL")
        if not 1 <= len(self.action_group_short_name) <= SHORT_NAME_MAX:
            raise ValueError(f"action group short name {self.action_group_short_name!r}: 1-12 characters")


# ------------------------------------------------------------------ queries (pure)


def _traffic_source(target: OnlineTarget, endpoint: str) -> str:
    """Rows of (TimeGenerated, ResponseCode:int, DurationMs:real) for the endpoint's scoring requests."""
    name = json.dumps(endpoint)
    if target == "managed":
        return (
            "union isfuzzy=true (datatable(TimeGenerated: datetime, EndpointName: string, ResponseCode: string, "
            "TotalDurationMs: real)[]), (AmlOnlineEndpointTrafficLog)\n"
            f"| where EndpointName == {name}\n"
            "| project TimeGenerated, ResponseCode = toint(ResponseCode), DurationMs = todouble(TotalDurationMs)"
        )
    # Kubernetes endpoints: the inference server's own request telemetry (Application Insights, turned on
    # per deployment by the hook); its "Service Name" property is the endpoint the request came through.
    return (
        "union isfuzzy=true (datatable(TimeGenerated: datetime, Name: string, ResultCode: string, "
        "DurationMs: real, Properties: dynamic)[]), (AppRequests)\n"
        f'| where Name endswith "/score" and tostring(Properties["Service Name"]) has {name}\n'
        "| project TimeGenerated, ResponseCode = toint(ResultCode), DurationMs"
    )


def error_rate_query(target: OnlineTarget, endpoint: str) -> str:
    """Percentage of scoring requests answered 5xx (0 when there were none)."""
    return (
        _traffic_source(target, endpoint)
        + "\n| summarize requests = count(), errors = countif(ResponseCode >= 500)"
        "\n| extend error_rate = iff(requests == 0, 0.0, 100.0 * errors / requests)"
    )


def p99_latency_query(target: OnlineTarget, endpoint: str) -> str:
    """The 99th percentile of request duration in ms (0 when there were no requests)."""
    return (
        _traffic_source(target, endpoint)
        + "\n| summarize requests = count(), p99 = percentile(DurationMs, 99)"
        "\n| extend p99 = iff(requests == 0, 0.0, p99)"
    )


def request_count_query(target: OnlineTarget, endpoint: str) -> str:
    """How many scoring requests arrived (one row, 0 when none did)."""
    return _traffic_source(target, endpoint) + "\n| summarize requests = count()"


def iso_minutes(minutes: int) -> str:
    """ISO 8601 duration of whole minutes, as alert windows take it (PT1H for 60)."""
    hours, rest = divmod(minutes, 60)
    return "PT" + (f"{hours}H" if hours else "") + (f"{rest}M" if rest or not hours else "")


def workbook_name(scope_key: str) -> str:
    """Workbook resource names must be GUIDs: a stable one per workspace and endpoint."""
    return str(uuid.uuid5(WORKBOOK_NAMESPACE, scope_key))


def workbook_content(target: OnlineTarget, endpoint: str, action_group: str) -> dict:
    """The endpoint workbook: requests, latency percentiles, errors, traffic per deployment, drift alerts."""
    source = _traffic_source(target, endpoint)
    deployment = "DeploymentName" if target == "managed" else 'tostring(Properties["Service Name"])'
    by_deployment = source.replace(
        "| project TimeGenerated,", f"| project TimeGenerated, Deployment = {deployment},"
    )

    def chart(title: str, query: str, visualization: str = "timechart", kind: int = 0) -> dict:
        item = {
            "type": 3,
            "name": title,
            "content": {
                "version": "KqlItem/1.0",
                "title": title,
                "query": query,
                "queryType": kind,
                "visualization": visualization,
                "timeContext": {"durationMs": 86400000},
            },
        }
        if kind == 1:
            item["content"]["resourceType"] = "microsoft.resourcegraph/resources"
        return item

    return {
        "version": "Notebook/1.0",
        "items": [
            {"type": 1, "name": "intro", "content": {"json": f"## Online endpoint `{endpoint}` ({target})"}},
            chart(
                "Requests per 5 minutes",
                source + "\n| summarize requests = count() by bin(TimeGenerated, 5m)",
            ),
            chart(
                "Latency percentiles (ms)",
                source + "\n| summarize p50 = percentile(DurationMs, 50), p95 = percentile(DurationMs, 95), "
                "p99 = percentile(DurationMs, 99) by bin(TimeGenerated, 5m)",
            ),
            chart(
                "Errors (4xx, 5xx) per 5 minutes",
                source + "\n| summarize client_errors = countif(ResponseCode between (400 .. 499)), "
                "server_errors = countif(ResponseCode >= 500) by bin(TimeGenerated, 5m)",
            ),
            chart(
                "Traffic split by deployment",
                by_deployment + "\n| summarize requests = count() by Deployment, bin(TimeGenerated, 15m)",
                "areachart",
            ),
            chart(
                "Model monitor drift alerts",
                "alertsmanagementresources\n| where type =~ 'microsoft.alertsmanagement/alerts'\n"
                f"| where tostring(properties.essentials.description) has {json.dumps(MODEL_MONITOR_BREACH_TEXT)}"
                f" or tostring(properties.essentials.alertRule) has {json.dumps(action_group)}\n"
                "| project fired = todatetime(properties.essentials.startDateTime), "
                "state = tostring(properties.essentials.alertState), "
                "description = tostring(properties.essentials.description)\n| order by fired desc",
                "table",
                kind=1,
            ),
        ],
        "isLocked": False,
    }


# ------------------------------------------------------------------ component


class Alerts(pulumi.ComponentResource):
    """The action group and every alert rule that reports to it, plus the endpoint workbook."""

    action_group_id: pulumi.Output[str]
    """Resource id of the action group (the model monitor's alerts go here too)."""
    rule_names: list[str]
    """Azure names of the alert rules declared (for the README cost table and reviews)."""
    workbook_id: pulumi.Output[str]
    """Resource id of the endpoint workbook."""

    def __init__(self, name: str, args: AlertsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("aml-platform:monitoring:Alerts", name, None, opts)
        self._name, self._args = name, args
        common = args.common
        group = monitor.ActionGroup(
            f"{name}-action-group",
            action_group_name=args.action_group_name,
            group_short_name=args.action_group_short_name,
            resource_group_name=common.resource_group_name,
            location="Global",
            enabled=True,
            email_receivers=[
                monitor.MicrosoftCommonEmailReceiverArgs(
                    name=f"email-{index}", email_address=address, use_common_alert_schema=True
                )
                for index, address in enumerate(args.emails)
            ],
            webhook_receivers=[
                monitor.WebhookReceiverArgs(
                    name="webhook",
                    service_uri=pulumi.Output.secret(args.webhook_url),
                    use_common_alert_schema=True,
                )
            ]
            if args.webhook_url is not None
            else [],
            tags=common.tags_with(),
            opts=child_opts(self),
        )
        self.action_group_id = group.id
        self.rule_names = []
        self._log_alerts(group.id)
        self._metric_alerts(group.id)
        self._drift_events(group.id)
        workbook = applicationinsights.Workbook(
            f"{name}-endpoint-workbook",
            resource_name_=workbook_name(f"{args.workspace_name}/{args.endpoint_name}"),
            resource_group_name=common.resource_group_name,
            location=common.location,
            kind="shared",
            category="workbook",
            display_name=f"Online endpoint {args.endpoint_name}",
            serialized_data=json.dumps(
                workbook_content(args.online_target, args.endpoint_name, args.action_group_name)
            ),
            source_id=args.log_analytics_workspace_id,
            tags=common.tags_with(),
            opts=child_opts(self),
        )
        self.workbook_id = workbook.id
        self.register_outputs({"action_group_id": self.action_group_id, "workbook_id": self.workbook_id})

    def _log_alert(
        self, role: str, description: str, query: str, measure: str, operator: str, threshold: float,
        window_minutes: int, action_group_id: pulumi.Input[str],
    ) -> None:  # fmt: skip
        args = self._args
        rule_name = f"{args.endpoint_name}-{role}"
        monitor.ScheduledQueryRule(
            f"{self._name}-{role}",
            rule_name=rule_name,
            resource_group_name=args.common.resource_group_name,
            location=args.common.location,
            kind="LogAlert",
            description=description,
            display_name=rule_name,
            enabled=True,
            severity=args.thresholds.severity,
            scopes=[args.log_analytics_workspace_id],
            evaluation_frequency=iso_minutes(min(LOG_EVALUATION_MINUTES, window_minutes)),
            window_size=iso_minutes(window_minutes),
            criteria=monitor.ScheduledQueryRuleCriteriaArgs(
                all_of=[
                    monitor.ConditionArgs(
                        query=query,
                        time_aggregation="Maximum",
                        metric_measure_column=measure,
                        operator=operator,
                        threshold=threshold,
                        failing_periods=monitor.ConditionFailingPeriodsArgs(
                            number_of_evaluation_periods=1, min_failing_periods_to_alert=1
                        ),
                    )
                ]
            ),
            # The tables appear with the first logged request, after the hook deployed the endpoint.
            skip_query_validation=True,
            auto_mitigate=True,
            actions=monitor.ActionsArgs(action_groups=[action_group_id]),
            tags=args.common.tags_with(),
            opts=child_opts(self),
        )
        self.rule_names.append(rule_name)

    def _log_alerts(self, action_group_id: pulumi.Input[str]) -> None:
        args, limits = self._args, self._args.thresholds
        target, endpoint = args.online_target, args.endpoint_name
        self._log_alert(
            "5xx-rate", f"More than {limits.error_rate_percent:g} % of scoring requests answered 5xx in 15 minutes",
            error_rate_query(target, endpoint), "error_rate", "GreaterThan", limits.error_rate_percent, 15,
            action_group_id,
        )  # fmt: skip
        self._log_alert(
            "p99-latency", f"p99 scoring latency above {limits.p99_latency_ms:g} ms over 15 minutes",
            p99_latency_query(target, endpoint), "p99", "GreaterThan", limits.p99_latency_ms, 15, action_group_id,
        )  # fmt: skip
        self._log_alert(
            "no-traffic", f"No scoring request for {limits.no_traffic_minutes} minutes",
            request_count_query(target, endpoint), "requests", "LessThan", 1, limits.no_traffic_minutes,
            action_group_id,
        )  # fmt: skip

    def _metric_alert(
        self, role: str, description: str, scope: pulumi.Input[str], criterion: monitor.MetricCriteriaArgs,
        action_group_id: pulumi.Input[str], window: str = "PT15M",
    ) -> None:  # fmt: skip
        args = self._args
        rule_name = f"{args.workspace_name}-{role}"
        monitor.MetricAlert(
            f"{self._name}-{role}",
            rule_name=rule_name,
            resource_group_name=args.common.resource_group_name,
            location="global",
            description=description,
            enabled=True,
            severity=args.thresholds.severity,
            scopes=[scope],
            evaluation_frequency=METRIC_EVALUATION,
            window_size=window,
            criteria=monitor.MetricAlertSingleResourceMultipleMetricCriteriaArgs(
                odata_type="Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria", all_of=[criterion]
            ),
            auto_mitigate=True,
            actions=[monitor.MetricAlertActionArgs(action_group_id=action_group_id)],
            tags=args.common.tags_with(),
            opts=child_opts(self),
        )
        self.rule_names.append(rule_name)

    def _metric_alerts(self, action_group_id: pulumi.Input[str]) -> None:
        args, limits = self._args, self._args.thresholds
        self._metric_alert(
            "failed-runs", "A training or pipeline run failed in the workspace", args.workspace_id,
            _criterion("failed-runs", "Failed Runs", WORKSPACE_METRICS, "Total", limits.failed_runs),
            action_group_id, window="PT1H",
        )  # fmt: skip
        self._metric_alert(
            "unusable-nodes", f"Nodes of {args.compute_cluster_name} became unusable", args.workspace_id,
            _criterion(
                "unusable-nodes", "Unusable Nodes", WORKSPACE_METRICS, "Maximum", 0,
                dimensions={"ClusterName": args.compute_cluster_name},
            ),
            action_group_id,
        )  # fmt: skip
        if args.aks_cluster_id is None:
            return
        self._metric_alert(
            "aks-node-cpu", f"AKS nodes average more than {limits.node_cpu_percent:g} % CPU", args.aks_cluster_id,
            _criterion("node-cpu", "node_cpu_usage_percentage", AKS_METRICS, "Average", limits.node_cpu_percent),
            action_group_id,
        )  # fmt: skip
        self._metric_alert(
            "aks-node-memory", f"AKS nodes' working set above {limits.node_memory_percent:g} %", args.aks_cluster_id,
            _criterion(
                "node-memory", "node_memory_working_set_percentage", AKS_METRICS, "Average",
                limits.node_memory_percent,
            ),
            action_group_id,
        )  # fmt: skip

    def _drift_events(self, action_group_id: pulumi.Input[str]) -> None:
        """Model monitor runs that breach a drift threshold, raised as Azure Monitor alerts to the group."""
        args = self._args
        topic = eventgrid.SystemTopic(
            f"{self._name}-workspace-events",
            system_topic_name=f"{args.workspace_name}-events",
            resource_group_name=args.common.resource_group_name,
            location=args.common.location,
            source=args.workspace_id,
            topic_type="Microsoft.MachineLearningServices.Workspaces",
            tags=args.common.tags_with(),
            opts=child_opts(self),
        )
        eventgrid.SystemTopicEventSubscription(
            f"{self._name}-model-drift",
            event_subscription_name=DRIFT_RULE,
            system_topic_name=topic.name,
            resource_group_name=args.common.resource_group_name,
            filter=eventgrid.EventSubscriptionFilterArgs(
                included_event_types=[MODEL_MONITOR_EVENT],
                advanced_filters=[
                    eventgrid.StringContainsAdvancedFilterArgs(
                        operator_type="StringContains",
                        key=MODEL_MONITOR_BREACH_TAG,
                        values=[MODEL_MONITOR_BREACH_TEXT],
                    )
                ],
            ),
            destination=eventgrid.MonitorAlertEventSubscriptionDestinationArgs(
                endpoint_type="MonitorAlert",
                action_groups=[action_group_id],
                severity=f"Sev{args.thresholds.severity}",
                description=f"Model monitor on {args.endpoint_name}: {MODEL_MONITOR_BREACH_TEXT}",
            ),
            event_delivery_schema="CloudEventSchemaV1_0",
            opts=child_opts(self),
        )
        self.rule_names.append(DRIFT_RULE)


def _criterion(
    name: str,
    metric: str,
    namespace: str,
    aggregation: str,
    threshold: float,
    dimensions: Mapping[str, str] | None = None,
) -> monitor.MetricCriteriaArgs:
    return monitor.MetricCriteriaArgs(
        criterion_type="StaticThresholdCriterion",
        name=name,
        metric_name=metric,
        metric_namespace=namespace,
        operator="GreaterThan",
        threshold=threshold,
        time_aggregation=aggregation,
        dimensions=[
            monitor.MetricDimensionArgs(name=key, operator="Include", values=[value])
            for key, value in (dimensions or {}).items()
        ]
        or None,
    )
