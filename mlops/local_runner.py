"""Runs the AML pipeline spec on this machine, one process per step (like Kubeflow's SubprocessRunner).

Steps are forked from a warm interpreter (mlops.prefork) unless a launcher says otherwise: each keeps
its own argv, working folder (a code snapshot), environment, output folders and log.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mlops.pipeline_spec import (
    COMMAND_REF,
    DATA_TYPES,
    DataLiteral,
    ParentInput,
    PipelineSpec,
    PipelineSpecError,
    StepOutput,
    StepSpec,
    check_inputs,
    load_pipeline,
)
from mlops.prefork import ForkLauncher, Launcher, ProcessSpec, signal_group

InputValue = str | int | float
LOG_TAIL_LINES = 20


@dataclass(frozen=True)
class StepEvent:
    """Progress of one step: `started` (seconds 0), `finished` / `failed` with its elapsed seconds,
    or `progress` with a detail line from inside a long step (a sweep's trials)."""

    step: str
    kind: Literal["started", "finished", "failed", "progress"]
    seconds: float
    index: int
    total: int
    cpu_seconds: float | None = None
    """CPU the step's process tree used (finished steps forked by mlops.prefork; None otherwise)."""
    detail: str = ""


@dataclass(frozen=True)
class StepResult:
    """A step that completed: how long it took, where its outputs are, and its log."""

    name: str
    seconds: float
    outputs: dict[str, Path]
    log: Path
    cpu_seconds: float | None = None
    """CPU the step's process tree used, when its launcher knows (mlops.prefork.ForkLauncher does)."""


@dataclass(frozen=True)
class PipelineRun:
    """A completed local run of the pipeline."""

    workdir: Path
    steps: list[StepResult]

    def output(self, step: str, name: str) -> Path:
        """The folder a step wrote its output `name` into."""
        for result in self.steps:
            if result.name == step and name in result.outputs:
                return result.outputs[name]
        raise KeyError(
            f"no output {name!r} of step {step!r} in this run; "
            f"outputs are {[(r.name, sorted(r.outputs)) for r in self.steps]}"
        )


class StepFailed(RuntimeError):
    """A step exited non-zero or ran out of time; later steps did not run."""

    def __init__(self, step: str, exit_code: int | None, log: Path, tail: str, reason: str) -> None:
        self.step, self.exit_code, self.log, self.tail = step, exit_code, log, tail
        super().__init__(f"step {step!r} {reason}; log {log}; last lines:\n{tail}")


class StepTimedOut(StepFailed):
    """A step ran past its time limit and was killed."""


def _input_values(spec: PipelineSpec, given: Mapping[str, InputValue]) -> dict[str, str]:
    problems = check_inputs(spec, given)
    if problems:
        raise PipelineSpecError(problems)
    values: dict[str, str] = {}
    for name, declared in spec.inputs.items():
        value = str(given.get(name, declared.default))
        if declared.type in DATA_TYPES:
            # A path the caller gives is relative to where they are; a default, to the spec file.
            base = Path.cwd() if name in given else spec.path.parent
            value = _local_data_path(name, value, base)
        values[name] = value
    return values


def _local_data_path(name: str, value: str, base: Path) -> str:
    if value.startswith("azureml:"):
        raise ValueError(
            f"pipeline input {name!r} is {value!r}, an Azure ML asset; a local run needs a local "
            f"path: pass inputs={{{name!r}: '/path/to/file'}}"
        )
    path = base / value
    if not path.exists():
        raise FileNotFoundError(
            f"pipeline input {name!r}: {path} does not exist; pass an existing file or folder"
        )
    return str(path.resolve())


def _resolve_input(
    spec: PipelineSpec, step: StepSpec, name: str, values: Mapping[str, str], done: Mapping[str, StepResult]
) -> str:
    binding = step.inputs[name]
    if isinstance(binding, ParentInput):
        return values[binding.name]
    if isinstance(binding, StepOutput):
        return str(done[binding.step].outputs[binding.output])
    if isinstance(binding, DataLiteral):
        return _local_data_path(f"{step.name}.{name}", binding.path, spec.path.parent)
    return str(binding)


def snapshot_code(code: Path, workdir: Path) -> Path:
    """A copy of a step's code folder under the workdir, to run in as Azure ML runs in its code snapshot.

    Files a step writes beside its scripts (MLflow's default ./mlruns artifact root, caches) then land
    in the workdir, never in the source tree that Azure ML uploads. Copied over, not replaced, so such
    files survive a re-run in the same workdir (a registered champion's artifacts may live there).
    """
    snapshot = workdir / "code" / code.name
    shutil.copytree(
        code, snapshot, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "mlruns")
    )
    return snapshot


def _fresh_outputs(step: StepSpec, workdir: Path) -> dict[str, Path]:
    outputs: dict[str, Path] = {}
    for name in step.outputs:
        folder = workdir / "steps" / step.name / name
        # A re-run in the same workdir must not see files a previous run left behind.
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        outputs[name] = folder
    return outputs


def command_argv(
    command: str, inputs: Mapping[str, str], outputs: Mapping[str, Path], python: str
) -> list[str]:
    """The step's command as argv: placeholders replaced, a leading `python` made the given interpreter."""
    values = {"inputs": inputs, "outputs": {name: str(path) for name, path in outputs.items()}}

    def substitute(match: re.Match[str]) -> str:
        return values[match.group(1)][match.group(2)]

    # Split first, substitute per word: a value with spaces stays one argument, quoted in the spec or not.
    argv = [COMMAND_REF.sub(substitute, word) for word in shlex.split(command)]
    return [python, *argv[1:]] if argv and argv[0] in ("python", "python3") else argv


def _log_tail(log: Path, lines: int = LOG_TAIL_LINES) -> str:
    with log.open(errors="replace") as handle:
        return "".join(deque(handle, maxlen=lines)).rstrip()


def _run_process(
    launcher: Launcher, argv: list[str], cwd: Path, env: Mapping[str, str], log: Path, timeout_s: float
) -> tuple[int | None, float | None]:
    """Exit code (None: killed for running past `timeout_s`) and CPU seconds of the step's process."""
    log.write_text(f"$ {shlex.join(argv)}\n(cwd {cwd})\n")
    process = launcher.start(ProcessSpec(tuple(argv), cwd, dict(env), log))
    try:
        code = process.wait(timeout_s)
    except BaseException:
        # Interrupted (Ctrl-C): the step runs in a session of its own, so it would outlive us otherwise.
        signal_group(process.pid, signal.SIGKILL)
        process.wait()
        raise
    if code is None:
        # The whole session: a step's children (joblib workers, etc.) die with it.
        signal_group(process.pid, signal.SIGKILL)
        process.wait()
    return code, process.cpu_seconds


def run_step(
    step: StepSpec,
    inputs: Mapping[str, str],
    workdir: Path,
    *,
    env: Mapping[str, str] | None = None,
    python: str = sys.executable,
    timeout_s: float = 1800,
    launcher: Launcher | None = None,
) -> StepResult:
    """Run one step as Azure ML runs a command job, and return its outputs; StepFailed if it fails.

    `inputs` are the step's resolved input values by name (paths or literals, as strings). The step runs
    in a snapshot of its code folder under `workdir/code`, writes its outputs to fresh folders
    `workdir/steps/<step>/<output>` and its log to `workdir/logs/<step>.log`; `env` is its whole
    environment (default: this process's) plus the step's environment_variables. Steps given distinct
    workdirs can run concurrently (one launcher may serve them all).
    """
    workdir = Path(workdir).resolve()
    outputs = _fresh_outputs(step, workdir)
    argv = command_argv(step.command, inputs, outputs, python)
    log = workdir / "logs" / f"{step.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    cwd = snapshot_code(step.code, workdir)
    step_env = {**(os.environ if env is None else env), **step.environment_variables}
    if launcher is None:
        with ForkLauncher(python=python, log=workdir / "logs" / "forkserver.log") as own:
            exit_code, cpu = _run_process(own, argv, cwd, step_env, log, timeout_s)
    else:
        exit_code, cpu = _run_process(launcher, argv, cwd, step_env, log, timeout_s)
    seconds = time.monotonic() - started
    if exit_code is None:
        raise StepTimedOut(
            step.name, None, log, _log_tail(log), f"timed out after {timeout_s:g} s and was killed"
        )
    if exit_code != 0:
        raise StepFailed(step.name, exit_code, log, _log_tail(log), f"failed with exit code {exit_code}")
    return StepResult(step.name, seconds, outputs, log, cpu)


def run_pipeline(
    pipeline: Path,
    inputs: Mapping[str, InputValue],
    workdir: Path,
    *,
    env: Mapping[str, str] | None = None,
    python: str = sys.executable,
    on_event: Callable[[StepEvent], None] | None = None,
    step_timeout_s: float = 1800,
    launcher: Launcher | None = None,
    sweep: bool = False,
) -> PipelineRun:
    """Run every step of `pipeline` in dependency order; StepFailed stops the run at the first failure.

    `env` is added to this process's environment for every step. `launcher` starts the steps' processes
    (default: forked from a warm interpreter, mlops.prefork.ForkLauncher; SubprocessLauncher for fresh ones).
    `sweep` switches the spec's alternative steps on (the sweep instead of train).
    """
    spec = load_pipeline(pipeline, sweep=sweep)  # raises PipelineSpecError listing every problem
    values = _input_values(spec, inputs)
    workdir = Path(workdir).resolve()
    run_env = {**os.environ, **(env or {})}
    notify = on_event or (lambda event: None)
    if launcher is None:
        with ForkLauncher(python=python, log=workdir / "logs" / "forkserver.log") as own:
            return _run_steps(spec, values, workdir, run_env, python, notify, step_timeout_s, own)
    return _run_steps(spec, values, workdir, run_env, python, notify, step_timeout_s, launcher)


def _run_steps(
    spec: PipelineSpec,
    values: Mapping[str, str],
    workdir: Path,
    env: Mapping[str, str],
    python: str,
    notify: Callable[[StepEvent], None],
    timeout_s: float,
    launcher: Launcher,
) -> PipelineRun:
    done: dict[str, StepResult] = {}
    for index, step in enumerate(spec.steps):
        notify(StepEvent(step.name, "started", 0.0, index, len(spec.steps)))
        started = time.monotonic()
        try:
            inputs = {name: _resolve_input(spec, step, name, values, done) for name in step.inputs}
            if step.sweep is not None:
                from mlops.sweep import run_sweep_step  # imported here: it builds on run_step

                done[step.name] = run_sweep_step(
                    step,
                    inputs,
                    workdir,
                    env=env,
                    python=python,
                    timeout_s=timeout_s,
                    launcher=launcher,
                    seed=values.get("seed", ""),
                    notify=_progress(notify, step.name, index, len(spec.steps), started),
                )
            else:
                done[step.name] = run_step(
                    step, inputs, workdir, env=env, python=python, timeout_s=timeout_s, launcher=launcher
                )
        except StepFailed:
            notify(StepEvent(step.name, "failed", time.monotonic() - started, index, len(spec.steps)))
            raise
        result = done[step.name]
        notify(StepEvent(step.name, "finished", result.seconds, index, len(spec.steps), result.cpu_seconds))
    return PipelineRun(workdir, list(done.values()))


def _progress(
    notify: Callable[[StepEvent], None], step: str, index: int, total: int, started: float
) -> Callable[[str], None]:
    """Detail lines from inside a long step (a sweep's trials) as `progress` events."""

    def progress(line: str) -> None:
        notify(StepEvent(step, "progress", time.monotonic() - started, index, total, detail=line))

    return progress
