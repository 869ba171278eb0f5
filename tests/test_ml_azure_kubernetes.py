"""Contract tests of the Kubernetes online target: the real MLClient and ContainerServiceClient against
intercepted ARM, the scoring POST through the internal load balancer's TLS host."""

from __future__ import annotations

import base64
import json

import io
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops.backends.azure import AzureBackend
from mlops.backends.base import BackendError, DeploymentSpec, UsageError
from mlops.orchestrate import DeployRequest, Progress, SmokeTestFailed, deploy, exit_code
from mlops.stack_outputs import StackOutputs
from tests._fake_arm import (
    CLUSTER_PATH,
    ENDPOINT_KEY,
    KUBERNETES_OUTPUTS,
    WORKSPACE_PATH,
    FakeArm,
    FakeResponse,
    Recorder,
    arm,
    make_backend,
    manifest_in,
    puts,
    write_sample,
)

REPO = Path(__file__).resolve().parents[1]
SPECS = REPO / "mlops" / "azureml"
ENDPOINT = "ep-taxi001dev"
SCORING_URI = f"https://scoring.taxi.internal/api/v1/endpoint/{ENDPOINT}/score"
__all__ = ["arm"]


def kubernetes_backend(
    arm: FakeArm,
    recorder: Recorder,
    answers: list[Any],
    posts: list[dict[str, Any]],
    outputs: StackOutputs = KUBERNETES_OUTPUTS,
    **kwargs: Any,
) -> AzureBackend:
    """A backend on the Kubernetes target whose scoring POSTs are recorded and answered in turn."""
    arm.seed_kubernetes_compute()
    for version in ("3", "4"):
        arm.seed_model(version)

    def http_post(url: str, **options: Any) -> Any:
        posts.append({"url": url, **options})
        return answers.pop(0) if len(answers) > 1 else answers[0]

    kwargs.setdefault("specs_root", SPECS)
    return make_backend(recorder, outputs, http_post=http_post, **kwargs)


GOOD = FakeResponse(200, {"predictions": [12.5, 30.25]})
SPEC = DeploymentSpec(
    endpoint=ENDPOINT, name="taxi-fare-model-v4", model_name="taxi-fare-model", model_version="4"
)


def test_the_stack_design_picks_the_kubernetes_target(arm: FakeArm) -> None:
    backend = kubernetes_backend(arm, Recorder(), [GOOD], [])
    assert backend.target.kind == "kubernetes"
    assert backend.target_choice.reason == "stack output onlineTarget"


def test_endpoint_instance_types_deployment_smoke_traffic_and_delete(arm: FakeArm, tmp_path: Path) -> None:
    recorder, posts = Recorder(), []
    backend = kubernetes_backend(arm, recorder, [GOOD], posts)

    state = backend.ensure_online_endpoint(ENDPOINT)
    backend.create_deployment(SPEC, deadline_s=1800)
    smoke = backend.smoke_test(ENDPOINT, SPEC.name, write_sample(tmp_path))
    shifted = backend.set_traffic(ENDPOINT, {SPEC.name: 100})
    backend.delete_deployment(ENDPOINT, SPEC.name)

    endpoint_path = f"{WORKSPACE_PATH}/onlineEndpoints/{ENDPOINT}"
    endpoint = arm.put_bodies[endpoint_path]["properties"]
    assert endpoint["compute"].endswith("/computes/aks-inference") and endpoint["authMode"] == "Key"
    # The TLS host of the stack (sslCname), not the ILB IP Azure reports (AZURE-FACTS 28).
    assert state.scoring_uri == SCORING_URI
    [command] = arm.run_commands
    assert command["command"] == "kubectl apply -f instance-types.yml"
    # kubectl runs as the caller: its token for the AKS server application, the GUID the az CLI and the
    # Learn page on kubelogin name (6dae42f8-4368-4678-94ff-3960e28e3630), travels in the request.
    cluster_claims = json.loads(base64.urlsafe_b64decode(command["clusterToken"].split(".")[1] + "=="))
    assert cluster_claims["aud"] == "6dae42f8-4368-4678-94ff-3960e28e3630"
    manifest = yaml.safe_load(manifest_in(command["context"])["instance-types.yml"])
    assert manifest["apiVersion"] == "amlarc.azureml.com/v1alpha1" and manifest["kind"] == "InstanceTypeList"
    deployment_path = f"{endpoint_path}/deployments/{SPEC.name}"
    deployment = arm.put_bodies[deployment_path]["properties"]
    assert deployment["endpointComputeType"] == "Kubernetes"
    assert deployment["instanceType"] == "taxi-score"
    assert deployment["containerResourceRequirements"]["containerResourceLimits"] == {
        "cpu": "2",
        "memory": "4Gi",
    }
    assert deployment["model"].endswith("/models/taxi-fare-model/versions/4")
    assert "/environments/taxi-score-env/versions/" in deployment["environmentId"]
    assert arm.calls.index(("POST", f"{CLUSTER_PATH}/runCommand")) < arm.calls.index(("PUT", deployment_path))
    [post] = posts
    assert post["url"] == SCORING_URI
    assert post["headers"]["azureml-model-deployment"] == SPEC.name
    assert post["headers"]["Authorization"] == f"Bearer {ENDPOINT_KEY}"
    assert smoke.ok and smoke.predictions == (12.5, 30.25)
    assert shifted.traffic == {SPEC.name: 100}
    assert ("DELETE", deployment_path) in arm.calls
    assert not any(ENDPOINT_KEY in line for line in recorder.lines)


def test_without_a_tls_host_the_smoke_test_goes_to_the_uri_azure_reports(
    arm: FakeArm, tmp_path: Path
) -> None:
    posts: list[dict[str, Any]] = []
    outputs = KUBERNETES_OUTPUTS.__class__(**{**KUBERNETES_OUTPUTS.__dict__, "inference_scoring_host": None})
    backend = kubernetes_backend(arm, Recorder(), [GOOD], posts, outputs)
    backend.ensure_online_endpoint(ENDPOINT)

    backend.smoke_test(ENDPOINT, SPEC.name, write_sample(tmp_path))

    assert posts[0]["url"] == f"http://10.0.4.250/api/v1/endpoint/{ENDPOINT}/score"


def test_instance_types_are_applied_once_per_run_and_unchanged_on_a_rerun(arm: FakeArm) -> None:
    recorders = [Recorder(), Recorder()]
    for recorder in recorders:
        backend = kubernetes_backend(arm, recorder, [GOOD], [])
        backend.ensure_online_endpoint(ENDPOINT)
        specs = [DeploymentSpec(ENDPOINT, f"taxi-fare-model-v{v}", "taxi-fare-model", v) for v in ("3", "4")]
        for spec in specs:  # two deployments in one run: one run command
            backend.create_deployment(spec, 1800)
        for spec in specs:
            backend.delete_deployment(ENDPOINT, spec.name)
    assert len(arm.run_commands) == 2
    assert "instance types: taxi-score created" in recorders[0].lines
    assert "instance types: taxi-score unchanged" in recorders[1].lines


def test_a_failed_instance_type_apply_stops_before_any_deployment(arm: FakeArm) -> None:
    arm.run_command_exit = 1
    backend = kubernetes_backend(arm, Recorder(), [GOOD], [])
    backend.ensure_online_endpoint(ENDPOINT)

    with pytest.raises(BackendError, match="kubectl apply exited 1.*RBAC Admin at cluster scope"):
        backend.create_deployment(SPEC, 1800)
    assert puts(arm, "/deployments/") == []


def test_a_deployment_that_never_becomes_healthy_fails_within_its_deadline(arm: FakeArm) -> None:
    recorder = Recorder()
    backend = kubernetes_backend(arm, recorder, [GOOD], [])
    backend.ensure_online_endpoint(ENDPOINT)
    arm.deployment_progress.extend(["Updating"])  # the pods never get ready

    with pytest.raises(BackendError, match="not finished after 600s .* last state: Updating"):
        backend.create_deployment(SPEC, deadline_s=600)
    assert recorder.clock() == 600, "it waited exactly its deadline: no longer"
    assert "traffic" not in str(
        arm.put_bodies[f"{WORKSPACE_PATH}/onlineEndpoints/{ENDPOINT}"]["properties"].get("traffic", {})
    )


def test_a_failed_deployment_names_the_logs_command(arm: FakeArm) -> None:
    backend = kubernetes_backend(arm, Recorder(), [GOOD], [])
    backend.ensure_online_endpoint(ENDPOINT)
    arm.deployment_progress.extend(["Failed"])

    with pytest.raises(BackendError, match=f"az ml online-deployment get-logs -n {SPEC.name} -e {ENDPOINT}"):
        backend.create_deployment(SPEC, deadline_s=600)


def _serving_v3(arm: FakeArm) -> None:
    arm.put(
        f"/onlineEndpoints/{ENDPOINT}",
        {
            "properties": {
                "authMode": "Key",
                "compute": "aks",
                "traffic": {"taxi-fare-model-v3": 100},
                "properties": {},
            }
        },
    )
    arm.put(
        f"/onlineEndpoints/{ENDPOINT}/deployments/taxi-fare-model-v3",
        {
            "properties": {
                "model": f"{WORKSPACE_PATH}/models/taxi-fare-model/versions/3",
                "endpointComputeType": "Kubernetes",
                "instanceType": "taxi-score",
                "containerResourceRequirements": {
                    "containerResourceRequests": {"cpu": "500m", "memory": "1Gi"},
                    "containerResourceLimits": {"cpu": "1", "memory": "2Gi"},
                },
            },
            "sku": {"name": "Default", "capacity": 1},
        },
    )


def _request(**changes: Any) -> DeployRequest:
    values = dict(
        environment=None,
        data=None,
        compute="cpu-cluster",
        pipeline=SPECS / "train" / "pipeline.yml",
        experiment="taxi",
        model_name="taxi-fare-model",
        online_endpoint=ENDPOINT,
        batch_endpoint="bep-taxi001dev",
        request_sample=REPO / "mlops" / "data" / "request-sample.json",
        batch_sample=None,
        model_version="4",
        traffic_steps=(10, 100),
    )
    return DeployRequest(**(values | changes))  # type: ignore[arg-type]


def test_blue_green_on_kubernetes_shifts_traffic_step_by_step(arm: FakeArm) -> None:
    _serving_v3(arm)
    posts: list[dict[str, Any]] = []
    backend = kubernetes_backend(arm, Recorder(), [GOOD], posts)

    summary = deploy(backend, _request(), Progress(stream=io.StringIO(), clock=lambda: 0.0))

    endpoint = f"{WORKSPACE_PATH}/onlineEndpoints/{ENDPOINT}"
    traffics = [body["properties"]["traffic"] for path, body in arm.put_history if path == endpoint]
    # Azure ML's SDK leaves 0 % shares out of the map it sends.
    assert traffics[-2:] == [
        {"taxi-fare-model-v3": 90, "taxi-fare-model-v4": 10},
        {"taxi-fare-model-v4": 100},
    ]
    assert summary.traffic == {"taxi-fare-model-v3": 0, "taxi-fare-model-v4": 100}
    assert [post["url"] for post in posts] == [SCORING_URI, SCORING_URI], "smoke before traffic and at 10 %"


def test_a_failed_smoke_test_on_kubernetes_rolls_back_and_deletes_the_deployment(arm: FakeArm) -> None:
    _serving_v3(arm)
    bad = FakeResponse(500, {"error": "model failed to load"})
    backend = kubernetes_backend(arm, Recorder(), [bad], [])

    with pytest.raises(SmokeTestFailed, match="taxi-fare-model-v4 failed its smoke test") as failure:
        deploy(backend, _request(), Progress(stream=io.StringIO(), clock=lambda: 0.0))

    assert exit_code(failure.value) == 4
    endpoint = arm.store[f"{WORKSPACE_PATH}/onlineEndpoints/{ENDPOINT}"]["properties"]
    assert endpoint["traffic"] == {"taxi-fare-model-v3": 100}
    assert (
        "DELETE",
        f"{WORKSPACE_PATH}/onlineEndpoints/{ENDPOINT}/deployments/taxi-fare-model-v4",
    ) in arm.calls


def test_a_registry_model_is_refused_on_kubernetes_before_anything_is_created(arm: FakeArm) -> None:
    backend = kubernetes_backend(arm, Recorder(), [GOOD], [])
    backend.ensure_online_endpoint(ENDPOINT)
    spec = DeploymentSpec(ENDPOINT, SPEC.name, "taxi-fare-model", "4", model_registry="shared-models")

    with pytest.raises(UsageError, match="do not support registry models.*python -m mlops promote"):
        backend.create_deployment(spec, 1800)
    assert arm.run_commands == [] and puts(arm, "/deployments/") == []


def test_an_unregistered_version_is_refused_naming_the_registered_ones(arm: FakeArm) -> None:
    backend = kubernetes_backend(arm, Recorder(), [GOOD], [])
    backend.ensure_online_endpoint(ENDPOINT)

    with pytest.raises(UsageError, match=r"no version 9 .* \(registered: 3, 4\)"):
        backend.create_deployment(
            DeploymentSpec(ENDPOINT, "taxi-fare-model-v9", "taxi-fare-model", "9"), 1800
        )


def _specs_with_limits(tmp_path: Path, cpu: str, memory: str) -> Path:
    root = tmp_path / "azureml"
    shutil.copytree(SPECS, root)
    path = root / "deploy" / "online" / "kubernetes-deployment.yml"
    spec = yaml.safe_load(path.read_text())
    spec["resources"]["limits"] = {"cpu": cpu, "memory": memory}
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return root


@pytest.mark.parametrize(
    ("cpu", "memory", "message"),
    [
        ("3", "4Gi", "must be less than instance type taxi-score's limits"),
        ("2", "32Gi", "exceed what one Standard_D4s_v5 node can allocate"),
    ],
)
def test_resources_that_do_not_fit_are_refused_naming_size_need_and_limit(
    arm: FakeArm, tmp_path: Path, cpu: str, memory: str, message: str
) -> None:
    backend = kubernetes_backend(
        arm, Recorder(), [GOOD], [], specs_root=_specs_with_limits(tmp_path, cpu, memory)
    )
    backend.ensure_online_endpoint(ENDPOINT)

    with pytest.raises(UsageError, match=message) as refused:
        backend.create_deployment(SPEC, 1800)
    assert "3 x Standard_D4s_v5" in str(refused.value) and "aksNodeVmSize" in str(refused.value)
    assert arm.run_commands == [] and puts(arm, "/deployments/") == []


def test_an_unknown_node_size_names_the_table_to_extend(arm: FakeArm) -> None:
    outputs = KUBERNETES_OUTPUTS.__class__(
        **{**KUBERNETES_OUTPUTS.__dict__, "aks_node_vm_size": "Standard_Z9_v9"}
    )
    backend = kubernetes_backend(arm, Recorder(), [GOOD], [], outputs)
    backend.ensure_online_endpoint(ENDPOINT)

    with pytest.raises(UsageError, match="Standard_Z9_v9.*NODE_SIZES"):
        backend.create_deployment(SPEC, 1800)


def test_a_403_from_the_run_command_names_the_aks_permission(arm: FakeArm) -> None:
    backend = kubernetes_backend(arm, Recorder(), [GOOD], [])
    backend.ensure_online_endpoint(ENDPOINT)
    forbidden = {"error": {"code": "AuthorizationFailed", "message": "no runCommand for you"}}
    arm.queue("/runCommand", (403, {}, forbidden))

    with pytest.raises(BackendError, match="managedClusters/runcommand/action and commandResults/read"):
        backend.create_deployment(SPEC, 1800)
    assert puts(arm, "/deployments/") == []
