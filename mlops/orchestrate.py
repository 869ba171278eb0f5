"""The post-deploy lifecycle, written once: environment -> data -> training -> gate -> blue/green -> batch."""

from __future__ import annotations

import re
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence, TextIO

from mlops.src.gate import is_older
from mlops.backends.base import (
    AssetRef,
    Backend,
    BackendError,
    BatchResult,
    ConfigurationError,
    DataSpec,
    DeploymentSpec,
    EndpointState,
    EnvironmentSpec,
    TrainingRequest,
    TrainingResult,
    TransientBackendError,
    UsageError,
    serving_deployment,
)

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_TRAINING_FAILED = 3
EXIT_SMOKE_FAILED = 4
EXIT_TRANSIENT = 5
EXIT_BACKEND = 6

EXIT_CODES_HELP = """exit codes:
  0  success, including "the gate registered nothing, no deployment changed"
  2  configuration or usage error (bad flag, missing file, invalid data, missing stack outputs,
     no champion for --skip-training, an online target the stack cannot host, a deployment that
     does not fit its nodes, or a version older than the champion that --model-version did not ask for)
  3  the training pipeline failed
  4  the new deployment failed its smoke test; traffic stayed where it was, the deployment was deleted
  5  a transient backend error (throttling, 5xx, connection reset) outlived the retries; re-run later
  6  any other backend error
  130 interrupted (Ctrl-C or SIGTERM)"""

HOOK_DEADLINE_S = 5.5 * 3600
"""The whole hook: every step's wait is capped by what is left of it, so CI job timeouts can sit above it."""
TRAINING_DEADLINE_S = 4 * 3600
DEPLOYMENT_DEADLINE_S = 3600.0
BATCH_DEADLINE_S = 3600.0
BATCH_DEPLOYMENT = "taxi-fare-batch-dp"
"""One batch deployment, updated in place per model version: an endpoint holds at most 20 (AZURE-FACTS 20)."""

_MAX_DEPLOYMENT_NAME = 32
_DEPLOYMENT_NAME = re.compile(r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$")


class DeployError(Exception):
    """A deploy failure the CLI reports without a traceback; `exit_code` tells the kind."""

    exit_code: int = EXIT_BACKEND


class StaleVersionRefused(UsageError):
    """The version to deploy is older than the champion and nobody asked for it by --model-version."""


class TrainingFailed(DeployError):
    """The training pipeline ended in a state other than Completed."""

    exit_code = EXIT_TRAINING_FAILED


class SmokeTestFailed(DeployError):
    """The new deployment answered the request sample wrongly; it was rolled back."""

    exit_code = EXIT_SMOKE_FAILED


_EXIT_BY_KIND: Mapping[str, int] = {
    ConfigurationError.kind: EXIT_USAGE,
    TransientBackendError.kind: EXIT_TRANSIENT,
    BackendError.kind: EXIT_BACKEND,
}


def exit_code(error: BaseException) -> int:
    """The CLI exit code for an error raised by `deploy` (1 for anything unexpected, i.e. a bug)."""
    if isinstance(error, DeployError):
        return error.exit_code
    if isinstance(error, BackendError):
        return _EXIT_BY_KIND.get(error.kind, EXIT_BACKEND)
    return 1


# ---------------------------------------------------------------- pure planning functions


def _slug(text: str) -> str:
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9]", "-", text.lower())).strip("-")


def deployment_name(model_name: str, model_version: str) -> str:
    """`<model>-v<version>`, shortened to an AML deployment name (3-32 chars, [a-z0-9-], starts with a letter).

    The version suffix is never shortened (it is what makes the name unique); the model part is.
    """
    suffix = f"v{_slug(model_version)}"
    if suffix == "v":
        raise UsageError(f"model version {model_version!r} has no letters or digits; give a version like '3'")
    if len(suffix) > _MAX_DEPLOYMENT_NAME - 2:
        raise UsageError(
            f"model version {model_version!r} is too long for an AML deployment name "
            f"({_MAX_DEPLOYMENT_NAME} chars at most); use a shorter version label"
        )
    stem = _slug(model_name) or "model"
    if not stem[0].isalpha():
        stem = f"m-{stem}"
    stem = stem[: _MAX_DEPLOYMENT_NAME - len(suffix) - 1].rstrip("-")
    name = f"{stem}-{suffix}" if stem else suffix
    if len(name) < 3:
        name = f"model-{suffix}"
    assert _DEPLOYMENT_NAME.match(name), name
    return name


def parse_traffic_steps(text: str) -> tuple[int, ...]:
    """'10,50,100' -> (10, 50, 100): strictly increasing percentages ending at 100."""
    try:
        steps = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise UsageError(
            f"--traffic-steps {text!r}: give comma-separated integers, e.g. 100 or 10,50,100"
        ) from None
    validate_traffic_steps(steps)
    return steps


def validate_traffic_steps(steps: Sequence[int]) -> None:
    """Raise UsageError unless the steps are strictly increasing percentages in 1..100 ending at 100."""
    problems = []
    if not steps or steps[-1] != 100:
        problems.append("the last step must be 100")
    if any(not 1 <= step <= 100 for step in steps):
        problems.append("every step must be between 1 and 100")
    if any(later <= earlier for earlier, later in zip(steps, steps[1:])):
        problems.append("steps must be strictly increasing")
    if problems:
        raise UsageError(f"traffic steps {list(steps)}: " + "; ".join(problems) + " (e.g. 100 or 10,50,100)")


def traffic_plan(current: Mapping[str, int], new: str, steps: Sequence[int]) -> list[dict[str, int]]:
    """The endpoint traffic maps to apply in order, moving traffic from the serving deployment to `new`.

    Each map is complete (every deployment named), because AML replaces the whole traffic map. Steps
    the new deployment already reached (a re-run after a crash mid-shift) are skipped. With nothing
    serving yet, the new deployment takes 100 % at once.
    """
    validate_traffic_steps(steps)
    previous = serving_deployment(current, exclude=new)
    base = {name: 0 for name in current} | {new: 0}
    if previous is None:
        return [base | {new: 100}]
    reached = current.get(new, 0)
    return [base | {new: step, previous: 100 - step} for step in steps if step > reached]


def rollback_traffic(current: Mapping[str, int], failed: str) -> dict[str, int] | None:
    """The traffic map that gives the failed deployment's share back to the other serving one (None: no change)."""
    share = current.get(failed, 0)
    if share == 0:
        return None
    fallback = serving_deployment(current, exclude=failed)
    if fallback is None:
        raise DeployError(
            f"deployment {failed!r} takes {share} % of the traffic and no other deployment serves; "
            "cannot roll back — fix or redeploy a known-good model version with --model-version"
        )
    return dict(current) | {failed: 0, fallback: current[fallback] + share}


def deployments_to_delete(
    deployments: Sequence[str], traffic: Mapping[str, int], new: str, previous: str | None
) -> list[str]:
    """After a finished shift: every deployment except the new one and the previous one (the rollback target).

    Nothing is deleted unless the new deployment takes all the traffic, and never one that takes any.
    """
    if traffic.get(new, 0) != 100:
        return []
    keep = {new, previous}
    return sorted(name for name in deployments if name not in keep and traffic.get(name, 0) == 0)


class DeploymentAction(Enum):
    """What to do with the deployment of the target model version."""

    CREATE = "create"
    RESUME = "resume"
    """It exists but does not take all the traffic (a re-run after a crash): finish, test, shift."""
    KEEP = "keep"
    """It already takes all the traffic: change nothing."""


def deployment_action(state: EndpointState, name: str) -> DeploymentAction:
    """Decide from the endpoint as it is now; a re-run never creates a second deployment of one version."""
    if state.traffic.get(name, 0) == 100:
        return DeploymentAction.KEEP
    if name in state.deployments:
        return DeploymentAction.RESUME
    return DeploymentAction.CREATE


# ---------------------------------------------------------------- request, progress, summary


@dataclass(frozen=True)
class DeployRequest:
    """Everything one deploy needs; the CLI builds it per target."""

    environment: EnvironmentSpec
    data: DataSpec | None
    """The training data; None only with model_version or skip_training."""
    compute: str
    pipeline: Path
    experiment: str
    model_name: str
    online_endpoint: str
    batch_endpoint: str
    request_sample: Path
    batch_sample: Path | None
    seed: int = 42
    model_version: str | None = None
    """Deploy this registered version (even one older than the champion); skips training and the gate."""
    skip_training: bool = False
    """Deploy without training: the champion, or `model_version` when given."""
    model_registry: str | None = None
    """Take `model_version` from this Azure ML registry instead of the workspace."""
    traffic_steps: tuple[int, ...] = (100,)
    sweep: bool = False
    """Train with the pipeline's hyperparameter sweep instead of its single train step."""
    training_deadline_s: float = TRAINING_DEADLINE_S
    deployment_deadline_s: float = DEPLOYMENT_DEADLINE_S
    batch_deadline_s: float = BATCH_DEADLINE_S
    deadline_s: float = HOOK_DEADLINE_S
    """The whole run; each step waits at most min(its own deadline, what is left of this one)."""
    batch_deployment: str = BATCH_DEPLOYMENT

    def __post_init__(self) -> None:
        if self.sweep and (self.model_version is not None or self.skip_training):
            raise UsageError("--sweep trains; it does not go with --model-version or --skip-training")
        if self.data is None and self.model_version is None and not self.skip_training:
            raise UsageError("training needs data: give --data CSV (or --model-version N / --skip-training)")
        if self.model_registry and self.model_version is None:
            raise UsageError("--registry needs --model-version N: name the registered version to deploy")
        if self.deadline_s <= 0:
            raise UsageError(f"the hook's deadline must be positive, got {self.deadline_s:.0f}s")
        validate_traffic_steps(self.traffic_steps)


@dataclass
class Budget:
    """What is left of the hook's deadline; steps ask it for their own deadline, capped."""

    total_s: float
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self._start = self.clock()

    def remaining(self) -> float:
        return self.total_s - (self.clock() - self._start)

    def cap(self, step: str, step_deadline_s: float) -> float:
        """The step's deadline, cut to what is left; DeployError when nothing is left."""
        left = self.remaining()
        if left <= 0:
            raise DeployError(
                f"the hook's deadline ({self.total_s:.0f}s) passed before step {step}; what Azure started "
                "goes on, re-run the hook to resume"
            )
        return min(step_deadline_s, left)


@dataclass
class Progress:
    """One line per step with the elapsed time, to stderr: `[  12.3s] train: finished (8.1s)`."""

    stream: TextIO = field(default_factory=lambda: sys.stderr)
    clock: Callable[[], float] = time.monotonic
    timings: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._start = self.clock()

    def note(self, message: str) -> None:
        self.stream.write(f"[{self.clock() - self._start:7.1f}s] {message}\n")
        self.stream.flush()

    def skip(self, step: str, reason: str) -> None:
        self.note(f"{step}: skipped ({reason})")

    @contextmanager
    def step(self, name: str) -> Iterator[Callable[[str], None]]:
        """Time a step; the yielded callable adds detail lines under it."""
        began = self.clock()
        self.note(f"{name}: started")
        try:
            yield lambda detail: self.note(f"{name}: {detail}")
        except BaseException as error:
            self.timings[name] = self.clock() - began
            self.note(f"{name}: failed ({self.timings[name]:.1f}s): {error}")
            raise
        self.timings[name] = self.clock() - began
        self.note(f"{name}: finished ({self.timings[name]:.1f}s)")


@dataclass(frozen=True)
class DeploySummary:
    """What a deploy did, for the final report."""

    model_name: str
    model_version: str | None
    """The version the endpoint serves after this run (None when nothing is deployed)."""
    changed: bool
    """Whether this run changed a deployment or the traffic."""
    reason: str
    deploy_flag: int | None = None
    registered: bool = False
    metrics: Mapping[str, object] = field(default_factory=dict)
    training_run: str | None = None
    training_url: str | None = None
    endpoint: str | None = None
    deployment: str | None = None
    scoring_uri: str | None = None
    traffic: Mapping[str, int] = field(default_factory=dict)
    deleted: Sequence[str] = ()
    batch: BatchResult | None = None
    timings: Mapping[str, float] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """The human-readable summary, one fact per line."""
        metrics = _metrics_text(self.metrics)
        traffic = ", ".join(f"{name}={share}" for name, share in sorted(self.traffic.items())) or "none"
        flag = "n/a" if self.deploy_flag is None else str(self.deploy_flag)
        lines = [
            "== deploy summary ==",
            f"metrics: {metrics or 'n/a (no training in this run)'}",
            f"model: {self.model_name} version {self.model_version or 'none'}"
            f" (registered in this run: {'yes' if self.registered else 'no'})",
            f"gate: deploy_flag={flag}; {self.reason}",
            f"deployment: {self.deployment or 'none'} on {self.endpoint or 'no endpoint'}"
            f" ({'changed' if self.changed else 'unchanged'}); traffic: {traffic}",
            f"scoring URI: {self.scoring_uri or 'none running (locally, --serve starts the serving deployment)'}",
        ]
        if self.deleted:
            lines.append(f"deleted deployments: {', '.join(self.deleted)}")
        if self.training_url or self.training_run:
            lines.append(f"training run: {self.training_url or self.training_run}")
        batch = self.batch
        lines.append(
            f"batch: {batch.status}, {batch.rows} rows -> {batch.output or 'n/a'}"
            if batch
            else "batch: not run"
        )
        lines.append(
            "timings: " + ", ".join(f"{step} {seconds:.1f}s" for step, seconds in self.timings.items())
        )
        return lines


# ---------------------------------------------------------------- the orchestration


@dataclass(frozen=True)
class _Target:
    """The model version this run should serve, and why."""

    version: str | None
    reason: str
    training: TrainingResult | None = None


def deploy(backend: Backend, request: DeployRequest, progress: Progress) -> DeploySummary:
    """Run the lifecycle on `backend`; raise DeployError/BackendError on failure (see `exit_code`)."""
    budget = Budget(request.deadline_s, progress.clock)
    target = _choose_target(backend, request, progress, budget)
    training = target.training
    common = {
        "model_name": request.model_name,
        "deploy_flag": training.deploy_flag if training else None,
        "registered": bool(training and training.model_version),
        "metrics": dict(training.metrics) if training else {},
        "training_run": training.run_id if training else None,
        "training_url": training.url if training else None,
    }
    if target.version is None:
        return DeploySummary(
            model_version=None, changed=False, reason=target.reason, timings=progress.timings, **common
        )
    name = deployment_name(request.model_name, target.version)
    with progress.step("endpoint") as say:
        before = backend.ensure_online_endpoint(request.online_endpoint)
        action = deployment_action(before, name)
        say(f"{before.name} serves {_traffic_text(before.traffic)}; {name}: {action.value}")
    if action is DeploymentAction.KEEP:
        progress.skip("deployment", f"{name} already takes all the traffic")
        return DeploySummary(
            model_version=target.version,
            changed=False,
            reason=f"{target.reason}; {name} already serving",
            endpoint=before.name,
            deployment=name,
            scoring_uri=before.scoring_uri,
            traffic=before.traffic,
            timings=progress.timings,
            **common,
        )
    after, deleted = _roll_out(backend, request, progress, budget, before, name, target.version, action)
    batch = _run_batch(backend, request, progress, budget, target.version)
    return DeploySummary(
        model_version=target.version,
        changed=True,
        reason=target.reason,
        endpoint=after.name,
        deployment=name,
        scoring_uri=after.scoring_uri,
        traffic=after.traffic,
        deleted=tuple(deleted),
        batch=batch,
        timings=progress.timings,
        **common,
    )


def _choose_target(backend: Backend, request: DeployRequest, progress: Progress, budget: Budget) -> _Target:
    if request.model_version is not None:
        flag = "--skip-training --model-version" if request.skip_training else "--model-version"
        for step in ("environment", "data", "compute", "training"):
            progress.skip(step, f"{flag} {request.model_version}")
        return _Target(request.model_version, _requested_reason(backend, request, progress))
    if request.skip_training:
        for step in ("environment", "data", "compute", "training"):
            progress.skip(step, "--skip-training")
        with progress.step("champion") as say:
            champion = backend.champion_version(request.model_name)
            if champion is None:
                raise UsageError(
                    f"--skip-training: model {request.model_name!r} has no champion yet; "
                    "run once without --skip-training (or give --model-version N)"
                )
            say(f"{request.model_name} version {champion}")
        return _Target(champion, f"current champion (version {champion}) requested; training skipped")
    training = _train(backend, request, progress, budget)
    with progress.step("champion") as say:
        champion = backend.champion_version(request.model_name)
        say(f"{request.model_name} version {champion}" if champion else "none yet")
    if training.deploy_flag == 1 and training.model_version:
        if champion is not None and is_older(training.model_version, champion):
            # Step reuse re-emits an old "registered vN, deploy_flag 1" (AZURE-FACTS 17): never roll back silently.
            raise StaleVersionRefused(
                f"training run {training.run_id} reports version {training.model_version} as newly registered, "
                f"but the champion is version {champion}: an earlier run's verdict, reused. Nothing was "
                f"deployed. To roll back on purpose, run with --model-version {training.model_version}"
            )
        return _Target(training.model_version, _gate_reason(training), training)
    # The gate registered nothing. The champion normally serves already (then nothing changes); if a
    # previous run stopped between registering and shifting traffic, finishing that roll-out is the fix.
    reason = f"nothing registered: {_gate_reason(training)}"
    if champion is None:
        return _Target(None, f"{reason}; no champion to serve", training)
    return _Target(champion, f"{reason}; serving the champion (version {champion})", training)


def _requested_reason(backend: Backend, request: DeployRequest, progress: Progress) -> str:
    version = request.model_version
    assert version is not None
    if request.model_registry:
        return f"version {version} from registry {request.model_registry} requested; gate skipped"
    with progress.step("champion") as say:
        champion = backend.champion_version(request.model_name)
        older = champion is not None and is_older(version, champion)
        say(
            f"champion is version {champion}; deploying older version {version} as asked (a rollback)"
            if older
            else f"champion is version {champion or 'none yet'}"
        )
    rollback = f", older than the champion (version {champion}): a deliberate rollback" if older else ""
    return f"version {version} requested{rollback}; gate skipped"


def _gate_reason(training: TrainingResult) -> str:
    return str(training.metrics.get("reason") or f"deploy_flag={training.deploy_flag}")


def _train(backend: Backend, request: DeployRequest, progress: Progress, budget: Budget) -> TrainingResult:
    with progress.step("environment") as say:
        environment = backend.ensure_environment(request.environment)
        say(_asset_text(environment))
    with progress.step("data") as say:
        assert request.data is not None, "DeployRequest.__post_init__ requires data for training"
        data = backend.ensure_data(request.data)
        say(_asset_text(data))
    with progress.step("compute") as say:
        say(backend.check_compute(request.compute))
    with progress.step("training") as say:
        training = backend.run_training(
            TrainingRequest(
                pipeline=request.pipeline,
                experiment=request.experiment,
                data=data,
                environment=environment,
                compute=request.compute,
                model_name=request.model_name,
                seed=request.seed,
                deadline_s=budget.cap("training", request.training_deadline_s),
                sweep=request.sweep,
            )
        )
        if training.status != "Completed":
            detail = training.metrics.get("error") or "see the run's logs"
            where = f" ({training.url})" if training.url else ""
            raise TrainingFailed(f"training run {training.run_id} ended {training.status}{where}: {detail}")
        say(f"run {training.run_id} completed; {_metrics_text(training.metrics)}")
    with progress.step("gate") as say:
        say(f"deploy_flag={training.deploy_flag}, registered version: {training.model_version or 'none'}")
    return training


def _roll_out(
    backend: Backend,
    request: DeployRequest,
    progress: Progress,
    budget: Budget,
    before: EndpointState,
    name: str,
    version: str,
    action: DeploymentAction,
) -> tuple[EndpointState, list[str]]:
    """Create/finish the deployment, smoke-test it, shift traffic, delete what is no longer needed."""
    previous = serving_deployment(before.traffic, exclude=name)
    with progress.step("deployment") as say:
        spec = DeploymentSpec(
            endpoint=request.online_endpoint,
            name=name,
            model_name=request.model_name,
            model_version=version,
            model_registry=request.model_registry,
        )
        backend.create_deployment(spec, budget.cap("deployment", request.deployment_deadline_s))
        say(f"{name} ({spec.model_reference}) healthy ({action.value})")
    with progress.step("smoke") as say:
        _smoke_or_roll_back(backend, request, before.traffic, name)
        say(f"{name} answered the request sample")
    with progress.step("traffic") as say:
        state = before
        for plan in traffic_plan(before.traffic, name, request.traffic_steps):
            state = backend.set_traffic(request.online_endpoint, plan)
            say(_traffic_text(state.traffic))
            if state.traffic.get(name, 0) < 100:
                # A stand-in for watching metrics between steps: the new deployment must keep answering.
                _smoke_or_roll_back(backend, request, state.traffic, name)
    with progress.step("cleanup") as say:
        deleted = deployments_to_delete(state.deployments, state.traffic, name, previous)
        for stale in deleted:
            backend.delete_deployment(request.online_endpoint, stale)
        say(f"deleted {', '.join(deleted) or 'nothing'}; rollback target: {previous or 'none'}")
    final = backend.get_online_endpoint(request.online_endpoint) if deleted else state
    return final or state, deleted


def _smoke_or_roll_back(
    backend: Backend, request: DeployRequest, traffic: Mapping[str, int], name: str
) -> None:
    result = backend.smoke_test(request.online_endpoint, name, request.request_sample)
    if result.ok:
        return
    restore = rollback_traffic(traffic, name)
    if restore is not None:
        backend.set_traffic(request.online_endpoint, restore)
    backend.delete_deployment(request.online_endpoint, name)
    serving = _traffic_text(restore if restore is not None else traffic)
    raise SmokeTestFailed(
        f"deployment {name} failed its smoke test (HTTP {result.status}): {result.detail}; "
        f"it was deleted and traffic stays {serving}"
    )


def _run_batch(
    backend: Backend, request: DeployRequest, progress: Progress, budget: Budget, version: str
) -> BatchResult | None:
    if request.batch_sample is None:
        progress.skip("batch", "no batch sample configured")
        return None
    with progress.step("batch") as say:
        result = backend.run_batch(
            request.batch_endpoint,
            request.batch_deployment,
            request.model_name,
            version,
            request.batch_sample,
            budget.cap("batch", request.batch_deadline_s),
        )
        if result.status != "Completed":
            raise DeployError(
                f"batch scoring on {request.batch_endpoint}/{request.batch_deployment} ended {result.status}"
            )
        say(f"{result.rows} rows scored -> {result.output or 'n/a'}")
    return result


def _asset_text(ref: AssetRef) -> str:
    return f"{ref.name}:{ref.version} ({'registered' if ref.created else 'unchanged, already registered'})"


def _traffic_text(traffic: Mapping[str, int]) -> str:
    return ", ".join(f"{name}={share}%" for name, share in sorted(traffic.items()) if share) or "nothing"


def _metrics_text(metrics: Mapping[str, object]) -> str:
    """`r2=0.9312 rmse=3.204 mae=1.987`: four significant digits are all a reader compares."""
    shown = {key: metrics[key] for key in ("r2", "rmse", "mae") if key in metrics}
    return " ".join(
        f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}" for key, value in shown.items()
    )
