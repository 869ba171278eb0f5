"""Runs the AML pipeline spec on this machine, one subprocess per step (like Kubeflow's SubprocessRunner)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
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
    detail: str = ""


@dataclass(frozen=True)
class StepResult:
    """A step that completed: how long it took, where its outputs are, and its log."""

    name: str
    seconds: float
    outputs: dict[str, Path]
    log: Path


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
    argv: list[str], cwd: Path, env: Mapping[str, str], log: Path, timeout_s: float
) -> int | None:
    """Exit code of the step's process, or None when it was killed for running past `timeout_s`."""
    with log.open("w") as handle:
        handle.write(f"$ {shlex.join(argv)}\n(cwd {cwd})\n")
        handle.flush()
        # A session of its own, so a timeout kills the step's children too (joblib workers, etc.).
        process = subprocess.Popen(
            argv, cwd=cwd, env=dict(env), stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            return process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return None


def run_step(
    spec: PipelineSpec,
    step: StepSpec,
    values: Mapping[str, str],
    done: Mapping[str, StepResult],
    workdir: Path,
    env: Mapping[str, str],
    python: str,
    timeout_s: float,
) -> StepResult:
    """Run one command step as a process in `workdir` (outputs, log, code snapshot there); StepFailed if it fails.

    `values` are the pipeline's input values and `done` the steps whose outputs it may bind.
    """
    inputs = {name: _resolve_input(spec, step, name, values, done) for name in step.inputs}
    outputs = _fresh_outputs(step, workdir)
    argv = command_argv(step.command, inputs, outputs, python)
    log = workdir / "logs" / f"{step.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    cwd = snapshot_code(step.code, workdir)
    exit_code = _run_process(argv, cwd, {**env, **step.environment_variables}, log, timeout_s)
    seconds = time.monotonic() - started
    if exit_code is None:
        raise StepTimedOut(
            step.name, None, log, _log_tail(log), f"timed out after {timeout_s:g} s and was killed"
        )
    if exit_code != 0:
        raise StepFailed(step.name, exit_code, log, _log_tail(log), f"failed with exit code {exit_code}")
    return StepResult(step.name, seconds, outputs, log)


def run_pipeline(
    pipeline: Path,
    inputs: Mapping[str, InputValue],
    workdir: Path,
    *,
    env: Mapping[str, str] | None = None,
    python: str = sys.executable,
    on_event: Callable[[StepEvent], None] | None = None,
    step_timeout_s: float = 1800,
    sweep: bool = False,
) -> PipelineRun:
    """Run every step of `pipeline` in dependency order; StepFailed stops the run at the first failure.

    `sweep` switches the spec's alternative steps on (the sweep instead of train).
    """
    spec = load_pipeline(pipeline, sweep=sweep)  # raises PipelineSpecError listing every problem
    values = _input_values(spec, inputs)
    workdir = Path(workdir).resolve()
    run_env = {**os.environ, **(env or {})}
    notify = on_event or (lambda event: None)
    done: dict[str, StepResult] = {}
    for index, step in enumerate(spec.steps):
        notify(StepEvent(step.name, "started", 0.0, index, len(spec.steps)))
        started = time.monotonic()
        try:
            if step.sweep is not None:
                from mlops.sweep import run_sweep_step  # imported here: it builds on run_step

                def progress(line: str, step: StepSpec = step, index: int = index) -> None:
                    elapsed = time.monotonic() - started
                    notify(StepEvent(step.name, "progress", elapsed, index, len(spec.steps), line))

                done[step.name] = run_sweep_step(
                    spec, step, values, done, workdir, run_env, python, step_timeout_s, progress
                )
            else:
                done[step.name] = run_step(spec, step, values, done, workdir, run_env, python, step_timeout_s)
        except StepFailed:
            notify(StepEvent(step.name, "failed", time.monotonic() - started, index, len(spec.steps)))
            raise
        notify(StepEvent(step.name, "finished", done[step.name].seconds, index, len(spec.steps)))
    return PipelineRun(workdir, list(done.values()))
