"""The Azure ML backend of the post-deploy hook: each Backend step as an idempotent call through MLClient."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import yaml

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
    TransientBackendError,
)
from mlops.retry import (
    TRANSIENT_STATUSES,
    DeadlineExceeded,
    RetryExhausted,
    RetryPolicy,
    call_with_retry,
    describe,
    is_transient,
    status_of,
    wait_until,
)
from mlops.model_monitor import (
    MonitorSettings,
    add_data_collection,
    endpoint_resource_id,
    ensure_monitor,
    send_endpoint_logs,
)
from mlops.serving import sample_row_count, verdict
from mlops.stack_outputs import StackOutputs, StackOutputsError, load_stack_outputs

T = TypeVar("T")

SPECS_ROOT = Path(__file__).resolve().parents[1] / "azureml"
TERMINAL_JOB_STATES = frozenset({"Completed", "Failed", "Canceled", "NotResponding", "Paused"})
FAILED_JOB_STATES = frozenset({"Failed", "Canceled", "NotResponding", "Paused"})
REGISTER_STEP, REGISTER_OUTPUT = "register", "model_info_output_path"
EVALUATE_STEP, EVALUATE_OUTPUT = "evaluate", "evaluation_output"
MAX_RESUBMITS = 20
CODE_SUFFIXES = (".py",)
DEFAULT_POLICY = RetryPolicy()
ENDPOINT_DEADLINE_S = 1800.0
SMOKE_RANGE = (0.0, 500.0)
"""Plausible taxi fares in dollars: a smoke-tested deployment must predict within this range (as locally)."""
"""Endpoint create/update, traffic shifts and deletes: ARM operations that take minutes, not hours."""

_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")


@dataclass(frozen=True)
class PlanItem:
    """One line of a dry-run plan: a step, what it targets, and what exists already."""

    step: str
    target: str
    state: str

    def __str__(self) -> str:
        return f"plan: {self.step:<12} {self.target:<48} {self.state}"


# ---------------------------------------------------------------- pure helpers


def content_hash(parts: Sequence[bytes], length: int = 16) -> str:
    """A short, stable sha256 of the given byte strings (length-prefixed, so ("ab","c") != ("a","bc"))."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()[:length]


def tree_bytes(path: Path, suffixes: tuple[str, ...] = ()) -> list[bytes]:
    """Relative names and contents of a file or of every file under a folder (optionally only `suffixes`)."""
    if path.is_file():
        return [path.read_bytes()]
    files = sorted(
        p
        for p in path.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and (not suffixes or p.suffix in suffixes)
    )
    return [
        part for file in files for part in (file.relative_to(path).as_posix().encode(), file.read_bytes())
    ]


def environment_version(spec: EnvironmentSpec) -> str:
    """Environment versions are immutable in AML: version = hash of the image name and the conda file."""
    return content_hash([spec.image.encode(), spec.conda_file.read_bytes()])


def data_version(spec: DataSpec) -> str:
    """The data asset version: hash of the file (or folder) content, so the same data is registered once."""
    return content_hash(tree_bytes(spec.path))


def experiment_name(environment: str, branch: str) -> str:
    """`<env>_taxi_fare_train_<branch>`, with the branch reduced to what AML accepts in experiment names."""
    safe_branch = re.sub(r"[^A-Za-z0-9_-]+", "_", branch).strip("_") or "detached"
    return f"{environment}_taxi_fare_train_{safe_branch}"[:255]


BRANCH_VARIABLES = ("BUILD_SOURCEBRANCHNAME", "GITHUB_HEAD_REF", "GITHUB_REF_NAME")
"""Where CI names the branch (Azure DevOps, GitHub pull requests, GitHub pushes); checked in this order."""


def current_branch(env: Mapping[str, str] = os.environ) -> str:
    """The branch being deployed: from CI variables, else from git, else 'local'."""
    for variable in BRANCH_VARIABLES:
        if env.get(variable):
            return env[variable]
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--abbrev-ref", "HEAD"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return "local"
    branch = done.stdout.strip()
    return branch if done.returncode == 0 and branch and branch != "HEAD" else "local"


def training_job_name(run_key: str, attempt: int) -> str:
    """Deterministic job names make a re-run find the job it submitted before instead of submitting twice."""
    base = f"taxi-train-{run_key}"
    return base if attempt == 1 else f"{base}-r{attempt}"


def plain(value: Any, default: str = "Unknown") -> str:
    """An SDK state as plain text (the SDK hands back str enums whose str() is 'JobStatus.X')."""
    return str(getattr(value, "value", value) or default)


def job_status(job: Any) -> str:
    """A job's status as plain text."""
    return plain(getattr(job, "status", None))


def failing_step(children: Sequence[tuple[str, str]]) -> str | None:
    """The first step (display name, status) that did not complete, preferring an outright failure."""
    for name, status in children:
        if status == "Failed":
            return name
    for name, status in children:
        if status in FAILED_JOB_STATES:
            return name
    return None


def next_model_version(existing: Sequence[str]) -> str:
    """A plausible version for a dry run: one above the highest numeric version (AML numbers from 1)."""
    numbers = [int(v) for v in existing if v.isdigit()]
    return str(max(numbers, default=0) + 1)


def redact(text: str, secrets: Sequence[str]) -> str:
    """Remove known secrets and any bearer token from a message before it is shown or raised."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return _BEARER.sub(r"\1***", text)


def csv_rows(path: Path) -> int:
    """Data rows of a CSV file with a header line."""
    with path.open(encoding="utf-8") as handle:
        return max(0, sum(1 for line in handle if line.strip()) - 1)


# ---------------------------------------------------------------- the backend


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
        self.outputs = outputs
        self.dry_run = dry_run
        self.plan: list[PlanItem] = []
        self._credential = credential
        self._progress = progress
        self._specs = specs_root
        self._policy = retry_policy
        self._poll_s = poll_interval_s
        self._clock = clock
        self._sleep = sleep
        self._http_post = http_post
        self._client_instance: Any = None
        self._secrets: list[str] = []
        self._score_env: str | None = None
        self._training_data: str | None = None

    @classmethod
    def from_cli(
        cls, *, stack: str | None, outputs: Path | None, dry_run: bool, log: Callable[[str], None]
    ) -> AzureBackend:
        """The backend for `python -m mlops deploy --target azure`: outputs from --outputs or `pulumi`."""
        from mlops.orchestrate import UsageError

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

    # -------------------------------------------------------- plumbing

    @property
    def _client(self) -> Any:
        """MLClient built on first use; its own retries are off so ours (deadline, Retry-After) govern."""
        if self._client_instance is None:
            from azure.ai.ml import MLClient

            credential = self._credential
            if credential is None:
                from azure.identity import DefaultAzureCredential

                credential = DefaultAzureCredential()
            self._client_instance = MLClient(
                credential,
                self.outputs.subscription_id,
                self.outputs.resource_group,
                self.outputs.workspace_name,
                retry_total=0,
                show_progress=False,
            )
        return self._client_instance

    def _say(self, message: str) -> None:
        self._progress(redact(message, self._secrets))

    def _plan(self, step: str, target: str, state: str) -> None:
        item = PlanItem(step, target, state)
        self.plan.append(item)
        self._say(str(item))

    def _call(self, what: str, operation: Callable[[], T]) -> T:
        """One Azure call: transient failures retried, then every failure mapped to a BackendError."""
        with self._azure_errors(what):
            return call_with_retry(
                operation,
                self._policy,
                clock=self._clock,
                sleep=self._sleep,
                on_retry=lambda attempt, delay, error: self._say(
                    f"{what}: {describe(error)}; retry {attempt} in {delay:.1f}s"
                ),
            )

    @contextmanager
    def _azure_errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except BackendError:
            raise
        except RetryExhausted as exhausted:
            raise TransientBackendError(self._safe(f"{what}: {exhausted}")) from None
        except DeadlineExceeded as late:
            raise BackendError(self._safe(f"{what}: {late}")) from None
        except Exception as error:  # noqa: BLE001 - every SDK failure becomes a BackendError with advice
            # Transient errors land here when they happen outside our retry (e.g. while polling an LRO).
            kind = TransientBackendError if is_transient(error) else BackendError
            raise kind(self._safe(f"{what}: {self._advice(error)}")) from None

    def _safe(self, message: str) -> str:
        return redact(message, self._secrets)

    def _advice(self, error: BaseException) -> str:
        status = status_of(error)
        names = {cls.__name__ for cls in type(error).__mro__}
        where = f"workspace {self.outputs.workspace_name!r} in resource group {self.outputs.resource_group!r}"
        if status == 401 or "ClientAuthenticationError" in names:
            return (
                f"authentication failed ({describe(error)}): no usable identity or its token was rejected. "
                "Run `az login`, or in CI set AZURE_CLIENT_ID/AZURE_TENANT_ID and a federated token"
            )
        if status == 403:
            return (
                f"permission denied on {where} ({describe(error)}). Grant the deploying identity "
                "'AzureML Data Scientist' on the workspace (see the README section of the hook)"
            )
        if status == 404 or "ResourceNotFoundError" in names:
            return (
                f"not found in {where} ({describe(error)}); is the stack deployed, are the outputs current?"
            )
        return describe(error)

    def _exists(self, what: str, read: Callable[[], T]) -> T | None:
        """A read that treats 404 as absence rather than failure."""
        from azure.core.exceptions import ResourceNotFoundError

        def read_or_none() -> T | None:
            try:
                return read()
            except ResourceNotFoundError:
                return None

        return self._call(what, read_or_none)

    def _finish(self, what: str, begin: Callable[[], Any], deadline_s: float) -> Any:
        """Start a long-running operation and wait for it within the deadline."""
        poller = self._call(what, begin)
        with self._azure_errors(what):
            poller.wait(timeout=deadline_s)
            if not poller.done():
                raise DeadlineExceeded(
                    f"not finished within {deadline_s:.0f}s; it continues in Azure, re-run to resume"
                )
            return poller.result()

    # -------------------------------------------------------- assets and compute

    def ensure_environment(self, spec: EnvironmentSpec) -> AssetRef:
        from azure.ai.ml.entities import Environment

        version = environment_version(spec)
        target = f"environment {spec.name}:{version}"
        if self._exists(target, lambda: self._client.environments.get(spec.name, version=version)):
            if self.dry_run:
                self._plan("environment", f"{spec.name}:{version}", "exists")
            return AssetRef(spec.name, version, created=False)
        if self.dry_run:
            self._plan("environment", f"{spec.name}:{version}", "would create")
            return AssetRef(spec.name, version, created=True)
        environment = Environment(
            name=spec.name, version=version, image=spec.image, conda_file=str(spec.conda_file)
        )
        self._call(target, lambda: self._client.environments.create_or_update(environment))
        return AssetRef(spec.name, version, created=True)

    def ensure_data(self, spec: DataSpec) -> AssetRef:
        from azure.ai.ml.constants import AssetTypes
        from azure.ai.ml.entities import Data

        if not spec.path.exists():
            raise BackendError(
                f"data asset {spec.name}: {spec.path} does not exist; generate or pass the data file"
            )
        version = data_version(spec)
        target = f"data {spec.name}:{version}"
        # The model monitor compares production traffic with exactly this version.
        self._training_data = f"azureml:{spec.name}:{version}"
        if self._exists(target, lambda: self._client.data.get(spec.name, version=version)):
            if self.dry_run:
                self._plan("data", f"{spec.name}:{version}", "exists")
            return AssetRef(spec.name, version, created=False)
        if self.dry_run:
            self._plan("data", f"{spec.name}:{version}", f"would upload {spec.path.name} and create")
            return AssetRef(spec.name, version, created=True)
        data = Data(
            name=spec.name,
            version=version,
            path=str(spec.path),
            type=AssetTypes.URI_FILE if spec.path.is_file() else AssetTypes.URI_FOLDER,
            description=spec.description or None,
        )
        # The blob upload inside create_or_update has no SDK retry; our retry covers the whole call.
        self._call(target, lambda: self._client.data.create_or_update(data))
        return AssetRef(spec.name, version, created=True)

    def _compute_name(self, requested: str) -> str:
        """The stack's cluster wins over the spec's default name: Pulumi named it per environment."""
        return self.outputs.compute_cluster_name or requested

    def _score_environment(self) -> str:
        """Ensure the inference environment the deployment specs name; pin its content-hash version."""
        if self._score_env is None:
            spec_file = self._specs / "deploy" / "online" / "score-env.yml"
            raw = yaml.safe_load(spec_file.read_text(encoding="utf-8"))
            spec = EnvironmentSpec(raw["name"], raw["image"], spec_file.parent / raw["conda_file"])
            ref = self.ensure_environment(spec)
            self._score_env = f"azureml:{ref.name}:{ref.version}"
        return self._score_env

    def check_compute(self, name: str) -> str:
        name = self._compute_name(name)
        compute = self._exists(f"compute {name}", lambda: self._client.compute.get(name))
        if compute is None:
            raise BackendError(
                f"compute {name!r} does not exist in workspace {self.outputs.workspace_name!r}; "
                "Pulumi creates it (computeClusterName output): run `pulumi up` for this stack first"
            )
        state = plain(getattr(compute, "provisioning_state", None), "unknown")
        size = getattr(compute, "size", None) or "?"
        scale = f"{getattr(compute, 'min_instances', '?')}-{getattr(compute, 'max_instances', '?')} nodes"
        if self.dry_run:
            self._plan("compute", name, f"exists ({state})")
        if state not in ("Succeeded", "unknown"):
            raise BackendError(
                f"compute {name!r} is {state}; wait for it to finish provisioning or fix it in Azure"
            )
        return f"{name}: {getattr(compute, 'type', 'compute')} {size}, {scale}, {state}"

    # -------------------------------------------------------- training

    def run_training(self, request: TrainingRequest) -> TrainingResult:
        request = replace(
            request,
            compute=self._compute_name(request.compute),
            experiment=experiment_name(self.outputs.environment, current_branch()),
        )
        key = self._run_key(request)
        existing, name = self._find_previous_job(key)
        if self.dry_run:
            return self._dry_run_training(request, existing, name)
        if existing is None:
            job = self._build_job(request, name, key)
            existing = self._call(
                f"submit {name}",
                lambda: self._client.jobs.create_or_update(job, experiment_name=request.experiment),
            )
            self._say(f"training: submitted {name} ({existing.studio_url})")
        else:
            self._say(f"training: attaching to {name} ({job_status(existing)}), submitted by an earlier run")
        final = self._wait_for_job(name, request.deadline_s)
        return self._training_result(final, request.model_name)

    def _run_key(self, request: TrainingRequest) -> str:
        """Same pipeline, code, data, environment and parameters -> same key -> same job (no duplicate)."""
        pipeline = yaml.safe_load(request.pipeline.read_text(encoding="utf-8"))
        code_dirs = sorted(
            {
                (request.pipeline.parent / step["code"]).resolve()
                for step in (pipeline.get("jobs") or {}).values()
                if isinstance(step, dict) and "code" in step
            }
        )
        parts = [request.pipeline.read_bytes()]
        for code_dir in code_dirs:
            # Only sources count: runs drop scratch files (mlruns/, *.db) into step folders.
            parts += tree_bytes(code_dir, CODE_SUFFIXES) if code_dir.exists() else []
        params = [request.data.version, request.environment.version, request.compute, request.model_name]
        params += ["sweep"] if request.sweep else []
        return content_hash(parts + [str(p).encode() for p in [*params, request.seed, request.experiment]])

    def _find_previous_job(self, key: str) -> tuple[Any, str]:
        """The job of this key still worth following (running or completed), or the next free name."""
        for attempt in range(1, MAX_RESUBMITS + 1):
            name = training_job_name(key, attempt)
            job = self._exists(f"job {name}", lambda name=name: self._client.jobs.get(name))
            if job is None or job_status(job) not in FAILED_JOB_STATES:
                return job, name
        raise BackendError(
            f"training with key {key} failed {MAX_RESUBMITS} times; fix the cause (see the studio links) "
            "or change the code or data before retrying"
        )

    def _dry_run_training(self, request: TrainingRequest, existing: Any, name: str) -> TrainingResult:
        state = f"exists ({job_status(existing)}); would follow it" if existing else "would submit and wait"
        self._plan("training", f"job {name} in {request.experiment}", state)
        versions = self._call(
            f"model {request.model_name}",
            lambda: [m.version for m in self._client.models.list(name=request.model_name)],
        )
        version = next_model_version(versions)
        self._plan("gate", f"model {request.model_name}", f"assumes a new champion (version {version})")
        return TrainingResult(
            run_id=name,
            status="Completed",
            deploy_flag=1,
            model_name=request.model_name,
            model_version=version,
            metrics={"reason": "dry run: training not run, the gate is assumed to register"},
            url=getattr(existing, "studio_url", None),
        )

    def _build_job(self, request: TrainingRequest, name: str, key: str) -> Any:
        """The pipeline spec with this run's data, environment, compute and parameters pinned."""
        from azure.ai.ml.entities._builders import Sweep

        from mlops.pipeline_spec import load_pipeline_job

        environment = f"azureml:{request.environment.name}:{request.environment.version}"
        overrides: list[dict[str, Any]] = [
            {"inputs.raw_data.path": f"azureml:{request.data.name}:{request.data.version}"},
            {"inputs.model_name": request.model_name},
            {"inputs.seed": request.seed},
            {"settings.default_compute": f"azureml:{request.compute}"},
        ]
        job = load_pipeline_job(request.pipeline, request.sweep, params_override=overrides)
        for step in job.jobs.values():
            if isinstance(step, Sweep):
                step.trial.environment = environment  # a sweep runs its trial component's environment
            else:
                step.environment = environment
        job.name = name
        job.experiment_name = request.experiment
        job.tags = {**(job.tags or {}), "run_key": key, "environment": self.outputs.environment}
        return job

    def _wait_for_job(self, name: str, deadline_s: float, what: str = "training") -> Any:
        """Poll the job until terminal, one progress line per state change, within the deadline."""
        started = self._clock()
        seen: list[str] = []

        def poll() -> Any:
            job = self._call(f"job {name}", lambda: self._client.jobs.get(name))
            if not seen or seen[-1] != job_status(job):
                seen.append(job_status(job))
                self._say(f"{what}: {name} {seen[-1]} ({self._clock() - started:.0f}s)")
            return job

        try:
            return self._wait(
                poll, lambda job: job_status(job) in TERMINAL_JOB_STATES, deadline_s, f"{what} job {name}"
            )
        except DeadlineExceeded as late:
            raise BackendError(
                f"{late}; it keeps running in Azure. Re-run the hook to attach to it"
            ) from None

    def _wait(self, poll: Callable[[], T], done: Callable[[T], bool], deadline_s: float, what: str) -> T:
        return wait_until(
            poll,
            done,
            deadline_s=deadline_s,
            interval_s=self._poll_s,
            what=what,
            state=lambda value: plain(
                getattr(value, "status", None) or getattr(value, "provisioning_state", None)
            ),
            clock=self._clock,
            sleep=self._sleep,
        )

    def _children(self, name: str) -> list[Any]:
        """The pipeline's step jobs (run history, reached through MLClient's jobs.list)."""
        return self._call(f"steps of {name}", lambda: list(self._client.jobs.list(parent_job_name=name)))

    def _training_result(self, job: Any, model_name: str) -> TrainingResult:
        children = self._children(job.name)
        by_step = {child.display_name or child.name: child for child in children}
        status = job_status(job)
        if status != "Completed":
            step = failing_step([(step, job_status(child)) for step, child in by_step.items()])
            where = f"step '{step}' {job_status(by_step[step])}" if step else f"pipeline {status}"
            return TrainingResult(
                run_id=job.name,
                status=status,
                deploy_flag=0,
                model_name=model_name,
                model_version=None,
                metrics={"error": f"{where}; logs: {job.studio_url}", "failed_step": step or ""},
                url=job.studio_url,
            )
        info = self._read_output(job.name, by_step, REGISTER_STEP, REGISTER_OUTPUT, "model_info.json")
        metrics = self._read_output(job.name, by_step, EVALUATE_STEP, EVALUATE_OUTPUT, "metrics.json")
        version = info.get("model_version")
        return TrainingResult(
            run_id=job.name,
            status=status,
            deploy_flag=int(info.get("deploy_flag", 0)),
            model_name=str(info.get("model_name") or model_name),
            model_version=str(version) if version not in (None, "") and info.get("registered") else None,
            metrics=metrics,
            url=job.studio_url,
        )

    def _read_output(
        self, job_name: str, by_step: Mapping[str, Any], step: str, output: str, file: str
    ) -> dict:
        """Download a step's named output and parse one JSON file in it.

        The register step's model_info.json is the gate's own verdict, including "registered nothing"
        (deploy_flag 0) which no model tag could express, and it is what the local backend reads too.
        """
        child = by_step.get(step)
        if child is None:
            raise BackendError(
                f"training job {job_name} has no '{step}' step; check {self._specs}/train/pipeline.yml"
            )
        with tempfile.TemporaryDirectory(prefix="aml-output-") as scratch:
            self._call(
                f"output {output} of {step}",
                lambda: self._client.jobs.download(child.name, download_path=scratch, output_name=output),
            )
            found = sorted(Path(scratch).rglob(file))
            if not found:
                raise BackendError(f"step '{step}' of {job_name} wrote no {file} into its output '{output}'")
            return json.loads(found[0].read_text(encoding="utf-8"))

    def champion_version(self, model_name: str) -> str | None:
        """The newest registered version: register.py registers only what beat the champion, so the newest
        version is the champion. (Whether AML's MLflow registry keeps the `champion` alias is unverified
        offline, so it is not read here.)"""
        models = self._call(f"model {model_name}", lambda: list(self._client.models.list(name=model_name)))
        versions = [m.version for m in models]
        if not versions:
            return None
        return max(versions, key=lambda v: (v.isdigit(), int(v) if v.isdigit() else 0, v))

    # -------------------------------------------------------- online endpoint

    def _endpoint_state(self, endpoint: Any) -> EndpointState:
        names = self._call(
            f"deployments of {endpoint.name}",
            lambda: [d.name for d in self._client.online_deployments.list(endpoint_name=endpoint.name)],
        )
        return EndpointState(
            name=endpoint.name,
            scoring_uri=endpoint.scoring_uri or "",
            traffic=dict(endpoint.traffic or {}),
            deployments=sorted(names),
        )

    def get_online_endpoint(self, name: str) -> EndpointState | None:
        endpoint = self._exists(f"online endpoint {name}", lambda: self._client.online_endpoints.get(name))
        return None if endpoint is None else self._endpoint_state(endpoint)

    def _planned_uri(self, name: str) -> str:
        """The scoring URI Azure gives a new online endpoint (what a dry run reports)."""
        return f"https://{name}.{self.outputs.location}.inference.ml.azure.com/score"

    def ensure_online_endpoint(self, name: str) -> EndpointState:
        from azure.ai.ml import load_online_endpoint

        state = self.get_online_endpoint(name)
        if state is not None:
            if self.dry_run:
                self._plan("endpoint", f"online {name}", f"exists (traffic {dict(state.traffic) or 'none'})")
            return state
        if self.dry_run:
            self._plan("endpoint", f"online {name}", "would create (key auth)")
            return EndpointState(name=name, scoring_uri=self._planned_uri(name), traffic={}, deployments=())
        endpoint = load_online_endpoint(self._specs / "deploy/online/online-endpoint.yml")
        endpoint.name = name
        endpoint.auth_mode = "key"
        endpoint.tags = {**(endpoint.tags or {}), "environment": self.outputs.environment}
        self._finish(
            f"create online endpoint {name}",
            lambda: self._client.online_endpoints.begin_create_or_update(endpoint),
            ENDPOINT_DEADLINE_S,
        )
        state = self.get_online_endpoint(name)
        if state is None:
            raise BackendError(f"online endpoint {name} was created but cannot be read back; re-run the hook")
        return state

    def create_deployment(self, spec: DeploymentSpec, deadline_s: float) -> None:
        from azure.ai.ml import load_online_deployment

        target = f"deployment {spec.name} on {spec.endpoint}"
        model = f"azureml:{spec.model_name}:{spec.model_version}"
        current = self._exists(target, lambda: self._client.online_deployments.get(spec.name, spec.endpoint))
        if (
            current is not None
            and plain(current.provisioning_state) == "Succeeded"
            and _same_model(current.model, spec)
        ):
            if self.dry_run:
                self._plan("deployment", f"{spec.endpoint}/{spec.name}", f"exists ({model})")
            return
        environment = self._score_environment()
        if self.dry_run:
            self._plan(
                "deployment", f"{spec.endpoint}/{spec.name}", f"would create {model}, {spec.instance_type}"
            )
            return
        deployment = load_online_deployment(self._specs / "deploy/online/online-deployment.yml")
        deployment.environment = environment
        deployment.name = spec.name
        deployment.endpoint_name = spec.endpoint
        deployment.model = model
        deployment.instance_type = spec.instance_type
        deployment.instance_count = spec.instance_count
        add_data_collection(deployment)
        started = self._clock()
        self._finish(
            target, lambda: self._client.online_deployments.begin_create_or_update(deployment), deadline_s
        )
        remaining = max(0.0, deadline_s - (self._clock() - started))
        self._wait_healthy(spec, remaining)

    def _wait_healthy(self, spec: DeploymentSpec, deadline_s: float) -> None:
        def poll() -> Any:
            current = self._call(
                f"deployment {spec.name}",
                lambda: self._client.online_deployments.get(spec.name, spec.endpoint),
            )
            if plain(current.provisioning_state) in ("Failed", "Canceled"):
                raise BackendError(
                    f"deployment {spec.name} on {spec.endpoint} ended {plain(current.provisioning_state)}; "
                    f"read its logs with `az ml online-deployment get-logs -n {spec.name} -e {spec.endpoint}`"
                )
            return current

        try:
            self._wait(
                poll,
                lambda d: plain(d.provisioning_state) == "Succeeded",
                deadline_s,
                f"deployment {spec.name}",
            )
        except DeadlineExceeded as late:
            raise BackendError(f"{late}; re-run the hook to resume") from None

    def smoke_test(self, endpoint: str, deployment: str, request_sample: Path) -> SmokeResult:
        try:
            rows = sample_row_count(json.loads(request_sample.read_text(encoding="utf-8")))
        except ValueError as problem:
            raise BackendError(f"{request_sample}: {problem}") from None
        if self.dry_run:
            self._plan("smoke", f"{endpoint}/{deployment}", f"would POST {rows} rows with the endpoint key")
            return SmokeResult(ok=True, status=None, detail="dry run: not sent")
        state = self._call(f"online endpoint {endpoint}", lambda: self._client.online_endpoints.get(endpoint))
        keys = self._call(f"keys of {endpoint}", lambda: self._client.online_endpoints.get_keys(endpoint))
        key = keys.primary_key
        self._secrets.append(key)
        headers = {
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/json",
            # Routes to this deployment whatever the traffic map says, so it is tested before it serves.
            "azureml-model-deployment": deployment,
        }
        body = request_sample.read_bytes()
        try:
            response = self._call(
                f"score {endpoint}/{deployment}",
                lambda: _raise_for_transient(
                    self._post(state.scoring_uri, data=body, headers=headers, timeout=60)
                ),
            )
        except BackendError as error:
            return SmokeResult(ok=False, status=None, detail=str(error))
        result = verdict(response.status_code, response.text.encode(), rows, SMOKE_RANGE)
        return replace(result, detail=redact(result.detail, self._secrets))

    def _post(self, url: str, **kwargs: Any) -> Any:
        if self._http_post is not None:
            return self._http_post(url, **kwargs)
        import requests

        return requests.post(url, **kwargs)

    def set_traffic(self, endpoint: str, traffic: Mapping[str, int]) -> EndpointState:
        if self.dry_run:
            # A first deploy plans an endpoint that does not exist yet: plan against what would be there.
            self._plan("traffic", f"online {endpoint}", f"would set {dict(traffic)}")
            state = self.get_online_endpoint(endpoint) or EndpointState(
                endpoint, self._planned_uri(endpoint), {}, ()
            )
            return EndpointState(state.name, state.scoring_uri, dict(traffic), state.deployments)
        current = self._call(
            f"online endpoint {endpoint}", lambda: self._client.online_endpoints.get(endpoint)
        )
        current.traffic = dict(traffic)
        self._finish(
            f"traffic of {endpoint}",
            lambda: self._client.online_endpoints.begin_create_or_update(current),
            ENDPOINT_DEADLINE_S,
        )
        state = self.get_online_endpoint(endpoint)
        if state is None:
            raise BackendError(f"online endpoint {endpoint} disappeared while shifting traffic")
        self._monitor(endpoint, state)
        return state

    def _monitor(self, endpoint: str, state: EndpointState) -> None:
        """Endpoint logs to Log Analytics and the model monitor on the serving deployment.

        Best effort: the deployment already serves, so a monitoring failure is reported, not raised.
        """
        serving = max(state.traffic.items(), key=lambda item: item[1], default=(None, 0))
        if serving[0] is None or serving[1] == 0:
            return
        outputs = self.outputs
        settings = MonitorSettings(
            drift_threshold=outputs.drift_threshold or 0.1, emails=outputs.alert_emails
        )
        try:
            if outputs.log_analytics_workspace_id:
                endpoint_id = endpoint_resource_id(
                    outputs.subscription_id, outputs.resource_group, outputs.workspace_name, endpoint
                )
                send_endpoint_logs(self._client._credential, endpoint_id, outputs.log_analytics_workspace_id)
            if self._training_data is None:
                self._say(
                    f"model monitor: no training data registered by this run; not changed on {endpoint}"
                )
                return
            self._say(
                ensure_monitor(
                    self._client, endpoint=endpoint, deployment=serving[0], training_data=self._training_data,
                    settings=settings,
                )
            )  # fmt: skip
        except Exception as error:  # noqa: BLE001 - see docstring
            self._say(
                f"model monitor on {endpoint}: not set up ({self._safe(describe(error))}); the endpoint serves"
            )

    def delete_deployment(self, endpoint: str, deployment: str) -> None:
        if self.dry_run:
            self._plan("cleanup", f"{endpoint}/{deployment}", "would delete")
            return
        target = f"deployment {deployment} on {endpoint}"
        if self._exists(target, lambda: self._client.online_deployments.get(deployment, endpoint)) is None:
            return  # already gone: a re-run after a crash during cleanup
        self._finish(
            f"delete {target}",
            lambda: self._client.online_deployments.begin_delete(name=deployment, endpoint_name=endpoint),
            ENDPOINT_DEADLINE_S,
        )

    # -------------------------------------------------------- batch

    def run_batch(
        self,
        endpoint: str,
        deployment: str,
        model_name: str,
        model_version: str,
        sample: Path,
        deadline_s: float,
    ) -> BatchResult:
        from azure.ai.ml import Input

        rows = csv_rows(sample)
        self._ensure_batch_endpoint(endpoint)
        self._ensure_batch_deployment(endpoint, deployment, model_name, model_version)
        if self.dry_run:
            self._plan("batch", f"{endpoint}/{deployment}", f"would score {sample.name} ({rows} rows)")
            # "Completed" keeps the orchestration going so the plan covers every step; output says why.
            return BatchResult(status="Completed", rows=rows, output="dry run: not submitted")
        job = self._call(
            f"batch scoring on {endpoint}",
            lambda: self._client.batch_endpoints.invoke(
                endpoint_name=endpoint,
                deployment_name=deployment,
                input=Input(type="uri_file", path=str(sample)),
            ),
        )
        final = self._wait_for_job(job.name, deadline_s, what="batch scoring")
        if job_status(final) != "Completed":
            raise BackendError(f"batch scoring job {job.name} ended {job_status(final)}: {final.studio_url}")
        return BatchResult(status="Completed", rows=rows, output=final.studio_url or job.name)

    def _ensure_batch_endpoint(self, name: str) -> None:
        from azure.ai.ml import load_batch_endpoint

        existing = self._exists(f"batch endpoint {name}", lambda: self._client.batch_endpoints.get(name))
        if self.dry_run:
            self._plan("batch", f"batch endpoint {name}", "exists" if existing else "would create")
        if existing is not None or self.dry_run:
            return
        endpoint = load_batch_endpoint(self._specs / "deploy/batch/batch-endpoint.yml")
        endpoint.name = name
        self._finish(
            f"create batch endpoint {name}",
            lambda: self._client.batch_endpoints.begin_create_or_update(endpoint),
            ENDPOINT_DEADLINE_S,
        )

    def _ensure_batch_deployment(self, endpoint: str, name: str, model_name: str, model_version: str) -> None:
        from azure.ai.ml import load_batch_deployment

        model = f"azureml:{model_name}:{model_version}"
        existing = self._exists(
            f"batch deployment {name}", lambda: self._client.batch_deployments.get(name, endpoint)
        )
        fresh = existing is not None and _same_model(
            existing.model, DeploymentSpec(endpoint, name, model_name, model_version)
        )
        target = f"batch deployment {endpoint}/{name}"
        if fresh:
            if self.dry_run:
                self._plan("batch", target, f"exists ({model})")
            return
        environment = self._score_environment()
        if self.dry_run:
            self._plan("batch", target, f"would create {model}")
            return
        deployment = load_batch_deployment(self._specs / "deploy/batch/batch-deployment.yml")
        deployment.environment = environment
        deployment.name = name
        deployment.endpoint_name = endpoint
        deployment.model = model
        deployment.compute = self.outputs.compute_cluster_name
        self._finish(
            f"create batch deployment {endpoint}/{name}",
            lambda: self._client.batch_deployments.begin_create_or_update(deployment),
            ENDPOINT_DEADLINE_S,
        )

    def close(self) -> None:
        """Nothing runs locally; drop the client so its HTTP sessions close."""
        self._client_instance = None


def _same_model(model: Any, spec: DeploymentSpec) -> bool:
    """Whether a deployment's model reference (ARM id or azureml: URI) names spec's model version."""
    reference = str(getattr(model, "id", None) or model or "")
    return reference.endswith(
        (f"{spec.model_name}:{spec.model_version}", f"models/{spec.model_name}/versions/{spec.model_version}")
    )


def _raise_for_transient(response: Any) -> Any:
    """Turn a retryable HTTP status into an exception our retry sees; other statuses are judged later."""
    if response.status_code in TRANSIENT_STATUSES:
        raise _HttpStatusError(response)
    return response


class _HttpStatusError(Exception):
    """A scoring response with a retryable status (carries it for mlops.retry)."""

    def __init__(self, response: Any) -> None:
        super().__init__(f"scoring returned HTTP {response.status_code}")
        self.response = response
        self.status_code = response.status_code
