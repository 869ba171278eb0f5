"""The training pipeline in azure-ai-ml's DSL; a test keeps it equal to azureml/train/pipeline.yml."""

# No `from __future__ import annotations`: the @pipeline decorator reads the parameter annotations as types.
from pathlib import Path

from azure.ai.ml import Input, Output, command
from azure.ai.ml.dsl import pipeline
from azure.ai.ml.entities import Command, PipelineJob

CODE_DIR = Path(__file__).resolve().parent / "src"
ENVIRONMENT = "azureml:taxi-train-env@latest"
DEFAULT_COMPUTE = "azureml:cpu-cluster"
DEFAULT_DATASTORE = "azureml:workspaceblobstore"
EXPERIMENT = "taxi-fare-training"
RAW_DATA = "azureml:taxi-data@latest"
MODEL_NAME = "taxi-fare-model"
SEED = 42


def _step(name: str, command_line: str, inputs: dict[str, Input], outputs: list[str]) -> Command:
    return command(
        name=name,
        display_name=name,
        code=CODE_DIR,
        environment=ENVIRONMENT,
        command=command_line,
        inputs=inputs,
        outputs={output: Output(type="uri_folder") for output in outputs},
    )


def _prep() -> Command:
    return _step(
        "prep",
        "python prep.py --raw_data ${{inputs.raw_data}} --train_data ${{outputs.train_data}}"
        " --val_data ${{outputs.val_data}} --test_data ${{outputs.test_data}} --seed ${{inputs.seed}}",
        {"raw_data": Input(type="uri_file"), "seed": Input(type="integer")},
        ["train_data", "val_data", "test_data"],
    )


def _train() -> Command:
    return _step(
        "train",
        "python train.py --train_data ${{inputs.train_data}} --val_data ${{inputs.val_data}}"
        " --model_output ${{outputs.model_output}} --seed ${{inputs.seed}}",
        {
            "train_data": Input(type="uri_folder"),
            "val_data": Input(type="uri_folder"),
            "seed": Input(type="integer"),
        },
        ["model_output"],
    )


def _evaluate() -> Command:
    return _step(
        "evaluate",
        "python evaluate.py --model_name ${{inputs.model_name}} --model_input ${{inputs.model_input}}"
        " --test_data ${{inputs.test_data}} --evaluation_output ${{outputs.evaluation_output}}",
        {
            "model_name": Input(type="string"),
            "model_input": Input(type="uri_folder"),
            "test_data": Input(type="uri_folder"),
        },
        ["evaluation_output"],
    )


def _register() -> Command:
    return _step(
        "register",
        "python register.py --model_name ${{inputs.model_name}} --model_path ${{inputs.model_path}}"
        " --evaluation_output ${{inputs.evaluation_output}}"
        " --model_info_output_path ${{outputs.model_info_output_path}}",
        {
            "model_name": Input(type="string"),
            "model_path": Input(type="uri_folder"),
            "evaluation_output": Input(type="uri_folder"),
        },
        ["model_info_output_path"],
    )


@pipeline(
    name=EXPERIMENT,
    display_name=EXPERIMENT,
    description="NYC taxi fare regression - prep, train, evaluate against the champion, register when better",
)
def taxi_fare_training(raw_data: Input, model_name: str, seed: int) -> None:
    """prep -> train -> evaluate -> register, wired output to input."""
    prep = _prep()(raw_data=raw_data, seed=seed)
    train = _train()(train_data=prep.outputs.train_data, val_data=prep.outputs.val_data, seed=seed)
    evaluate = _evaluate()(
        model_name=model_name, model_input=train.outputs.model_output, test_data=prep.outputs.test_data
    )
    _register()(
        model_name=model_name,
        model_path=train.outputs.model_output,
        evaluation_output=evaluate.outputs.evaluation_output,
    )


def build_pipeline_job() -> PipelineJob:
    """The training pipeline job with the same inputs, settings and names as pipeline.yml."""
    job: PipelineJob = taxi_fare_training(
        raw_data=Input(type="uri_file", path=RAW_DATA), model_name=MODEL_NAME, seed=SEED
    )
    job.experiment_name = EXPERIMENT
    job.settings.default_compute = DEFAULT_COMPUTE
    job.settings.default_datastore = DEFAULT_DATASTORE
    job.settings.continue_on_step_failure = False
    # The decision steps (evaluate, register) must never be reused: see pipeline.yml.
    job.settings.force_rerun = True
    return job
