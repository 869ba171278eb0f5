"""Contract tests: AzureBackend drives the real MLClient against ARM REST intercepted by `responses`."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from mlops.backends.azure import AzureBackend, data_version, environment_version
from mlops.orchestrate import exit_code
from mlops.backends.base import (
    AssetRef,
    BackendError,
    DataSpec,
    DeploymentSpec,
    TrainingRequest,
    TransientBackendError,
)
from tests._fake_arm import (
    ARM,
    ENDPOINT_KEY,
    ISSUED_TOKENS,
    SUBSCRIPTION,
    WORKSPACE_PATH,
    FakeArm,
    FakeResponse,
    Recorder,
    StaticCredential,
    arm,
    env_spec,
    fake_outputs,
    make_backend,
    puts,
    write_data,
    write_sample,
)

REPO = Path(__file__).resolve().parents[1]
__all__ = ["SUBSCRIPTION", "StaticCredential", "arm"]  # tests/test_monitor_azure.py imports them from here


# ---------------------------------------------------------------- assets


def test_environment_is_created_once_under_its_content_hash(arm: FakeArm, tmp_path: Path) -> None:
    spec = env_spec(tmp_path)
    backend = make_backend(Recorder())

    first = backend.ensure_environment(spec)
    second = backend.ensure_environment(spec)

    assert first == AssetRef("taxi-train-env", environment_version(spec), created=True)
    assert second.created is False and second.version == first.version
    assert puts(arm, "/environments/") == [
        f"{WORKSPACE_PATH}/environments/taxi-train-env/versions/{first.version}"
    ]
    body = arm.store[puts(arm, "/environments/")[0]]["properties"]
    assert body["image"] == spec.image and "scikit-learn==1.5.2" in body["condaFile"]


def test_environment_version_changes_with_the_conda_file(tmp_path: Path) -> None:
    spec = env_spec(tmp_path)
    before = environment_version(spec)
    spec.conda_file.write_text(spec.conda_file.read_text() + "    - pandas==2.2.3\n")
    assert environment_version(spec) != before


def test_data_is_uploaded_and_registered_once(arm: FakeArm, tmp_path: Path) -> None:
    spec = DataSpec("taxi-data", write_data(tmp_path))
    backend = make_backend(Recorder())

    first = backend.ensure_data(spec)
    calls_after_first = len(arm.calls)
    second = backend.ensure_data(spec)

    assert first.version == data_version(spec) and first.created
    assert second == AssetRef("taxi-data", first.version, created=False)
    rerun = arm.calls[calls_after_first:]
    assert [method for method, _ in rerun] == ["GET"], "a re-run must only read the existing version"
    assert any(method == "BLOB PUT" and path.endswith("/taxi-data.csv") for method, path in arm.calls)
    registered = arm.store[puts(arm, "/data/")[0]]["properties"]
    assert registered["dataType"] == "uri_file" and "LocalUpload" in registered["dataUri"]


def test_blob_upload_retries_are_azure_storage_blobs_own(arm: FakeArm, tmp_path: Path) -> None:
    # azure-storage-blob retries a 503 upload itself (3 retries); no second layer of ours repeats the call.
    arm.blob_failures.extend([503] * 3)
    recorder = Recorder()

    ref = make_backend(recorder).ensure_data(DataSpec("taxi-data", write_data(tmp_path)))

    assert ref.created
    assert len(arm.sdk_sleeps) >= 3 and recorder.sleeps == []
    uploads = [path for method, path in arm.calls if method == "BLOB PUT" and path.endswith("/taxi-data.csv")]
    assert (
        len(uploads) == 4
    ), "3 failures and 1 success: the storage SDK's retries, nothing repeated around them"
    assert len(puts(arm, "/data/taxi-data/versions/")) == 1


def test_an_upload_that_outlives_blob_retries_is_transient_and_registers_nothing(
    arm: FakeArm, tmp_path: Path
) -> None:
    arm.blob_failures.extend([503] * 10)

    with pytest.raises(TransientBackendError, match="HTTP 503") as failure:
        make_backend(Recorder()).ensure_data(DataSpec("taxi-data", write_data(tmp_path)))

    assert exit_code(failure.value) == 5
    assert puts(arm, "/data/taxi-data/versions/") == []


# ---------------------------------------------------------------- training

PIPELINE = REPO / "mlops" / "azureml" / "train" / "pipeline.yml"
STEPS = ("prep", "train", "evaluate", "register")
needs_pipeline = pytest.mark.skipif(
    not PIPELINE.exists(), reason="mlops/azureml/train/pipeline.yml not written yet"
)


def training_request(arm: FakeArm) -> TrainingRequest:
    arm.put("/environments/taxi-train-env/versions/e1", {"properties": {"image": "img"}})
    arm.put("/data/taxi-data/versions/d1", {"properties": {"dataType": "uri_file", "dataUri": "azureml://x"}})
    return TrainingRequest(
        pipeline=PIPELINE,
        experiment="dev_taxi_fare_train_main",
        data=AssetRef("taxi-data", "d1", created=False),
        environment=AssetRef("taxi-train-env", "e1", created=False),
        compute="cpu-cluster",
        model_name="taxi-fare-model",
        seed=7,
        deadline_s=3600,
    )


def submitted_jobs(arm: FakeArm) -> list[str]:
    return [path.rsplit("/", 1)[1] for path in puts(arm, "/jobs/")]


MODEL_INFO = {"model_name": "taxi-fare-model", "model_version": "4", "registered": True, "deploy_flag": 1}
METRICS = {"r2": 0.91, "rmse": 3.2, "mae": 2.1, "deploy_flag": 1, "reason": "rmse 3.2 < champion 3.5"}


@needs_pipeline
def test_training_job_is_submitted_pinned_and_polled_to_completed(
    arm: FakeArm, tmp_path: Path, monkeypatch: Any
) -> None:
    recorder = Recorder()
    backend = make_backend(recorder)
    request = training_request(arm)
    arm.job_progress.extend(["NotStarted", "Running", "Running", "Completed"])
    monkeypatch.setattr(
        backend.client.jobs,
        "download",
        fake_outputs(
            {
                "child-register/model_info_output_path": {"model_info.json": MODEL_INFO},
                "child-evaluate/evaluation_output": {"metrics.json": METRICS},
            }
        ),
    )
    arm.step_statuses = dict.fromkeys(STEPS, "Completed")

    result = backend.run_training(request)

    [name] = submitted_jobs(arm)
    body = arm.store[f"{WORKSPACE_PATH}/jobs/{name}"]["properties"]
    assert body["experimentName"] == "dev_taxi_fare_train_main"
    assert body["inputs"]["raw_data"]["uri"].endswith("data/taxi-data/versions/d1")
    assert body["inputs"]["seed"]["value"] in ("7", 7)
    assert body["settings"]["default_compute"].endswith("/computes/cpu-cluster")
    # evaluate and register decide against today's registry: never reused (AZURE-FACTS 17).
    assert body["settings"]["force_rerun"] is True
    components = [arm.store[path]["properties"]["componentSpec"] for path in puts(arm, "/components/")]
    assert len(components) == len(STEPS)
    assert {tuple(spec["environment"].rsplit("/", 3)[-3:]) for spec in components} == {
        ("taxi-train-env", "versions", "e1")
    }
    assert result.status == "Completed" and result.model_version == "4" and result.deploy_flag == 1
    assert result.metrics["rmse"] == 3.2 and result.url and name in result.url
    state_lines = [line for line in recorder.lines if line.startswith(f"training: {name}")]
    assert [line.split()[2] for line in state_lines] == ["NotStarted", "Running", "Completed"]


@needs_pipeline
def test_failed_training_names_the_failing_step_and_the_studio_url(arm: FakeArm) -> None:
    backend = make_backend(Recorder())
    arm.job_progress.extend(["Running", "Failed"])
    arm.step_statuses = {
        "prep": "Completed",
        "train": "Failed",
        "evaluate": "Canceled",
        "register": "Canceled",
    }

    result = backend.run_training(training_request(arm))

    [name] = submitted_jobs(arm)
    assert result.status == "Failed" and result.model_version is None and result.deploy_flag == 0
    assert "step 'train' Failed" in str(result.metrics["error"])
    assert f"https://ml.azure.com/runs/{name}" in str(result.metrics["error"])
    assert result.url and name in result.url


@needs_pipeline
def test_rerun_attaches_to_the_running_job_instead_of_submitting_again(
    arm: FakeArm, monkeypatch: Any
) -> None:
    request = training_request(arm)
    arm.job_progress.extend(["Running"])
    first = make_backend(Recorder(), poll_interval_s=600)
    with pytest.raises(BackendError, match="Re-run the hook to attach"):
        first.run_training(request.__class__(**{**request.__dict__, "deadline_s": 1}))
    assert len(submitted_jobs(arm)) == 1

    recorder = Recorder()
    second = make_backend(recorder)
    monkeypatch.setattr(
        second.client.jobs,
        "download",
        fake_outputs(
            {
                "child-register/model_info_output_path": {
                    "model_info.json": MODEL_INFO | {"model_version": "5"}
                },
                "child-evaluate/evaluation_output": {"metrics.json": METRICS},
            }
        ),
    )
    arm.job_progress.extend(["Running", "Completed"])
    arm.step_statuses = dict.fromkeys(STEPS, "Completed")
    result = second.run_training(request.__class__(**{**request.__dict__, "deadline_s": 1}))

    assert len(submitted_jobs(arm)) == 1, "the second run must not submit a duplicate"
    assert result.model_version == "5"
    assert any("attaching to" in line for line in recorder.lines)


@needs_pipeline
def test_a_failed_job_is_resubmitted_under_the_next_name(arm: FakeArm) -> None:
    request = training_request(arm)
    arm.job_progress.extend(["Failed"])
    arm.step_statuses = {"prep": "Failed"}
    make_backend(Recorder()).run_training(request)
    arm.job_progress.extend(["Failed", "Failed"])
    make_backend(Recorder()).run_training(request)

    first, second = submitted_jobs(arm)
    assert second == f"{first}-r2"


# ---------------------------------------------------------------- online endpoint, blue/green primitives


SPECS = REPO / "mlops" / "azureml"
needs_deploy_specs = pytest.mark.skipif(
    not (SPECS / "deploy" / "online" / "online-deployment.yml").exists(),
    reason="deploy specs not written yet",
)


def online_backend(recorder: Recorder, posts: list[dict[str, Any]], answer: Any) -> AzureBackend:
    """A backend on the shipped specs whose scoring POSTs are recorded and answered with `answer`."""

    def http_post(url: str, **kwargs: Any) -> Any:
        posts.append({"url": url, **kwargs})
        return answer

    return make_backend(recorder, specs_root=SPECS, http_post=http_post)


@needs_deploy_specs
def test_online_endpoint_deployment_smoke_traffic_and_delete(
    arm: FakeArm, tmp_path: Path, caplog: Any, capsys: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    arm.seed_model("4")
    recorder, posts = Recorder(), []
    backend = online_backend(recorder, posts, FakeResponse(200, {"predictions": [12.5, 30.25]}))
    spec = DeploymentSpec(
        endpoint="taxi-online-dev", name="taxi-fare-model-v4", model_name="taxi-fare-model", model_version="4"
    )

    state = backend.ensure_online_endpoint("taxi-online-dev")
    backend.create_deployment(spec, deadline_s=600)
    smoke = backend.smoke_test("taxi-online-dev", spec.name, write_sample(tmp_path))
    shifted = backend.set_traffic("taxi-online-dev", {spec.name: 100})
    backend.delete_deployment("taxi-online-dev", spec.name)

    endpoint_path = f"{WORKSPACE_PATH}/onlineEndpoints/taxi-online-dev"
    assert state.scoring_uri == "https://taxi-online-dev.westeurope.inference.ml.azure.com/score"
    assert arm.store[endpoint_path]["properties"]["authMode"] == "Key"
    deployment_path = f"{endpoint_path}/deployments/{spec.name}"
    assert arm.calls.index(("PUT", deployment_path)) > arm.calls.index(("PUT", endpoint_path))
    deployed = arm.put_bodies[deployment_path]["properties"]
    assert deployed["model"].endswith("/models/taxi-fare-model/versions/4")
    assert "/environments/taxi-score-env/versions/" in deployed["environmentId"]
    [score_env] = puts(arm, "/environments/taxi-score-env/versions/")
    assert arm.calls.index(("PUT", score_env)) < arm.calls.index(("PUT", deployment_path))
    assert smoke.ok and smoke.predictions == (12.5, 30.25)
    [post] = posts
    assert post["headers"]["azureml-model-deployment"] == spec.name
    assert post["headers"]["Authorization"] == f"Bearer {ENDPOINT_KEY}"
    assert post["url"] == state.scoring_uri
    assert shifted.traffic == {spec.name: 100}
    assert ("DELETE", f"{endpoint_path}/deployments/{spec.name}") in arm.calls
    printed = capsys.readouterr()
    everything = "\n".join([caplog.text, printed.out, printed.err, *recorder.lines])
    assert ENDPOINT_KEY not in everything
    assert not any(token in everything for token in ISSUED_TOKENS)


@needs_deploy_specs
def test_existing_healthy_deployment_is_not_recreated(arm: FakeArm, tmp_path: Path) -> None:
    arm.seed_model("4")
    spec = DeploymentSpec(
        endpoint="taxi-online-dev", name="taxi-fare-model-v4", model_name="taxi-fare-model", model_version="4"
    )
    arm.put(
        f"/onlineEndpoints/taxi-online-dev/deployments/{spec.name}",
        {
            "properties": {
                "model": f"{WORKSPACE_PATH}/models/taxi-fare-model/versions/4",
                "endpointComputeType": "Managed",
                "scaleSettings": {"scaleType": "Default"},
            },
            "sku": {"name": "Default", "capacity": 1},
        },
    )
    backend = online_backend(Recorder(), [], None)

    backend.create_deployment(spec, deadline_s=600)

    assert arm.mutations() == []


@needs_deploy_specs
def test_failed_smoke_test_reports_status_without_the_key(arm: FakeArm, tmp_path: Path) -> None:
    recorder, posts = Recorder(), []
    backend = online_backend(recorder, posts, FakeResponse(400, {"error": f"bad input, key {ENDPOINT_KEY}"}))
    backend.ensure_online_endpoint("taxi-online-dev")

    smoke = backend.smoke_test("taxi-online-dev", "taxi-fare-model-v4", write_sample(tmp_path))

    assert not smoke.ok and smoke.status == 400
    assert ENDPOINT_KEY not in smoke.detail and "***" in smoke.detail


@needs_deploy_specs
@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ({"predictions": [1.0]}, "1 predictions for 2 rows"),
        ({"predictions": [1.0, "x"]}, "prediction 1 is 'x', not a finite number"),
        ({"result": [1.0, 2.0]}, 'the response is not {"predictions": [...]}'),
        ({"predictions": [1.0, -1e9]}, "outside the expected range"),
    ],
)
def test_wrong_predictions_fail_the_smoke_test(
    arm: FakeArm, tmp_path: Path, payload: Any, problem: str
) -> None:
    backend = online_backend(Recorder(), [], FakeResponse(200, payload))
    backend.ensure_online_endpoint("taxi-online-dev")

    smoke = backend.smoke_test("taxi-online-dev", "d1", write_sample(tmp_path))

    assert not smoke.ok and problem in smoke.detail


# ---------------------------------------------------------------- retries and error mapping


def test_throttled_call_waits_for_retry_after_in_azure_core_then_succeeds(
    arm: FakeArm, tmp_path: Path
) -> None:
    spec = env_spec(tmp_path)
    version = environment_version(spec)
    arm.queue(
        f"/environments/taxi-train-env/versions/{version}",
        (429, {"Retry-After": "7"}, {"error": {"code": "TooManyRequests", "message": "slow down"}}),
    )
    recorder = Recorder()

    ref = make_backend(recorder).ensure_environment(spec)

    assert ref.created
    assert arm.sdk_sleeps == [7.0], "azure-core honours Retry-After"
    assert recorder.sleeps == [] and not any("retry" in line for line in recorder.lines), "no second layer"


def test_server_errors_that_outlive_azure_cores_retries_are_transient(arm: FakeArm, tmp_path: Path) -> None:
    spec = env_spec(tmp_path)
    path = f"/environments/taxi-train-env/versions/{environment_version(spec)}"
    arm.queue(path, *[(503, {}, {"error": {"code": "ServiceUnavailable", "message": "busy"}})] * 10)

    with pytest.raises(TransientBackendError, match="HTTP 503") as failure:
        make_backend(Recorder()).ensure_environment(spec)

    assert exit_code(failure.value) == 5
    # The first GET plus azure-core's 3 status retries, and no outer layer multiplying them.
    assert [call for call in arm.calls if call[1].endswith(path)] == [("GET", WORKSPACE_PATH + path)] * 4


def test_a_create_whose_response_was_lost_is_read_back_instead_of_failing(
    arm: FakeArm, tmp_path: Path
) -> None:
    spec = env_spec(tmp_path)
    version = environment_version(spec)
    path = f"{WORKSPACE_PATH}/environments/taxi-train-env/versions/{version}"
    original = arm.handle

    def created_but_connection_reset(request: Any) -> tuple[int, dict[str, str], str]:
        if request.method == "PUT" and request.url.split("?")[0].endswith(path):
            original(request)  # the service stored it...
            raise ConnectionResetError("connection reset by peer")  # ...and the response never arrived
        return original(request)

    arm.handle = created_but_connection_reset  # type: ignore[method-assign]
    recorder = Recorder()

    ref = make_backend(recorder).ensure_environment(spec)

    assert ref == AssetRef("taxi-train-env", version, created=True)
    assert path in arm.store
    assert any("it exists now (the response was lost)" in line for line in recorder.lines)


@pytest.mark.parametrize(
    ("host", "role"),
    [
        ("blob", "'Storage Blob Data Contributor' on storage account stmlopsdev"),
        ("arm", "'AzureML Data Scientist' on workspace mlw-mlops-dev"),
    ],
)
def test_a_403_names_the_missing_role(arm: FakeArm, tmp_path: Path, host: str, role: str) -> None:
    forbidden = {"error": {"code": "AuthorizationFailed", "message": "does not have authorization"}}
    if host == "blob":
        arm.blob_failures.append(403)
        call = lambda backend: backend.ensure_data(DataSpec("taxi-data", write_data(tmp_path)))  # noqa: E731
    else:
        spec = env_spec(tmp_path)
        arm.queue(f"/environments/taxi-train-env/versions/{environment_version(spec)}", (403, {}, forbidden))
        call = lambda backend: backend.ensure_environment(spec)  # noqa: E731

    with pytest.raises(BackendError, match="permission denied") as raised:
        call(make_backend(Recorder()))

    assert role in str(raised.value)


def test_unauthorized_maps_to_a_clear_permanent_error(arm: FakeArm, tmp_path: Path) -> None:
    spec = env_spec(tmp_path)
    path = f"/environments/taxi-train-env/versions/{environment_version(spec)}"
    arm.queue(path, (401, {}, {"error": {"code": "InvalidAuthenticationToken", "message": "token expired"}}))
    recorder = Recorder()

    with pytest.raises(BackendError) as raised:
        make_backend(recorder).ensure_environment(spec)

    assert not isinstance(raised.value, TransientBackendError)
    assert "authentication failed" in str(raised.value) and "az login" in str(raised.value)
    assert recorder.sleeps == []
    assert not any(token in str(raised.value) for token in ISSUED_TOKENS)


def test_missing_compute_says_pulumi_creates_it(arm: FakeArm) -> None:
    with pytest.raises(BackendError, match="run `pulumi up`"):
        make_backend(Recorder()).check_compute("cpu-cluster")


def test_existing_compute_is_described(arm: FakeArm) -> None:
    arm.put(
        "/computes/cpu-cluster",
        {
            "properties": {
                "computeType": "AmlCompute",
                "provisioningState": "Succeeded",
                "properties": {
                    "vmSize": "STANDARD_DS3_V2",
                    "scaleSettings": {"minNodeCount": 0, "maxNodeCount": 4},
                },
            }
        },
    )
    description = make_backend(Recorder()).check_compute("cpu-cluster")
    assert "STANDARD_DS3_V2" in description and "0-4 nodes" in description and arm.mutations() == []


# ---------------------------------------------------------------- batch


def batch_sample(tmp_path: Path) -> Path:
    sample = tmp_path / "batch-sample.csv"
    sample.write_text("distance,passengers\n1.5,1\n3.0,2\n7.2,1\n")
    return sample


def scored(backend: AzureBackend, monkeypatch: Any, predictions: str) -> None:
    """The batch job's `score` output, as jobs.download would fetch it."""

    def download(name: str, *, download_path: str, output_name: str) -> None:
        assert output_name == "score"
        folder = Path(download_path) / "named-outputs" / "score"
        folder.mkdir(parents=True)
        (folder / "predictions.csv").write_text(predictions)

    monkeypatch.setattr(backend.client.jobs, "download", download)


PREDICTIONS = "batch-sample.csv 0 9.5\nbatch-sample.csv 1 14.25\nbatch-sample.csv 2 30.0\n"


def test_batch_endpoint_one_deployment_and_a_scoring_job_counted_from_its_output(
    arm: FakeArm, tmp_path: Path, monkeypatch: Any
) -> None:
    sample = batch_sample(tmp_path)
    recorder = Recorder()
    backend = make_backend(recorder)
    scored(backend, monkeypatch, PREDICTIONS)
    arm.job_progress.extend(["Running", "Completed"])

    result = backend.run_batch("taxi-batch-dev", "taxi-fare-batch-dp", "taxi-fare-model", "4", sample, 3600)

    deployment_path = f"{WORKSPACE_PATH}/batchEndpoints/taxi-batch-dev/deployments/taxi-fare-batch-dp"
    properties = arm.store[deployment_path]["properties"]
    assert properties["model"]["assetId"].endswith("models/taxi-fare-model/versions/4")
    assert properties["compute"].endswith("/computes/cpu-cluster")
    assert "/environments/taxi-batch-env/versions/" in properties["environmentId"]
    assert properties["errorThreshold"] == 0
    [invoked] = arm.batch_requests
    assert invoked["headers"]["azureml-model-deployment"] == "taxi-fare-batch-dp"
    assert invoked["body"]["properties"]["name"].startswith("taxi-batch-")
    assert result.status == "Completed" and result.rows == 3
    assert [line.split()[3] for line in recorder.lines if line.startswith("batch scoring: taxi-batch-")] == [
        "Running",
        "Completed",
    ]


def test_the_batch_environment_carries_what_parallel_run_step_needs(
    arm: FakeArm, tmp_path: Path, monkeypatch: Any
) -> None:
    backend = make_backend(Recorder())
    scored(backend, monkeypatch, PREDICTIONS)
    arm.job_progress.extend(["Completed"])

    backend.run_batch(
        "taxi-batch-dev", "taxi-fare-batch-dp", "taxi-fare-model", "4", batch_sample(tmp_path), 3600
    )

    [environment] = puts(arm, "/environments/taxi-batch-env/versions/")
    conda = arm.store[environment]["properties"]["condaFile"]
    # how-to-use-batch-model-deployments.md: batch deployments need azureml-core and azureml-dataset-runtime[fuse].
    assert "azureml-core==" in conda and "azureml-dataset-runtime[fuse]==" in conda


def test_a_new_model_version_updates_the_one_batch_deployment(
    arm: FakeArm, tmp_path: Path, monkeypatch: Any
) -> None:
    sample = batch_sample(tmp_path)
    for version in ("4", "5"):
        backend = make_backend(Recorder())
        scored(backend, monkeypatch, PREDICTIONS)
        arm.job_progress.extend(["Completed"])
        backend.run_batch("taxi-batch-dev", "taxi-fare-batch-dp", "taxi-fare-model", version, sample, 3600)

    deployments = {path for path in puts(arm, "/batchEndpoints/taxi-batch-dev/deployments/")}
    assert deployments == {f"{WORKSPACE_PATH}/batchEndpoints/taxi-batch-dev/deployments/taxi-fare-batch-dp"}
    model = arm.store[next(iter(deployments))]["properties"]["model"]["assetId"]
    assert model.endswith("versions/5")
    assert len({request["body"]["properties"]["name"] for request in arm.batch_requests}) == 2


def test_a_rerun_attaches_to_the_batch_job_instead_of_invoking_again(
    arm: FakeArm, tmp_path: Path, monkeypatch: Any
) -> None:
    sample = batch_sample(tmp_path)
    for _ in range(2):
        backend = make_backend(Recorder())
        scored(backend, monkeypatch, PREDICTIONS)
        arm.job_progress.extend(["Completed"])
        backend.run_batch("taxi-batch-dev", "taxi-fare-batch-dp", "taxi-fare-model", "4", sample, 3600)

    assert len(arm.batch_requests) == 1


def test_a_batch_invoke_whose_response_was_lost_is_not_repeated(
    arm: FakeArm, tmp_path: Path, monkeypatch: Any
) -> None:
    original = arm.batch_invoke

    def started_then_reset(request: Any) -> Any:
        original(request)
        raise ConnectionResetError("connection reset by peer")

    arm.batch_invoke = started_then_reset  # type: ignore[method-assign]
    recorder = Recorder()
    backend = make_backend(recorder)
    scored(backend, monkeypatch, PREDICTIONS)
    arm.job_progress.extend(["Completed"])

    result = backend.run_batch(
        "taxi-batch-dev", "taxi-fare-batch-dp", "taxi-fare-model", "4", batch_sample(tmp_path), 3600
    )

    assert result.rows == 3
    # azure-ai-ml's invoke repeats the POST on a lost response; the job name makes the repeats refusable
    # duplicates, and the hook itself never POSTs again: it finds the job by name.
    names = {request["body"]["properties"]["name"] for request in arm.batch_requests}
    assert len(names) == 1
    assert any("it exists now (the response was lost)" in line for line in recorder.lines)


def test_a_completed_batch_job_that_scored_nothing_fails(
    arm: FakeArm, tmp_path: Path, monkeypatch: Any
) -> None:
    backend = make_backend(Recorder())
    scored(backend, monkeypatch, "")
    arm.job_progress.extend(["Completed"])

    with pytest.raises(BackendError, match="scored 0 of 3 rows"):
        backend.run_batch(
            "taxi-batch-dev", "taxi-fare-batch-dp", "taxi-fare-model", "4", batch_sample(tmp_path), 3600
        )


def test_a_full_batch_endpoint_is_refused_before_creating_a_deployment(arm: FakeArm, tmp_path: Path) -> None:
    arm.put("/batchEndpoints/taxi-batch-dev", {"properties": {"authMode": "AADToken"}})
    for index in range(20):
        arm.put(f"/batchEndpoints/taxi-batch-dev/deployments/old-{index}", {"properties": {}})

    with pytest.raises(BackendError, match="already holds 20 deployments"):
        make_backend(Recorder()).run_batch(
            "taxi-batch-dev", "taxi-fare-batch-dp", "taxi-fare-model", "4", batch_sample(tmp_path), 3600
        )
    assert puts(arm, "/deployments/taxi-fare-batch-dp") == []


def long_running(arm: FakeArm, path_suffix: str, operation: str) -> None:
    """Make PUTs of `path_suffix` long-running: stored as usual, answered 201 with an async-operation URL."""
    original = arm.handle

    def handle(request: Any) -> tuple[int, dict[str, str], str]:
        status, headers, body = original(request)
        if request.method == "PUT" and request.url.split("?")[0].endswith(path_suffix):
            return 201, {"Azure-AsyncOperation": operation, "Retry-After": "0"}, body
        return status, headers, body

    arm.handle = handle  # type: ignore[method-assign]


@needs_deploy_specs
def test_a_server_error_while_polling_a_long_operation_is_retried_by_azure_core(arm: FakeArm) -> None:
    operation = f"{ARM}{WORKSPACE_PATH}/operations/op-1"
    long_running(arm, "/onlineEndpoints/taxi-online-dev", operation)
    arm.queue(
        "/operations/op-1",
        (503, {}, {"error": {"code": "ServiceUnavailable", "message": "busy"}}),
        (200, {}, {"status": "Succeeded"}),
    )

    state = make_backend(Recorder(), specs_root=SPECS).ensure_online_endpoint("taxi-online-dev")

    assert state.name == "taxi-online-dev"
    assert [path for method, path in arm.calls if path.endswith("/operations/op-1")] == [
        f"{WORKSPACE_PATH}/operations/op-1"
    ] * 2, "the poll was retried (retry_total=0 would have failed the whole create)"


@needs_deploy_specs
def test_polling_errors_that_outlive_azure_cores_retries_are_transient(arm: FakeArm) -> None:
    operation = f"{ARM}{WORKSPACE_PATH}/operations/op-1"
    long_running(arm, "/onlineEndpoints/taxi-online-dev", operation)
    arm.queue(
        "/operations/op-1", *[(503, {}, {"error": {"code": "ServiceUnavailable", "message": "busy"}})] * 10
    )

    with pytest.raises(TransientBackendError, match="create online endpoint taxi-online-dev: HTTP 503"):
        make_backend(Recorder(), specs_root=SPECS).ensure_online_endpoint("taxi-online-dev")


def test_the_mlclient_keeps_azure_core_retries_on() -> None:
    client = make_backend(Recorder()).client
    policy = client.online_endpoints._online_operation._client._pipeline._impl_policies
    retries = [p for p in policy if type(p).__name__ == "RetryPolicy"]
    assert retries and retries[0].total_retries > 0


def test_a_fresh_workspace_has_no_champion(arm: FakeArm) -> None:
    assert make_backend(Recorder()).champion_version("taxi-fare-model") is None


def test_the_champion_is_the_newest_version_tagged_champion(arm: FakeArm) -> None:
    arm.seed_model("1", {"champion": "true"})
    arm.seed_model("2", {"champion": "true"})
    arm.seed_model("3")
    assert make_backend(Recorder()).champion_version("taxi-fare-model") == "2"


# ---------------------------------------------------------------- quota before a managed deployment


def test_managed_quota_follows_microsofts_example() -> None:
    from mlops.backends.azure.online_managed import managed_cores_needed

    # includes/quota-allocation-online-deployment.md: "if you request 10 instances of a Standard_DS3_v2 VM
    # (that comes with four cores) in a deployment, you should have a quota for 48 cores".
    assert managed_cores_needed(4, 10) == 48
    assert managed_cores_needed(4, 1) == 8


@needs_deploy_specs
def test_a_deployment_without_quota_is_refused_naming_sku_need_and_limit(arm: FakeArm) -> None:
    arm.usages[0] |= {"currentValue": 20, "limit": 24}
    arm.seed_model("4")
    backend = make_backend(Recorder(), specs_root=SPECS)
    backend.ensure_online_endpoint("taxi-online-dev")
    spec = DeploymentSpec("taxi-online-dev", "taxi-fare-model-v4", "taxi-fare-model", "4")

    with pytest.raises(BackendError) as refused:
        backend.create_deployment(spec, deadline_s=600)

    message = str(refused.value)
    assert "Standard_DS3_v2 needs 8 cores of family standardDSv2Family" in message
    assert "limit in westeurope is 24 with 20 in use (4 free)" in message
    assert puts(arm, "/deployments/") == []


# ---------------------------------------------------------------- waits never outlive their deadlines (fake clock)


def test_a_training_job_that_never_finishes_is_left_at_its_deadline(arm: FakeArm) -> None:
    arm.put("/jobs/taxi-train-stuck", {"properties": {"jobType": "Pipeline", "status": "Running"}})
    recorder = Recorder()

    with pytest.raises(BackendError, match="not finished after 3600s .*Re-run the hook to attach"):
        make_backend(recorder).training.wait_for_job("taxi-train-stuck", deadline_s=3600)

    assert recorder.clock() == 3600, "waited exactly its deadline"


def test_the_hooks_deadline_caps_a_longer_step_deadline(arm: FakeArm) -> None:
    arm.put("/jobs/taxi-train-stuck", {"properties": {"jobType": "Pipeline", "status": "Running"}})
    recorder = Recorder()
    backend = make_backend(recorder, deadline_s=900)

    with pytest.raises(BackendError, match="not finished after 900s"):
        backend.training.wait_for_job("taxi-train-stuck", deadline_s=4 * 3600)

    assert recorder.clock() == 900


def test_a_transient_error_while_waiting_polls_again_within_the_deadline(arm: FakeArm) -> None:
    arm.put("/jobs/taxi-train-flaky", {"properties": {"jobType": "Pipeline", "status": "Running"}})
    # One poll's request and azure-core's 3 retries all fail; the next poll finds the job done.
    arm.queue(
        "/jobs/taxi-train-flaky",
        *[(503, {}, {"error": {"code": "ServiceUnavailable", "message": "busy"}})] * 4,
    )
    arm.job_progress.append("Completed")
    recorder = Recorder()

    job = make_backend(recorder).training.wait_for_job("taxi-train-flaky", deadline_s=3600)

    assert job.status == "Completed"
    assert any("HTTP 503" in line and "polling again" in line for line in recorder.lines)
    assert recorder.clock() == 10, "one poll interval, not a failed hook"


@needs_deploy_specs
def test_a_batch_job_that_never_finishes_is_left_at_its_deadline(arm: FakeArm, tmp_path: Path) -> None:
    recorder = Recorder()
    backend = make_backend(recorder)
    arm.job_progress.extend(["Running"])

    with pytest.raises(BackendError, match="batch scoring job taxi-batch-.* not finished after 1800s"):
        backend.run_batch(
            "taxi-batch-dev", "taxi-fare-batch-dp", "taxi-fare-model", "4", batch_sample(tmp_path), 1800
        )

    assert recorder.clock() == 1800


@needs_pipeline
def test_a_child_job_the_sdk_cannot_parse_is_skipped(arm: FakeArm, monkeypatch: Any) -> None:
    backend = make_backend(Recorder())
    request = training_request(arm)
    arm.job_progress.extend(["Completed"])
    arm.step_statuses = dict.fromkeys(STEPS, "Completed")
    healthy = arm.history

    def with_an_unparsable_child(request: Any) -> tuple[int, dict[str, str], str]:
        status, headers, body = healthy(request)
        children = json.loads(body)["value"] + [{"runId": "child-odd", "properties": "not a mapping"}]
        return status, headers, json.dumps({"value": children})

    arm.history = with_an_unparsable_child  # type: ignore[method-assign]
    monkeypatch.setattr(
        backend.client.jobs,
        "download",
        fake_outputs(
            {
                "child-register/model_info_output_path": {"model_info.json": MODEL_INFO},
                "child-evaluate/evaluation_output": {"metrics.json": METRICS},
            }
        ),
    )

    result = backend.run_training(request)

    assert result.status == "Completed" and result.model_version == "4"
