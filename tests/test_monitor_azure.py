"""Azure ML model monitoring through the real MLClient against intercepted ARM HTTP, on both online targets."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import responses
from azure.ai.ml import MLClient
from azure.ai.ml.entities import CodeConfiguration, KubernetesOnlineDeployment, ManagedOnlineDeployment

from mlops.model_monitor import (
    MonitorSettings,
    add_data_collection,
    endpoint_resource_id,
    ensure_monitor,
    send_endpoint_logs,
)
from tests.test_ml_azure_contract import SUBSCRIPTION, WORKSPACE_PATH, StaticCredential

ARM = "https://management.azure.com"
TARGETS = {"managed": "Managed", "kubernetes": "Kubernetes"}
LA_ID = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-mlops-dev/providers/Microsoft.OperationalInsights/workspaces/log"


@dataclass
class FakeWorkspaceArm:
    """PUT stores and echoes with the fields ARM adds; GET answers stored resources, 404 otherwise."""

    compute_type: str
    store: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.store[WORKSPACE_PATH] = {"id": WORKSPACE_PATH, "name": "mlw-mlops-dev", "location": "westeurope",
                                      "properties": {}}  # fmt: skip
        endpoint = f"{WORKSPACE_PATH}/onlineEndpoints/ep"
        self.store[endpoint] = {
            "id": endpoint, "name": "ep", "location": "westeurope", "identity": {"type": "SystemAssigned"},
            "properties": {"authMode": "Key", "provisioningState": "Succeeded"},
        }  # fmt: skip

    def __call__(self, request: Any) -> tuple[int, dict[str, str], str]:
        path = request.url.split("?")[0].removeprefix(ARM)
        self.calls.append((request.method, path))
        if request.method == "GET":
            if path not in self.store:
                return 404, {}, json.dumps({"error": {"code": "NotFound", "message": f"{path} not found"}})
            return 200, {}, json.dumps(self.store[path])
        body = json.loads(request.body)
        properties = body.setdefault("properties", {})
        properties["provisioningState"] = "Succeeded"
        if "/deployments/" in path:
            # ARM answers enum values in their declared case: the SDK sends "enabled", reads "Enabled".
            for collection in (properties.get("dataCollector") or {}).get("collections", {}).values():
                collection["dataCollectionMode"] = collection["dataCollectionMode"].capitalize()
            properties.setdefault("scaleSettings", {"scaleType": "Default"})
            properties.setdefault("containerResourceRequirements", {"containerResourceRequests": {}})
        if "/data/" in path:
            properties.setdefault("dataType", "uri_folder")
        body |= {"id": path, "name": path.rsplit("/", 1)[1]}
        self.store[path] = body
        return 200, {}, json.dumps(body)

    def bodies(self, fragment: str) -> list[dict[str, Any]]:
        return [self.store[path] for method, path in self.calls if method == "PUT" and fragment in path]


@pytest.fixture(params=sorted(TARGETS))
def arm(request: pytest.FixtureRequest) -> Iterator[FakeWorkspaceArm]:
    fake = FakeWorkspaceArm(TARGETS[request.param])
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        for method in (responses.GET, responses.PUT):
            mock.add_callback(method, re.compile(rf"{re.escape(ARM)}/.*"), callback=fake)
        yield fake


def client() -> MLClient:
    return MLClient(StaticCredential(), SUBSCRIPTION, "rg-mlops-dev", "mlw-mlops-dev", retry_total=0)


def deployment_entity(compute_type: str) -> Any:
    kind = ManagedOnlineDeployment if compute_type == "Managed" else KubernetesOnlineDeployment
    extra = {"instance_type": "Standard_DS3_v2"} if compute_type == "Managed" else {}
    return kind(
        name="blue",
        endpoint_name="ep",
        model="azureml:taxi-fare-model:3",
        environment="azureml:taxi-score-env:abc",
        # Already uploaded code: the test is about the deployment body, not the snapshot upload.
        code_configuration=CodeConfiguration(
            code=f"{WORKSPACE_PATH}/codes/score/versions/1", scoring_script="score.py"
        ),
        instance_count=1,
        **extra,
    )


def deploy_with_collection(arm: FakeWorkspaceArm) -> dict[str, Any]:
    deployment = add_data_collection(deployment_entity(arm.compute_type))
    client().online_deployments.begin_create_or_update(deployment, skip_script_validation=True).result()
    return arm.bodies("/deployments/blue")[-1]["properties"]


def test_data_collection_reaches_the_deployment_put_on_both_targets(arm: FakeWorkspaceArm) -> None:
    properties = deploy_with_collection(arm)
    assert properties["endpointComputeType"] == arm.compute_type
    assert properties["appInsightsEnabled"] is True
    collections = properties["dataCollector"]["collections"]
    assert set(collections) == {"model_inputs", "model_outputs"}
    for name, collection in collections.items():
        assert collection["dataCollectionMode"].lower() == "enabled"
        # Azure ML registers each collection as a data asset the monitor reads: <endpoint>-<deployment>-<name>.
        assert collection["dataId"] == f"{WORKSPACE_PATH}/data/ep-blue-{name}/versions/1"
    assert len(arm.bodies("/data/ep-blue-model_")) == 2


def test_the_monitor_schedule_watches_the_collected_data_on_both_targets(arm: FakeWorkspaceArm) -> None:
    deploy_with_collection(arm)
    settings = MonitorSettings(drift_threshold=0.2, emails=("ml-oncall@contoso.com",))
    target = "managed" if arm.compute_type == "Managed" else "kubernetes"
    message = ensure_monitor(
        client(), endpoint="ep", deployment="blue", training_data="azureml:taxi-data:3", settings=settings,
        target=target,
    )  # fmt: skip
    assert message.startswith("model monitor ep-monitor on ep/blue") and "threshold 0.2" in message
    schedule = arm.bodies("/schedules/ep-monitor")[-1]["properties"]
    definition = schedule["action"]["monitorDefinition"]
    assert schedule["trigger"]["frequency"].lower() == "day"
    assert definition["monitoringTarget"]["taskType"].lower() == "regression"
    assert definition["monitoringTarget"]["deploymentId"].endswith("/onlineEndpoints/ep/deployments/blue")
    assert definition["alertNotificationSetting"]["emailNotificationSetting"]["emails"] == [
        "ml-oncall@contoso.com"
    ]
    signals = definition["signals"]
    assert {signal["signalType"] for signal in signals.values()} == {"DataDrift", "PredictionDrift"}
    drift = signals["data_drift"]
    # Production side: the deployment's collected model inputs, registered by Azure ML at deploy time.
    assert drift["productionData"]["uri"].endswith("/data/ep-blue-model_inputs/versions/1")
    assert drift["referenceData"]["uri"] in (
        "azureml:taxi-data:3",
        f"{WORKSPACE_PATH}/data/taxi-data/versions/3",
    )
    assert drift["referenceData"]["dataContext"].lower() == "training"
    thresholds = {(t["dataType"], t["metric"]): t["threshold"]["value"] for t in drift["metricThresholds"]}
    assert thresholds == {
        ("Numerical", "normalizedWassersteinDistance"): 0.2,
        ("Categorical", "jensenShannonDistance"): 0.2,
    }
    prediction = signals["prediction_drift"]
    assert prediction["productionData"]["uri"].endswith("/data/ep-blue-model_outputs/versions/1")


def test_the_monitor_is_skipped_where_azure_ml_cannot_run_it(arm: FakeWorkspaceArm) -> None:
    settings = MonitorSettings(isolation_mode="AllowOnlyApprovedOutbound")
    message = ensure_monitor(client(), endpoint="ep", deployment="blue", training_data="azureml:taxi-data:3",
                             settings=settings)  # fmt: skip
    assert "does not support a managed VNet in AllowOnlyApprovedOutbound" in message
    assert "python -m mlops monitor --target local" in message
    assert not [call for call in arm.calls if call[0] == "PUT"]


def test_endpoint_logs_are_sent_to_log_analytics() -> None:
    endpoint = endpoint_resource_id(SUBSCRIPTION, "rg-mlops-dev", "mlw-mlops-dev", "ep")
    url = f"{ARM}{endpoint}/providers/Microsoft.Insights/diagnosticSettings/to-log-analytics"
    with responses.RequestsMock() as mock:
        mock.add(
            responses.PUT,
            re.compile(re.escape(url) + r"\?api-version=2021-05-01-preview"),
            json={},
            status=200,
        )
        assert send_endpoint_logs(StaticCredential(), endpoint, LA_ID) == 200
        sent = json.loads(mock.calls[0].request.body)["properties"]
        assert mock.calls[0].request.headers["Authorization"].startswith("Bearer ")
    # Category names from Learn how-to-monitor-online-endpoints.md, "Logs".
    assert [log["category"] for log in sent["logs"]] == [
        "AmlOnlineEndpointTrafficLog", "AmlOnlineEndpointConsoleLog", "AmlOnlineEndpointEventLog",
    ]  # fmt: skip
    assert sent["workspaceId"] == LA_ID and sent["logAnalyticsDestinationType"] == "Dedicated"


def test_a_refused_diagnostic_setting_names_the_missing_role() -> None:
    endpoint = endpoint_resource_id(SUBSCRIPTION, "rg-mlops-dev", "mlw-mlops-dev", "ep")
    with responses.RequestsMock() as mock:
        mock.add(responses.PUT, re.compile(r".*diagnosticSettings.*"), json={"error": {"code": "AuthorizationFailed"}},
                 status=403)  # fmt: skip
        with pytest.raises(RuntimeError, match="HTTP 403.*Monitoring Contributor"):
            send_endpoint_logs(StaticCredential(), endpoint, LA_ID)


@pytest.mark.parametrize("rate", [0.0, 1.5])
def test_sampling_rate_is_a_share(rate: float) -> None:
    with pytest.raises(ValueError, match="sampling_rate"):
        add_data_collection(deployment_entity("Managed"), sampling_rate=rate)


BASE_OUTPUTS = {
    "subscriptionId": SUBSCRIPTION,
    "resourceGroupName": "rg-mlops-dev",
    "workspaceName": "mlw-mlops-dev",
    "location": "westeurope",
    "computeClusterName": "cpu-cluster",
    "environment": "dev",
}


def test_stack_outputs_carry_the_monitor_settings() -> None:
    from mlops.stack_outputs import parse_stack_outputs

    outputs = parse_stack_outputs(
        BASE_OUTPUTS | {"driftThreshold": 0.2, "alertEmails": ["a@contoso.com"], "logAnalyticsWorkspaceId": LA_ID,
                        "actionGroupId": "/x/actionGroups/ag"},
        "test",
    )  # fmt: skip
    assert (outputs.drift_threshold, outputs.alert_emails) == (0.2, ("a@contoso.com",))
    assert outputs.log_analytics_workspace_id == LA_ID and outputs.action_group_id == "/x/actionGroups/ag"
    bare = parse_stack_outputs(BASE_OUTPUTS, "test")
    assert (bare.drift_threshold, bare.alert_emails) == (None, ())


@pytest.mark.parametrize(
    ("extra", "message"),
    [({"driftThreshold": "0.1"}, "'driftThreshold' must be a positive number"),
     ({"driftThreshold": True}, "'driftThreshold' must be a positive number"),
     ({"alertEmails": "a@contoso.com"}, "'alertEmails' must be a list of strings")],
)  # fmt: skip
def test_malformed_monitor_outputs_are_refused(extra: dict, message: str) -> None:
    from mlops.stack_outputs import StackOutputsError, parse_stack_outputs

    with pytest.raises(StackOutputsError, match=message):
        parse_stack_outputs(BASE_OUTPUTS | extra, "test")
