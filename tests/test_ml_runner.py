"""The local pipeline runner: wiring, input resolution, failures, timeouts, and the real taxi pipeline."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from mlops.local_runner import StepEvent, StepFailed, StepTimedOut, command_argv, run_pipeline
from mlops.pipeline_spec import PipelineSpecError
from mlops.prefork import ForkLauncher, SubprocessLauncher

REPO = Path(__file__).resolve().parents[1]
TRAIN_PIPELINE = REPO / "mlops" / "azureml" / "train" / "pipeline.yml"
SCRIPTS = {
    "count.py": """
        import argparse, os, pathlib
        p = argparse.ArgumentParser()
        p.add_argument("--n", type=int); p.add_argument("--source", type=str); p.add_argument("--out")
        a = p.parse_args()
        numbers = [int(x) for x in pathlib.Path(a.source).read_text().split()][: a.n]
        pathlib.Path(a.out, "numbers.txt").write_text(" ".join(map(str, numbers)))
        pathlib.Path(a.out, "env.txt").write_text(os.environ.get("TOY_SETTING", "<unset>"))
        pathlib.Path("written_beside_the_script.txt").write_text("cwd")
        print("counted", numbers)
    """,
    "scale.py": """
        import argparse, pathlib
        p = argparse.ArgumentParser()
        p.add_argument("--numbers"); p.add_argument("--factor", type=float); p.add_argument("--label")
        p.add_argument("--out")
        a = p.parse_args()
        numbers = [int(x) for x in pathlib.Path(a.numbers, "numbers.txt").read_text().split()]
        total = sum(numbers) * a.factor
        pathlib.Path(a.out, "total.json").write_text(f'{{"label": "{a.label}", "total": {total}}}')
    """,
    "fail.py": """
        import sys
        for i in range(40):
            print(f"working on line {i}")
        print("bad things happened: column cost missing", file=sys.stderr)
        sys.exit(3)
    """,
    "sleep.py": """
        import time
        print("sleeping", flush=True)
        time.sleep(30)
    """,
}


def _toy_pipeline(tmp_path: Path, extra_steps: dict[str, dict] | None = None) -> Path:
    code = tmp_path / "code"
    code.mkdir(exist_ok=True)
    for name, body in SCRIPTS.items():
        (code / name).write_text(textwrap.dedent(body))
    (tmp_path / "source.txt").write_text("3 4 5 6 7")
    steps = {
        "scale": {
            "type": "command",
            "code": "code",
            "environment": "azureml:toy@latest",
            "inputs": {
                "numbers": "${{parent.jobs.count.outputs.counted}}",
                "factor": 2.5,
                "label": "${{parent.inputs.label}}",
            },
            "outputs": {"scaled": {"type": "uri_folder"}},
            "command": "python scale.py --numbers ${{inputs.numbers}} --factor ${{inputs.factor}} "
            "--label ${{inputs.label}} --out ${{outputs.scaled}}",
        },
        "count": {
            "type": "command",
            "code": "code",
            "environment": "azureml:toy@latest",
            "inputs": {"n": "${{parent.inputs.n}}", "source": "${{parent.inputs.source}}"},
            "outputs": {"counted": {"type": "uri_folder"}},
            "command": "python count.py --n ${{inputs.n}} --source ${{inputs.source}}"
            " --out ${{outputs.counted}}",
        },
        **(extra_steps or {}),
    }
    spec = {
        "$schema": "https://azuremlschemas.azureedge.net/latest/pipelineJob.schema.json",
        "type": "pipeline",
        "inputs": {"source": {"type": "uri_file", "path": "source.txt"}, "n": 3, "label": "toy run"},
        "jobs": steps,
    }
    path = tmp_path / "pipeline.yml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def _step_after_scale(script: str) -> dict[str, dict]:
    return {
        "last": {
            "type": "command",
            "code": "code",
            "environment": "azureml:toy@latest",
            "inputs": {"after": "${{parent.jobs.scale.outputs.scaled}}"},
            "command": f"python {script} --after ${{{{inputs.after}}}}",
        }
    }


@pytest.mark.parametrize("kind", ["shared fork server", "own fork server", "fresh interpreters"])
def test_outputs_feed_inputs_in_dependency_order(tmp_path: Path, launcher: ForkLauncher, kind: str) -> None:
    events: list[StepEvent] = []
    # run_pipeline without a launcher starts a fork server of its own and stops it when done.
    chosen = {
        "shared fork server": launcher,
        "own fork server": None,
        "fresh interpreters": SubprocessLauncher(),
    }
    run = run_pipeline(
        _toy_pipeline(tmp_path),
        {},
        tmp_path / "work",
        on_event=events.append,
        env={"TOY_SETTING": "from-env"},
        launcher=chosen[kind],
    )
    assert [step.name for step in run.steps] == ["count", "scale"]
    assert (run.output("count", "counted") / "numbers.txt").read_text() == "3 4 5"
    assert json.loads((run.output("scale", "scaled") / "total.json").read_text()) == {
        "label": "toy run",
        "total": (3 + 4 + 5) * 2.5,
    }
    assert (run.output("count", "counted") / "env.txt").read_text() == "from-env"
    assert run.output("scale", "scaled") == (tmp_path / "work" / "steps" / "scale" / "scaled").resolve()
    assert [(e.step, e.kind) for e in events] == [
        ("count", "started"),
        ("count", "finished"),
        ("scale", "started"),
        ("scale", "finished"),
    ]
    assert all(e.seconds > 0 for e in events if e.kind == "finished")
    assert "counted [3, 4, 5]" in run.steps[0].log.read_text()


def test_steps_run_in_a_code_snapshot_under_the_workdir(tmp_path: Path, launcher: ForkLauncher) -> None:
    run_pipeline(_toy_pipeline(tmp_path), {}, tmp_path / "work", launcher=launcher)
    assert (tmp_path / "work" / "code" / "code" / "written_beside_the_script.txt").exists()
    assert not (tmp_path / "code" / "written_beside_the_script.txt").exists()


def test_given_inputs_override_defaults_and_paths_resolve(tmp_path: Path, launcher: ForkLauncher) -> None:
    other = tmp_path / "other numbers.txt"
    other.write_text("10 20 30 40")
    given = {"n": "2", "label": "two", "source": str(other)}
    run = run_pipeline(_toy_pipeline(tmp_path), given, tmp_path / "w", launcher=launcher)
    assert json.loads((run.output("scale", "scaled") / "total.json").read_text()) == {
        "label": "two",
        "total": 75.0,
    }


def test_relative_given_path_resolves_from_the_callers_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, launcher: ForkLauncher
) -> None:
    pipeline = _toy_pipeline(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "numbers.txt").write_text("1 1 1")
    monkeypatch.chdir(elsewhere)
    run = run_pipeline(pipeline, {"source": "numbers.txt"}, tmp_path / "w", launcher=launcher)
    assert json.loads((run.output("scale", "scaled") / "total.json").read_text())["total"] == 7.5


def test_rerun_gets_fresh_output_folders(tmp_path: Path, launcher: ForkLauncher) -> None:
    pipeline = _toy_pipeline(tmp_path)
    first = run_pipeline(pipeline, {}, tmp_path / "w", launcher=launcher)
    stale = first.output("count", "counted") / "stale.txt"
    stale.write_text("left over")
    run_pipeline(pipeline, {}, tmp_path / "w", launcher=launcher)
    assert not stale.exists()


def test_failing_step_stops_the_run_with_its_log_tail(tmp_path: Path, launcher: ForkLauncher) -> None:
    events: list[StepEvent] = []
    pipeline = _toy_pipeline(tmp_path, _step_after_scale("fail.py"))
    with pytest.raises(StepFailed) as failure:
        run_pipeline(pipeline, {}, tmp_path / "w", on_event=events.append, launcher=launcher)
    assert failure.value.step == "last" and failure.value.exit_code == 3
    assert "column cost missing" in str(failure.value) and "'last'" in str(failure.value)
    assert "working on line 39" in failure.value.tail and "working on line 0\n" not in failure.value.tail
    assert events[-1].kind == "failed" and events[-1].step == "last"


def test_failure_prevents_later_steps(tmp_path: Path, launcher: ForkLauncher) -> None:
    pipeline = _toy_pipeline(tmp_path)
    spec = yaml.safe_load(pipeline.read_text())
    spec["jobs"]["count"]["command"] = "python fail.py ${{inputs.n}} ${{inputs.source}} ${{outputs.counted}}"
    pipeline.write_text(yaml.safe_dump(spec))
    with pytest.raises(StepFailed, match="'count'"):
        run_pipeline(pipeline, {}, tmp_path / "w", launcher=launcher)
    assert not (tmp_path / "w" / "logs" / "scale.log").exists()


def test_step_past_its_timeout_is_killed(tmp_path: Path, launcher: ForkLauncher) -> None:
    pipeline = _toy_pipeline(tmp_path, _step_after_scale("sleep.py"))
    with pytest.raises(StepTimedOut, match="timed out after 1 s") as failure:
        run_pipeline(pipeline, {}, tmp_path / "w", step_timeout_s=1, launcher=launcher)
    assert failure.value.step == "last" and "sleeping" in failure.value.tail


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"n": "three"}, "expected integer"),
        ({"label": 5}, "expected string"),
        ({"colour": "red"}, "no such pipeline input"),
    ],
)
def test_bad_inputs_are_refused_before_any_step(tmp_path: Path, inputs: dict, message: str) -> None:
    with pytest.raises(PipelineSpecError, match=message):
        run_pipeline(_toy_pipeline(tmp_path), inputs, tmp_path / "w")
    assert not (tmp_path / "w" / "logs").exists()


def test_azure_asset_input_needs_a_local_path(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs a local path"):
        run_pipeline(_toy_pipeline(tmp_path), {"source": "azureml:taxi-data@latest"}, tmp_path / "w")


def test_pipeline_with_spec_problems_is_refused(tmp_path: Path) -> None:
    pipeline = _toy_pipeline(tmp_path)
    spec = yaml.safe_load(pipeline.read_text())
    spec["jobs"]["scale"]["inputs"]["numbers"] = "${{parent.jobs.count.outputs.missing}}"
    pipeline.write_text(yaml.safe_dump(spec))
    with pytest.raises(PipelineSpecError, match="'missing'"):
        run_pipeline(pipeline, {}, tmp_path / "w")


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("python a.py --x ${{inputs.x}}", ["/py", "a.py", "--x", "has space"]),
        ("python3 a.py --o ${{outputs.o}}", ["/py", "a.py", "--o", "/out/o"]),
        ("bash run.sh ${{inputs.x}}", ["bash", "run.sh", "has space"]),
        ("python a.py --q '${{inputs.x}}'", ["/py", "a.py", "--q", "has space"]),
    ],
)
def test_command_argv(command: str, expected: list[str]) -> None:
    assert command_argv(command, {"x": "has space"}, {"o": Path("/out/o")}, "/py") == expected


def _real_pipeline_missing() -> str | None:
    scripts = ["prep.py", "train.py", "evaluate.py", "register.py"]
    missing = [name for name in scripts if not (REPO / "mlops" / "src" / name).exists()]
    return f"mlops/src lacks {missing} (written by another helper)" if missing else None


@pytest.mark.e2e
@pytest.mark.skipif(_real_pipeline_missing() is not None, reason=str(_real_pipeline_missing()))
def test_real_taxi_pipeline_on_generated_rows(tmp_path: Path, launcher: ForkLauncher) -> None:
    data = tmp_path / "taxi.csv"
    subprocess.run(
        [sys.executable, "-m", "mlops.data", "generate", "--rows", "2000", "--seed", "7", "--out", str(data)],
        cwd=REPO,
        check=True,
    )
    # One OpenMP thread, as the local backend sets it: on a busy shared machine OpenMP's spinning
    # barriers make boosting many times slower.
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}", "OMP_NUM_THREADS": "1"}
    inputs = {"raw_data": str(data), "model_name": "taxi-test"}
    run = run_pipeline(TRAIN_PIPELINE, inputs, tmp_path / "w", env=env, launcher=launcher)
    assert [step.name for step in run.steps] == ["prep", "train", "evaluate", "register"]
    for split in ("train", "val", "test"):
        assert (run.output("prep", f"{split}_data") / f"{split}.csv").exists()
    assert (run.output("train", "model_output") / "MLmodel").exists()
    metrics = json.loads((run.output("evaluate", "evaluation_output") / "metrics.json").read_text())
    info = json.loads((run.output("register", "model_info_output_path") / "model_info.json").read_text())
    assert metrics["deploy_flag"] == 1 and metrics["champion"] is None
    assert info == {"model_name": "taxi-test", "model_version": "1", "registered": True, "deploy_flag": 1}
