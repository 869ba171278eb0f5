"""The training pipeline spec as a typed graph, and the checks azure-ai-ml's loaders do not make."""

from __future__ import annotations

import copy
import io
import json
import re
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

SPECS_ROOT = Path(__file__).resolve().parent / "azureml"

SCALAR_TYPES: dict[type, str] = {bool: "boolean", int: "integer", float: "number", str: "string"}
DATA_TYPES = frozenset({"uri_file", "uri_folder", "mlflow_model", "custom_model", "mltable", "triton_model"})
# Keys the CLI v2 YAML reference documents for an inline command job inside a pipeline; azure-ai-ml
# reports anything else only as a confusing "component: Missing data for required field".
STEP_KEYS = frozenset(
    {
        "type",
        "name",
        "display_name",
        "description",
        "tags",
        "properties",
        "experiment_name",
        "compute",
        "code",
        "command",
        "environment",
        "environment_variables",
        "inputs",
        "outputs",
        "resources",
        "distribution",
        "limits",
        "identity",
        "services",
        "queue_settings",
    }
)
REQUIRED_STEP_KEYS = ("command", "code", "environment")
# A sweep node in a pipeline (CLI v2 YAML reference, reference-yaml-job-sweep.md; azure-ai-ml's SweepSchema):
# the trial is an inline command component whose inputs include the searched parameters.
SWEEP_STEP_KEYS = frozenset(
    {
        "type",
        "name",
        "display_name",
        "description",
        "tags",
        "properties",
        "experiment_name",
        "compute",
        "inputs",
        "outputs",
        "trial",
        "sampling_algorithm",
        "search_space",
        "objective",
        "limits",
        "early_termination",
        "identity",
        "queue_settings",
    }
)
REPLACES_TAG = "replaces"
"""A step tagged `replaces: <step>` is an alternative to that step, off unless switched on (`--sweep`)."""
# how-to-tune-hyperparameters.md: grid sampling takes only `choice`; Bayesian `choice`, `uniform`,
# `quniform`; max_total_trials and max_concurrent_trials are integers between 1 and 1000.
SAMPLING_PARAMETER_TYPES: dict[str, frozenset[str]] = {
    "random": frozenset(
        {
            "choice",
            "randint",
            "uniform",
            "quniform",
            "loguniform",
            "qloguniform",
            "normal",
            "qnormal",
            "lognormal",
            "qlognormal",
        }
    ),
    "grid": frozenset({"choice"}),
    "bayesian": frozenset({"choice", "uniform", "quniform"}),
}
TRIAL_LIMIT = (1, 1000)

_PARENT_INPUT = re.compile(r"^\$\{\{\s*parent\.inputs\.([A-Za-z_][\w]*)\s*\}\}$")
_STEP_OUTPUT = re.compile(r"^\$\{\{\s*parent\.jobs\.([A-Za-z_][\w]*)\.outputs\.([A-Za-z_][\w]*)\s*\}\}$")
_ANY_BINDING = re.compile(r"\$\{\{.*?\}\}")
COMMAND_REF = re.compile(r"\$\{\{\s*(inputs|outputs)\.([A-Za-z_][\w]*)\s*\}\}")

Scalar = str | int | float | bool


@dataclass(frozen=True)
class ParentInput:
    """A step input bound to a pipeline input: `${{parent.inputs.<name>}}`."""

    name: str


@dataclass(frozen=True)
class StepOutput:
    """A step input bound to an upstream step's output: `${{parent.jobs.<step>.outputs.<output>}}`."""

    step: str
    output: str


@dataclass(frozen=True)
class DataLiteral:
    """A step input given as a data path in the spec itself (`{type: uri_file, path: ...}`)."""

    type: str
    path: str


Binding = Scalar | DataLiteral | ParentInput | StepOutput


@dataclass(frozen=True)
class PipelineInput:
    """A pipeline-level input: its type (inferred from the literal, or declared for data) and default."""

    name: str
    type: str
    default: Scalar


@dataclass(frozen=True)
class SearchParameter:
    """One searched parameter: its distribution (`choice`, `uniform`, `loguniform`, ...) and its arguments."""

    name: str
    type: str
    arguments: dict[str, Any]
    """The distribution's arguments as the spec gives them: values, min_value/max_value, q, mu/sigma, upper."""


@dataclass(frozen=True)
class SweepSettings:
    """What a sweep step searches and how: sampling, objective, limits, early termination."""

    sampling: str
    """random, grid or bayesian."""
    seed: int | None
    """The random sampler's seed (random sampling only)."""
    search_space: dict[str, SearchParameter]
    primary_metric: str
    goal: str
    """minimize or maximize."""
    max_total_trials: int
    max_concurrent_trials: int
    timeout_s: float | None
    trial_timeout_s: float | None
    early_termination: str | None
    """The policy type (bandit, median_stopping, truncation_selection), applied by Azure ML only."""
    trial_defaults: dict[str, Scalar] = field(default_factory=dict)
    """Defaults of the trial's scalar inputs (what a parameter outside the search space gets)."""


@dataclass(frozen=True)
class StepSpec:
    """One inline command step of the pipeline, or a sweep step (then `command` is its trial's)."""

    name: str
    command: str
    code: Path
    inputs: dict[str, Binding]
    outputs: list[str]
    environment: str
    environment_variables: dict[str, str] = field(default_factory=dict)
    sweep: SweepSettings | None = None


@dataclass(frozen=True)
class PipelineSpec:
    """The pipeline: its inputs and its steps in an order where every producer precedes its consumers."""

    path: Path
    experiment_name: str | None
    display_name: str | None
    inputs: dict[str, PipelineInput]
    steps: list[StepSpec]

    def step(self, name: str) -> StepSpec:
        """The step called `name`; KeyError naming the steps there are otherwise."""
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(f"{self.path}: no step {name!r}; steps are {[s.name for s in self.steps]}")


@dataclass(frozen=True)
class SpecProblem:
    """One thing wrong in a spec file, located by step (None for the file itself) and field."""

    file: Path
    step: str | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"step {self.step!r}, " if self.step else ""
        return f"{self.file}: {where}field {self.field}: {self.message}"


class PipelineSpecError(ValueError):
    """The pipeline spec has problems; `problems` lists each with its file, step and field."""

    def __init__(self, problems: list[SpecProblem]) -> None:
        self.problems = problems
        listing = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"{len(problems)} problem(s) in the pipeline spec:\n{listing}")


def literal_type(value: object) -> str | None:
    """The AML input type of a YAML literal (bool before int: a bool is an int in Python)."""
    for python_type, aml_type in SCALAR_TYPES.items():
        if isinstance(value, python_type):
            return aml_type
    return None


def parse_binding(value: object) -> Binding | None:
    """A step input value as a Binding; None when it is no binding, literal or data path we know."""
    if isinstance(value, dict):
        path = value.get("path")
        if not isinstance(path, str):
            return None
        return parse_binding(path) if _ANY_BINDING.search(path) else DataLiteral(str(value.get("type")), path)
    if isinstance(value, str):
        if match := _PARENT_INPUT.match(value):
            return ParentInput(match.group(1))
        if match := _STEP_OUTPUT.match(value):
            return StepOutput(match.group(1), match.group(2))
        return None if _ANY_BINDING.search(value) else value
    return value if literal_type(value) else None


class _Collector:
    """Accumulates the problems of one file, so every check can report and carry on."""

    def __init__(self, file: Path) -> None:
        self.file = file
        self.problems: list[SpecProblem] = []

    def add(self, step: str | None, field_name: str, message: str) -> None:
        self.problems.append(SpecProblem(self.file, step, field_name, message))


def _read_yaml(path: Path, found: _Collector) -> dict[str, Any] | None:
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        found.add(None, "(file)", f"cannot read the YAML: {error}")
        return None
    if not isinstance(raw, dict):
        found.add(None, "(file)", f"expected a mapping at the top level, got {type(raw).__name__}")
        return None
    return raw


def _pipeline_inputs(raw: dict[str, Any], found: _Collector) -> dict[str, PipelineInput]:
    declared = raw.get("inputs") or {}
    if not isinstance(declared, dict):
        found.add(None, "inputs", f"expected a mapping of input name to value, got {declared!r}")
        return {}
    inputs: dict[str, PipelineInput] = {}
    for name, value in declared.items():
        if isinstance(value, dict):
            data_type, path = value.get("type"), value.get("path")
            if data_type not in DATA_TYPES or not isinstance(path, str):
                found.add(
                    None,
                    f"inputs.{name}",
                    f"a data input needs `type` in {sorted(DATA_TYPES)} and a "
                    f"`path` string, got {value!r}",
                )
                continue
            inputs[name] = PipelineInput(name, data_type, path)
        elif (scalar := literal_type(value)) is not None:
            inputs[name] = PipelineInput(name, scalar, value)
        else:
            found.add(
                None,
                f"inputs.{name}",
                f"expected an integer, number, boolean or string literal "
                f"(or a data input with type and path), got {value!r}",
            )
    return inputs


def _check_step_keys(name: str, step: dict[str, Any], found: _Collector) -> None:
    for key in sorted(set(step) - STEP_KEYS):
        found.add(name, key, f"unknown key {key!r} on an inline command step; allowed: {sorted(STEP_KEYS)}")
    if step.get("type", "command") != "command":
        found.add(
            name, "type", f"only inline command and sweep steps are supported, got type {step.get('type')!r}"
        )
    for key in REQUIRED_STEP_KEYS:
        if not isinstance(step.get(key), str) or not step.get(key):
            found.add(name, key, f"required: a non-empty string, got {step.get(key)!r}")


def _output_type(spec: object) -> object:
    # An output declared with no mapping is a uri_folder, as in azure-ai-ml.
    if spec is None:
        return "uri_folder"
    return spec.get("type", "uri_folder") if isinstance(spec, dict) else spec


def _step_outputs(name: str, step: dict[str, Any], found: _Collector) -> dict[str, str]:
    declared = step.get("outputs") or {}
    if not isinstance(declared, dict):
        found.add(name, "outputs", f"expected a mapping of output name to {{type: ...}}, got {declared!r}")
        return {}
    outputs: dict[str, str] = {}
    for output, spec in declared.items():
        output_type = _output_type(spec)
        if not isinstance(output_type, str) or output_type not in DATA_TYPES:
            found.add(name, f"outputs.{output}", f"type must be one of {sorted(DATA_TYPES)}, got {spec!r}")
            continue
        outputs[output] = output_type
    return outputs


def _step_inputs(name: str, step: dict[str, Any], found: _Collector) -> dict[str, Binding]:
    declared = step.get("inputs") or {}
    if not isinstance(declared, dict):
        found.add(name, "inputs", f"expected a mapping of input name to binding or literal, got {declared!r}")
        return {}
    inputs: dict[str, Binding] = {}
    for input_name, value in declared.items():
        binding = parse_binding(value)
        if value is None or (isinstance(value, dict) and "path" not in value):
            found.add(
                name,
                f"inputs.{input_name}",
                "declared but neither bound nor given a default; bind it "
                "to ${{parent.inputs.<name>}} or ${{parent.jobs.<step>.outputs.<name>}} or give a value",
            )
        elif isinstance(value, dict) and not isinstance(value["path"], str):
            found.add(
                name,
                f"inputs.{input_name}",
                f"a {value.get('type')} input takes a path string, got "
                f"{value['path']!r} ({literal_type(value['path']) or type(value['path']).__name__})",
            )
        elif binding is None:
            found.add(
                name,
                f"inputs.{input_name}",
                f"not a literal, a data input or a binding of the form "
                f"${{{{parent.inputs.<name>}}}} / ${{{{parent.jobs.<step>.outputs.<name>}}}}: {value!r}",
            )
        else:
            inputs[input_name] = binding
    return inputs


def _declared_data_type(step: dict[str, Any], input_name: str) -> str | None:
    value = (step.get("inputs") or {}).get(input_name)
    return value.get("type") if isinstance(value, dict) else None


def _binding_type(
    binding: Binding,
    inputs: Mapping[str, PipelineInput],
    outputs: Mapping[str, Mapping[str, str]],
) -> str | None:
    if isinstance(binding, ParentInput):
        return inputs[binding.name].type if binding.name in inputs else None
    if isinstance(binding, StepOutput):
        return outputs.get(binding.step, {}).get(binding.output)
    if isinstance(binding, DataLiteral):
        return binding.type
    return literal_type(binding)


def _reference_problem(
    binding: Binding,
    steps: Mapping[str, object],
    inputs: Mapping[str, PipelineInput],
    step_outputs: Mapping[str, Mapping[str, str]],
) -> str | None:
    """Why a binding points at nothing, or None when its pipeline input / step / output exists."""
    if isinstance(binding, ParentInput) and binding.name not in inputs:
        declared = sorted(inputs)
        return f"binds pipeline input {binding.name!r}, which is not declared; pipeline inputs are {declared}"
    if isinstance(binding, StepOutput) and binding.step not in steps:
        return f"binds an output of step {binding.step!r}, which does not exist; steps are {sorted(steps)}"
    if isinstance(binding, StepOutput) and binding.output not in step_outputs[binding.step]:
        declared = sorted(step_outputs[binding.step])
        return f"binds output {binding.output!r} of step {binding.step!r}, which declares only {declared}"
    if isinstance(binding, DataLiteral) and binding.type not in DATA_TYPES:
        return f"type must be one of {sorted(DATA_TYPES)}, got {binding.type!r}"
    return None


def _check_bindings(
    steps: Mapping[str, dict[str, Any]],
    inputs: Mapping[str, PipelineInput],
    step_inputs: Mapping[str, Mapping[str, Binding]],
    step_outputs: Mapping[str, Mapping[str, str]],
    found: _Collector,
) -> None:
    for step, bindings in step_inputs.items():
        for input_name, binding in bindings.items():
            problem = _reference_problem(binding, steps, inputs, step_outputs)
            if problem:
                found.add(step, f"inputs.{input_name}", problem)
                continue
            declared = _declared_data_type(steps[step], input_name)
            actual = _binding_type(binding, inputs, step_outputs)
            if declared and actual and declared != actual:
                found.add(
                    step,
                    f"inputs.{input_name}",
                    f"declared type {declared!r} but bound to a {actual!r} value",
                )


def _check_command(
    step: str, command: str, inputs: Mapping[str, Binding], outputs: Mapping[str, str], found: _Collector
) -> None:
    declared = {"inputs": inputs, "outputs": outputs}
    for kind, name in COMMAND_REF.findall(command):
        if name not in declared[kind]:
            found.add(
                step,
                "command",
                f"uses ${{{{{kind}.{name}}}}} but the step declares no {kind[:-1]} "
                f"{name!r}; declared {kind}: {sorted(declared[kind])}",
            )


def order_steps(dependencies: Mapping[str, Iterable[str]]) -> tuple[list[str], list[str]]:
    """Steps in topological order (ties keep spec order) and the steps left on a cycle."""
    remaining = {step: set(needs) & set(dependencies) for step, needs in dependencies.items()}
    ordered: list[str] = []
    while ready := [step for step, needs in remaining.items() if not needs]:
        for step in ready:
            ordered.append(step)
            del remaining[step]
        for needs in remaining.values():
            needs.difference_update(ready)
    return ordered, list(remaining)


def _upstream(bindings: Mapping[str, Binding]) -> set[str]:
    return {binding.step for binding in bindings.values() if isinstance(binding, StepOutput)}


def _parse(path: Path, sweep: bool | None = False) -> tuple[PipelineSpec | None, list[SpecProblem]]:
    """The spec at `path` with its alternative steps off, on (`sweep`), or as written (None)."""
    found = _Collector(path)
    raw = _read_yaml(path, found)
    if raw is None:
        return None, found.problems
    jobs = raw.get("jobs")
    if not isinstance(jobs, dict) or not jobs:
        found.add(None, "jobs", f"expected a non-empty mapping of step name to step, got {jobs!r}")
        return None, found.problems
    if sweep is None:
        _check_alternatives(jobs, found)
    else:
        jobs = select_steps(raw, sweep)["jobs"]
    inputs = _pipeline_inputs(raw, found)
    steps: dict[str, dict[str, Any]] = {}
    sweeps: dict[str, SweepSettings] = {}
    for name, step in jobs.items():
        if isinstance(step, dict) and step.get("type") == "sweep":
            steps[name], settings = _sweep_view(name, step, found)
            if settings is not None:
                sweeps[name] = settings
        elif isinstance(step, dict):
            _check_step_keys(name, step, found)
            steps[name] = step
    for name in sorted(set(jobs) - set(steps)):
        found.add(
            name, "(step)", f"expected a mapping with type, code, command, environment, got {jobs[name]!r}"
        )
    step_inputs = {name: _step_inputs(name, step, found) for name, step in steps.items()}
    step_outputs = {name: _step_outputs(name, step, found) for name, step in steps.items()}
    for name, step in steps.items():
        # A sweep's trial also takes the searched parameters as inputs.
        declared = {**dict.fromkeys(step.get("_trial_inputs", ())), **step_inputs[name]}
        _check_command(name, str(step.get("command") or ""), declared, step_outputs[name], found)
    _check_bindings(steps, inputs, step_inputs, step_outputs, found)
    ordered, cyclic = order_steps({name: _upstream(step_inputs[name]) for name in steps})
    if cyclic:
        found.add(
            cyclic[0],
            "inputs",
            f"steps {cyclic} depend on each other's outputs in a cycle; a pipeline must be acyclic",
        )
    if found.problems:
        return None, found.problems
    spec_steps = [
        _step_spec(path, name, steps[name], step_inputs[name], step_outputs[name], sweeps.get(name))
        for name in ordered
    ]
    return PipelineSpec(path, raw.get("experiment_name"), raw.get("display_name"), inputs, spec_steps), []


def _step_spec(
    path: Path,
    name: str,
    step: dict[str, Any],
    inputs: dict[str, Binding],
    outputs: Mapping[str, str],
    sweep: SweepSettings | None = None,
) -> StepSpec:
    variables = {str(key): str(value) for key, value in (step.get("environment_variables") or {}).items()}
    return StepSpec(
        name=name,
        command=step["command"],
        code=(path.parent / step["code"]).resolve(),
        inputs=inputs,
        outputs=list(outputs),
        environment=step["environment"],
        environment_variables=variables,
        sweep=sweep,
    )


# ---------------------------------------------------------------- alternatives (the sweep twin of train)


def _replaced(step: object) -> str | None:
    tags = step.get("tags") if isinstance(step, dict) else None
    value = tags.get(REPLACES_TAG) if isinstance(tags, dict) else None
    return value if isinstance(value, str) else None


def alternatives(raw: Mapping[str, Any]) -> dict[str, str]:
    """Alternative step -> the step it replaces when switched on, from the `replaces` tags."""
    jobs = raw.get("jobs") if isinstance(raw.get("jobs"), dict) else {}
    return {name: target for name, step in jobs.items() if (target := _replaced(step)) is not None}


def _rebind(value: object, old: str, new: str) -> object:
    pattern = re.compile(r"(\$\{\{\s*parent\.jobs\.)" + re.escape(old) + r"(\.outputs\.)")
    if isinstance(value, str):
        return pattern.sub(lambda match: f"{match.group(1)}{new}{match.group(2)}", value)
    if isinstance(value, dict):
        return {key: _rebind(item, old, new) for key, item in value.items()}
    return value


def select_steps(raw: Mapping[str, Any], sweep: bool) -> dict[str, Any]:
    """The spec with its alternatives off (each `replaces`-tagged step dropped) or on (each replaces its step).

    Switched on, the replaced step is dropped and every binding to its outputs points at the
    alternative's outputs of the same names, so the downstream steps (evaluate, register) stay unchanged.
    """
    result = copy.deepcopy(dict(raw))
    jobs: dict[str, Any] = result.get("jobs") or {}
    for alternative, replaced in alternatives(raw).items():
        if not sweep:
            jobs.pop(alternative, None)
            continue
        jobs.pop(replaced, None)
        for step in jobs.values():
            if isinstance(step, dict) and isinstance(step.get("inputs"), dict):
                step["inputs"] = {
                    key: _rebind(value, replaced, alternative) for key, value in step["inputs"].items()
                }
    return result


def _check_alternatives(jobs: Mapping[str, Any], found: _Collector) -> None:
    """An alternative replaces another step, offers every output consumers bind from it, and feeds nothing."""
    for alternative, replaced in alternatives({"jobs": jobs}).items():
        if replaced not in jobs or replaced == alternative or _replaced(jobs[replaced]) is not None:
            found.add(
                alternative,
                f"tags.{REPLACES_TAG}",
                f"must name another step that is no alternative itself; got {replaced!r}, "
                f"steps are {sorted(jobs)}",
            )
            continue
        offered = set(jobs[alternative].get("outputs") or {})
        for consumer, step in jobs.items():
            bindings = (step.get("inputs") or {}) if isinstance(step, dict) else {}
            for input_name, value in bindings.items():
                binding = parse_binding(value)
                if not isinstance(binding, StepOutput):
                    continue
                if binding.step == alternative:
                    found.add(
                        consumer,
                        f"inputs.{input_name}",
                        f"binds {alternative!r}, which is off by default; bind {replaced!r} "
                        "(switching the alternative on rebinds it)",
                    )
                elif binding.step == replaced and binding.output not in offered:
                    found.add(
                        alternative,
                        "outputs",
                        f"lacks output {binding.output!r} that step {consumer!r} binds from {replaced!r}, "
                        f"which this step replaces; declared outputs are {sorted(offered)}",
                    )


# ---------------------------------------------------------------- sweep steps


def _sweep_view(
    name: str, step: dict[str, Any], found: _Collector
) -> tuple[dict[str, Any], SweepSettings | None]:
    """A sweep step as a command step (its trial's command, code, environment) plus its sweep settings."""
    for key in sorted(set(step) - SWEEP_STEP_KEYS):
        found.add(name, key, f"unknown key {key!r} on a sweep step; allowed: {sorted(SWEEP_STEP_KEYS)}")
    trial = step.get("trial")
    if not isinstance(trial, dict):
        found.add(
            name,
            "trial",
            "expected an inline command component (type, code, environment, command, inputs, outputs), "
            f"got {trial!r}; a component file reference cannot run locally",
        )
        return {"inputs": step.get("inputs"), "outputs": step.get("outputs"), "command": ""}, None
    if trial.get("type", "command") != "command":
        found.add(name, "trial.type", f"a trial must be a command component, got {trial.get('type')!r}")
    for key in REQUIRED_STEP_KEYS:
        if not isinstance(trial.get(key), str) or not trial.get(key):
            found.add(name, f"trial.{key}", f"required: a non-empty string, got {trial.get(key)!r}")
    declared = trial.get("inputs") if isinstance(trial.get("inputs"), dict) else {}
    view = {
        "command": trial.get("command") or "",
        "code": trial.get("code") or "",
        "environment": trial.get("environment") or "",
        "environment_variables": trial.get("environment_variables") or {},
        "inputs": step.get("inputs"),
        "outputs": step.get("outputs"),
        "_trial_inputs": tuple(declared),
    }
    _check_trial_interface(name, step, trial, found)
    return view, _sweep_settings(name, step, declared, found)


def _check_trial_interface(name: str, step: dict[str, Any], trial: dict[str, Any], found: _Collector) -> None:
    declared = trial.get("inputs") if isinstance(trial.get("inputs"), dict) else {}
    bound = set(step.get("inputs") or {})
    space = step.get("search_space")
    searched = set(space) if isinstance(space, dict) else set()
    for input_name in sorted(bound - set(declared)):
        found.add(
            name,
            f"inputs.{input_name}",
            f"the trial declares no input {input_name!r}; it has {sorted(declared)}",
        )
    for parameter in sorted(searched - set(declared)):
        found.add(
            name,
            f"search_space.{parameter}",
            f"the trial declares no input {parameter!r} to receive it; declare it under trial.inputs",
        )
    for parameter in sorted(searched & bound):
        found.add(
            name, f"search_space.{parameter}", "is also bound under inputs; a searched input is set per trial"
        )
    for input_name, spec in declared.items():
        if input_name not in bound | searched and not (isinstance(spec, dict) and "default" in spec):
            found.add(name, f"trial.inputs.{input_name}", "is neither bound, searched, nor given a default")
    trial_outputs = set(trial.get("outputs") or {})
    for output in sorted(set(step.get("outputs") or {}) - trial_outputs):
        found.add(
            name,
            f"outputs.{output}",
            f"the trial declares no output {output!r}; it has {sorted(trial_outputs)}",
        )


def _trial_count(value: object) -> bool:
    return (
        isinstance(value, int) and not isinstance(value, bool) and TRIAL_LIMIT[0] <= value <= TRIAL_LIMIT[1]
    )


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _sampling(name: str, step: dict[str, Any], found: _Collector) -> tuple[str, int | None]:
    algorithm = step.get("sampling_algorithm", "random")
    kind, seed = (algorithm, None) if isinstance(algorithm, str) else (None, None)
    if isinstance(algorithm, dict):
        kind, seed = algorithm.get("type"), algorithm.get("seed")
    if kind not in SAMPLING_PARAMETER_TYPES:
        found.add(
            name,
            "sampling_algorithm",
            f"type must be one of {sorted(SAMPLING_PARAMETER_TYPES)}, got {kind!r}",
        )
        return "random", None
    if seed is not None and (kind != "random" or not isinstance(seed, int) or isinstance(seed, bool)):
        found.add(
            name, "sampling_algorithm.seed", f"an integer seed is for random sampling only, got {seed!r}"
        )
        seed = None
    return str(kind), seed


def _parameter_problem(parameter: SearchParameter) -> str | None:
    """Why a distribution's arguments are unusable, or None (azure-ai-ml checks their presence and types)."""
    arguments = parameter.arguments
    if parameter.type == "choice":
        values = arguments.get("values")
        return (
            None
            if isinstance(values, list) and values
            else f"choice needs a non-empty values list, got {values!r}"
        )
    if parameter.type == "randint":
        upper = arguments.get("upper")
        return None if _trial_count(upper) else f"randint needs an integer upper >= 1, got {upper!r}"
    if parameter.type in ("uniform", "quniform", "loguniform", "qloguniform"):
        low, high = arguments.get("min_value"), arguments.get("max_value")
        if not (_number(low) and _number(high) and low < high):
            return f"needs numbers min_value < max_value, got {low!r} and {high!r}"
    if parameter.type in ("normal", "qnormal", "lognormal", "qlognormal"):
        mu, sigma = arguments.get("mu"), arguments.get("sigma")
        if not (_number(mu) and _number(sigma) and sigma > 0):
            return f"needs a number mu and a positive sigma, got {mu!r} and {sigma!r}"
    if parameter.type.startswith("q") and not (_number(arguments.get("q")) and arguments["q"] > 0):
        return f"{parameter.type} needs a positive q, got {arguments.get('q')!r}"
    return None


def _search_space(
    name: str, step: dict[str, Any], sampling: str, found: _Collector
) -> dict[str, SearchParameter]:
    declared = step.get("search_space")
    if not isinstance(declared, dict) or not declared:
        found.add(
            name,
            "search_space",
            f"expected a non-empty mapping of parameter to distribution, got {declared!r}",
        )
        return {}
    space: dict[str, SearchParameter] = {}
    allowed = SAMPLING_PARAMETER_TYPES[sampling]
    for parameter_name, spec in declared.items():
        where = f"search_space.{parameter_name}"
        if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
            found.add(name, where, f"expected a mapping with a distribution type, got {spec!r}")
            continue
        parameter = SearchParameter(
            parameter_name, spec["type"], {key: value for key, value in spec.items() if key != "type"}
        )
        if parameter.type not in allowed:
            found.add(
                name, where, f"{sampling} sampling takes only {sorted(allowed)}, got {parameter.type!r}"
            )
        elif problem := _parameter_problem(parameter):
            found.add(name, where, problem)
        space[parameter_name] = parameter
    return space


def _limits(
    name: str, step: dict[str, Any], found: _Collector
) -> tuple[int, int, float | None, float | None]:
    limits = step.get("limits") if isinstance(step.get("limits"), dict) else {}
    total, concurrent = limits.get("max_total_trials"), limits.get("max_concurrent_trials")
    if not _trial_count(total):
        found.add(
            name, "limits.max_total_trials", f"required: an integer in {list(TRIAL_LIMIT)}, got {total!r}"
        )
        total = 1
    if concurrent is None:
        concurrent = total  # Azure ML starts every trial at once when this is not set
    elif not _trial_count(concurrent) or concurrent > total:
        found.add(
            name,
            "limits.max_concurrent_trials",
            f"an integer in 1..max_total_trials ({total}), got {concurrent!r}",
        )
        concurrent = 1
    timeouts: list[float | None] = []
    for key in ("timeout", "trial_timeout"):
        value = limits.get(key)
        if value is not None and not (_number(value) and value > 0):
            found.add(name, f"limits.{key}", f"seconds as a positive number, got {value!r}")
            value = None
        timeouts.append(None if value is None else float(value))
    return total, concurrent, timeouts[0], timeouts[1]


def _sweep_settings(
    name: str, step: dict[str, Any], declared: Mapping[str, Any], found: _Collector
) -> SweepSettings | None:
    before = len(found.problems)
    sampling, seed = _sampling(name, step, found)
    space = _search_space(name, step, sampling, found)
    objective = step.get("objective") if isinstance(step.get("objective"), dict) else {}
    goal, metric = str(objective.get("goal", "")).lower(), objective.get("primary_metric")
    if goal not in ("minimize", "maximize") or not isinstance(metric, str) or not metric:
        found.add(
            name,
            "objective",
            f"needs goal minimize|maximize and the primary_metric the trial logs, got {objective!r}",
        )
    total, concurrent, timeout, trial_timeout = _limits(name, step, found)
    policy = step.get("early_termination")
    if len(found.problems) > before:
        return None
    defaults = {
        key: spec["default"]
        for key, spec in declared.items()
        if isinstance(spec, dict) and literal_type(spec.get("default")) is not None
    }
    return SweepSettings(
        sampling=sampling,
        seed=seed,
        search_space=space,
        primary_metric=str(metric),
        goal=goal,
        max_total_trials=total,
        max_concurrent_trials=concurrent,
        timeout_s=timeout,
        trial_timeout_s=trial_timeout,
        early_termination=policy.get("type") if isinstance(policy, dict) else None,
        trial_defaults=defaults,
    )


def load_pipeline(path: Path, sweep: bool = False) -> PipelineSpec:
    """The pipeline at `path` as a typed graph, its alternative steps (the sweep) off or on.

    PipelineSpecError lists every problem otherwise.
    """
    spec, problems = _parse(Path(path), sweep)
    if spec is None:
        raise PipelineSpecError(problems)
    return spec


def check_pipeline(path: Path) -> list[SpecProblem]:
    """Every problem in the pipeline spec that azure-ai-ml does not report (empty when it is sound).

    The file is checked as written, and with its alternatives off and on: each must be a sound pipeline.
    """
    problems: list[SpecProblem] = []
    for variant in (None, False, True):
        problems += [problem for problem in _parse(Path(path), variant)[1] if problem not in problems]
    return problems


def _matches_type(value: object, expected: str) -> bool:
    # Strings are accepted when they spell the type: values often arrive from a command line.
    if expected == "integer":
        return literal_type(value) == "integer" or bool(re.fullmatch(r"-?\d+", str(value)))
    if expected == "number":
        return literal_type(value) in ("integer", "number") or _is_number(str(value))
    if expected == "boolean":
        return isinstance(value, bool) or str(value).lower() in ("true", "false")
    return isinstance(value, str)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _input_problem(declared: PipelineInput | None, value: object, known: Iterable[str]) -> str | None:
    if declared is None:
        return f"no such pipeline input; declared inputs are {sorted(known)}"
    if declared.type in DATA_TYPES and not isinstance(value, str | Path):
        return f"a {declared.type} input takes a path, got {value!r}"
    if declared.type not in DATA_TYPES and not _matches_type(value, declared.type):
        return f"expected {declared.type} (like the default {declared.default!r}), got {value!r}"
    return None


def check_inputs(spec: PipelineSpec, values: Mapping[str, object]) -> list[SpecProblem]:
    """Problems with values given for pipeline inputs: unknown names, or literals of the wrong type."""
    problems = {
        name: _input_problem(spec.inputs.get(name), value, spec.inputs) for name, value in values.items()
    }
    return [
        SpecProblem(spec.path, None, f"inputs.{name}", problem)
        for name, problem in problems.items()
        if problem
    ]


def _azure_loaders() -> dict[str, Callable[..., Any]]:
    # Imported lazily: azure-ai-ml costs ~1.5 s to import and only check_all_specs needs it.
    from azure.ai import ml

    return {
        "pipelineJob": ml.load_job,
        "commandJob": ml.load_job,
        "environment": ml.load_environment,
        "data": ml.load_data,
        "amlCompute": ml.load_compute,
        "managedOnlineEndpoint": ml.load_online_endpoint,
        "kubernetesOnlineEndpoint": ml.load_online_endpoint,
        "managedOnlineDeployment": ml.load_online_deployment,
        "kubernetesOnlineDeployment": ml.load_online_deployment,
        "batchEndpoint": ml.load_batch_endpoint,
        "batchDeployment": ml.load_batch_deployment,
        "modelBatchDeployment": ml.load_batch_deployment,
    }


INSTANCE_TYPE_KIND = "instanceType"
"""A Kubernetes InstanceType manifest for the Azure ML extension (no $schema: it is not an AML CLI spec)."""

LOADED_AS: Mapping[str, str] = {
    "managedOnlineEndpoint": "ManagedOnlineEndpoint",
    "kubernetesOnlineEndpoint": "KubernetesOnlineEndpoint",
    "managedOnlineDeployment": "ManagedOnlineDeployment",
    "kubernetesOnlineDeployment": "KubernetesOnlineDeployment",
}
"""The entity azure-ai-ml must load for a $schema: it picks the class from `type:`/`compute:`, not $schema,
so a Kubernetes deployment without `type: kubernetes` loads silently as a managed one."""


def spec_kind(raw: Mapping[str, Any]) -> str | None:
    """The kind named by a spec's `$schema` (e.g. `pipelineJob`), `conda` for a conda file, `instanceType`
    for an InstanceType manifest."""
    schema = raw.get("$schema")
    if isinstance(schema, str):
        return schema.rsplit("/", 1)[-1].removesuffix(".json").removesuffix(".schema")
    if str(raw.get("apiVersion", "")).startswith("amlarc.azureml.com/"):
        return INSTANCE_TYPE_KIND
    return "conda" if "dependencies" in raw else None


def _flatten_messages(report: object, prefix: str = "") -> list[tuple[str, str]]:
    """marshmallow's nested {field: [messages] | {subfield: ...}} as (dotted field, message) pairs."""
    if isinstance(report, dict):
        return [
            pair
            for key, value in report.items()
            for pair in _flatten_messages(value, f"{prefix}.{key}" if prefix else str(key))
        ]
    if isinstance(report, list) and all(isinstance(item, str) for item in report):
        return [(prefix or "(schema)", " ".join(report))]
    if isinstance(report, list):
        return [pair for item in report for pair in _flatten_messages(item, prefix)]
    return [(prefix or "(schema)", str(report))]


def _loader_problems(file: Path, error: Exception) -> list[SpecProblem]:
    text = str(error)
    start, end = text.find("{"), text.rfind("}")
    try:
        report = json.loads(text[start : end + 1]) if start >= 0 else None
    except ValueError:
        report = None
    if isinstance(report, dict) and isinstance(report.get("errors"), list):
        pairs = [(item.get("path", "(schema)"), str(item.get("message"))) for item in report["errors"]]
    elif isinstance(report, dict):
        pairs = _flatten_messages(report)
    else:
        first_line = next((line for line in text.splitlines() if line.strip()), type(error).__name__)
        pairs = [("(schema)", first_line)]
    return [
        SpecProblem(file, None, field_name, f"azure-ai-ml rejects the spec: {message}")
        for field_name, message in pairs
    ]


def _validation_problems(file: Path, entity: object) -> list[SpecProblem]:
    validate = getattr(entity, "_validate", None)
    result = validate() if callable(validate) else None
    if result is None or getattr(result, "passed", True):
        return []
    return [
        SpecProblem(file, None, path, f"azure-ai-ml validation: {message}")
        for path, message in result.error_messages.items()
    ]


def _scoring_script_problems(file: Path, raw: Mapping[str, Any]) -> list[SpecProblem]:
    code_config = raw.get("code_configuration")
    if not isinstance(code_config, dict):
        return []
    script = file.parent / str(code_config.get("code", ".")) / str(code_config.get("scoring_script", ""))
    if script.is_file():
        return []
    return [
        SpecProblem(
            file,
            None,
            "code_configuration.scoring_script",
            f"{script} does not exist; write it or point scoring_script at the entry script",
        )
    ]


def _conda_problems(file: Path, raw: Mapping[str, Any]) -> list[SpecProblem]:
    pip_lists = [dep["pip"] for dep in raw.get("dependencies", []) if isinstance(dep, dict) and "pip" in dep]
    unpinned = [req for reqs in pip_lists for req in reqs if "==" not in str(req)]
    if not unpinned:
        return []
    return [
        SpecProblem(
            file,
            None,
            "dependencies.pip",
            f"unpinned {unpinned}; pin each as name==version so the image is reproducible",
        )
    ]


def _instance_type_problems(file: Path, raw: Mapping[str, Any]) -> list[SpecProblem]:
    from mlops.backends.azure.instance_types import instance_type_problems

    return [SpecProblem(file, None, field, problem) for field, problem in instance_type_problems(raw)]


def _entity_problems(file: Path, kind: str, raw: Mapping[str, Any], entity: object) -> list[SpecProblem]:
    """What azure-ai-ml accepts but Azure refuses or misreads: the wrong entity class, error_threshold < 0."""
    found = []
    expected = LOADED_AS.get(kind)
    if expected and type(entity).__name__ != expected:
        hint = " (add `type: kubernetes`)" if kind == "kubernetesOnlineDeployment" else ""
        found.append(
            SpecProblem(
                file,
                None,
                "type",
                f"$schema says {kind} but azure-ai-ml loads a {type(entity).__name__}{hint}",
            )
        )
    threshold = raw.get("error_threshold")
    if kind in ("batchDeployment", "modelBatchDeployment") and isinstance(threshold, int) and threshold < 0:
        found.append(
            SpecProblem(
                file,
                None,
                "error_threshold",
                f"{threshold} ignores every failed mini-batch, so a job scoring nothing reports Completed; "
                "use 0 (AZURE-FACTS 19)",
            )
        )
    return found


def check_spec_file(file: Path) -> list[SpecProblem]:
    """Load one spec with its azure-ai-ml loader, validate it, and add this module's own checks."""
    found = _Collector(file)
    raw = _read_yaml(file, found)
    if raw is None:
        return found.problems
    kind = spec_kind(raw)
    if kind == "conda":
        return _conda_problems(file, raw)
    if kind == INSTANCE_TYPE_KIND:
        return _instance_type_problems(file, raw)
    loader = _azure_loaders().get(kind or "")
    if loader is None:
        return [
            SpecProblem(
                file,
                None,
                "$schema",
                f"unknown spec kind {kind!r}; set $schema to one of the "
                f"AML schemas {sorted(_azure_loaders())}",
            )
        ]
    # Our own pipeline checks run even when the loader fails: they name the step and field precisely.
    own = check_pipeline(file) if kind == "pipelineJob" else []
    if kind == "kubernetesOnlineDeployment" and raw.get("type") != "kubernetes":
        # azure-ai-ml picks the deployment class from `type`, not $schema: without it, a Kubernetes spec is
        # read as a managed one (and its `resources` section is refused as unknown).
        own.append(SpecProblem(file, None, "type", "a Kubernetes online deployment needs `type: kubernetes`"))
    try:
        with warnings.catch_warnings():
            # load_batch_deployment warns that BatchDeployment is a base class; the YAML form is still valid.
            warnings.simplefilter("ignore", UserWarning)
            entity = loader(file)
    except Exception as error:  # azure-ai-ml raises marshmallow, ValidationException and OSError alike
        return own + _loader_problems(file, error)
    variants = _variant_problems(file, raw) if kind == "pipelineJob" and alternatives(raw) else []
    return (
        own
        + _validation_problems(file, entity)
        + variants
        + _scoring_script_problems(file, raw)
        + _entity_problems(file, str(kind), raw, entity)
    )


def load_pipeline_job(file: Path, sweep: bool, params_override: list[dict[str, Any]] | None = None) -> Any:
    """The pipeline as azure-ai-ml's PipelineJob, its alternatives (the sweep) off or on.

    Loaded from the selected YAML text with the file itself as origin (azure-ai-ml resolves relative
    paths from the origin's folder), so `code:` paths resolve as they do for the file.
    """
    from azure.ai.ml import load_job

    text = yaml.safe_dump(select_steps(yaml.safe_load(Path(file).read_text()), sweep), sort_keys=False)
    return load_job(io.StringIO(text), relative_origin=str(Path(file)), params_override=params_override)


def _variant_problems(file: Path, raw: Mapping[str, Any]) -> list[SpecProblem]:
    """What azure-ai-ml says about the pipeline with its alternatives switched on, then off."""
    problems: list[SpecProblem] = []
    for sweep in (True, False):
        where = f"(with {'the alternatives on' if sweep else 'the alternatives off'})"
        try:
            job = load_pipeline_job(file, sweep)
        except Exception as error:  # as in check_spec_file
            problems += [replace(p, field=f"{p.field} {where}") for p in _loader_problems(file, error)]
            continue
        problems += [replace(p, field=f"{p.field} {where}") for p in _validation_problems(file, job)]
    return problems


def check_all_specs(root: Path = SPECS_ROOT) -> list[SpecProblem]:
    """Every problem in every YAML under `root` (the AML specs), file by file."""
    files = sorted({*Path(root).rglob("*.yml"), *Path(root).rglob("*.yaml")})
    return [problem for file in files for problem in check_spec_file(file)]
