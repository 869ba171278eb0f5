"""Tests of the pipeline step scripts (mlops/src), each run as `python <script>` the way Azure ML runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.models import Model

from mlops import data as taxi_data
from mlops.src.taxi_schema import FEATURES

SRC = Path(__file__).resolve().parent.parent / "mlops" / "src"
MODEL_NAME = "taxi-fare-test"
WEAK_TRAIN_ROWS = 60


EXPERIMENT = "steps"


@dataclass
class Workspace:
    """One local 'workspace': scratch folders plus the sqlite MLflow store the steps log to."""

    root: Path
    tracking_uri: str
    outputs: dict[str, Any] = field(default_factory=dict)

    def env(self, **extra: str) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("MLFLOW_")}
        return env | {"MLFLOW_TRACKING_URI": self.tracking_uri, "MLFLOW_EXPERIMENT_NAME": EXPERIMENT} | extra

    def run(
        self, script: str, flags: dict[str, object], expect_ok: bool = True, **env: str
    ) -> subprocess.CompletedProcess[str]:
        """Run `python <script> --flag value ...` from mlops/src, as the runner and Azure ML do."""
        args = [str(part) for flag, value in flags.items() for part in (f"--{flag}", value)]
        result = subprocess.run(
            [sys.executable, script, *args],
            cwd=SRC,
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=600,
        )
        if expect_ok:
            assert result.returncode == 0, f"{script} failed:\n{result.stdout}\n{result.stderr}"
        return result

    def prep(self, name: str, raw: Path) -> Path:
        folder = self.root / name
        splits = {f"{part}_data": folder / part for part in ("train", "val", "test")}
        self.run("prep.py", {"raw_data": raw, **splits, "seed": 42})
        return folder

    def train(self, name: str, train_folder: Path, val_folder: Path) -> Path:
        model = self.root / name
        self.run("train.py", {"train_data": train_folder, "val_data": val_folder, "model_output": model})
        return model

    def evaluate_and_register(self, name: str, model: Path, test_folder: Path) -> dict[str, Any]:
        evaluation, info = self.root / name / "evaluation", self.root / name / "info"
        self.run(
            "evaluate.py",
            {
                "model_name": MODEL_NAME,
                "model_input": model,
                "test_data": test_folder,
                "evaluation_output": evaluation,
            },
        )
        self.run(
            "register.py",
            {
                "model_name": MODEL_NAME,
                "model_path": model,
                "evaluation_output": evaluation,
                "model_info_output_path": info,
            },
        )
        champion = MlflowClient(self.tracking_uri).get_model_version_by_alias(MODEL_NAME, "champion")
        return {
            "metrics": json.loads((evaluation / "metrics.json").read_text()),
            "flag_file": (evaluation / "deploy_flag").read_text(),
            "plot": evaluation / "predicted_vs_actual.png",
            "info": json.loads((info / "model_info.json").read_text()),
            "champion": str(champion.version),
        }


@pytest.fixture(scope="module")
def lifecycle(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """Run the registry story once: weak first model, better one, worse one, identical re-run."""
    root = tmp_path_factory.mktemp("steps")
    space = Workspace(root, f"sqlite:///{root / 'mlflow.db'}")
    # Artifacts go under tmp too: the default ./mlruns would land in mlops/src, the steps' cwd.
    MlflowClient(space.tracking_uri).create_experiment(
        EXPERIMENT, artifact_location=(root / "artifacts").as_uri()
    )
    raw = root / "raw.csv"
    taxi_data.write_csv(taxi_data.generate_trips(3000, seed=7), raw)
    split = space.prep("split", raw)
    space.outputs["split"] = split
    space.outputs["split_again"] = space.prep("split_again", raw)
    weak_train = root / "weak_train"
    weak_train.mkdir()
    pd.read_csv(split / "train" / "train.csv").head(WEAK_TRAIN_ROWS).to_csv(
        weak_train / "train.csv", index=False
    )
    weak = space.train("weak_model", weak_train, split / "val")
    strong = space.train("strong_model", split / "train", split / "val")
    space.outputs["strong_model"] = strong
    test = split / "test"
    space.outputs["first"] = space.evaluate_and_register("first", weak, test)
    space.outputs["better"] = space.evaluate_and_register("better", strong, test)
    space.outputs["worse"] = space.evaluate_and_register("worse", weak, test)
    retrained = space.train("strong_model_again", split / "train", split / "val")
    space.outputs["rerun"] = space.evaluate_and_register("rerun", retrained, test)
    return space


def test_prep_splits_70_15_15_and_is_reproducible(lifecycle: Workspace) -> None:
    split, again = lifecycle.outputs["split"], lifecycle.outputs["split_again"]
    sizes = {name: len(pd.read_csv(split / name / f"{name}.csv")) for name in ("train", "val", "test")}
    assert sizes == {"train": 2100, "val": 450, "test": 450}
    for name in ("train", "val", "test"):
        assert (split / name / f"{name}.csv").read_bytes() == (again / name / f"{name}.csv").read_bytes()
    train_ids = set(pd.read_csv(split / "train" / "train.csv").itertuples(index=False))
    assert not train_ids & set(pd.read_csv(split / "test" / "test.csv").itertuples(index=False))


def test_first_model_registers(lifecycle: Workspace) -> None:
    first = lifecycle.outputs["first"]
    assert first["metrics"]["champion"] is None and first["metrics"]["deploy_flag"] == 1
    assert first["flag_file"] == "1"
    assert first["info"] == {
        "model_name": MODEL_NAME,
        "model_version": "1",
        "registered": True,
        "deploy_flag": 1,
    }


def test_better_model_registers_and_becomes_champion(lifecycle: Workspace) -> None:
    better = lifecycle.outputs["better"]
    assert better["metrics"]["champion"]["version"] == "1"
    assert better["metrics"]["rmse"] < better["metrics"]["champion"]["rmse"]
    assert better["info"]["registered"] and better["info"]["model_version"] == "2"
    assert better["champion"] == "2"


def test_worse_model_is_not_registered(lifecycle: Workspace) -> None:
    worse = lifecycle.outputs["worse"]
    assert worse["metrics"]["deploy_flag"] == 0 and worse["metrics"]["reason"].startswith("worse")
    assert worse["info"] == {
        "model_name": MODEL_NAME,
        "model_version": None,
        "registered": False,
        "deploy_flag": 0,
    }
    assert worse["champion"] == "2"


def test_rerun_with_same_data_registers_nothing(lifecycle: Workspace) -> None:
    rerun = lifecycle.outputs["rerun"]
    assert rerun["metrics"]["rmse"] == rerun["metrics"]["champion"]["rmse"]
    assert rerun["metrics"]["deploy_flag"] == 0 and rerun["metrics"]["reason"].startswith("tie")
    assert not rerun["info"]["registered"]
    versions = MlflowClient(lifecycle.tracking_uri).search_model_versions(f"name='{MODEL_NAME}'")
    assert sorted(str(v.version) for v in versions) == ["1", "2"]


def test_evaluate_writes_a_png_plot(lifecycle: Workspace) -> None:
    assert lifecycle.outputs["first"]["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_model_has_signature_in_csv_order_and_input_example(lifecycle: Workspace) -> None:
    model = Model.load(str(lifecycle.outputs["strong_model"] / "MLmodel"))
    assert model.signature.inputs.input_names() == list(FEATURES)
    assert model.saved_input_example_info is not None
    assert model.flavors["sklearn"]["serialization_format"] == "cloudpickle"


SCORING_PROCESS = """
import json, sys
import mlflow.pyfunc, pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[1])
names = model.metadata.get_input_schema().input_names()
rows = json.load(open(sys.argv[2]))["input_data"]
fares = model.predict(pd.DataFrame(rows, columns=names))
print(json.dumps({"fares": [float(f) for f in fares], "sys_path": sys.path,
                  "taxi_modules": sorted(m for m in sys.modules if "taxi" in m or m.startswith("mlops"))}))
"""


def test_model_loads_where_mlops_src_is_not_importable(lifecycle: Workspace, tmp_path: Path) -> None:
    # -I: no PYTHONPATH, no script or cwd entry on sys.path; cwd is an empty folder. That is the
    # scoring server's situation: it has mlflow/sklearn/pandas/numpy but not our step modules.
    result = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            SCORING_PROCESS,
            str(lifecycle.outputs["strong_model"]),
            str(taxi_data.SAMPLES_DIR / taxi_data.REQUEST_SAMPLE),
        ],
        cwd=tmp_path,
        env=lifecycle.env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert not [entry for entry in report["sys_path"] if "mlops" in entry]
    assert report["taxi_modules"] == []
    assert len(report["fares"]) == 2 and all(2 < fare < 120 for fare in report["fares"])


def test_steps_log_params_and_metrics_to_mlflow(lifecycle: Workspace) -> None:
    client = MlflowClient(lifecycle.tracking_uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    by_step: dict[str, list[Any]] = {}
    for run in runs:
        by_step.setdefault(run.data.tags.get("step", ""), []).append(run)
    train = by_step["train"][0].data
    assert {"val_r2", "val_rmse", "val_mae", "boosting_iterations"} <= set(train.metrics)
    assert train.params["seed"] == "42" and train.params["model"] == "HistGradientBoostingRegressor"
    assert {"test_r2", "test_rmse", "test_mae", "deploy_flag"} <= set(by_step["evaluate"][0].data.metrics)
    assert by_step["prep"][0].data.params["train_rows"] == "2100"
    assert len(by_step["register"]) == 4


def test_steps_join_an_active_azure_ml_run(lifecycle: Workspace, tmp_path: Path) -> None:
    client = MlflowClient(lifecycle.tracking_uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    job_run = client.create_run(experiment.experiment_id, run_name="aml-job")
    before = len(client.search_runs([experiment.experiment_id]))
    evaluation = lifecycle.root / "worse" / "evaluation"  # deploy_flag 0: joins the run, registers nothing
    flags = {
        "model_name": MODEL_NAME,
        "model_path": lifecycle.outputs["strong_model"],
        "evaluation_output": evaluation,
        "model_info_output_path": tmp_path,
    }
    lifecycle.run("register.py", flags, MLFLOW_RUN_ID=job_run.info.run_id)
    joined = client.get_run(job_run.info.run_id)
    assert joined.info.run_name == "aml-job" and joined.data.params["model_name"] == MODEL_NAME
    assert len(client.search_runs([experiment.experiment_id])) == before


def test_register_refuses_a_malformed_deploy_flag(lifecycle: Workspace, tmp_path: Path) -> None:
    evaluation = tmp_path / "evaluation"
    evaluation.mkdir()
    (evaluation / "deploy_flag").write_text("yes")
    (evaluation / "metrics.json").write_text("{}")
    flags = {
        "model_name": MODEL_NAME,
        "model_path": tmp_path,
        "evaluation_output": evaluation,
        "model_info_output_path": tmp_path / "info",
    }
    result = lifecycle.run("register.py", flags, expect_ok=False)
    assert result.returncode != 0 and "evaluate.py writes 0 or 1" in result.stderr
    assert not (tmp_path / "info").exists()


def test_prep_reports_bad_data_naming_column_and_line(lifecycle: Workspace, tmp_path: Path) -> None:
    raw = tmp_path / "raw.csv"
    trips = taxi_data.generate_trips(30, seed=1)
    trips.loc[4, "vendor"] = 3
    taxi_data.write_csv(trips, raw)
    flags = {
        "raw_data": raw,
        "train_data": tmp_path / "t",
        "val_data": tmp_path / "v",
        "test_data": tmp_path / "s",
    }
    result = lifecycle.run("prep.py", flags, expect_ok=False)
    assert result.returncode != 0
    assert "column vendor has values outside whole numbers in [1, 2] at line 6 (3)" in result.stderr
