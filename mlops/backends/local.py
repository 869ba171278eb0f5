"""The local backend: the AML lifecycle on this machine (subprocess pipeline, sqlite MLflow, inference servers).

What stands in for what:
- environment: the conda file's content hash recorded in WORKDIR/registry.json (no conda solve: the
  steps run in this venv);
- data asset: the validated CSV copied to WORKDIR/data/<sha256>.csv, versioned in the registry;
- compute: this machine;
- training: mlops.local_runner.run_pipeline with MLflow at sqlite:///WORKDIR/mlflow.db;
- processes: steps, inference servers and batch drivers are forked from one warm interpreter
  (mlops.prefork), started when the backend is, which also runs the MLflow registry calls: this
  process never imports MLflow;
- online endpoint: a record in WORKDIR/endpoints.json. Each deployment is an AML inference-server
  process on 127.0.0.1 serving mlops/azureml/deploy/online/score.py; the endpoint's scoring URI is the
  URI of the deployment that takes the traffic (no router: traffic is all-or-nothing locally, so a
  stepwise plan is recorded step by step but scoring always reaches the deployment with the most);
- batch endpoint: mlops.serving.run_batch_scoring over the sample into WORKDIR/batch/;
- data collection: each deployment's server writes its inputs and outputs as JSON lines under
  WORKDIR/collection/<endpoint>/<deployment>/ (what `python -m mlops monitor --target local` reads).
Servers live as long as this backend: close() stops every server it started, by pid. Deployments
outlive it (they are records); the next run starts the serving deployment's server again on demand.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any, Callable, Mapping

from mlops.backends import local_registry
from mlops.src.gate import CHAMPION_ALIAS
from mlops.backends.base import (
    AssetRef,
    BackendError,
    BatchResult,
    ConfigurationError,
    DataSpec,
    DeploymentSpec,
    EndpointState,
    EnvironmentSpec,
    SmokeResult,
    TrainingRequest,
    TrainingResult,
    serving_deployment,
)
from mlops.local_runner import StepEvent, StepFailed, run_pipeline
from mlops.pipeline_spec import PipelineSpecError
from mlops.prefork import ForkLauncher, LauncherError
from mlops.serving import InferenceServer, run_batch_scoring
from mlops.serving import smoke_test as smoke_test_uri
from mlops.src.taxi_schema import TaxiDataError, load_taxi_csv

MLOPS = Path(__file__).resolve().parent.parent
COLLECT_DIR_ENV = "MLOPS_COLLECT_DIR"
"""Read by mlops/azureml/deploy/online/data_collection.py (which the server imports, not this package)."""
ONLINE_SCRIPT = MLOPS / "azureml" / "deploy" / "online" / "score.py"
BATCH_SCRIPT = MLOPS / "azureml" / "deploy" / "batch" / "batch_score.py"


def content_hash(path: Path) -> str:
    """SHA-256 of a file's bytes: the version key of environments and data (a re-run registers nothing)."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def register_content(registry: dict[str, Any], kind: str, name: str, digest: str) -> tuple[str, bool]:
    """The version of `name` holding content `digest`, adding the next version if it is new.

    Returns (version, created). Versions count 1, 2, ... per name, like AML's auto-versioning.
    """
    versions: dict[str, str] = registry.setdefault(kind, {}).setdefault(name, {})
    if digest in versions:
        return versions[digest], False
    version = str(len(versions) + 1)
    versions[digest] = version
    return version, True


class JsonFile:
    """A small JSON document on disk, rewritten atomically so a crash never leaves half a file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Any]:
        if not self.path.is_file():
            return {}
        return json.loads(self.path.read_text())

    def save(self, content: Mapping[str, Any]) -> None:
        scratch = self.path.with_suffix(".tmp")
        scratch.write_text(json.dumps(content, indent=2, sort_keys=True))
        scratch.replace(self.path)


class LocalBackend:
    """Every Backend step on this machine, with state under `workdir` (safe to re-run)."""

    name = "local"

    def __init__(
        self,
        workdir: Path,
        *,
        log: Callable[[str], None] | None = None,
        keep_endpoint_up: bool = False,
        python: str = sys.executable,
        warm_start: bool = False,
    ) -> None:
        """`keep_endpoint_up`: serve the endpoint even when this run changes nothing (for --serve).

        `warm_start`: start the warm interpreter now, so that its imports overlap whatever the caller
        does next (a deploy generating its data); otherwise it starts on first use.
        """
        self.workdir = workdir.resolve()
        self.keep_endpoint_up = keep_endpoint_up
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.tracking_uri = f"sqlite:///{self.workdir / 'mlflow.db'}"
        self._log = log or (lambda message: None)
        self._python = python
        self._registry = JsonFile(self.workdir / "registry.json")
        self._endpoints = JsonFile(self.workdir / "endpoints.json")
        self._servers: dict[str, InferenceServer] = {}
        """Deployment name -> the InferenceServer this backend started for it."""
        self._launcher = ForkLauncher(python=python, log=self.workdir / "logs" / "forkserver.log")
        if warm_start:
            self._launcher.warm()

    # ------------------------------------------------------------ assets

    def ensure_environment(self, spec: EnvironmentSpec) -> AssetRef:
        if not spec.conda_file.is_file():
            raise ConfigurationError(f"environment {spec.name}: conda file {spec.conda_file} does not exist")
        registry = self._registry.load()
        version, created = register_content(
            registry, "environments", spec.name, content_hash(spec.conda_file)
        )
        self._registry.save(registry)
        self._log(f"environment: {spec.conda_file.name} recorded by content hash; no conda solve locally")
        return AssetRef(spec.name, version, created)

    def ensure_data(self, spec: DataSpec) -> AssetRef:
        if not spec.path.is_file():
            raise ConfigurationError(f"data {spec.name}: {spec.path} is not a file; give a taxi CSV")
        try:
            frame, notes = load_taxi_csv(spec.path)
        except TaxiDataError as error:
            raise ConfigurationError(f"data {spec.name} ({spec.path}): {error}") from error
        for note in notes:
            self._log(f"data: {note}")
        digest = content_hash(spec.path)
        copy = self._data_path(digest)
        if not copy.is_file():
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(spec.path, copy)
        registry = self._registry.load()
        version, created = register_content(registry, "data", spec.name, digest)
        registry.setdefault("data_files", {})[f"{spec.name}:{version}"] = str(copy)
        self._registry.save(registry)
        self._log(f"data: {len(frame):,} valid rows, {spec.name}:{version} -> {copy.name}")
        return AssetRef(spec.name, version, created)

    def _data_path(self, digest: str) -> Path:
        return self.workdir / "data" / f"{digest}.csv"

    def check_compute(self, name: str) -> str:
        return f"local (this machine, {os.cpu_count()} cores) stands in for {name}"

    # ------------------------------------------------------------ training

    def run_training(self, request: TrainingRequest) -> TrainingResult:
        data = self._registry.load().get("data_files", {}).get(f"{request.data.name}:{request.data.version}")
        if data is None:
            raise ConfigurationError(
                f"data {request.data.name}:{request.data.version} is not registered here"
            )
        run_dir = self._next_run_dir()
        inputs = {"raw_data": data, "model_name": request.model_name, "seed": request.seed}
        try:
            run = run_pipeline(
                request.pipeline,
                inputs,
                run_dir,
                env=self._mlflow_env(request.experiment),
                python=self._python,
                on_event=self._step_event,
                step_timeout_s=request.deadline_s,
                launcher=self._launcher,
                sweep=request.sweep,
            )
        except (PipelineSpecError, FileNotFoundError) as error:
            raise ConfigurationError(f"pipeline {request.pipeline}: {error}") from error
        except StepFailed as error:
            return TrainingResult(run_dir.name, "Failed", 0, request.model_name, None, {"error": str(error)})
        metrics = json.loads((run.output("evaluate", "evaluation_output") / "metrics.json").read_text())
        info = json.loads((run.output("register", "model_info_output_path") / "model_info.json").read_text())
        version = info.get("model_version")
        return TrainingResult(
            run_id=run_dir.name,
            status="Completed",
            deploy_flag=int(metrics.get("deploy_flag", info.get("deploy_flag", 0))),
            model_name=info.get("model_name", request.model_name),
            model_version=str(version) if version is not None and info.get("registered") else None,
            metrics=metrics,
            url=str(run_dir),
            step_seconds={step.name: step.seconds for step in run.steps},
        )

    def _step_event(self, event: StepEvent) -> None:
        if event.kind == "progress":
            self._log(f"training: step {event.index + 1}/{event.total} {event.step}: {event.detail}")
            return
        cpu = "" if event.cpu_seconds is None else f", {event.cpu_seconds:.1f}s CPU"
        timing = "" if event.kind == "started" else f" ({event.seconds:.1f}s{cpu})"
        self._log(f"training: step {event.index + 1}/{event.total} {event.step} {event.kind}{timing}")

    def _next_run_dir(self) -> Path:
        runs = self.workdir / "runs"
        runs.mkdir(parents=True, exist_ok=True)
        number = 1 + sum(1 for _ in runs.iterdir())
        return runs / f"run-{number:03d}"

    def _mlflow_env(self, experiment: str) -> dict[str, str]:
        self._ensure_experiment(experiment)
        # One OpenMP thread per step unless the user says otherwise: the steps share this machine with
        # inference servers, and oversubscribed OpenMP barriers made boosting 10x slower in a trial.
        threads = os.environ.get("OMP_NUM_THREADS", "1")
        return {
            "MLFLOW_TRACKING_URI": self.tracking_uri,
            "MLFLOW_EXPERIMENT_NAME": experiment,
            "OMP_NUM_THREADS": threads,
        }

    def _ensure_experiment(self, experiment: str) -> None:
        # Created here so its artifacts land in the workdir, not in ./mlruns under the steps' cwd.
        artifacts = (self.workdir / "mlartifacts").as_uri()
        self._registry_call(local_registry.ensure_experiment, self.tracking_uri, experiment, artifacts)

    def _registry_call(self, function: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
        try:
            answer = self._launcher.call(function, *args)
        except LauncherError as error:
            raise BackendError(f"MLflow at {self.tracking_uri}: {error}") from error
        if "error" in answer:
            raise BackendError(answer["error"])
        return answer

    def registered_model(self, model_name: str, version: str) -> dict[str, Any] | None:
        """{"tags", "run_id"} of a version registered in this workdir's MLflow registry, or None."""
        found = self._registry_call(local_registry.model_version, self.tracking_uri, model_name, version)
        return found["model"]

    def champion_version(self, model_name: str) -> str | None:
        version = self._registry_call(
            local_registry.alias_version, self.tracking_uri, model_name, CHAMPION_ALIAS
        )["version"]
        return None if version is None else str(version)

    # ------------------------------------------------------------ online endpoint

    def ensure_online_endpoint(self, name: str) -> EndpointState:
        endpoints = self._endpoints.load()
        if name not in endpoints:
            endpoints[name] = {"traffic": {}, "deployments": {}}
            self._endpoints.save(endpoints)
        return self._state(name, start_serving=self.keep_endpoint_up)

    def get_online_endpoint(self, name: str) -> EndpointState | None:
        return self._state(name, start_serving=False) if name in self._endpoints.load() else None

    def _state(self, name: str, *, start_serving: bool) -> EndpointState:
        endpoint = self._endpoints.load()[name]
        traffic = {deployment: int(share) for deployment, share in endpoint["traffic"].items()}
        serving = serving_deployment(traffic)
        # Without a running server there is no URI to give: ports are picked afresh at each start.
        uri = ""
        if serving is not None and (start_serving or serving in self._servers):
            uri = self._server(name, serving).scoring_uri
        return EndpointState(name, uri, traffic, list(endpoint["deployments"]))

    def create_deployment(self, spec: DeploymentSpec, deadline_s: float) -> None:
        endpoints = self._endpoints.load()
        if spec.endpoint not in endpoints:
            raise BackendError(f"online endpoint {spec.endpoint} does not exist; ensure it first")
        model_dir = self._download_model(spec.model_name, spec.model_version)
        record = {
            "model_name": spec.model_name,
            "model_version": spec.model_version,
            "model_dir": str(model_dir),
        }
        endpoints[spec.endpoint]["deployments"][spec.name] = record
        endpoints[spec.endpoint]["traffic"].setdefault(spec.name, 0)
        self._endpoints.save(endpoints)
        self._server(spec.endpoint, spec.name, startup_timeout_s=deadline_s)

    def model_folder(self, model_name: str, version: str) -> Path:
        """The version's MLflow model folder, as deployments serve it (imported, or downloaded from MLflow)."""
        return self._download_model(model_name, version)

    def import_model(self, model_name: str, version: str, folder: Path, tags: Mapping[str, str]) -> Path:
        """Take in a model version from elsewhere (a promotion): its files where deployments read them.

        The local stand-in for creating a model in a workspace from a registry copy; its tags (the
        lineage) are recorded in registry.json. The files appear whole or not at all.
        """
        target = self._model_path(model_name, version)
        target.parent.mkdir(parents=True, exist_ok=True)
        scratch = target.with_name(f"{version}.partial")
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.copytree(folder, scratch)
        shutil.rmtree(target, ignore_errors=True)
        scratch.rename(target)
        registry = self._registry.load()
        registry.setdefault("models", {}).setdefault(model_name, {})[version] = dict(tags)
        self._registry.save(registry)
        return target

    def imported_model(self, model_name: str, version: str) -> dict[str, str] | None:
        """The tags of a version import_model took in, or None."""
        return self._registry.load().get("models", {}).get(model_name, {}).get(version)

    def _model_path(self, model_name: str, version: str) -> Path:
        return self.workdir / "models" / "azureml-models" / model_name / version

    def _download_model(self, model_name: str, version: str) -> Path:
        """The registered version laid out as AML mounts it: .../azureml-models/<name>/<version>/."""
        target = self._model_path(model_name, version)
        if (target / "MLmodel").is_file():
            return target
        answer = self._registry_call(
            local_registry.download_model, self.tracking_uri, model_name, version, str(target)
        )
        if "missing" in answer:
            raise ConfigurationError(
                f"model {model_name} version {version} is not registered in {self.tracking_uri}: "
                f"{answer['missing']}; give a registered version (see the summary of an earlier run)"
            )
        return Path(answer["path"])

    def _server(self, endpoint: str, deployment: str, startup_timeout_s: float = 120.0) -> InferenceServer:
        """The running server of a deployment, started if this backend has none for it yet."""
        server = self._servers.get(deployment)
        if server is not None:
            return server
        endpoints = self._endpoints.load()
        record = endpoints[endpoint]["deployments"][deployment]
        log_file = self.workdir / "logs" / endpoint / f"{deployment}.log"
        # Inputs and outputs as Azure ML's data collector would keep them, for `python -m mlops monitor`.
        collect = {COLLECT_DIR_ENV: str(self.collection_dir(endpoint) / deployment)}
        server = InferenceServer(
            ONLINE_SCRIPT,
            Path(record["model_dir"]),
            log_file,
            env=collect,
            startup_deadline_s=startup_timeout_s,
            launcher=self._launcher,
        ).start()
        self._servers[deployment] = server
        endpoints[endpoint]["deployments"][deployment] |= {
            "pid": server.pid,
            "scoring_uri": server.scoring_uri,
        }
        self._endpoints.save(endpoints)
        self._log(f"deployment {deployment}: server pid {server.pid} at {server.scoring_uri}")
        return server

    def collection_dir(self, endpoint: str) -> Path:
        """Where the endpoint's deployments collect their inputs and outputs (one folder each)."""
        return self.workdir / "collection" / endpoint

    def latest_data_file(self, name: str) -> Path | None:
        """The local copy of the newest registered version of data asset `name`, if any."""
        files = self._registry.load().get("data_files", {})
        versions = [int(key.split(":")[1]) for key in files if key.split(":")[0] == name]
        return Path(files[f"{name}:{max(versions)}"]) if versions else None

    def smoke_test(self, endpoint: str, deployment: str, request_sample: Path) -> SmokeResult:
        try:
            uri = self._server(endpoint, deployment).scoring_uri
        except BackendError as error:
            return SmokeResult(False, None, f"the server did not start: {error}")
        return smoke_test_uri(uri, request_sample)

    def set_traffic(self, endpoint: str, traffic: Mapping[str, int]) -> EndpointState:
        endpoints = self._endpoints.load()
        known = endpoints[endpoint]["deployments"]
        unknown = sorted(set(traffic) - set(known))
        if unknown or sum(traffic.values()) not in (0, 100):
            raise BackendError(
                f"traffic {dict(traffic)} for {endpoint}: shares must name existing deployments "
                f"({', '.join(known) or 'none'}) and add up to 100"
            )
        endpoints[endpoint]["traffic"] = {name: int(traffic.get(name, 0)) for name in known}
        self._endpoints.save(endpoints)
        return self._state(endpoint, start_serving=self.keep_endpoint_up)

    def delete_deployment(self, endpoint: str, deployment: str) -> None:
        endpoints = self._endpoints.load()
        share = endpoints[endpoint]["traffic"].get(deployment, 0)
        if share:
            raise BackendError(
                f"deployment {deployment} takes {share} % of {endpoint}'s traffic; move it first"
            )
        server = self._servers.pop(deployment, None)
        if server is not None:
            server.stop()
        endpoints[endpoint]["deployments"].pop(deployment, None)
        endpoints[endpoint]["traffic"].pop(deployment, None)
        self._endpoints.save(endpoints)

    # ------------------------------------------------------------ batch

    def run_batch(
        self,
        endpoint: str,
        deployment: str,
        model_name: str,
        model_version: str,
        sample: Path,
        deadline_s: float,
    ) -> BatchResult:
        model_dir = self._download_model(model_name, model_version)
        output = self.workdir / "batch" / endpoint / deployment / "predictions.csv"
        output.parent.mkdir(parents=True, exist_ok=True)
        done = run_batch_scoring(
            BATCH_SCRIPT, model_dir, [sample], output, timeout_s=deadline_s, launcher=self._launcher
        )
        skipped = "; ".join(f"{name}: {problem}" for name, problem in done.failed.items())
        if skipped and not done.rows:
            raise BackendError(f"batch scoring on {endpoint}/{deployment} scored nothing: {skipped}")
        if skipped:
            self._log(f"batch: skipped {len(done.failed)} input file(s) (see {done.log}): {skipped}")
        return BatchResult("Completed", done.rows, str(output))

    def close(self) -> None:
        """Stop every server this backend started (each by its own pid), then the fork server."""
        while self._servers:
            _, server = self._servers.popitem()
            server.stop()
        self._launcher.close()
