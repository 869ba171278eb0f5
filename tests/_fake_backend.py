"""An in-memory Backend for orchestration tests: records every call, injects failures on demand."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from mlops.backends.base import (
    AssetRef,
    BackendError,
    BatchResult,
    DataSpec,
    DeploymentSpec,
    EndpointState,
    EnvironmentSpec,
    SmokeResult,
    TrainingRequest,
    TrainingResult,
)

CREATING_CALLS = ("create_deployment", "set_traffic", "delete_deployment", "run_batch")
"""The calls that change something a user would see on the endpoint."""


@dataclass
class FakeBackend:
    """A model registry, one online endpoint and a batch endpoint, all in memory.

    Training registers a new version when there is no champion yet or when `improves` is set (as the
    real gate does on a tie, it registers nothing otherwise).
    """

    name: str = "fake"
    improves: bool = False
    training_status: str = "Completed"
    metrics: Mapping[str, object] = field(default_factory=lambda: {"r2": 0.9, "rmse": 3.0, "mae": 2.0})
    smoke_failures: set[str] = field(default_factory=set)
    """Deployment names whose smoke test fails."""
    failures: dict[str, list[BaseException]] = field(default_factory=dict)
    """Per method name, errors raised by its next calls (one per call) before it does anything."""
    calls: list[tuple[str, tuple[object, ...]]] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)
    champion: str | None = None
    deployments: dict[str, str] = field(default_factory=dict)
    """Deployment name -> model version, on the online endpoint."""
    traffic: dict[str, int] = field(default_factory=dict)
    deployments_made: list[str] = field(default_factory=list)
    """Every deployment actually created (a name twice here is a duplicate)."""
    endpoint_name: str | None = None
    closed: bool = False

    def _call(self, method: str, *args: object) -> None:
        self.calls.append((method, args))
        pending = self.failures.get(method)
        if pending:
            raise pending.pop(0)

    def call_names(self) -> list[str]:
        return [method for method, _ in self.calls]

    def ensure_environment(self, spec: EnvironmentSpec) -> AssetRef:
        self._call("ensure_environment", spec)
        return AssetRef(spec.name, "1", created=not self._seen("ensure_environment"))

    def ensure_data(self, spec: DataSpec) -> AssetRef:
        self._call("ensure_data", spec)
        return AssetRef(spec.name, "1", created=not self._seen("ensure_data"))

    def _seen(self, method: str) -> bool:
        return self.call_names().count(method) > 1

    def check_compute(self, name: str) -> str:
        self._call("check_compute", name)
        return f"{name}: fake cluster"

    def run_training(self, request: TrainingRequest) -> TrainingResult:
        self._call("run_training", request)
        run_id = f"run-{self.call_names().count('run_training')}"
        if self.training_status != "Completed":
            return TrainingResult(
                run_id, self.training_status, 0, request.model_name, None, {"error": "boom"}
            )
        deploy_flag = int(self.champion is None or self.improves)
        version = None
        if deploy_flag:
            version = str(len(self.versions) + 1)
            self.versions.append(version)
            self.champion = version
        reason = "better than the champion" if deploy_flag else "not better than the champion (tie)"
        metrics = dict(self.metrics) | {"reason": reason, "deploy_flag": deploy_flag}
        return TrainingResult(run_id, "Completed", deploy_flag, request.model_name, version, metrics)

    def champion_version(self, model_name: str) -> str | None:
        self._call("champion_version", model_name)
        return self.champion

    def _state(self) -> EndpointState:
        assert self.endpoint_name is not None
        serving = max(self.traffic, key=lambda name: self.traffic[name], default=None)
        uri = f"https://{self.endpoint_name}.fake/score" if serving else ""
        return EndpointState(self.endpoint_name, uri, dict(self.traffic), list(self.deployments))

    def ensure_online_endpoint(self, name: str) -> EndpointState:
        self._call("ensure_online_endpoint", name)
        self.endpoint_name = name
        return self._state()

    def get_online_endpoint(self, name: str) -> EndpointState | None:
        self._call("get_online_endpoint", name)
        return self._state() if self.endpoint_name == name else None

    def create_deployment(self, spec: DeploymentSpec, deadline_s: float) -> None:
        self._call("create_deployment", spec, deadline_s)
        if spec.name not in self.deployments:
            self.deployments_made.append(spec.name)
        self.deployments[spec.name] = spec.model_version
        self.traffic.setdefault(spec.name, 0)

    def smoke_test(self, endpoint: str, deployment: str, request_sample: Path) -> SmokeResult:
        self._call("smoke_test", endpoint, deployment, request_sample)
        if deployment in self.smoke_failures:
            return SmokeResult(False, 500, "model failed to load")
        return SmokeResult(True, 200, "2 predictions", (10.0, 12.5))

    def set_traffic(self, endpoint: str, traffic: Mapping[str, int]) -> EndpointState:
        self._call("set_traffic", endpoint, dict(traffic))
        unknown = set(traffic) - set(self.deployments)
        if unknown or sum(traffic.values()) != 100:
            raise BackendError(f"bad traffic {dict(traffic)} for deployments {sorted(self.deployments)}")
        self.traffic = dict(traffic)
        return self._state()

    def delete_deployment(self, endpoint: str, deployment: str) -> None:
        self._call("delete_deployment", endpoint, deployment)
        if self.traffic.get(deployment, 0):
            raise BackendError(
                f"cannot delete {deployment}: it takes {self.traffic[deployment]} % of the traffic"
            )
        self.deployments.pop(deployment, None)
        self.traffic.pop(deployment, None)

    def run_batch(
        self,
        endpoint: str,
        deployment: str,
        model_name: str,
        model_version: str,
        sample: Path,
        deadline_s: float,
    ) -> BatchResult:
        self._call("run_batch", endpoint, deployment, model_name, model_version, sample, deadline_s)
        return BatchResult("Completed", 100, f"{endpoint}/{deployment}/predictions.csv")

    def close(self) -> None:
        self.closed = True
