"""Contract tests: AzureBackend drives the real MLClient against ARM REST intercepted by `responses`."""

from __future__ import annotations

import base64
import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import responses

from mlops.backends.azure import AzureBackend, data_version, environment_version
from mlops.backends.base import (
    AssetRef,
    BackendError,
    DataSpec,
    DeploymentSpec,
    EnvironmentSpec,
    TrainingRequest,
    TransientBackendError,
)
from mlops.retry import RetryPolicy
from mlops.stack_outputs import StackOutputs

ARM = "https://management.azure.com"
SUBSCRIPTION = "00000000-0000-0000-0000-0000000000aa"
OUTPUTS = StackOutputs(
    subscription_id=SUBSCRIPTION,
    resource_group="rg-mlops-dev",
    workspace_name="mlw-mlops-dev",
    location="westeurope",
    compute_cluster_name="cpu-cluster",
    environment="dev",
)
WORKSPACE_PATH = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-mlops-dev"
    "/providers/Microsoft.MachineLearningServices/workspaces/mlw-mlops-dev"
)
ENDPOINT_KEY = "endpoint-key-Zm9vYmFyLXNlY3JldA=="


def _unsigned_jwt(claims: dict[str, str]) -> str:
    """MLClient decodes the AAD token (for the submitter's object id), so it must be JWT-shaped."""

    def part(value: dict[str, str]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


CLAIMS = {"oid": "11111111-2222-3333-4444-555555555555", "tid": "tenant-1", "upn": "ci@contoso"}
ISSUED_TOKENS: set[str] = set()
REPO = Path(__file__).resolve().parents[1]


class StaticCredential:
    """A TokenCredential that hands out static tokens, one per audience, so no identity is needed."""

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        # Job submission checks the token's audience against the AML resource it asked for.
        token = _unsigned_jwt(CLAIMS | {"aud": scopes[0].removesuffix("/.default")})
        ISSUED_TOKENS.add(token)
        return AccessToken(token, int(time.time()) + 3600)


BLOB_ACCOUNT = "https://stmlopsdev.blob.core.windows.net"
DISCOVERY = "https://westeurope.api.azureml.ms/discovery"
DATA_PLANE = "https://westeurope.api.azureml.ms"
BLOB_DATASTORE = {
    "datastoreType": "AzureBlob",
    "accountName": "stmlopsdev",
    "containerName": "azureml-blobstore-x",
    "endpoint": "core.windows.net",
    "protocol": "https",
    "credentials": {"credentialsType": "None"},
    "isDefault": True,
}


def pending_upload(path: str) -> dict[str, Any]:
    """What ARM answers to startPendingUpload: a SAS URI into the workspace's blob container."""
    folder = f"{BLOB_ACCOUNT}/azureml-blobstore-x/LocalUpload/{path.split('/')[-4]}"
    return {
        "blobReferenceForConsumption": {
            "blobUri": folder,
            "credential": {"credentialType": "SAS", "sasUri": f"{folder}?sv=2023&sig=fake-sas"},
        }
    }


@dataclass
class FakeArm:
    """An in-memory ARM for the workspace: PUT stores, GET reads (404 when absent), DELETE removes.

    `script` queues canned (status, headers, body) answers for a path suffix before the store is used,
    so a test can inject 429/5xx/401 or a job's successive states.
    """

    store: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    script: dict[str, list[tuple[int, dict[str, str], Any]]] = field(default_factory=dict)
    step_statuses: dict[str, str] = field(default_factory=dict)
    """Run-history children of any pipeline job: step name -> status."""
    job_progress: list[str] = field(default_factory=list)
    """Statuses a stored job reports on its next GETs, one per GET (it stays at the last)."""
    blob_failures: list[int] = field(default_factory=list)
    batch_requests: list[dict[str, Any]] = field(default_factory=list)
    put_bodies: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Every resource as last PUT, kept after a DELETE."""
    """Statuses the blob service answers to the next PUTs (then 201)."""

    def install(self, mock: responses.RequestsMock) -> None:
        for method in ("GET", "PUT", "POST", "DELETE", "PATCH"):
            mock.add_callback(method, re.compile(re.escape(ARM) + r"/.*"), callback=self.handle)
        for method in ("GET", "HEAD", "PUT"):
            mock.add_callback(method, re.compile(re.escape(BLOB_ACCOUNT) + r"/.*"), callback=self.blob)
        mock.add_callback(
            "GET", DISCOVERY, callback=lambda request: (200, {}, json.dumps({"api": DATA_PLANE}))
        )
        mock.add_callback("GET", re.compile(re.escape(DATA_PLANE) + r"/history/.*"), callback=self.history)
        mock.add_callback(
            "POST",
            re.compile(r"https://[a-z0-9-]+\.westeurope\.inference\.ml\.azure\.com/jobs"),
            callback=self.batch_invoke,
        )
        self.put("", {"location": "westeurope", "properties": {"discoveryUrl": DISCOVERY}})
        self.put("/datastores/workspaceblobstore", {"properties": BLOB_DATASTORE})

    def blob(self, request: Any) -> tuple[int, dict[str, str], str]:
        """Blob storage behind the datastore: nothing exists yet, uploads succeed unless told to fail."""
        self.calls.append((f"BLOB {request.method}", urlparse(request.url).path))
        if request.method in ("GET", "HEAD"):
            return 404, {"x-ms-error-code": "BlobNotFound"}, ""
        if self.blob_failures:
            return self.blob_failures.pop(0), {}, ""
        created = "comp=" not in (urlparse(request.url).query or "")
        return (
            (201 if created else 200),
            {"ETag": '"0x1"', "Last-Modified": "Sun, 22 Nov 2026 00:00:00 GMT"},
            "",
        )

    def batch_invoke(self, request: Any) -> tuple[int, dict[str, str], str]:
        """The batch endpoint's scoring URI: starts a batch job, visible afterwards as an ARM job."""
        self.calls.append(("BATCH POST", urlparse(request.url).path))
        self.batch_requests.append({"headers": dict(request.headers), "body": json.loads(request.body)})
        status, headers, body = self._put(
            f"{WORKSPACE_PATH}/jobs/batchjob-1", {"properties": {"jobType": "Pipeline"}}
        )
        return status, headers, body

    def history(self, request: Any) -> tuple[int, dict[str, str], str]:
        """Run history (data plane): the children of a pipeline job."""
        path = urlparse(request.url).path
        self.calls.append(("GET", path))
        children = [
            {"runId": f"child-{step}", "displayName": step, "status": status}
            for step, status in self.step_statuses.items()
        ]
        return 200, {}, json.dumps({"value": children})

    def queue(self, suffix: str, *answers: tuple[int, dict[str, str], Any]) -> None:
        self.script.setdefault(suffix, []).extend(answers)

    def mutations(self) -> list[tuple[str, str]]:
        return [(method, path) for method, path in self.calls if method != "GET"]

    def handle(self, request: Any) -> tuple[int, dict[str, str], str]:
        path = urlparse(request.url).path
        self.calls.append((request.method, path))
        for suffix, answers in self.script.items():
            if path.endswith(suffix) and answers:
                status, headers, body = answers.pop(0)
                return status, headers, json.dumps(body)
        if request.method == "PUT":
            return self._put(path, json.loads(request.body or "{}"))
        if request.method == "DELETE":
            self.store.pop(path, None)
            return 200, {}, ""
        if request.method == "POST" and path.endswith("/startPendingUpload"):
            return 200, {}, json.dumps(pending_upload(path))
        if request.method == "POST" and path.endswith("/listKeys"):
            return 200, {}, json.dumps({"primaryKey": ENDPOINT_KEY, "secondaryKey": ENDPOINT_KEY[::-1]})
        if request.method == "GET" and path in self.store:
            if "/jobs/" in path and self.job_progress:
                self.store[path]["properties"]["status"] = self.job_progress.pop(0)
            return 200, {}, json.dumps(self.store[path])
        if request.method == "GET" and self._is_collection(path):
            items = [body for key, body in self.store.items() if key.rsplit("/", 1)[0] == path]
            return 200, {}, json.dumps({"value": items})
        return 404, {}, json.dumps({"error": {"code": "NotFound", "message": f"{path} not found"}})

    def _is_collection(self, path: str) -> bool:
        return path.endswith(("/versions", "/deployments", "/onlineEndpoints", "/jobs", "/models"))

    def _put(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, str], str]:
        properties = body.setdefault("properties", {})
        properties.setdefault("provisioningState", "Succeeded")
        if "Endpoints/" in path and "/deployments/" not in path:
            name = path.rsplit("/", 1)[1]
            route = "jobs" if "/batchEndpoints/" in path else "score"
            properties["scoringUri"] = f"https://{name}.westeurope.inference.ml.azure.com/{route}"
        if "/jobs/" in path:
            properties.setdefault("status", "NotStarted")
            properties["services"] = {
                "Studio": {"endpoint": f"https://ml.azure.com/runs/{path.rsplit('/', 1)[1]}"}
            }
        body |= {"id": path, "name": path.rsplit("/", 1)[1], "type": "fake"}
        body.setdefault(
            "systemData", {"createdAt": "2026-11-22T00:00:00Z", "lastModifiedAt": "2026-11-22T00:00:00Z"}
        )
        if "/deployments/" in path:
            properties.setdefault("scaleSettings", {"scaleType": "Default"})
        self.store[path] = body
        self.put_bodies[path] = body
        return 200, {}, json.dumps(body)

    def put(self, relative: str, body: dict[str, Any]) -> None:
        """Seed a resource as if an earlier run had created it."""
        self._put(WORKSPACE_PATH + relative, body)


@contextmanager
def intercepted_arm(monkeypatch: Any) -> Iterator[FakeArm]:
    """A FakeArm behind every HTTPS call MLClient makes; any other URL fails the test (no network)."""
    monkeypatch.setenv("BUILD_SOURCEBRANCHNAME", "main")
    fake = FakeArm()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake.install(mock)
        yield fake


@pytest.fixture
def arm(monkeypatch: Any) -> Iterator[FakeArm]:
    with intercepted_arm(monkeypatch) as fake:
        yield fake


@dataclass
class Recorder:
    lines: list[str] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return sum(self.sleeps)


def make_backend(recorder: Recorder, **kwargs: Any) -> AzureBackend:
    kwargs.setdefault("poll_interval_s", 10)
    return AzureBackend(
        OUTPUTS,
        credential=StaticCredential(),
        progress=recorder.lines.append,
        retry_policy=RetryPolicy(max_attempts=4, base_delay_s=1, deadline_s=300),
        clock=recorder.clock,
        sleep=recorder.sleeps.append,
        **kwargs,
    )


# ---------------------------------------------------------------- helpers for the specs a test needs


def write_conda(tmp_path: Path) -> Path:
    conda = tmp_path / "conda.yml"
    conda.write_text("name: taxi\ndependencies:\n  - python=3.11\n  - pip:\n    - scikit-learn==1.5.2\n")
    return conda


def write_data(tmp_path: Path, rows: int = 3) -> Path:
    data = tmp_path / "taxi-data.csv"
    data.write_text("distance,cost\n" + "".join(f"{i}.5,{i + 7}.25\n" for i in range(rows)))
    return data


def env_spec(tmp_path: Path) -> EnvironmentSpec:
    return EnvironmentSpec(
        "taxi-train-env", "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04", write_conda(tmp_path)
    )


def puts(arm: FakeArm, fragment: str) -> list[str]:
    return [path for method, path in arm.calls if method == "PUT" and fragment in path]


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


def test_failed_blob_upload_is_retried_by_our_policy(arm: FakeArm, tmp_path: Path, monkeypatch: Any) -> None:
    # azure-storage-blob retries 503 itself (3 retries, sleeping via time.sleep): make those sleeps instant,
    # then fail more often than it retries so only our retry around the whole upload can succeed.
    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    arm.blob_failures.extend([503] * 4)
    recorder = Recorder()

    ref = make_backend(recorder).ensure_data(DataSpec("taxi-data", write_data(tmp_path)))

    assert ref.created
    assert len(recorder.sleeps) == 1, recorder.lines
    assert any("retry 1" in line and "503" in line for line in recorder.lines)


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


def fake_outputs(files: dict[str, dict[str, Any]]) -> Callable[..., None]:
    """Stands in for jobs.download (run-history output lookup + blob download): writes the step's JSON."""

    def download(name: str, *, download_path: str, output_name: str) -> None:
        folder = Path(download_path) / "named-outputs" / output_name
        folder.mkdir(parents=True)
        file_name, content = next(iter(files[f"{name}/{output_name}"].items()))
        (folder / file_name).write_text(json.dumps(content))

    return download


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


@dataclass
class FakeResponse:
    status_code: int
    payload: Any

    @property
    def text(self) -> str:
        return json.dumps(self.payload)

    def json(self) -> Any:
        return self.payload


def write_sample(tmp_path: Path, rows: int = 2) -> Path:
    sample = tmp_path / "request-sample.json"
    sample.write_text(json.dumps({"input_data": [[1.0] * 20 for _ in range(rows)]}))
    return sample


@needs_deploy_specs
def test_online_endpoint_deployment_smoke_traffic_and_delete(
    arm: FakeArm, tmp_path: Path, caplog: Any, capsys: Any
) -> None:
    caplog.set_level(logging.DEBUG)
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


def test_throttled_call_waits_for_retry_after_then_succeeds(arm: FakeArm, tmp_path: Path) -> None:
    spec = env_spec(tmp_path)
    version = environment_version(spec)
    arm.queue(
        f"/environments/taxi-train-env/versions/{version}",
        (429, {"Retry-After": "7"}, {"error": {"code": "TooManyRequests", "message": "slow down"}}),
    )
    recorder = Recorder()

    ref = make_backend(recorder).ensure_environment(spec)

    assert ref.created
    assert recorder.sleeps == [7.0]
    assert any("HTTP 429" in line and "retry 1 in 7.0s" in line for line in recorder.lines)


def test_server_errors_that_outlive_the_retries_are_transient(arm: FakeArm, tmp_path: Path) -> None:
    spec = env_spec(tmp_path)
    path = f"/environments/taxi-train-env/versions/{environment_version(spec)}"
    arm.queue(path, *[(503, {}, {"error": {"code": "ServiceUnavailable", "message": "busy"}})] * 4)
    recorder = Recorder()

    with pytest.raises(TransientBackendError, match="gave up after 4 attempt"):
        make_backend(recorder).ensure_environment(spec)
    assert len(recorder.sleeps) == 3


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


@needs_deploy_specs
def test_batch_endpoint_deployment_and_scoring_job(arm: FakeArm, tmp_path: Path) -> None:
    sample = tmp_path / "batch-sample.csv"
    sample.write_text("distance,passengers\n1.5,1\n3.0,2\n7.2,1\n")
    recorder = Recorder()
    backend = make_backend(recorder, specs_root=SPECS)
    arm.job_progress.extend(["Running", "Completed"])

    result = backend.run_batch("taxi-batch-dev", "taxi-fare-model-v4", "taxi-fare-model", "4", sample, 3600)

    deployment_path = f"{WORKSPACE_PATH}/batchEndpoints/taxi-batch-dev/deployments/taxi-fare-model-v4"
    properties = arm.store[deployment_path]["properties"]
    assert properties["model"]["assetId"].endswith("models/taxi-fare-model/versions/4")
    assert properties["compute"].endswith("/computes/cpu-cluster")
    assert "/environments/taxi-score-env/versions/" in properties["environmentId"]
    [invoked] = arm.batch_requests
    assert invoked["headers"]["azureml-model-deployment"] == "taxi-fare-model-v4"
    assert result.status == "Completed" and result.rows == 3
    assert [line.split()[3] for line in recorder.lines if line.startswith("batch scoring:")] == [
        "Running",
        "Completed",
    ]


@needs_deploy_specs
def test_server_error_while_polling_a_long_operation_is_transient(arm: FakeArm) -> None:
    endpoint = "/onlineEndpoints/taxi-online-dev"
    operation = f"{ARM}{WORKSPACE_PATH}/operations/op-1"
    arm.queue(
        WORKSPACE_PATH + endpoint,
        (404, {}, {"error": {"code": "NotFound", "message": "no endpoint yet"}}),
        (
            201,
            {"Azure-AsyncOperation": operation, "Retry-After": "0"},
            {"properties": {"provisioningState": "Creating"}},
        ),
    )
    arm.queue("/operations/op-1", (503, {}, {"error": {"code": "ServiceUnavailable", "message": "busy"}}))
    backend = make_backend(Recorder(), specs_root=SPECS)

    with pytest.raises(TransientBackendError, match="create online endpoint taxi-online-dev: HTTP 503"):
        backend.ensure_online_endpoint("taxi-online-dev")
