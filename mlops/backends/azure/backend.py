"""The Azure ML backend of the post-deploy hook: the Backend contract over the parts split by concern."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mlops.backends.azure.assets import Assets
from mlops.backends.azure.batch import Batch
from mlops.backends.azure.online import OnlineEndpoints, OnlineTarget
from mlops.backends.azure.online_kubernetes import KubernetesTarget
from mlops.backends.azure.online_managed import ManagedTarget
from mlops.backends.azure.placement import TargetChoice, choose_online_target, hook_location_problem
from mlops.backends.azure.session import DEFAULT_POLICY, PlanItem, Session
from mlops.backends.azure.training import Training
from mlops.backends.base import (
    AssetRef,
    BatchResult,
    DataSpec,
    DeploymentSpec,
    EndpointState,
    EnvironmentSpec,
    SmokeResult,
    TrainingRequest,
    TrainingResult,
    UsageError,
)
from mlops.retry import RetryPolicy
from mlops.stack_outputs import StackOutputs, StackOutputsError, load_stack_outputs

SPECS_ROOT = Path(__file__).resolve().parents[2] / "azureml"


class AzureBackend:
    """Runs every lifecycle step on the stack's Azure ML workspace; `dry_run` sends only reads."""

    name = "azure"

    def __init__(
        self,
        outputs: StackOutputs,
        credential: Any = None,
        dry_run: bool = False,
        progress: Callable[[str], None] = print,
        *,
        specs_root: Path = SPECS_ROOT,
        retry_policy: RetryPolicy = DEFAULT_POLICY,
        poll_interval_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        http_post: Callable[..., Any] | None = None,
        online_target: str | None = None,
        deadline_s: float | None = None,
    ) -> None:
        self.session = Session(
            outputs,
            credential=credential,
            dry_run=dry_run,
            progress=progress,
            retry_policy=retry_policy,
            poll_interval_s=poll_interval_s,
            clock=clock,
            sleep=sleep,
            deadline_s=deadline_s,
        )
        self.specs_root = specs_root
        self.assets = Assets(self.session)
        self.training = Training(self.session, self.assets, specs_root)
        self.target_choice: TargetChoice = choose_online_target(outputs, online_target)
        self.target: OnlineTarget = (
            KubernetesTarget(self.session, specs_root)
            if self.target_choice.kind == "kubernetes"
            else ManagedTarget(self.session, specs_root)
        )
        self.online = OnlineEndpoints(self.session, self.assets, self.target, http_post)
        self.batch = Batch(self.session, self.assets, self.training, specs_root)
        self._planned_versions: set[str] = set()
        """Versions a dry run assumes training would register (they do not exist yet)."""

    @classmethod
    def from_cli(
        cls,
        *,
        stack: str | None,
        outputs: Path | None,
        dry_run: bool,
        log: Callable[[str], None],
        online_target: str | None = None,
        deadline_s: float | None = None,
    ) -> AzureBackend:
        """The backend for `python -m mlops deploy --target azure`: outputs from --outputs or `pulumi`."""
        try:
            stack_outputs = load_stack_outputs(stack, outputs)
        except StackOutputsError as error:
            raise UsageError(str(error)) from None
        problem = hook_location_problem(stack_outputs, os.environ)
        if problem:
            raise UsageError(problem)
        mode = " [dry run: reads only]" if dry_run else ""
        log(
            f"azure: workspace {stack_outputs.workspace_name} in {stack_outputs.resource_group} "
            f"({stack_outputs.environment}, {stack_outputs.location}){mode}"
        )
        backend = cls(
            stack_outputs, dry_run=dry_run, progress=log, online_target=online_target, deadline_s=deadline_s
        )
        choice = backend.target_choice
        log(f"azure: online target {choice.kind} ({choice.reason})")
        return backend

    @property
    def outputs(self) -> StackOutputs:
        return self.session.outputs

    @property
    def dry_run(self) -> bool:
        return self.session.dry_run

    @property
    def plan(self) -> list[PlanItem]:
        return self.session.plan

    @property
    def client(self) -> Any:
        """The workspace's MLClient, for modules that add Azure work of their own (promotion, monitoring)."""
        return self.session.client

    def ensure_environment(self, spec: EnvironmentSpec) -> AssetRef:
        return self.assets.ensure_environment(spec)

    def ensure_data(self, spec: DataSpec) -> AssetRef:
        return self.assets.ensure_data(spec)

    def check_compute(self, name: str) -> str:
        return self.assets.check_compute(name)

    def run_training(self, request: TrainingRequest) -> TrainingResult:
        result = self.training.run(request)
        if self.dry_run and result.model_version:
            self._planned_versions.add(result.model_version)
        return result

    def champion_version(self, model_name: str) -> str | None:
        return self.assets.champion_version(model_name)

    def ensure_online_endpoint(self, name: str) -> EndpointState:
        return self.online.ensure(name)

    def get_online_endpoint(self, name: str) -> EndpointState | None:
        return self.online.get(name)

    def create_deployment(self, spec: DeploymentSpec, deadline_s: float) -> None:
        if not spec.model_registry and spec.model_version not in self._planned_versions:
            self.assets.require_model(spec.model_name, spec.model_version)
        self.online.create_deployment(
            spec, self.specs_root / "deploy" / "online" / "score-env.yml", deadline_s
        )

    def smoke_test(self, endpoint: str, deployment: str, request_sample: Path) -> SmokeResult:
        return self.online.smoke_test(endpoint, deployment, request_sample)

    def set_traffic(self, endpoint: str, traffic: Mapping[str, int]) -> EndpointState:
        return self.online.set_traffic(endpoint, traffic)

    def delete_deployment(self, endpoint: str, deployment: str) -> None:
        self.online.delete_deployment(endpoint, deployment)

    def run_batch(
        self,
        endpoint: str,
        deployment: str,
        model_name: str,
        model_version: str,
        sample: Path,
        deadline_s: float,
    ) -> BatchResult:
        return self.batch.run(endpoint, deployment, model_name, model_version, sample, deadline_s)

    def close(self) -> None:
        """Nothing runs locally; drop the client so its HTTP sessions close."""
        self.session.close()
