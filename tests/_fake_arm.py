"""An in-memory Azure (ARM, run history, blob, AKS run command, scoring hosts) behind `responses`, for the
contract tests that drive the real MLClient and ContainerServiceClient."""

from __future__ import annotations

import base64
import io
import json
import re
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import responses

from mlops.backends.azure import AzureBackend
from mlops.backends.base import EnvironmentSpec
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
    storage_account_name="stmlopsdev",
)
KUBERNETES_OUTPUTS = replace(
    OUTPUTS,
    isolation_design="customerVnet",
    online_target="kubernetes",
    workspace_public_network_access="Disabled",
    aks_cluster_name="aks-mlops-dev",
    aks_compute_name="aks-inference",
    aks_node_vm_size="Standard_D4s_v5",
    aks_node_count=3,
    inference_scoring_host="scoring.taxi.internal",
    inference_load_balancer_ip="10.0.4.250",
)
WORKSPACE_PATH = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-mlops-dev"
    "/providers/Microsoft.MachineLearningServices/workspaces/mlw-mlops-dev"
)
CLUSTER_PATH = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-mlops-dev"
    "/providers/Microsoft.ContainerService/managedClusters/aks-mlops-dev"
)
LOCATION_PATH = (
    f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.MachineLearningServices/locations/westeurope"
)
ENDPOINT_KEY = "endpoint-key-Zm9vYmFyLXNlY3JldA=="
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
DS3_V2 = {"name": "Standard_DS3_v2", "family": "standardDSv2Family", "vCPUs": 4, "memoryGB": 14.0}
"""Standard_DS3_v2 as Azure ML's vmSizes API lists it (4 vCPUs, dv2-dsv2-series.md)."""


def unsigned_jwt(claims: dict[str, Any]) -> str:
    """MLClient decodes the AAD token (for the submitter's object id), so it must be JWT-shaped."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


CLAIMS = {"oid": "11111111-2222-3333-4444-555555555555", "tid": "tenant-1", "upn": "ci@contoso"}
ISSUED_TOKENS: set[str] = set()


class StaticCredential:
    """A TokenCredential that hands out static tokens, one per audience, so no identity is needed."""

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        # Job submission checks the token's audience against the AML resource it asked for.
        token = unsigned_jwt(CLAIMS | {"aud": scopes[0].removesuffix("/.default")})
        ISSUED_TOKENS.add(token)
        return AccessToken(token, int(time.time()) + 3600)


def pending_upload(path: str) -> dict[str, Any]:
    """What ARM answers to startPendingUpload: a SAS URI into the workspace's blob container."""
    folder = f"{BLOB_ACCOUNT}/azureml-blobstore-x/LocalUpload/{path.split('/')[-4]}"
    return {
        "blobReferenceForConsumption": {
            "blobUri": folder,
            "credential": {"credentialType": "SAS", "sasUri": f"{folder}?sv=2023&sig=fake-sas"},
        }
    }


def manifest_in(context: str) -> dict[str, str]:
    """The files of a run command's base64 zip context, by name."""
    with zipfile.ZipFile(io.BytesIO(base64.b64decode(context))) as archive:
        return {name: archive.read(name).decode() for name in archive.namelist()}


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
    deployment_progress: list[str] = field(default_factory=list)
    """Provisioning states a stored online deployment reports on its next GETs (it stays at the last)."""
    blob_failures: list[int] = field(default_factory=list)
    """Statuses the blob service answers to the next PUTs (then 201)."""
    batch_requests: list[dict[str, Any]] = field(default_factory=list)
    put_bodies: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Every resource as last PUT, kept after a DELETE."""
    put_history: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    """Every PUT in order: (path, body)."""
    vm_sizes: list[dict[str, Any]] = field(default_factory=lambda: [DS3_V2])
    usages: list[dict[str, Any]] = field(
        default_factory=lambda: [
            {
                "type": "Microsoft.MachineLearningServices/vmFamily/usages",
                "unit": "Count",
                "currentValue": 0,
                "limit": 24,
                "name": {"value": "standardDSv2Family", "localizedValue": "Standard DSv2 Family vCPUs"},
            }
        ]
    )
    run_commands: list[dict[str, Any]] = field(default_factory=list)
    """Bodies of AKS runCommand POSTs."""
    run_command_exit: int = 0
    applied_instance_types: set[str] = field(default_factory=set)
    sdk_sleeps: list[float] = field(default_factory=list)
    """Sleeps of azure-core's retry and polling and of azure-storage-blob (time.sleep is patched)."""
    auto_complete_jobs: bool = False
    """Every job reads back Completed (a whole deploy without scripting each job's states)."""
    scoring_requests: list[dict[str, Any]] = field(default_factory=list)
    """Smoke-test POSTs the scoring hosts received: url, headers, rows."""

    def install(self, mock: responses.RequestsMock) -> None:
        """Route every host to its handler; handlers are looked up per request, so a test can wrap one.

        `self.mock` stays available for a test to intercept one more host (a token endpoint, say)."""
        self.mock = mock
        for method in ("GET", "PUT", "POST", "DELETE", "PATCH"):
            mock.add_callback(method, re.compile(re.escape(ARM) + r"/.*"), callback=lambda r: self.handle(r))
        for method in ("GET", "HEAD", "PUT"):
            mock.add_callback(method, re.compile(re.escape(BLOB_ACCOUNT) + r"/.*"), callback=self.blob)
        mock.add_callback(
            "GET", DISCOVERY, callback=lambda request: (200, {}, json.dumps({"api": DATA_PLANE}))
        )
        mock.add_callback(
            "GET", re.compile(re.escape(DATA_PLANE) + r"/history/.*"), callback=lambda r: self.history(r)
        )
        mock.add_callback(
            "POST",
            re.compile(r"https://[a-z0-9-]+\.westeurope\.inference\.ml\.azure\.com/jobs"),
            callback=lambda r: self.batch_invoke(r),
        )
        for scoring in (
            r"https://[a-z0-9-]+\.westeurope\.inference\.ml\.azure\.com/score",
            r"https://scoring\.taxi\.internal/api/v1/endpoint/[a-z0-9-]+/score",
        ):
            mock.add_callback("POST", re.compile(scoring), callback=lambda r: self.score(r))
        self.put("", {"location": "westeurope", "properties": {"discoveryUrl": DISCOVERY}})
        self.put("/datastores/workspaceblobstore", {"properties": BLOB_DATASTORE})

    def blob(self, request: Any) -> tuple[int, dict[str, str], str]:
        """Blob storage behind the datastore: nothing exists yet, uploads succeed unless told to fail."""
        url = urlparse(request.url)
        # Block and metadata calls carry comp=...; an upload of a small file is one plain PUT.
        operation = next((part for part in (url.query or "").split("&") if part.startswith("comp=")), "")
        self.calls.append((f"BLOB {request.method}", url.path + (f"?{operation}" if operation else "")))
        if request.method in ("GET", "HEAD"):
            return 404, {"x-ms-error-code": "BlobNotFound"}, ""
        if self.blob_failures:
            return self.blob_failures.pop(0), {}, ""
        created = not operation
        return (
            (201 if created else 200),
            {"ETag": '"0x1"', "Last-Modified": "Sun, 22 Nov 2026 00:00:00 GMT"},
            "",
        )

    def batch_invoke(self, request: Any) -> tuple[int, dict[str, str], str]:
        """The batch endpoint's scoring URI: starts a batch job, visible afterwards as an ARM job."""
        self.calls.append(("BATCH POST", urlparse(request.url).path))
        body = json.loads(request.body)
        self.batch_requests.append({"headers": dict(request.headers), "body": body})
        name = body["properties"].get("name") or f"batchjob-{len(self.batch_requests)}"
        return self._put(f"{WORKSPACE_PATH}/jobs/{name}", {"properties": {"jobType": "Pipeline"}})

    def score(self, request: Any) -> tuple[int, dict[str, str], str]:
        """A healthy deployment behind the scoring URI: one plausible fare per row, key auth required."""
        rows = json.loads(request.body)["input_data"]
        self.scoring_requests.append(
            {"url": request.url, "headers": dict(request.headers), "rows": len(rows)}
        )
        if request.headers.get("Authorization") != f"Bearer {ENDPOINT_KEY}":
            return 401, {}, json.dumps({"message": "invalid key"})
        return 200, {}, json.dumps({"predictions": [12.5 + index for index in range(len(rows))]})

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
                if isinstance(body, BaseException):
                    raise body
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
        if request.method == "POST" and path.endswith("/runCommand"):
            return self._run_command(path, json.loads(request.body))
        if request.method == "GET" and "/commandResults/" in path:
            return 200, {}, json.dumps(self.store[path])
        if request.method == "GET" and path == f"{LOCATION_PATH}/vmSizes":
            return 200, {}, json.dumps({"value": self.vm_sizes})
        if request.method == "GET" and path == f"{LOCATION_PATH}/usages":
            return 200, {}, json.dumps({"value": self.usages})
        if request.method == "GET" and path in self.store:
            if "/jobs/" in path and self.job_progress:
                self.store[path]["properties"]["status"] = self.job_progress.pop(0)
            elif "/jobs/" in path and self.auto_complete_jobs:
                self.store[path]["properties"]["status"] = "Completed"
            if "/onlineEndpoints/" in path and "/deployments/" in path and self.deployment_progress:
                self.store[path]["properties"]["provisioningState"] = self.deployment_progress.pop(0)
            return 200, {}, json.dumps(self.store[path])
        if request.method == "GET" and self._is_collection(path):
            items = [body for key, body in self.store.items() if key.rsplit("/", 1)[0] == path]
            if "/models/" in path and not items:  # a model never registered: its container does not exist
                return 404, {}, json.dumps({"error": {"code": "NotFound", "message": f"{path} not found"}})
            return 200, {}, json.dumps({"value": items})
        return 404, {}, json.dumps({"error": {"code": "NotFound", "message": f"{path} not found"}})

    def _run_command(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, str], str]:
        """AKS runCommand: kubectl apply of the zipped manifest; its result is read at commandResults/<id>."""
        self.run_commands.append(body)
        command_id = f"cmd-{len(self.run_commands)}"
        names = re.findall(r"name: (\S+)", "\n".join(manifest_in(body.get("context", "")).values()))
        lines = [
            f"instancetype.amlarc.azureml.com/{name} {'unchanged' if name in self.applied_instance_types else 'created'}"
            for name in names
        ]
        if self.run_command_exit == 0:
            self.applied_instance_types.update(names)
        result_path = path.removesuffix("/runCommand") + f"/commandResults/{command_id}"
        self.store[result_path] = {
            "id": command_id,
            "properties": {
                "provisioningState": "Succeeded",
                "exitCode": self.run_command_exit,
                "logs": "\n".join(lines) if self.run_command_exit == 0 else "error: forbidden",
            },
        }
        return 202, {"Location": f"{ARM}{result_path}?api-version=2026-08-01", "Retry-After": "0"}, ""

    def _is_collection(self, path: str) -> bool:
        return path.endswith(("/versions", "/deployments", "/onlineEndpoints", "/jobs", "/models"))

    def _put(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, str], str]:
        properties = body.setdefault("properties", {})
        properties.setdefault("provisioningState", "Succeeded")
        if "Endpoints/" in path and "/deployments/" not in path:
            name = path.rsplit("/", 1)[1]
            if "/batchEndpoints/" in path:
                properties["scoringUri"] = f"https://{name}.westeurope.inference.ml.azure.com/jobs"
            elif properties.get("compute"):
                # A Kubernetes endpoint: azureml-fe behind the internal load balancer, no TLS host known to AML.
                properties["scoringUri"] = f"http://10.0.4.250/api/v1/endpoint/{name}/score"
            else:
                properties["scoringUri"] = f"https://{name}.westeurope.inference.ml.azure.com/score"
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
        self.put_history.append((path, json.loads(json.dumps(body))))
        return 200, {}, json.dumps(body)

    def put(self, relative: str, body: dict[str, Any]) -> None:
        """Seed a resource as if an earlier run (or Pulumi) had created it."""
        self._put(WORKSPACE_PATH + relative, body)

    def seed_kubernetes_compute(self) -> None:
        """The AKS cluster Pulumi attached as Kubernetes compute."""
        self.put(
            "/computes/aks-inference",
            {
                "properties": {
                    "computeType": "Kubernetes",
                    "provisioningState": "Succeeded",
                    "resourceId": CLUSTER_PATH,
                    "properties": {"namespace": "azureml"},
                }
            },
        )

    def seed_model(
        self, version: str, tags: dict[str, str] | None = None, name: str = "taxi-fare-model"
    ) -> None:
        self.put(
            f"/models/{name}/versions/{version}",
            {"properties": {"modelUri": f"azureml://m/{version}", "flavors": {}, "tags": tags or {}}},
        )


@contextmanager
def intercepted_arm(monkeypatch: Any) -> Iterator[FakeArm]:
    """A FakeArm behind every HTTPS call the SDKs make; any other URL fails the test (no network).

    time.sleep is recorded, not slept: azure-core's retries and pollers and azure-storage-blob sleep with it.
    """
    monkeypatch.setenv("BUILD_SOURCEBRANCHNAME", "main")
    fake = FakeArm()
    monkeypatch.setattr(time, "sleep", fake.sdk_sleeps.append)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake.install(mock)
        yield fake


CI_VARIABLES = ("TF_BUILD", "GITHUB_ACTIONS", "JENKINS_URL", "RUNNER_ENVIRONMENT")


@pytest.fixture
def arm(monkeypatch: Any) -> Iterator[FakeArm]:
    for variable in CI_VARIABLES:  # the credential and hook-location choices read these
        monkeypatch.delenv(variable, raising=False)
    with intercepted_arm(monkeypatch) as fake:
        yield fake


@dataclass
class Recorder:
    """Progress lines and the backend's own sleeps; its clock is the sum of those sleeps (a fake clock)."""

    lines: list[str] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return sum(self.sleeps)


def make_backend(recorder: Recorder, outputs: StackOutputs = OUTPUTS, **kwargs: Any) -> AzureBackend:
    kwargs.setdefault("poll_interval_s", 10)
    return AzureBackend(
        outputs,
        credential=StaticCredential(),
        progress=recorder.lines.append,
        retry_policy=RetryPolicy(max_attempts=4, base_delay_s=1, deadline_s=300),
        clock=recorder.clock,
        sleep=recorder.sleeps.append,
        **kwargs,
    )


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


@dataclass
class FakeResponse:
    """A scoring response as requests returns it."""

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


def fake_outputs(files: dict[str, dict[str, Any]]) -> Callable[..., None]:
    """Stands in for jobs.download (run-history output lookup + blob download): writes the named file.

    A value that is a dict is written as JSON; a string is written as it is (a batch job's predictions).
    """

    def download(name: str, *, download_path: str, output_name: str) -> None:
        folder = Path(download_path) / "named-outputs" / output_name
        folder.mkdir(parents=True)
        file_name, content = next(iter(files[f"{name}/{output_name}"].items()))
        (folder / file_name).write_text(content if isinstance(content, str) else json.dumps(content))

    return download
