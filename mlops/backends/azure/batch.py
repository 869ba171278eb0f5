"""Batch scoring for the Azure backend: the batch endpoint, its deployment, one scoring job per run."""

from __future__ import annotations

from pathlib import Path

from mlops.backends.azure.assets import Assets
from mlops.backends.azure.online import same_model
from mlops.backends.azure.session import ENDPOINT_DEADLINE_S, Session, job_status
from mlops.backends.azure.training import Training
from mlops.backends.base import BackendError, BatchResult, DeploymentSpec


def csv_rows(path: Path) -> int:
    """Data rows of a CSV file with a header line."""
    with path.open(encoding="utf-8") as handle:
        return max(0, sum(1 for line in handle if line.strip()) - 1)


class Batch:
    """The batch endpoint on the compute cluster, scoring the batch sample."""

    def __init__(self, session: Session, assets: Assets, training: Training, specs_root: Path) -> None:
        self.session = session
        self.assets = assets
        self.training = training
        self.specs = specs_root / "deploy" / "batch"
        self.environment_spec = specs_root / "deploy" / "online" / "score-env.yml"

    def run(
        self,
        endpoint: str,
        deployment: str,
        model_name: str,
        model_version: str,
        sample: Path,
        deadline_s: float,
    ) -> BatchResult:
        from azure.ai.ml import Input

        s = self.session
        rows = csv_rows(sample)
        self._ensure_endpoint(endpoint)
        self._ensure_deployment(endpoint, deployment, model_name, model_version)
        if s.dry_run:
            s.add_plan("batch", f"{endpoint}/{deployment}", f"would score {sample.name} ({rows} rows)")
            # "Completed" keeps the orchestration going so the plan covers every step; output says why.
            return BatchResult(status="Completed", rows=rows, output="dry run: not submitted")
        job = s.call(
            f"batch scoring on {endpoint}",
            lambda: s.client.batch_endpoints.invoke(
                endpoint_name=endpoint,
                deployment_name=deployment,
                input=Input(type="uri_file", path=str(sample)),
            ),
        )
        final = self.training.wait_for_job(job.name, deadline_s, what="batch scoring")
        if job_status(final) != "Completed":
            raise BackendError(f"batch scoring job {job.name} ended {job_status(final)}: {final.studio_url}")
        return BatchResult(status="Completed", rows=rows, output=final.studio_url or job.name)

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

    def _ensure_deployment(self, endpoint: str, name: str, model_name: str, model_version: str) -> None:
        from azure.ai.ml import load_batch_deployment

        s = self.session
        model = f"azureml:{model_name}:{model_version}"
        existing = s.exists(
            f"batch deployment {name}", lambda: s.client.batch_deployments.get(name, endpoint)
        )
        fresh = existing is not None and same_model(
            existing.model, DeploymentSpec(endpoint, name, model_name, model_version)
        )
        target = f"batch deployment {endpoint}/{name}"
        if fresh:
            if s.dry_run:
                s.add_plan("batch", target, f"exists ({model})")
            return
        environment = self.assets.environment_id(self.environment_spec)
        if s.dry_run:
            s.add_plan("batch", target, f"would create {model}")
            return
        deployment = load_batch_deployment(self.specs / "batch-deployment.yml")
        deployment.environment = environment
        deployment.name = name
        deployment.endpoint_name = endpoint
        deployment.model = model
        deployment.compute = s.outputs.compute_cluster_name
        s.finish(
            f"create batch deployment {endpoint}/{name}",
            lambda: s.client.batch_deployments.begin_create_or_update(deployment),
            ENDPOINT_DEADLINE_S,
        )
