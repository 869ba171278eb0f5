"""The contract between the deploy orchestration and the places it runs (local machine, Azure ML)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Protocol, Sequence


class BackendError(Exception):
    """A backend operation failed; `kind` picks the CLI exit code (see mlops.orchestrate)."""

    kind: str = "backend"


class TransientBackendError(BackendError):
    """A failure worth retrying (throttling, 5xx, connection reset) that outlived the retries."""

    kind = "transient"


class ConfigurationError(BackendError):
    """The backend was given something unusable (invalid data, missing stack outputs); not worth a retry."""

    kind = "config"


class UsageError(ConfigurationError):
    """The request cannot be carried out as given (flags, files, stack outputs, missing champion); exit 2.

    It lives beside the backend contract so backends raise it without importing the orchestration.
    """


def serving_deployment(traffic: Mapping[str, int], exclude: str | None = None) -> str | None:
    """The deployment taking most of the traffic (ties by name), ignoring `exclude`; None if none takes any."""
    candidates = [(share, name) for name, share in traffic.items() if share > 0 and name != exclude]
    if not candidates:
        return None
    return min(candidates, key=lambda item: (-item[0], item[1]))[1]


@dataclass(frozen=True)
class EnvironmentSpec:
    """The training/inference environment: a base image plus a conda file."""

    name: str
    image: str
    conda_file: Path


@dataclass(frozen=True)
class DataSpec:
    """The training data asset."""

    name: str
    path: Path
    description: str = ""


@dataclass(frozen=True)
class AssetRef:
    """A versioned asset as the backend registered it."""

    name: str
    version: str
    created: bool
    """False when the same content was already registered (a re-run is a no-op)."""


@dataclass(frozen=True)
class TrainingRequest:
    """One run of the training pipeline (prep -> train -> evaluate -> register)."""

    pipeline: Path
    experiment: str
    data: AssetRef
    environment: AssetRef
    compute: str
    model_name: str
    seed: int = 42
    deadline_s: float = 4 * 3600
    sweep: bool = False
    """Run the pipeline's hyperparameter sweep instead of its single train step."""


@dataclass(frozen=True)
class TrainingResult:
    """What the pipeline's gate decided and what it registered."""

    run_id: str
    status: str
    deploy_flag: int
    model_name: str
    model_version: str | None
    metrics: Mapping[str, object] = field(default_factory=dict)
    url: str | None = None
    step_seconds: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class EndpointState:
    """An online endpoint as it is now: where it scores, and who gets the traffic."""

    name: str
    scoring_uri: str
    traffic: Mapping[str, int]
    deployments: Sequence[str]


@dataclass(frozen=True)
class DeploymentSpec:
    """A deployment of one registered model version behind the online endpoint."""

    endpoint: str
    name: str
    model_name: str
    model_version: str
    instance_type: str = "Standard_DS3_v2"
    """The managed online SKU; a Kubernetes deployment takes its instance type from its spec instead."""
    instance_count: int = 1
    model_registry: str | None = None
    """The Azure ML registry the version comes from; None for a version registered in the workspace."""

    @property
    def model_reference(self) -> str:
        """The model as a deployment names it: `azureml:<name>:<version>` or the registry asset id."""
        if self.model_registry:
            return f"azureml://registries/{self.model_registry}/models/{self.model_name}/versions/{self.model_version}"
        return f"azureml:{self.model_name}:{self.model_version}"


@dataclass(frozen=True)
class SmokeResult:
    """The verdict of sending the request sample to one deployment."""

    ok: bool
    status: int | None
    detail: str
    predictions: Sequence[float] = ()


@dataclass(frozen=True)
class BatchResult:
    """A batch scoring run over the batch sample."""

    status: str
    rows: int
    output: str | None = None


class Backend(Protocol):
    """Every step the orchestration takes, each idempotent ("ensure"), each bounded by a deadline."""

    name: str

    def ensure_environment(self, spec: EnvironmentSpec) -> AssetRef: ...

    def ensure_data(self, spec: DataSpec) -> AssetRef: ...

    def check_compute(self, name: str) -> str:
        """Verify the compute exists (Pulumi creates it); return a one-line description."""
        ...

    def run_training(self, request: TrainingRequest) -> TrainingResult: ...

    def champion_version(self, model_name: str) -> str | None:
        """The version carrying the `champion` alias/tag, if any."""
        ...

    def ensure_online_endpoint(self, name: str) -> EndpointState: ...

    def get_online_endpoint(self, name: str) -> EndpointState | None: ...

    def create_deployment(self, spec: DeploymentSpec, deadline_s: float) -> None:
        """Create (or finish creating) the deployment and wait until it is healthy."""
        ...

    def smoke_test(self, endpoint: str, deployment: str, request_sample: Path) -> SmokeResult:
        """Score the request sample on that deployment only (no traffic needed)."""
        ...

    def set_traffic(self, endpoint: str, traffic: Mapping[str, int]) -> EndpointState: ...

    def delete_deployment(self, endpoint: str, deployment: str) -> None: ...

    def run_batch(
        self,
        endpoint: str,
        deployment: str,
        model_name: str,
        model_version: str,
        sample: Path,
        deadline_s: float,
    ) -> BatchResult:
        """Ensure the batch endpoint and deployment, score the sample, return only when terminal."""
        ...

    def close(self) -> None:
        """Release what the backend holds (local servers are stopped by pid)."""
        ...
