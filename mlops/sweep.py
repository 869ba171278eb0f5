"""The local stand-in for an Azure ML sweep step: sample the spec's search space, run trials, keep the best.

What the spec says, and what happens here:
- sampling `random` (seeded by `sampling_algorithm.seed`, else the pipeline's seed input): each
  parameter is drawn with numpy's Generator from the distribution Azure ML documents
  (how-to-tune-hyperparameters.md: loguniform = exp(uniform(min, max)), quniform rounds to q, ...);
- `grid`: every combination of the `choice` values, in spec order, up to max_total_trials;
- `bayesian`: Optuna's TPE sampler (seeded the same way), asking for a trial whenever a slot frees;
- max_concurrent_trials trials run at once, each a step process through local_runner.run_step in its
  own folder (WORKDIR/trials/<step>-NN), forked by the pipeline's launcher from its warm interpreter
  (mlops.prefork), with its own MLflow run (a child of the sweep's run) so its primary metric is read
  back as Azure ML reads it: the metric's latest logged value. The MLflow bookkeeping runs through the
  same launcher (mlops.sweep_tracking): the orchestrating process never imports MLflow;
- the best completed trial by the objective (ties: the earliest) gives the step its outputs, copied
  to WORKDIR/steps/<step>/<output> like the sweep node's outputs in Azure ML; trials.json lists all.
Azure ML's sampler is not reproduced bit for bit (its random stream is its own), so a local sweep
and an Azure one try different points; each is reproducible by its seed. The early termination
policy is applied by Azure ML only: locally every trial runs to completion.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mlops import sweep_tracking
from mlops.local_runner import StepFailed, StepResult, run_step
from mlops.pipeline_spec import SearchParameter, StepSpec, SweepSettings
from mlops.prefork import ForkLauncher, Launcher, LauncherError

if TYPE_CHECKING:
    import optuna

Params = dict[str, Any]
Notify = Callable[[str], None]


# ---------------------------------------------------------------- sampling (pure)


def _draw(parameter: SearchParameter, rng: np.random.Generator) -> Any:
    """One value of the parameter's distribution, as Azure ML defines each one."""
    kind, args = parameter.type, parameter.arguments
    if kind == "choice":
        return args["values"][int(rng.integers(len(args["values"])))]
    if kind == "randint":
        return int(rng.integers(args["upper"]))
    if kind in ("normal", "qnormal", "lognormal", "qlognormal"):
        value = float(rng.normal(args["mu"], args["sigma"]))
    else:
        value = float(rng.uniform(args["min_value"], args["max_value"]))
    if "log" in kind:
        value = math.exp(value)
    if kind.startswith("q"):
        value = round(value / args["q"]) * args["q"]
    return value


def random_points(space: Mapping[str, SearchParameter], count: int, seed: int) -> list[Params]:
    """`count` points drawn independently, parameters in spec order: the same seed gives the same points."""
    rng = np.random.default_rng(seed)
    return [{name: _draw(parameter, rng) for name, parameter in space.items()} for _ in range(count)]


def grid_points(space: Mapping[str, SearchParameter], count: int) -> list[Params]:
    """The first `count` combinations of the choice values (the last parameter varies fastest)."""
    names = list(space)
    values = [space[name].arguments["values"] for name in names]
    return [
        dict(zip(names, combination)) for combination in itertools.islice(itertools.product(*values), count)
    ]


def optuna_distributions(
    space: Mapping[str, SearchParameter],
) -> dict[str, optuna.distributions.BaseDistribution]:
    """The search space as Optuna distributions (Bayesian sampling takes choice, uniform, quniform)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    converted: dict[str, Any] = {}
    for name, parameter in space.items():
        args = parameter.arguments
        if parameter.type == "choice":
            converted[name] = CategoricalDistribution(args["values"])
        elif parameter.type == "uniform":
            converted[name] = FloatDistribution(args["min_value"], args["max_value"])
        elif parameter.type == "quniform":
            converted[name] = FloatDistribution(args["min_value"], args["max_value"], step=args["q"])
        else:
            raise ValueError(
                f"{name}: Bayesian sampling takes choice, uniform or quniform, not {parameter.type}"
            )
    return converted


# ---------------------------------------------------------------- trials and the pick (pure)


@dataclass(frozen=True)
class Trial:
    """One trial: its parameters, and once run, its status, primary metric value, time and folder."""

    index: int
    params: Params
    status: str = "pending"
    """pending, completed or failed."""
    metric: float | None = None
    seconds: float = 0.0
    folder: str = ""
    """The trial's own workdir (code snapshot, log, outputs)."""
    outputs: dict[str, str] = field(default_factory=dict)
    run_id: str = ""
    error: str = ""


def best_trial(trials: Sequence[Trial], goal: str) -> Trial | None:
    """The completed trial with the best finite metric for `goal` (ties: the earliest), None if there is none."""
    scored = [
        t for t in trials if t.status == "completed" and t.metric is not None and math.isfinite(t.metric)
    ]
    if not scored:
        return None
    sign = 1.0 if goal == "minimize" else -1.0
    return min(scored, key=lambda trial: (sign * float(trial.metric or 0.0), trial.index))


def trial_step(step: StepSpec, params: Params, run_id: str) -> StepSpec:
    """The sweep step's trial as a plain command step: searched values become literal inputs.

    The trial resumes its pre-made MLflow run (MLFLOW_RUN_ID), as an Azure ML trial job runs in its own.
    """
    return replace(
        step,
        name="train" if step.name == "sweep" else step.name,
        inputs={**step.inputs, **params},
        environment_variables={**step.environment_variables, "MLFLOW_RUN_ID": run_id},
        sweep=None,
    )


def summary_line(trial: Trial, metric: str) -> str:
    """`trial 3: learning_rate=0.0412 max_leaf_nodes=63 -> val_rmse=1.0712 (12.3s)`."""
    shown = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in trial.params.items())
    outcome = f"{metric}={trial.metric:.4f}" if trial.metric is not None else trial.status
    return f"trial {trial.index}: {shown} -> {outcome} ({trial.seconds:.1f}s)"


# ---------------------------------------------------------------- running


def _track(launcher: Launcher, function: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """An MLflow call of mlops.sweep_tracking: forked from the warm interpreter when the launcher can
    (this process never imports MLflow), else made here (a launcher of fresh subprocesses)."""
    call = getattr(launcher, "call", None)
    try:
        return call(function, *args) if call is not None else function(*args)
    except LauncherError as error:
        raise SweepTrackingError(f"MLflow bookkeeping of the sweep failed: {error}") from error


class SweepTrackingError(RuntimeError):
    """The sweep could not record its runs in MLflow (the tracking store is unreachable or broken)."""


@dataclass
class _Context:
    """What every trial of one sweep step shares."""

    step: StepSpec
    settings: SweepSettings
    inputs: Mapping[str, str]
    """The sweep step's resolved inputs (data, literals); each trial adds its searched values."""
    workdir: Path
    env: dict[str, str]
    python: str
    trial_timeout_s: float
    launcher: Launcher
    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    notify: Notify


def _run_trial(context: _Context, index: int, params: Params) -> Trial:
    uri = context.tracking_uri
    run_id = _track(
        context.launcher,
        sweep_tracking.open_trial,
        uri,
        context.experiment_id,
        context.parent_run_id,
        context.step.name,
        index,
    )["run_id"]
    folder = context.workdir / "trials" / f"{context.step.name}-{index:02d}"
    started = time.monotonic()
    trial = Trial(index, params, folder=str(folder), run_id=run_id)
    try:
        result = run_step(
            trial_step(context.step, params, run_id),
            {**context.inputs, **{name: str(value) for name, value in params.items()}},
            folder,
            env=context.env,
            python=context.python,
            timeout_s=context.trial_timeout_s,
            launcher=context.launcher,
        )
    except StepFailed as error:
        _track(context.launcher, sweep_tracking.close_run, uri, run_id, "FAILED", {}, {})
        return replace(trial, status="failed", seconds=time.monotonic() - started, error=str(error))
    metric = _track(
        context.launcher, sweep_tracking.latest_metric, uri, run_id, context.settings.primary_metric
    )["value"]
    seconds = time.monotonic() - started
    if metric is None:
        reason = f"the trial logged no {context.settings.primary_metric!r} (the objective's primary_metric)"
        return replace(trial, status="failed", seconds=seconds, error=reason)
    outputs = {name: str(path) for name, path in result.outputs.items()}
    return replace(trial, status="completed", metric=float(metric), seconds=seconds, outputs=outputs)


def _points(settings: SweepSettings, seed: int) -> Iterator[Params] | None:
    """The points to try in order, or None when they depend on results (Bayesian)."""
    count = settings.max_total_trials
    if settings.sampling == "grid":
        return iter(grid_points(settings.search_space, count))
    if settings.sampling == "random":
        return iter(
            random_points(settings.search_space, count, settings.seed if settings.seed is not None else seed)
        )
    return None


def _run_all(context: _Context, seed: int, deadline: float) -> list[Trial]:
    """Run up to max_total_trials, max_concurrent_trials at a time; stop starting new ones past the deadline."""
    settings = context.settings
    planned = _points(settings, seed)
    study = _study(settings, seed) if planned is None else None
    asked: dict[int, Any] = {}
    trials: list[Trial] = []
    with ThreadPoolExecutor(max_workers=settings.max_concurrent_trials) as pool:
        running: dict[Future[Trial], int] = {}
        started = 0
        while True:
            while len(running) < settings.max_concurrent_trials and started < settings.max_total_trials:
                if time.monotonic() > deadline:
                    break
                if study is not None:
                    asked[started + 1] = study.ask(optuna_distributions(settings.search_space))
                    params = dict(asked[started + 1].params)
                else:
                    params = next(planned, None)  # type: ignore[arg-type]
                    if params is None:
                        break
                started += 1
                running[pool.submit(_run_trial, context, started, params)] = started
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                running.pop(future)
                trial = future.result()
                trials.append(trial)
                if study is not None:
                    _tell(study, asked[trial.index], trial, settings.goal)
                context.notify(summary_line(trial, settings.primary_metric))
    return sorted(trials, key=lambda trial: trial.index)


def _study(settings: SweepSettings, seed: int) -> optuna.Study:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    direction = "minimize" if settings.goal == "minimize" else "maximize"
    return optuna.create_study(direction=direction, sampler=optuna.samplers.TPESampler(seed=seed))


def _tell(study: optuna.Study, asked: Any, trial: Trial, goal: str) -> None:
    import optuna

    if trial.status == "completed":
        study.tell(asked, trial.metric)
    else:
        study.tell(asked, state=optuna.trial.TrialState.FAIL)


def pipeline_seed(value: object) -> int:
    """The pipeline's seed input as an integer (0 when it is absent or not a whole number)."""
    text = str(value)
    return int(text) if text.lstrip("-").isdigit() else 0


def run_sweep_step(
    step: StepSpec,
    inputs: Mapping[str, str],
    workdir: Path,
    *,
    env: Mapping[str, str] | None = None,
    python: str = sys.executable,
    timeout_s: float = 1800,
    launcher: Launcher | None = None,
    seed: object = "",
    notify: Notify | None = None,
) -> StepResult:
    """Run the sweep step's trials and give the step the best trial's outputs; StepFailed if none completes.

    Like local_runner.run_step: `inputs` are the step's resolved inputs, `env` the whole environment of
    its trials, `launcher` starts their processes (default: one warm ForkLauncher for this sweep). `seed`
    is the pipeline's seed input, used when the spec's sampling_algorithm names none.
    """
    if launcher is None:
        with ForkLauncher(python=python, log=Path(workdir) / "logs" / "forkserver.log") as own:
            return run_sweep_step(
                step,
                inputs,
                workdir,
                env=env,
                python=python,
                timeout_s=timeout_s,
                launcher=own,
                seed=seed,
                notify=notify,
            )
    settings = step.sweep
    assert settings is not None, f"step {step.name!r} is not a sweep step"
    workdir = Path(workdir).resolve()
    started = time.monotonic()
    trial_env = dict(os.environ if env is None else env)
    uri = trial_env.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{workdir / 'mlflow.db'}")
    experiment = trial_env.get("MLFLOW_EXPERIMENT_NAME") or "Default"
    opened = _track(
        launcher, sweep_tracking.open_sweep, uri, experiment, (workdir / "mlartifacts").as_uri(), step.name
    )
    log = workdir / "logs" / f"{step.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []
    lock = threading.Lock()

    def say(line: str) -> None:
        with lock:
            lines.append(line)
            log.write_text("\n".join(lines) + "\n")
        if notify is not None:
            notify(line)

    context = _Context(
        step=step,
        settings=settings,
        inputs=inputs,
        workdir=workdir,
        env=trial_env,
        python=python,
        trial_timeout_s=min(timeout_s, settings.trial_timeout_s or timeout_s),
        launcher=launcher,
        tracking_uri=uri,
        experiment_id=opened["experiment_id"],
        parent_run_id=opened["run_id"],
        notify=say,
    )
    say(
        f"{settings.sampling} sampling, up to {settings.max_total_trials} trials, {settings.max_concurrent_trials} "
        f"at a time, {settings.goal} {settings.primary_metric}"
        + (
            f"; early termination ({settings.early_termination}) applies on Azure ML only"
            if settings.early_termination
            else ""
        )
    )
    deadline = started + min(timeout_s, settings.timeout_s or timeout_s)
    trials = _run_all(context, pipeline_seed(seed), deadline)
    best = best_trial(trials, settings.goal)
    summary = workdir / "steps" / step.name / "trials.json"
    summary.parent.mkdir(parents=True, exist_ok=True)
    summary.write_text(json.dumps([asdict(trial) for trial in trials], indent=2) + "\n")
    if best is None:
        _track(launcher, sweep_tracking.close_run, uri, context.parent_run_id, "FAILED", {}, {})
        errors = "; ".join(
            f"trial {t.index}: {t.error.splitlines()[0] if t.error else t.status}" for t in trials
        )
        raise StepFailed(
            step.name, 1, log, "\n".join(lines[-10:]), f"had no completed trial ({errors or 'none ran'})"
        )
    outputs = _adopt_outputs(step, best, workdir)
    _track(
        launcher,
        sweep_tracking.close_run,
        uri,
        context.parent_run_id,
        "FINISHED",
        {settings.primary_metric: float(best.metric or 0.0)},
        {"best_trial": best.index},
    )
    say(f"best: {summary_line(best, settings.primary_metric)}")
    return StepResult(step.name, time.monotonic() - started, outputs, log)


def _adopt_outputs(step: StepSpec, best: Trial, workdir: Path) -> dict[str, Path]:
    """Copy the best trial's outputs to the step's own output folders, as Azure ML's sweep node exposes them."""
    outputs: dict[str, Path] = {}
    for name in step.outputs:
        target = workdir / "steps" / step.name / name
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(best.outputs[name], target)
        outputs[name] = target
    return outputs


def read_trials(step_folder: Path) -> list[Trial]:
    """The trials a sweep step recorded in its trials.json."""
    return [Trial(**item) for item in json.loads((Path(step_folder) / "trials.json").read_text())]
