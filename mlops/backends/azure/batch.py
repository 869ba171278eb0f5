"""Batch scoring for the Azure backend: the batch endpoint, one reused deployment, one scoring job per input.

Sources: batch deployments need azureml-core and azureml-dataset-runtime[fuse] (their own environment,
deploy/batch/batch-env.yml); `error_threshold: -1` reports Completed with nothing scored, so the spec uses 0
and the rows are counted from the job's `score` output; an endpoint holds at most 20 deployments, so one
name is updated in place (how-to-use-batch-model-deployments.md, how-to-manage-quotas.md; AZURE-FACTS
18-20). Invoking is a POST that starts a job: it is never repeated. The job has a deterministic name, so a
lost response or a re-run finds the job instead of starting a second one (AZURE-FACTS 22).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from mlops.backends.azure.assets import Assets, content_hash, tree_bytes
from mlops.backends.azure.online import same_model
from mlops.backends.azure.session import ENDPOINT_DEADLINE_S, Session, job_status
from mlops.backends.azure.training import FAILED_JOB_STATES, MAX_RESUBMITS, Training
from mlops.backends.base import BackendError, BatchResult, DeploymentSpec

MAX_DEPLOYMENTS_PER_ENDPOINT = 20
"""how-to-manage-quotas.md, "Number of deployments per endpoint"."""
SCORE_OUTPUT = "score"
"""The output a model batch deployment writes its results to."""


def csv_rows(path: Path) -> int:
    """Data rows of a CSV file with a header line."""
    with path.open(encoding="utf-8") as handle:
        return max(0, sum(1 for line in handle if line.strip()) - 1)


def scored_rows(path: Path) -> int:
    """Rows the batch job appended (output_action append_row writes one line per prediction, no header)."""
    with path.open(encoding="utf-8") as handle:
        return sum(1 for line in handle if line.strip())


def batch_job_name(endpoint: str, model: str, sample: Path, attempt: int) -> str:
    """The same endpoint, model and input -> the same job name, so a re-run attaches instead of re-invoking."""
    key = content_hash([endpoint.encode(), model.encode(), *tree_bytes(sample)], length=12)
    return f"taxi-batch-{key}" if attempt == 1 else f"taxi-batch-{key}-r{attempt}"


class Batch:
    """The batch endpoint on the compute cluster, scoring the batch sample."""

    def __init__(self, session: Session, assets: Assets, training: Training, specs_root: Path) -> None:
        self.session = session
        self.assets = assets
        self.training = training
        self.specs = specs_root / "deploy" / "batch"
        self.environment_spec = self.specs / "batch-env.yml"

    def run(
        self,
        endpoint: str,
        deployment: str,
        model_name: str,
        model_version: str,
        sample: Path,
        deadline_s: float,
    ) -> BatchResult:
        s = self.session
        rows = csv_rows(sample)
        spec = DeploymentSpec(endpoint, deployment, model_name, model_version)
        self._ensure_endpoint(endpoint)
        self._ensure_deployment(spec)
        name, existing = self._find_job(endpoint, spec.model_reference, sample)
        if s.dry_run:
            state = (
                f"job {name} exists ({job_status(existing)})" if existing else f"would score {sample.name}"
            )
            s.add_plan("batch", f"{endpoint}/{deployment}", f"{state} ({rows} rows)")
            # "Completed" keeps the orchestration going so the plan covers every step; output says why.
            return BatchResult(status="Completed", rows=rows, output="dry run: not submitted")
        if existing is None:
            self._invoke(endpoint, deployment, sample, name)
        else:
            s.say(f"batch scoring: attaching to {name} ({job_status(existing)}), started by an earlier run")
        final = self.training.wait_for_job(name, deadline_s, what="batch scoring")
        if job_status(final) != "Completed":
            raise BackendError(f"batch scoring job {name} ended {job_status(final)}: {final.studio_url}")
        scored = self._scored_rows(name)
        if scored != rows:
            raise BackendError(
                f"batch scoring job {name} completed but scored {scored} of {rows} rows; read its logs "
                f"({final.studio_url})"
            )
        return BatchResult(status="Completed", rows=scored, output=final.studio_url or name)

    def _find_job(self, endpoint: str, model: str, sample: Path) -> tuple[str, Any]:
        """The job of this input still worth following (running or completed), or the next free name."""
        s = self.session
        for attempt in range(1, MAX_RESUBMITS + 1):
            name = batch_job_name(endpoint, model, sample, attempt)
            job = s.exists(f"job {name}", lambda name=name: s.client.jobs.get(name))
            if job is None or job_status(job) not in FAILED_JOB_STATES:
                return name, job
        raise BackendError(
            f"batch scoring of {sample.name} failed {MAX_RESUBMITS} times; read the jobs' logs"
        )

    def _invoke(self, endpoint: str, deployment: str, sample: Path, name: str) -> None:
        """Start the job once. If the call fails, the job may still have started: look for it by name."""
        from azure.ai.ml import Input

        s = self.session
        s.create(
            f"batch scoring on {endpoint}",
            lambda: s.client.batch_endpoints.invoke(
                endpoint_name=endpoint,
                deployment_name=deployment,
                input=Input(type="uri_file", path=str(sample)),
                job_name=name,
            ),
            lambda: s.client.jobs.get(name),
        )
        s.say(f"batch scoring: started {name}")

    def _scored_rows(self, name: str) -> int:
        s = self.session
        with tempfile.TemporaryDirectory(prefix="aml-batch-") as scratch:
            s.call(
                f"output {SCORE_OUTPUT} of {name}",
                lambda: s.client.jobs.download(name, download_path=scratch, output_name=SCORE_OUTPUT),
            )
            found = sorted(Path(scratch).rglob("*.csv"))
            if not found:
                raise BackendError(
                    f"batch scoring job {name} wrote no predictions into its '{SCORE_OUTPUT}' output"
                )
            return sum(scored_rows(path) for path in found)

    def _ensure_endpoint(self, name: str) -> None:
        from azure.ai.ml import load_batch_endpoint

        s = self.session
        existing = s.exists(f"batch endpoint {name}", lambda: s.client.batch_endpoints.get(name))
        if s.dry_run:
            s.add_plan("batch", f"batch endpoint {name}", "exists" if existing else "would create")
        if existing is not None or s.dry_run:
            return
        endpoint = load_batch_endpoint(self.specs / "batch-endpoint.yml")
        endpoint.name = name
        s.finish(
            f"create batch endpoint {name}",
            lambda: s.client.batch_endpoints.begin_create_or_update(endpoint),
            ENDPOINT_DEADLINE_S,
        )

    def _ensure_deployment(self, spec: DeploymentSpec) -> None:
        """The one batch deployment, pointed at this model version (updated in place when it changes)."""
        from azure.ai.ml import load_batch_deployment

        s = self.session
        target = f"batch deployment {spec.endpoint}/{spec.name}"
        existing = s.exists(target, lambda: s.client.batch_deployments.get(spec.name, spec.endpoint))
        if existing is not None and same_model(existing.model, spec):
            if s.dry_run:
                s.add_plan("batch", target, f"exists ({spec.model_reference})")
            return
        if existing is None:
            self._check_room(spec.endpoint)
        environment = self.assets.environment_id(self.environment_spec)
        if s.dry_run:
            verb = "would update to" if existing is not None else "would create"
            s.add_plan("batch", target, f"{verb} {spec.model_reference}")
            return
        deployment = load_batch_deployment(self.specs / "batch-deployment.yml")
        deployment.environment = environment
        deployment.name = spec.name
        deployment.endpoint_name = spec.endpoint
        deployment.model = spec.model_reference
        deployment.compute = s.outputs.compute_cluster_name
        s.finish(
            f"{'update' if existing is not None else 'create'} {target}",
            lambda: s.client.batch_deployments.begin_create_or_update(deployment),
            ENDPOINT_DEADLINE_S,
        )

    def _check_room(self, endpoint: str) -> None:
        s = self.session
        names = s.exists(
            f"deployments of batch endpoint {endpoint}",
            lambda: [d.name for d in s.client.batch_deployments.list(endpoint_name=endpoint)],
        )
        if names is not None and len(names) >= MAX_DEPLOYMENTS_PER_ENDPOINT:
            raise BackendError(
                f"batch endpoint {endpoint} already holds {len(names)} deployments, the most Azure allows "
                f"({MAX_DEPLOYMENTS_PER_ENDPOINT}, how-to-manage-quotas.md); delete the unused ones "
                f"(`az ml batch-deployment delete -e {endpoint} -n <name>`) before re-running"
            )
