"""The hyperparameter sweep: the spec (azure-ai-ml loads it, our checks, DSL twin), the sampler, and real local sweeps."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import shutil
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops.local_runner import StepFailed, run_pipeline
from mlops.pipeline_spec import (
    SPECS_ROOT,
    SearchParameter,
    StepOutput,
    alternatives,
    check_pipeline,
    check_spec_file,
    load_pipeline,
    load_pipeline_job,
    select_steps,
)
from mlops.sweep import (
    Trial,
    best_trial,
    grid_points,
    optuna_distributions,
    random_points,
    read_trials,
    run_sweep_step,
    trial_step,
)
from tests._local_training import ROWS

PIPELINE = SPECS_ROOT / "train" / "pipeline.yml"
SRC = SPECS_ROOT.parent / "src"
SPACE = {
    "lr": SearchParameter("lr", "loguniform", {"min_value": -3.0, "max_value": -1.0}),
    "leaves": SearchParameter("leaves", "choice", {"values": [15, 31, 63]}),
    "l2": SearchParameter("l2", "quniform", {"min_value": 0.0, "max_value": 5.0, "q": 0.5}),
    "depth": SearchParameter("depth", "randint", {"upper": 4}),
    "noise": SearchParameter("noise", "qlognormal", {"mu": 0.0, "sigma": 1.0, "q": 0.1}),
}


# ---------------------------------------------------------------- the repository's spec


def test_both_variants_load_and_validate_with_azure_ai_ml() -> None:
    assert [str(problem) for problem in check_spec_file(PIPELINE)] == []
    assert alternatives(yaml.safe_load(PIPELINE.read_text())) == {"sweep": "train"}
    off, on = load_pipeline(PIPELINE), load_pipeline(PIPELINE, sweep=True)
    assert [s.name for s in off.steps] == ["prep", "train", "evaluate", "register"]
    assert [s.name for s in on.steps] == ["prep", "sweep", "evaluate", "register"]
    assert on.step("evaluate").inputs["model_input"] == StepOutput("sweep", "model_output")
    assert on.step("register").inputs["model_path"] == StepOutput("sweep", "model_output")
    assert off.step("evaluate").inputs == {
        **on.step("evaluate").inputs,
        "model_input": StepOutput("train", "model_output"),
    }


def test_the_sweep_tunes_the_boosting_parameters_train_py_takes() -> None:
    sweep = load_pipeline(PIPELINE, sweep=True).step("sweep")
    settings = sweep.sweep
    assert settings is not None
    assert (settings.sampling, settings.seed, settings.goal, settings.primary_metric) == (
        "random",
        42,
        "minimize",
        "val_rmse",
    )
    assert settings.early_termination == "median_stopping"
    assert 1 <= settings.max_concurrent_trials <= settings.max_total_trials
    assert set(settings.search_space) == {
        "learning_rate",
        "max_leaf_nodes",
        "min_samples_leaf",
        "l2_regularization",
    }
    for name in settings.search_space:
        assert f"--{name} ${{{{inputs.{name}}}}}" in sweep.command
    # loguniform bounds are natural-log exponents (how-to-tune-hyperparameters.md): 0.02 .. 0.3.
    bounds = settings.search_space["learning_rate"].arguments
    assert math.exp(bounds["min_value"]) == pytest.approx(0.02, rel=1e-3)
    assert math.exp(bounds["max_value"]) == pytest.approx(0.3, rel=1e-3)


def _normalized(job_dict: dict[str, Any]) -> dict[str, Any]:
    result = copy.deepcopy(job_dict)
    for node in result["jobs"].values():
        component = node.get("component") or node.get("trial")
        for key in ("name", "version", "display_name"):
            component.pop(key, None)
        if node.get("environment") == component.get("environment"):
            node.pop("environment", None)
    return result


@pytest.mark.parametrize("sweep", [False, True], ids=["train", "sweep"])
def test_dsl_twin_equals_each_yaml_variant(sweep: bool) -> None:
    from mlops.pipeline_dsl import build_pipeline_job

    from_yaml = _normalized(load_pipeline_job(PIPELINE, sweep)._to_dict())
    from_dsl = _normalized(build_pipeline_job(sweep)._to_dict())
    assert from_dsl == from_yaml
    assert ("sweep" in from_yaml["jobs"]) is sweep and ("train" in from_yaml["jobs"]) is not sweep


def test_the_azure_job_of_the_sweep_variant_runs_the_pinned_environment(tmp_path: Path) -> None:
    from azure.ai.ml.entities._builders import Sweep

    from mlops.backends.azure import AzureBackend
    from mlops.backends.base import AssetRef, TrainingRequest
    from mlops.stack_outputs import StackOutputs

    outputs = StackOutputs("sub", "rg", "mlw-x-001dev", "westeurope", "cpu-cluster", "dev")
    request = TrainingRequest(
        PIPELINE,
        "exp",
        AssetRef("taxi-data", "d1", False),
        AssetRef("env", "e1", False),
        "cpu",
        "m",
        7,
        sweep=True,
    )
    training = AzureBackend(outputs).training
    job = training._build_job(request, "taxi-train-x", "key")
    node = job.jobs["sweep"]
    assert isinstance(node, Sweep) and node.trial.environment == "azureml:env:e1"
    wiring = job._to_dict()["jobs"]["evaluate"]["inputs"]["model_input"]["path"]
    assert "train" not in job.jobs and wiring == "${{parent.jobs.sweep.outputs.model_output}}"
    assert training._run_key(request) != training._run_key(dataclasses.replace(request, sweep=False))


# ---------------------------------------------------------------- our checks on broken sweeps

Mutation = Callable[[dict[str, Any]], None]


def _sweep_of(spec: dict[str, Any]) -> dict[str, Any]:
    return spec["jobs"]["sweep"]


def _mutate(path: str, value: Any) -> Mutation:
    def mutate(spec: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = spec
        for key in parents:
            node = node[key]
        if value is None:
            node.pop(last)
        else:
            node[last] = value

    return mutate


BROKEN_SWEEPS = [
    (
        "grid with a uniform",
        _mutate("jobs.sweep.sampling_algorithm", "grid"),
        "search_space.learning_rate",
        "grid sampling takes only ['choice']",
    ),
    (
        "bayesian with a loguniform",
        _mutate("jobs.sweep.sampling_algorithm", "bayesian"),
        "search_space.learning_rate",
        "bayesian sampling takes only",
    ),
    (
        "an unknown sampler",
        _mutate("jobs.sweep.sampling_algorithm", "hyperband"),
        "sampling_algorithm",
        "type must be one of",
    ),
    (
        "a seed on grid sampling",
        _mutate("jobs.sweep.sampling_algorithm", {"type": "grid", "seed": 1}),
        "sampling_algorithm.seed",
        "for random sampling only",
    ),
    (
        "more concurrent than total trials",
        _mutate("jobs.sweep.limits.max_concurrent_trials", 9),
        "limits.max_concurrent_trials",
        "1..max_total_trials (8)",
    ),
    (
        "no trial limit",
        _mutate("jobs.sweep.limits.max_total_trials", None),
        "limits.max_total_trials",
        "required",
    ),
    (
        "too many trials",
        _mutate("jobs.sweep.limits.max_total_trials", 1001),
        "limits.max_total_trials",
        "[1, 1000]",
    ),
    ("a negative timeout", _mutate("jobs.sweep.limits.timeout", -5), "limits.timeout", "positive"),
    (
        "min above max",
        _mutate("jobs.sweep.search_space.l2_regularization.min_value", 9.0),
        "search_space.l2_regularization",
        "min_value < max_value",
    ),
    (
        "an empty choice",
        _mutate("jobs.sweep.search_space.max_leaf_nodes.values", []),
        "search_space.max_leaf_nodes",
        "non-empty values",
    ),
    (
        "a searched name the trial lacks",
        _mutate("jobs.sweep.search_space.depth", {"type": "choice", "values": [3]}),
        "search_space.depth",
        "declares no input 'depth'",
    ),
    (
        "a searched input also bound",
        _mutate("jobs.sweep.inputs.learning_rate", 0.1),
        "search_space.learning_rate",
        "also bound",
    ),
    (
        "a trial input with no value",
        _mutate("jobs.sweep.search_space.l2_regularization", None),
        "trial.inputs.l2_regularization",
        "neither bound, searched, nor given a default",
    ),
    (
        "a bound input the trial lacks",
        _mutate("jobs.sweep.inputs.extra", 3),
        "inputs.extra",
        "declares no input 'extra'",
    ),
    (
        "an output the trial lacks",
        _mutate("jobs.sweep.outputs.metrics", {"type": "uri_folder"}),
        "outputs.metrics",
        "declares no output",
    ),
    (
        "a trial file reference",
        _mutate("jobs.sweep.trial", "./train.yml"),
        "trial",
        "inline command component",
    ),
    ("no objective", _mutate("jobs.sweep.objective", None), "objective", "goal minimize|maximize"),
    (
        "an unknown sweep key",
        _mutate("jobs.sweep.retries", 2),
        "retries",
        "unknown key 'retries' on a sweep step",
    ),
    (
        "a command using an undeclared input",
        _mutate("jobs.sweep.trial.command", "python train.py ${{inputs.depth}}"),
        "command",
        "declares no input 'depth'",
    ),
    (
        "replacing a missing step",
        _mutate("jobs.sweep.tags.replaces", "fit"),
        "tags.replaces",
        "must name another step",
    ),
    (
        "a consumer bound to the alternative",
        _mutate("jobs.register.inputs.model_path", "${{parent.jobs.sweep.outputs.model_output}}"),
        "inputs.model_path",
        "off by default",
    ),
    (
        "an alternative without the replaced output",
        _mutate("jobs.sweep.outputs", {}),
        "outputs",
        "lacks output 'model_output'",
    ),
]


def _spec_copy(tmp_path: Path, spec: dict[str, Any]) -> Path:
    for job in spec["jobs"].values():
        for holder in (job, job.get("trial") if isinstance(job.get("trial"), dict) else {}):
            if "code" in holder:
                holder["code"] = str(SRC)
    path = tmp_path / "pipeline.yml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.mark.parametrize(
    ("case", "mutate", "field", "message"), BROKEN_SWEEPS, ids=[c[0] for c in BROKEN_SWEEPS]
)
def test_a_broken_sweep_is_reported_with_step_and_field(
    tmp_path: Path, case: str, mutate: Mutation, field: str, message: str
) -> None:
    spec = yaml.safe_load(PIPELINE.read_text())
    assert check_pipeline(_spec_copy(tmp_path, copy.deepcopy(spec))) == []
    mutate(spec)
    problems = check_pipeline(_spec_copy(tmp_path, spec))
    assert any(p.field == field and message in p.message for p in problems), [str(p) for p in problems]


def test_selection_drops_the_alternative_or_the_replaced_step_and_rebinds() -> None:
    raw = yaml.safe_load(PIPELINE.read_text())
    off, on = select_steps(raw, sweep=False), select_steps(raw, sweep=True)
    assert list(off["jobs"]) == ["prep", "train", "evaluate", "register"]
    assert list(on["jobs"]) == ["prep", "sweep", "evaluate", "register"]
    assert on["jobs"]["evaluate"]["inputs"]["model_input"] == "${{parent.jobs.sweep.outputs.model_output}}"
    assert on["jobs"]["evaluate"]["inputs"]["test_data"] == "${{parent.jobs.prep.outputs.test_data}}"
    assert raw["jobs"]["evaluate"]["inputs"]["model_input"] == "${{parent.jobs.train.outputs.model_output}}"


# ---------------------------------------------------------------- the sampler and the pick


def test_random_points_repeat_with_the_seed_and_stay_in_their_distributions() -> None:
    first, again, other = (
        random_points(SPACE, 50, 7),
        random_points(SPACE, 50, 7),
        random_points(SPACE, 50, 8),
    )
    assert first == again and first != other
    for point in first:
        assert math.exp(-3.0) <= point["lr"] <= math.exp(-1.0)
        assert point["leaves"] in (15, 31, 63)
        assert 0.0 <= point["l2"] <= 5.0 and point["l2"] == pytest.approx(round(point["l2"] / 0.5) * 0.5)
        assert point["depth"] in range(4) and isinstance(point["depth"], int)
        assert point["noise"] > -1e-9 and point["noise"] == pytest.approx(round(point["noise"] / 0.1) * 0.1)
    assert len({p["leaves"] for p in first}) == 3, "50 draws reach every choice"


def test_grid_points_enumerate_choices_in_spec_order_up_to_the_limit() -> None:
    space = {
        "a": SearchParameter("a", "choice", {"values": [1, 2]}),
        "b": SearchParameter("b", "choice", {"values": ["x", "y", "z"]}),
    }
    assert grid_points(space, 4) == [
        {"a": 1, "b": "x"},
        {"a": 1, "b": "y"},
        {"a": 1, "b": "z"},
        {"a": 2, "b": "x"},
    ]
    assert len(grid_points(space, 100)) == 6


def test_optuna_distributions_cover_what_bayesian_sampling_takes() -> None:
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    converted = optuna_distributions(
        {k: SPACE[k] for k in ("leaves", "l2")}
        | {"u": SearchParameter("u", "uniform", {"min_value": 1, "max_value": 2})}
    )
    assert converted["leaves"] == CategoricalDistribution([15, 31, 63])
    assert converted["l2"] == FloatDistribution(0.0, 5.0, step=0.5)
    assert converted["u"] == FloatDistribution(1, 2)
    with pytest.raises(ValueError, match="lr: Bayesian sampling takes choice, uniform or quniform"):
        optuna_distributions({"lr": SPACE["lr"]})


@pytest.mark.parametrize(
    ("trials", "goal", "expected"),
    [
        ([Trial(1, {}, "completed", 2.0), Trial(2, {}, "completed", 1.0)], "minimize", 2),
        ([Trial(1, {}, "completed", 2.0), Trial(2, {}, "completed", 1.0)], "maximize", 1),
        ([Trial(1, {}, "completed", 1.0), Trial(2, {}, "completed", 1.0)], "minimize", 1),
        ([Trial(1, {}, "failed"), Trial(2, {}, "completed", 3.0)], "minimize", 2),
        ([Trial(1, {}, "completed", math.nan), Trial(2, {}, "completed", 9.0)], "minimize", 2),
        ([Trial(1, {}, "failed"), Trial(2, {}, "completed", math.inf)], "minimize", None),
        ([], "minimize", None),
    ],
)
def test_best_trial(trials: list[Trial], goal: str, expected: int | None) -> None:
    best = best_trial(trials, goal)
    assert (best.index if best else None) == expected


def test_a_trial_is_the_train_command_with_its_values_and_its_own_mlflow_run() -> None:
    sweep = load_pipeline(PIPELINE, sweep=True).step("sweep")
    params = {"learning_rate": 0.05, "max_leaf_nodes": 31, "min_samples_leaf": 20, "l2_regularization": 1.5}
    trial = trial_step(sweep, params, "run-123")
    assert trial.sweep is None and trial.name == "train" and trial.command == sweep.command
    assert trial.inputs == {**sweep.inputs, **params}
    assert trial.environment_variables["MLFLOW_RUN_ID"] == "run-123"


# ---------------------------------------------------------------- real local sweeps


def _toy_sweep(tmp_path: Path, script: str, sampling: Any, trials: int = 4) -> Path:
    """A two-step pipeline (make -> sweep over a toy trial) whose trial is `script`."""
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / "make.py").write_text(
        "import sys, pathlib\npathlib.Path(sys.argv[1], 'x.txt').write_text('0.3')\n"
    )
    (src / "trial.py").write_text(textwrap.dedent(script))
    spec = {
        "$schema": "https://azuremlschemas.azureedge.net/latest/pipelineJob.schema.json",
        "type": "pipeline",
        "inputs": {"seed": 5},
        "jobs": {
            "make": {
                "type": "command",
                "code": "src",
                "environment": "azureml:e@latest",
                "command": "python make.py ${{outputs.out}}",
                "outputs": {"out": {"type": "uri_folder"}},
            },
            "tune": {
                "type": "sweep",
                "inputs": {"data": "${{parent.jobs.make.outputs.out}}"},
                "outputs": {"best": {"type": "uri_folder"}},
                "trial": {
                    "type": "command",
                    "code": "src",
                    "environment": "azureml:e@latest",
                    "inputs": {"data": {"type": "uri_folder"}, "x": {"type": "number"}},
                    "outputs": {"best": {"type": "uri_folder"}},
                    "command": "python trial.py ${{inputs.data}} ${{inputs.x}} ${{outputs.best}}",
                },
                "sampling_algorithm": sampling,
                "search_space": {"x": {"type": "uniform", "min_value": 0.0, "max_value": 1.0}},
                "objective": {"goal": "minimize", "primary_metric": "loss"},
                "limits": {"max_total_trials": trials, "max_concurrent_trials": 2},
            },
        },
    }
    path = tmp_path / "pipeline.yml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


TOY_TRIAL = """
import pathlib, sys
import mlflow
target = float(pathlib.Path(sys.argv[1], "x.txt").read_text())
x = float(sys.argv[2])
with mlflow.start_run():
    mlflow.log_metric("loss", (x - target) ** 2)
pathlib.Path(sys.argv[3], "x.txt").write_text(str(x))
"""


def _run_toy(path: Path, workdir: Path) -> list[Trial]:
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{workdir / 'mlflow.db'}", "MLFLOW_EXPERIMENT_NAME": "toy"}
    run = run_pipeline(path, {}, workdir, env=env, python=sys.executable)
    trials = read_trials(workdir / "steps" / "tune")
    best = best_trial(trials, "minimize")
    assert best is not None
    assert (run.output("tune", "best") / "x.txt").read_text() == str(best.params["x"])
    return trials


FORKED_SWEEP = """
import json, sys
from pathlib import Path
from mlops.local_runner import run_pipeline
from mlops.prefork import ForkLauncher

class Recording(ForkLauncher):
    starts, calls = [], []

    def start(self, spec):
        self.starts.append(Path(spec.cwd).parent.parent.name)
        return super().start(spec)

    def call(self, function, *args, log=None):
        self.calls.append(function.__name__)
        return super().call(function, *args, log=log)

path, workdir = Path(sys.argv[1]), Path(sys.argv[2])
env = {"MLFLOW_TRACKING_URI": f"sqlite:///{workdir / 'mlflow.db'}", "MLFLOW_EXPERIMENT_NAME": "toy"}
with Recording(log=workdir / "forkserver.log") as launcher:
    run_pipeline(path, {}, workdir, env=env, launcher=launcher)
print(json.dumps({"starts": launcher.starts, "calls": launcher.calls, "mlflow": "mlflow" in sys.modules}))
"""


def test_trials_and_their_mlflow_runs_fork_from_the_pipelines_warm_interpreter(tmp_path: Path) -> None:
    """Issue 10's path: every trial is a run_step process of the pipeline's launcher, and the sweep's MLflow
    bookkeeping runs there too, so the orchestrating process never imports MLflow."""
    import subprocess

    path = _toy_sweep(tmp_path, TOY_TRIAL, {"type": "random", "seed": 3}, trials=3)
    done = subprocess.run(
        [sys.executable, "-c", FORKED_SWEEP, str(path), str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=SPECS_ROOT.parents[1],
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.splitlines()[-1])
    assert sorted(seen["starts"]) == ["run", "tune-01", "tune-02", "tune-03"], "make, then one per trial"
    assert seen["calls"].count("open_trial") == 3 and seen["calls"].count("latest_metric") == 3
    assert seen["calls"][0] == "open_sweep" and seen["calls"][-1] == "close_run"
    assert seen["mlflow"] is False


def test_a_bayesian_toy_sweep_asks_optuna_and_keeps_the_best_trial_output(tmp_path: Path) -> None:
    trials = _run_toy(_toy_sweep(tmp_path, TOY_TRIAL, "bayesian"), tmp_path / "run")
    assert [t.status for t in trials] == ["completed"] * 4
    assert all(t.metric == pytest.approx((t.params["x"] - 0.3) ** 2) for t in trials)
    again = _run_toy(_toy_sweep(tmp_path, TOY_TRIAL, "bayesian"), tmp_path / "again")
    assert [t.params for t in again] == [
        t.params for t in trials
    ], "Optuna's TPE is seeded by the pipeline seed"


def test_a_sweep_whose_trials_all_fail_stops_with_each_reason(tmp_path: Path) -> None:
    path = _toy_sweep(tmp_path, "import sys\nsys.exit('bad data')\n", {"type": "random", "seed": 1}, trials=2)
    with pytest.raises(StepFailed, match=r"step 'tune' had no completed trial \(trial 1: .*trial 2: "):
        run_pipeline(
            path, {}, tmp_path / "run", env={"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'm.db'}"}
        )
    assert [t.status for t in read_trials(tmp_path / "run" / "steps" / "tune")] == ["failed", "failed"]


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The repository's pipeline with the sweep on, 4 trials, on generated trips: run once, then its sweep again."""
    from mlops import data as taxi_data

    root = tmp_path_factory.mktemp("sweep")
    spec = yaml.safe_load(PIPELINE.read_text())
    _sweep_of(spec)["limits"]["max_total_trials"] = 4
    path = _spec_copy(root, spec)
    trips = root / "taxi.csv"
    taxi_data.write_csv(taxi_data.generate_trips(ROWS, seed=42), trips)
    env = {
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "MLFLOW_EXPERIMENT_NAME": "sweep",
        "OMP_NUM_THREADS": "1",
    }
    inputs = {"raw_data": str(trips), "model_name": "taxi-fare-model", "seed": 42}
    run = run_pipeline(path, inputs, root / "run", env=env, sweep=True)
    sweep = load_pipeline(path, sweep=True).step("sweep")
    inputs = {
        "train_data": str(run.output("prep", "train_data")),
        "val_data": str(run.output("prep", "val_data")),
        "seed": "42",
    }
    assert set(inputs) == set(sweep.inputs)
    repeat = run_sweep_step(sweep, inputs, root / "repeat", env={**os.environ, **env}, timeout_s=900, seed=42)
    return {"run": run, "repeat": repeat, "root": root}


def test_a_local_sweep_of_4_trials_runs_and_the_best_model_flows_into_evaluate(swept: dict[str, Any]) -> None:
    run = swept["run"]
    trials = read_trials(run.workdir / "steps" / "sweep")
    assert [t.status for t in trials] == ["completed"] * 4
    assert len({json.dumps(t.params, sort_keys=True) for t in trials}) == 4
    best = best_trial(trials, "minimize")
    assert best is not None and best.metric == min(t.metric for t in trials if t.metric is not None)
    chosen = run.output("sweep", "model_output")
    assert (chosen / "model.pkl").read_bytes() == (
        Path(best.outputs["model_output"]) / "model.pkl"
    ).read_bytes()
    mlmodel = yaml.safe_load((chosen / "MLmodel").read_text())
    assert "lineage" in mlmodel["metadata"]
    metrics = json.loads((run.output("evaluate", "evaluation_output") / "metrics.json").read_text())
    assert metrics["deploy_flag"] == 1 and metrics["rmse"] > 0
    info = json.loads((run.output("register", "model_info_output_path") / "model_info.json").read_text())
    assert info["registered"] is True


def test_the_same_seed_gives_the_same_pick(swept: dict[str, Any]) -> None:
    first = read_trials(swept["run"].workdir / "steps" / "sweep")
    again = read_trials(swept["root"] / "repeat" / "steps" / "sweep")
    assert [t.params for t in again] == [t.params for t in first]
    assert [t.metric for t in again] == pytest.approx([t.metric for t in first], rel=1e-9)
    assert best_trial(again, "minimize").index == best_trial(first, "minimize").index  # type: ignore[union-attr]
    assert swept["repeat"].outputs["model_output"].is_dir()


def test_each_trial_logged_its_params_and_primary_metric_as_a_child_run(swept: dict[str, Any]) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{swept['root'] / 'mlflow.db'}")
    for trial in read_trials(swept["run"].workdir / "steps" / "sweep"):
        run = client.get_run(trial.run_id)
        assert run.data.metrics["val_rmse"] == pytest.approx(trial.metric)
        assert float(run.data.params["learning_rate"]) == pytest.approx(trial.params["learning_rate"])
        assert run.data.tags["mlflow.parentRunId"]
        history = client.get_metric_history(trial.run_id, "val_rmse")
        assert len(history) >= 2, "val_rmse is reported per boosting chunk, for early termination"
    shutil.rmtree(swept["root"] / "repeat", ignore_errors=True)


def test_the_report_of_a_swept_run_shows_the_best_trials_model(swept: dict[str, Any], tmp_path: Path) -> None:
    from mlops.report import write_report

    report = write_report(swept["run"].workdir, tmp_path / "report")
    assert "matches this run's data and code" in report.markdown.read_text()
    assert all(path.stat().st_size > 0 for path in report.plots.values())


def test_sweep_goes_with_training_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mlops.cli import main

    assert (
        main(["deploy", "--target", "local", "--workdir", str(tmp_path), "--sweep", "--skip-training"]) == 2
    )
    assert "--sweep trains" in capsys.readouterr().err


def test_the_local_backend_hands_the_sweep_switch_to_the_runner(tmp_path: Path, monkeypatch: Any) -> None:
    from mlops.backends import local
    from mlops.backends.base import AssetRef, TrainingRequest

    seen: dict[str, Any] = {}

    def run_pipeline_spy(*args: Any, **kwargs: Any) -> Any:
        seen.update(kwargs)
        raise StepFailed("sweep", 1, tmp_path / "log", "", "stopped by the test")

    backend = local.LocalBackend(tmp_path)
    backend._registry.save({"data_files": {"taxi-data:1": str(tmp_path / "x.csv")}})
    monkeypatch.setattr(local, "run_pipeline", run_pipeline_spy)
    request = TrainingRequest(
        PIPELINE, "exp", AssetRef("taxi-data", "1", False), AssetRef("e", "1", False), "c", "m", sweep=True
    )
    assert backend.run_training(request).status == "Failed" and seen["sweep"] is True
