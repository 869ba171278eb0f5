"""The AML specs: every YAML loads and validates, broken pipelines are caught, DSL twin == YAML."""

from __future__ import annotations

import copy
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops.pipeline_spec import (
    SPECS_ROOT,
    ParentInput,
    PipelineSpecError,
    SpecProblem,
    StepOutput,
    check_all_specs,
    check_inputs,
    check_pipeline,
    check_spec_file,
    literal_type,
    load_pipeline,
    order_steps,
    parse_binding,
)

TRAIN_PIPELINE = SPECS_ROOT / "train" / "pipeline.yml"
SCORING_SCRIPTS = [
    SPECS_ROOT / "deploy" / "online" / "score.py",
    SPECS_ROOT / "deploy" / "batch" / "batch_score.py",
]
STEP_CONTRACT = {
    "prep": (["raw_data", "seed"], ["train_data", "val_data", "test_data"]),
    "train": (["train_data", "val_data", "seed"], ["model_output"]),
    "evaluate": (["model_name", "model_input", "test_data"], ["evaluation_output"]),
    "register": (["model_name", "model_path", "evaluation_output"], ["model_info_output_path"]),
}
Mutation = Callable[[dict[str, Any]], None]


def _scoring_scripts_missing() -> str | None:
    missing = [str(path.relative_to(SPECS_ROOT)) for path in SCORING_SCRIPTS if not path.exists()]
    return f"scoring scripts {missing} not written yet (another helper owns them)" if missing else None


def _valid_pipeline() -> dict[str, Any]:
    def step(inputs: dict[str, Any], outputs: list[str], flags: str) -> dict[str, Any]:
        return {
            "type": "command",
            "code": "src",
            "environment": "azureml:toy@latest",
            "inputs": inputs,
            "outputs": {name: {"type": "uri_folder"} for name in outputs},
            "command": f"python s.py {flags}",
        }

    return {
        "$schema": "https://azuremlschemas.azureedge.net/latest/pipelineJob.schema.json",
        "type": "pipeline",
        "inputs": {"raw": {"type": "uri_file", "path": "raw.csv"}, "seed": 42},
        "jobs": {
            "prep": step(
                {"raw": "${{parent.inputs.raw}}", "seed": "${{parent.inputs.seed}}"},
                ["out"],
                "${{inputs.raw}} ${{inputs.seed}} ${{outputs.out}}",
            ),
            "train": step(
                {"data": "${{parent.jobs.prep.outputs.out}}", "depth": 3},
                ["model"],
                "${{inputs.data}} ${{inputs.depth}} ${{outputs.model}}",
            ),
        },
    }


def _write(tmp_path: Path, spec: dict[str, Any]) -> Path:
    (tmp_path / "src").mkdir(exist_ok=True)
    path = tmp_path / "pipeline.yml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def _set(path: str, value: Any) -> Mutation:
    def mutate(spec: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = spec
        for key in parents:
            node = node[key]
        node[last] = value

    return mutate


def _append_command(step: str, text: str) -> Mutation:
    def mutate(spec: dict[str, Any]) -> None:
        spec["jobs"][step]["command"] += text

    return mutate


BROKEN_PIPELINES = [
    (
        "binding to a missing step",
        _set("jobs.train.inputs.data", "${{parent.jobs.ghost.outputs.out}}"),
        "train",
        "inputs.data",
        "step 'ghost', which does not exist",
    ),
    (
        "binding to a missing output",
        _set("jobs.train.inputs.data", "${{parent.jobs.prep.outputs.nope}}"),
        "train",
        "inputs.data",
        "output 'nope' of step 'prep'",
    ),
    (
        "binding to a missing pipeline input",
        _set("jobs.prep.inputs.seed", "${{parent.inputs.sed}}"),
        "prep",
        "inputs.seed",
        "pipeline input 'sed', which is not declared",
    ),
    (
        "a cycle",
        _set("jobs.prep.inputs.back", "${{parent.jobs.train.outputs.model}}"),
        "prep",
        "inputs",
        "cycle",
    ),
    (
        "undeclared ${{inputs.x}} in a command",
        _append_command("train", " ${{inputs.x}}"),
        "train",
        "command",
        "declares no input 'x'",
    ),
    (
        "undeclared ${{outputs.y}} in a command",
        _append_command("train", " ${{outputs.y}}"),
        "train",
        "command",
        "declares no output 'y'",
    ),
    (
        "a wrong-typed data literal",
        _set("jobs.train.inputs.extra", {"type": "uri_folder", "path": 7}),
        "train",
        "inputs.extra",
        "takes a path string, got 7 (integer)",
    ),
    (
        "a declared type the binding does not have",
        _set("jobs.train.inputs.data", {"type": "uri_file", "path": "${{parent.jobs.prep.outputs.out}}"}),
        "train",
        "inputs.data",
        "declared type 'uri_file' but bound to a 'uri_folder'",
    ),
    ("an unknown step key", _set("jobs.prep.retries", 3), "prep", "retries", "unknown key 'retries'"),
    (
        "an unbound step input",
        _set("jobs.train.inputs.depth", None),
        "train",
        "inputs.depth",
        "neither bound",
    ),
    (
        "a malformed binding",
        _set("jobs.train.inputs.data", "${{parent.job.prep.outputs.out}}"),
        "train",
        "inputs.data",
        "not a literal",
    ),
    ("a non-scalar pipeline input", _set("inputs.seed", [1, 2]), None, "inputs.seed", "expected an integer"),
    ("a step without a command", _set("jobs.prep.command", ""), "prep", "command", "required"),
    (
        "a step of an unsupported type",
        _set("jobs.prep.type", "parallel"),
        "prep",
        "type",
        "only inline command and sweep steps",
    ),
    (
        "an output of unknown type",
        _set("jobs.prep.outputs.out", {"type": "folder"}),
        "prep",
        "outputs.out",
        "type must be one of",
    ),
]


@pytest.mark.parametrize(
    ("case", "mutate", "step", "field", "message"),
    BROKEN_PIPELINES,
    ids=[case[0] for case in BROKEN_PIPELINES],
)
def test_broken_pipeline_is_caught_with_file_step_and_field(
    tmp_path: Path, case: str, mutate: Mutation, step: str | None, field: str, message: str
) -> None:
    spec = _valid_pipeline()
    mutate(spec)
    path = _write(tmp_path, spec)
    problems = check_pipeline(path)
    matching = [p for p in problems if p.step == step and p.field == field and message in p.message]
    assert matching, f"{case}: expected ({step}, {field}, {message!r}) among {[str(p) for p in problems]}"
    text = str(matching[0])
    assert str(path) in text and field in text and (step is None or f"'{step}'" in text)
    with pytest.raises(PipelineSpecError, match=field.replace(".", r"\.")):
        load_pipeline(path)


def test_valid_toy_pipeline_has_no_problems_and_orders_steps(tmp_path: Path) -> None:
    spec = _valid_pipeline()
    spec["jobs"] = dict(reversed(spec["jobs"].items()))
    path = _write(tmp_path, spec)
    assert check_pipeline(path) == []
    loaded = load_pipeline(path)
    assert [step.name for step in loaded.steps] == ["prep", "train"]
    assert loaded.step("train").inputs == {"data": StepOutput("prep", "out"), "depth": 3}
    assert loaded.step("prep").code == (tmp_path / "src").resolve()


def test_unreadable_pipeline_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.yml"
    path.write_text("jobs: [unclosed")
    assert [p.field for p in check_pipeline(path)] == ["(file)"]
    assert [p.field for p in check_pipeline(tmp_path / "absent.yml")] == ["(file)"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("${{parent.inputs.seed}}", ParentInput("seed")),
        ("${{ parent.jobs.prep.outputs.train_data }}", StepOutput("prep", "train_data")),
        ("${{parent.jobs.prep.output.x}}", None),
        ("plain text", "plain text"),
        (42, 42),
        (True, True),
        (None, None),
        ([1], None),
        ({"type": "uri_file", "path": "${{parent.inputs.raw}}"}, ParentInput("raw")),
    ],
)
def test_parse_binding(value: object, expected: object) -> None:
    assert parse_binding(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, "boolean"), (3, "integer"), (3.5, "number"), ("x", "string"), (None, None), ([], None)],
)
def test_literal_type(value: object, expected: str | None) -> None:
    assert literal_type(value) == expected


@pytest.mark.parametrize(
    ("dependencies", "ordered", "cyclic"),
    [
        ({"b": {"a"}, "a": set()}, ["a", "b"], []),
        ({"c": {"a", "b"}, "a": set(), "b": {"a"}}, ["a", "b", "c"], []),
        ({"a": {"b"}, "b": {"a"}, "c": set()}, ["c"], ["a", "b"]),
        ({"a": {"a"}}, [], ["a"]),
    ],
)
def test_order_steps(dependencies: dict[str, set[str]], ordered: list[str], cyclic: list[str]) -> None:
    assert order_steps(dependencies) == (ordered, cyclic)


@pytest.mark.parametrize(
    ("values", "fields"),
    [
        ({"seed": 7, "model_name": "m", "raw_data": "/tmp/x.csv"}, []),
        ({"seed": "7"}, []),
        ({"seed": "seven"}, ["inputs.seed"]),
        ({"seed": 4.2}, ["inputs.seed"]),
        ({"seed": True}, ["inputs.seed"]),
        ({"model_name": 5}, ["inputs.model_name"]),
        ({"raw_data": 5}, ["inputs.raw_data"]),
        ({"colour": "red"}, ["inputs.colour"]),
    ],
)
def test_check_inputs_against_declared_types(values: dict[str, object], fields: list[str]) -> None:
    assert [p.field for p in check_inputs(load_pipeline(TRAIN_PIPELINE), values)] == fields


def test_training_pipeline_follows_the_ml_contract() -> None:
    spec = load_pipeline(TRAIN_PIPELINE)
    assert [step.name for step in spec.steps] == list(STEP_CONTRACT)
    assert {name: (i.type, i.default) for name, i in spec.inputs.items()} == {
        "raw_data": ("uri_file", "azureml:taxi-data@latest"),
        "model_name": ("string", "taxi-fare-model"),
        "seed": ("integer", 42),
    }
    for step in spec.steps:
        inputs, outputs = STEP_CONTRACT[step.name]
        assert list(step.inputs) == inputs and step.outputs == outputs
        assert step.code == SPECS_ROOT.parent / "src"
        assert step.environment == "azureml:taxi-train-env@latest"
        assert step.command.startswith(f"python {step.name}.py ")
        for flag in inputs + outputs:
            assert f"--{flag} ${{{{" in step.command


@pytest.mark.skipif(_scoring_scripts_missing() is not None, reason=str(_scoring_scripts_missing()))
def test_every_spec_loads_and_validates() -> None:
    assert [str(p) for p in check_all_specs()] == []


def test_every_spec_kind_is_present() -> None:
    files = sorted(p.relative_to(SPECS_ROOT).as_posix() for p in SPECS_ROOT.rglob("*.yml"))
    assert files == [
        "deploy/batch/batch-conda.yml",
        "deploy/batch/batch-deployment.yml",
        "deploy/batch/batch-endpoint.yml",
        "deploy/batch/batch-env.yml",
        "deploy/online/instance-types.yml",
        "deploy/online/kubernetes-deployment.yml",
        "deploy/online/kubernetes-endpoint.yml",
        "deploy/online/online-deployment.yml",
        "deploy/online/online-endpoint.yml",
        "deploy/online/score-conda.yml",
        "deploy/online/score-env.yml",
        "train/compute.yml",
        "train/conda.yml",
        "train/data.yml",
        "train/pipeline.yml",
        "train/train-env.yml",
    ]


@pytest.fixture
def spec_copy(tmp_path: Path) -> Path:
    """A copy of mlops/azureml with the code folder beside it, safe to break."""
    root = tmp_path / "mlops" / "azureml"
    shutil.copytree(SPECS_ROOT, root, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    (tmp_path / "mlops" / "src").mkdir()
    (root / "deploy" / "online" / "score.py").write_text("")
    (root / "deploy" / "batch" / "batch_score.py").write_text("")
    return root


def _edit(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    spec = yaml.safe_load(path.read_text())
    change(spec)
    path.write_text(yaml.safe_dump(spec, sort_keys=False))


BROKEN_SPECS = [
    (
        "unknown field in an endpoint",
        "deploy/online/online-endpoint.yml",
        lambda s: s.update(auth_mod="key"),
        "auth_mod",
    ),
    ("bad enum in compute", "train/compute.yml", lambda s: s.update(tier="golden"), "tier"),
    ("missing conda file", "train/train-env.yml", lambda s: s.update(conda_file="nope.yml"), "(schema)"),
    (
        "missing scoring script",
        "deploy/batch/batch-deployment.yml",
        lambda s: s["code_configuration"].update(scoring_script="nope.py"),
        "code_configuration.scoring_script",
    ),
    (
        "unpinned conda dependency",
        "train/conda.yml",
        lambda s: s["dependencies"][-1]["pip"].append("requests"),
        "dependencies.pip",
    ),
    (
        "unknown $schema",
        "train/data.yml",
        lambda s: s.update({"$schema": "https://x/latest/blob.schema.json"}),
        "$schema",
    ),
    (
        "pipeline binding to a missing step",
        "train/pipeline.yml",
        lambda s: s["jobs"]["train"]["inputs"].update(seed="${{parent.jobs.ghost.outputs.x}}"),
        "inputs.seed",
    ),
]


@pytest.mark.parametrize(("case", "file", "change", "field"), BROKEN_SPECS, ids=[c[0] for c in BROKEN_SPECS])
def test_check_all_specs_reports_each_broken_file(
    spec_copy: Path, case: str, file: str, change: Callable[[dict[str, Any]], None], field: str
) -> None:
    assert check_all_specs(spec_copy) == []
    _edit(spec_copy / file, change)
    problems = check_all_specs(spec_copy)
    assert problems and {p.file for p in problems} == {spec_copy / file}, [str(p) for p in problems]
    assert any(field in p.field for p in problems), [str(p) for p in problems]


def test_loader_exception_becomes_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "env.yml"
    path.write_text(
        "$schema: https://azuremlschemas.azureedge.net/latest/environment.schema.json\nname: [x\n"
    )
    assert [type(p) for p in check_spec_file(path)] == [SpecProblem]


def _normalized(job_dict: dict[str, Any]) -> dict[str, Any]:
    """A pipeline job's dict without what differs by construction only (anonymous component identity)."""
    result = copy.deepcopy(job_dict)
    for node in result["jobs"].values():
        component = node["component"]
        for key in ("name", "version", "display_name"):
            component.pop(key, None)
        if node.get("environment") == component.get("environment"):
            node.pop("environment")
    return result


def test_dsl_twin_equals_the_yaml() -> None:
    from mlops.pipeline_dsl import build_pipeline_job
    from mlops.pipeline_spec import load_pipeline_job

    # The file also holds the sweep alternative (off by default): compare the default variant.
    from_yaml = _normalized(load_pipeline_job(TRAIN_PIPELINE, sweep=False)._to_dict())
    from_dsl = _normalized(build_pipeline_job()._to_dict())
    assert from_dsl == from_yaml
    assert list(from_yaml["jobs"]) == list(STEP_CONTRACT)
