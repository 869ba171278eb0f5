"""Training jobs for the Azure backend: submit the pipeline once per content key, follow it, read the gate."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from mlops.backends.azure.assets import Assets, content_hash, tree_bytes
from mlops.backends.azure.session import Session, job_status
from mlops.backends.base import BackendError, TrainingRequest, TrainingResult
from mlops.retry import DeadlineExceeded

TERMINAL_JOB_STATES = frozenset({"Completed", "Failed", "Canceled", "NotResponding", "Paused"})
FAILED_JOB_STATES = frozenset({"Failed", "Canceled", "NotResponding", "Paused"})
REGISTER_STEP, REGISTER_OUTPUT = "register", "model_info_output_path"
EVALUATE_STEP, EVALUATE_OUTPUT = "evaluate", "evaluation_output"
MAX_RESUBMITS = 20
CODE_SUFFIXES = (".py",)
BRANCH_VARIABLES = ("BUILD_SOURCEBRANCHNAME", "GITHUB_HEAD_REF", "GITHUB_REF_NAME")
"""Where CI names the branch (Azure DevOps, GitHub pull requests, GitHub pushes); checked in this order."""


def experiment_name(environment: str, branch: str) -> str:
    """`<env>_taxi_fare_train_<branch>`, with the branch reduced to what AML accepts in experiment names."""
    safe_branch = re.sub(r"[^A-Za-z0-9_-]+", "_", branch).strip("_") or "detached"
    return f"{environment}_taxi_fare_train_{safe_branch}"[:255]


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


class Training:
    """The training pipeline as an Azure ML job: at most one live job per content key."""

    def __init__(self, session: Session, assets: Assets, specs_root: Path) -> None:
        self.session = session
        self.assets = assets
        self.specs_root = specs_root

    def run(self, request: TrainingRequest) -> TrainingResult:
        s = self.session
        request = replace(
            request,
            compute=self.assets.compute_name(request.compute),
            experiment=experiment_name(s.outputs.environment, current_branch()),
        )
        key = self._run_key(request)
        existing, name = self._find_previous_job(key)
        if s.dry_run:
            return self._dry_run(request, existing, name)
        if existing is None:
            job = self._build_job(request, name, key)
            existing = s.create(
                f"submit {name}",
                lambda: s.client.jobs.create_or_update(job, experiment_name=request.experiment),
                lambda: s.client.jobs.get(name),
            )
            s.say(f"training: submitted {name} ({existing.studio_url})")
        else:
            s.say(f"training: attaching to {name} ({job_status(existing)}), submitted by an earlier run")
        final = self.wait_for_job(name, request.deadline_s)
        return self._result(final, request.model_name)

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
        s = self.session
        for attempt in range(1, MAX_RESUBMITS + 1):
            name = training_job_name(key, attempt)
            job = s.exists(f"job {name}", lambda name=name: s.client.jobs.get(name))
            if job is None or job_status(job) not in FAILED_JOB_STATES:
                return job, name
        raise BackendError(
            f"training with key {key} failed {MAX_RESUBMITS} times; fix the cause (see the studio links) "
            "or change the code or data before retrying"
        )

    def _dry_run(self, request: TrainingRequest, existing: Any, name: str) -> TrainingResult:
        s = self.session
        target = f"job {name} in {request.experiment}"
        if existing is not None and job_status(existing) == "Completed":
            # A re-run with the same code and data: the job's verdict is there to read (reads only).
            s.add_plan("training", target, "exists (Completed); would attach, nothing submitted")
            result = self._result(existing, request.model_name)
            verdict = (
                f"registered version {result.model_version}" if result.model_version else "registered nothing"
            )
            s.add_plan(
                "gate",
                f"model {request.model_name}",
                f"read from {name}: deploy_flag {result.deploy_flag}, {verdict}",
            )
            return result
        state = f"exists ({job_status(existing)}); would follow it" if existing else "would submit and wait"
        s.add_plan("training", target, state)
        version = next_model_version(self.assets.model_versions(request.model_name))
        s.add_plan("gate", f"model {request.model_name}", f"assumes a new champion (version {version})")
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
        job.tags = {**(job.tags or {}), "run_key": key, "environment": self.session.outputs.environment}
        return job

    def wait_for_job(self, name: str, deadline_s: float, what: str = "training") -> Any:
        """Poll the job until terminal, one progress line per state change, within the deadline."""
        s = self.session
        started = s.clock()
        seen: list[str] = []

        def poll() -> Any:
            job = s.call(f"job {name}", lambda: s.client.jobs.get(name))
            if not seen or seen[-1] != job_status(job):
                seen.append(job_status(job))
                s.say(f"{what}: {name} {seen[-1]} ({s.clock() - started:.0f}s)")
            return job

        try:
            return s.wait(
                poll, lambda job: job_status(job) in TERMINAL_JOB_STATES, deadline_s, f"{what} job {name}"
            )
        except DeadlineExceeded as late:
            raise BackendError(
                f"{late}; it keeps running in Azure. Re-run the hook to attach to it"
            ) from None

    def _children(self, name: str) -> list[Any]:
        """The pipeline's step jobs (run history, through jobs.list, which yields None for a child it cannot
        convert: those are skipped)."""
        s = self.session
        children = s.call(f"steps of {name}", lambda: list(s.client.jobs.list(parent_job_name=name)))
        return [child for child in children if child is not None]

    def _result(self, job: Any, model_name: str) -> TrainingResult:
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
        s = self.session
        child = by_step.get(step)
        if child is None:
            raise BackendError(
                f"training job {job_name} has no '{step}' step; check {self.specs_root}/train/pipeline.yml"
            )
        with tempfile.TemporaryDirectory(prefix="aml-output-") as scratch:
            s.call(
                f"output {output} of {step}",
                lambda: s.client.jobs.download(child.name, download_path=scratch, output_name=output),
            )
            found = sorted(Path(scratch).rglob(file))
            if not found:
                raise BackendError(f"step '{step}' of {job_name} wrote no {file} into its output '{output}'")
            return json.loads(found[0].read_text(encoding="utf-8"))
