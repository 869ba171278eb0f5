"""Azure ML model monitoring for the online endpoint: data collection, endpoint logs, the MonitorSchedule.

- Data collection: the deployment's `data_collector` with the model_inputs and model_outputs collections that
  score.py fills through mlops/azureml/deploy/online/data_collection.py, and Application Insights on the
  deployment (app_insights_enabled). Learn concept-data-collection.md: both are supported on managed and
  Kubernetes online endpoints.
- Endpoint logs (managed endpoints only): a diagnostic setting on the endpoint sends
  AmlOnlineEndpointTrafficLog, ConsoleLog and EventLog to Log Analytics, where the stack's log alerts read
  them (Learn how-to-monitor-online-endpoints.md, "Logs"). Kubernetes endpoints have no such logs; their
  alerts read the inference server's Application Insights requests instead (components/alerts.py).
- The monitor: a daily MonitorSchedule with data-drift and prediction-drift signals against the training
  data, thresholds from the stack (driftThreshold), email alerts to the stack's receivers; drift events also
  reach the action group through the stack's Event Grid subscription. Not available with a managed VNet in
  AllowOnlyApprovedOutbound mode (Learn concept-model-monitoring.md, "networking limitations"): there the
  nearest equivalent is `python -m mlops monitor --target local` over downloaded collected data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

OnlineTarget = Literal["managed", "kubernetes"]
COLLECTIONS = ("model_inputs", "model_outputs")
ENDPOINT_LOG_CATEGORIES = (
    "AmlOnlineEndpointTrafficLog",
    "AmlOnlineEndpointConsoleLog",
    "AmlOnlineEndpointEventLog",
)
DIAGNOSTIC_SETTING_NAME = "to-log-analytics"
DIAGNOSTICS_API_VERSION = "2021-05-01-preview"
ARM = "https://management.azure.com"
# Learn how-to-monitor-model-performance.md: the serverless Spark sizes model monitoring runs on.
SPARK_INSTANCE_TYPE = "standard_e4s_v3"
SPARK_RUNTIME = "3.4"
TARGET_COLUMN = "cost"
UNSUPPORTED_ISOLATION = "AllowOnlyApprovedOutbound"


@dataclass(frozen=True)
class MonitorSettings:
    """What the stack says about monitoring the endpoint (stack outputs driftThreshold, alertEmails, ...)."""

    drift_threshold: float = 0.1
    emails: tuple[str, ...] = ()
    log_analytics_workspace_id: str | None = None
    isolation_mode: str | None = None

    def unsupported_reason(self) -> str | None:
        """Why Azure ML model monitoring cannot run for this workspace, or None when it can."""
        if self.isolation_mode == UNSUPPORTED_ISOLATION:
            return (
                "Azure ML model monitoring does not support a managed VNet in AllowOnlyApprovedOutbound mode "
                "(Learn concept-model-monitoring.md); download the collected data and run "
                "`python -m mlops monitor --target local --production <folder>` instead"
            )
        return None


def add_data_collection(deployment: Any, *, sampling_rate: float = 1.0) -> Any:
    """Turn on the data collector (model inputs and outputs) and Application Insights on a deployment entity.

    Works on ManagedOnlineDeployment and KubernetesOnlineDeployment alike; returns the same entity.
    """
    from azure.ai.ml.entities import DataCollector, DeploymentCollection

    if not 0 < sampling_rate <= 1:
        raise ValueError(f"sampling_rate {sampling_rate}: give a share of requests in (0, 1]")
    deployment.data_collector = DataCollector(
        collections={name: DeploymentCollection(enabled="true") for name in COLLECTIONS},
        sampling_rate=sampling_rate,
    )
    deployment.app_insights_enabled = True
    return deployment


def endpoint_resource_id(subscription: str, resource_group: str, workspace: str, endpoint: str) -> str:
    """ARM id of an online endpoint (the scope of its diagnostic setting)."""
    return (
        f"/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/"
        f"Microsoft.MachineLearningServices/workspaces/{workspace}/onlineEndpoints/{endpoint}"
    )


def diagnostic_setting_body(log_analytics_workspace_id: str) -> dict[str, Any]:
    """The endpoint's diagnostic setting: its three log tables, resource-specific, into Log Analytics."""
    return {
        "properties": {
            "workspaceId": log_analytics_workspace_id,
            "logAnalyticsDestinationType": "Dedicated",
            "logs": [{"category": category, "enabled": True} for category in ENDPOINT_LOG_CATEGORIES],
            "metrics": [{"category": "AllMetrics", "enabled": True}],
        }
    }


def send_endpoint_logs(
    credential: Any, endpoint_id: str, log_analytics_workspace_id: str, *, http_put: Any = None
) -> int:
    """PUT the diagnostic setting on a managed online endpoint (idempotent); returns the HTTP status."""
    import requests

    token = credential.get_token(f"{ARM}/.default").token
    url = (
        f"{ARM}{endpoint_id}/providers/Microsoft.Insights/diagnosticSettings/{DIAGNOSTIC_SETTING_NAME}"
        f"?api-version={DIAGNOSTICS_API_VERSION}"
    )
    put = http_put or requests.put
    response = put(
        url,
        json=diagnostic_setting_body(log_analytics_workspace_id),
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    if response.status_code >= 300:
        raise RuntimeError(
            f"diagnostic setting on {endpoint_id}: HTTP {response.status_code} {response.text[:300]}; the "
            "deploying identity needs Monitoring Contributor (or Contributor) on the workspace's resource group"
        )
    return int(response.status_code)


def monitor_name(endpoint: str) -> str:
    """The schedule's name: one monitor per endpoint, pointed at its serving deployment."""
    return f"{endpoint}-monitor"


def build_monitor_schedule(
    *,
    endpoint: str,
    deployment: str,
    training_data: str,
    settings: MonitorSettings,
    features: Sequence[str] = (),
) -> Any:
    """The MonitorSchedule entity: daily data-drift and prediction-drift against the training data."""
    from azure.ai.ml import Input
    from azure.ai.ml.entities import (
        AlertNotification,
        CategoricalDriftMetrics,
        DataDriftMetricThreshold,
        DataDriftSignal,
        MonitorDefinition,
        MonitoringTarget,
        MonitorSchedule,
        NumericalDriftMetrics,
        PredictionDriftMetricThreshold,
        PredictionDriftSignal,
        RecurrencePattern,
        RecurrenceTrigger,
        ReferenceData,
        ServerlessSparkCompute,
    )

    threshold = settings.drift_threshold

    def reference() -> ReferenceData:
        return ReferenceData(
            input_data=Input(path=training_data, type="uri_file"),
            data_context="training",
            data_column_names={"target_column": TARGET_COLUMN},
        )

    signals = {
        "data_drift": DataDriftSignal(
            reference_data=reference(),
            features=list(features) or None,
            metric_thresholds=DataDriftMetricThreshold(
                numerical=NumericalDriftMetrics(normalized_wasserstein_distance=threshold),
                categorical=CategoricalDriftMetrics(jensen_shannon_distance=threshold),
            ),
            alert_enabled=True,
        ),
        "prediction_drift": PredictionDriftSignal(
            reference_data=reference(),
            metric_thresholds=PredictionDriftMetricThreshold(
                numerical=NumericalDriftMetrics(normalized_wasserstein_distance=threshold),
                categorical=CategoricalDriftMetrics(jensen_shannon_distance=threshold),
            ),
            alert_enabled=True,
        ),
    }
    definition = MonitorDefinition(
        compute=ServerlessSparkCompute(instance_type=SPARK_INSTANCE_TYPE, runtime_version=SPARK_RUNTIME),
        monitoring_target=MonitoringTarget(
            ml_task="regression", endpoint_deployment_id=f"azureml:{endpoint}:{deployment}"
        ),
        monitoring_signals=signals,
        alert_notification=AlertNotification(emails=list(settings.emails)) if settings.emails else None,
    )
    return MonitorSchedule(
        name=monitor_name(endpoint),
        trigger=RecurrenceTrigger(
            frequency="day", interval=1, schedule=RecurrencePattern(hours=3, minutes=15)
        ),
        create_monitor=definition,
        tags={"endpoint": endpoint, "deployment": deployment},
    )


def ensure_monitor(
    ml_client: Any,
    *,
    endpoint: str,
    deployment: str,
    training_data: str,
    settings: MonitorSettings,
    target: OnlineTarget = "managed",
    timeout_s: float = 600.0,
) -> str:
    """Create or update the endpoint's MonitorSchedule (a PUT: re-running changes only what changed).

    Returns what was done, or why nothing was (unsupported isolation mode). `target` only changes the
    message: data collection and monitoring work the same on managed and Kubernetes endpoints.
    """
    reason = settings.unsupported_reason()
    if reason is not None:
        return f"model monitor skipped: {reason}"
    schedule = build_monitor_schedule(
        endpoint=endpoint, deployment=deployment, training_data=training_data, settings=settings
    )
    poller = ml_client.schedules.begin_create_or_update(schedule)
    poller.result(timeout=timeout_s)
    receivers = ", ".join(settings.emails) or "no email (action group via Event Grid only)"
    return (
        f"model monitor {schedule.name} on {endpoint}/{deployment} ({target}): daily data and prediction drift "
        f"vs {training_data}, threshold {settings.drift_threshold:g}, alerts to {receivers}"
    )
