"""The Azure ML backend of the post-deploy hook: the Backend contract over the parts split by concern."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mlops.backends.azure.assets import Assets
from mlops.backends.azure.batch import Batch
from mlops.backends.azure.online import OnlineEndpoints, OnlineTarget
from mlops.backends.azure.online_managed import ManagedTarget
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
        )
        self.specs_root = specs_root
        self.assets = Assets(self.session)
        self.training = Training(self.session, self.assets, specs_root)
        self.target: OnlineTarget = ManagedTarget(self.session, specs_root)
        self.online = OnlineEndpoints(self.session, self.assets, self.target, http_post)
        self.batch = Batch(self.session, self.assets, self.training, specs_root)

    @classmethod
    def from_cli(
        cls, *, stack: str | None, outputs: Path | None, dry_run: bool, log: Callable[[str], None]
    ) -> AzureBackend:
        """The backend for `python -m mlops deploy --target azure`: outputs from --outputs or `pulumi`."""
        try:
            stack_outputs = load_stack_outputs(stack, outputs)
        except StackOutputsError as error:
            raise UsageError(str(error)) from None
        mode = " [dry run: reads only]" if dry_run else ""
        log(
            f"azure: workspace {stack_outputs.workspace_name} in {stack_outputs.resource_group} "
            f"({stack_outputs.environment}, {stack_outputs.location}){mode}"
        )
        return cls(stack_outputs, dry_run=dry_run, progress=log)

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
        return self.training.run(request)

    def champion_version(self, model_name: str) -> str | None:
        return self.assets.champion_version(model_name)

    def ensure_online_endpoint(self, name: str) -> EndpointState:
        return self.online.ensure(name)

    def get_online_endpoint(self, name: str) -> EndpointState | None:
        return self.online.get(name)

    def create_deployment(self, spec: DeploymentSpec, deadline_s: float) -> None:
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
