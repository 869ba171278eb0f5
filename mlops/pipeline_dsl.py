"""The training pipeline in azure-ai-ml's DSL; a test keeps it equal to azureml/train/pipeline.yml.

Both variants: `train`, or (sweep=True) the `sweep` step that replaces it, as pipeline_spec selects them.
"""

# No `from __future__ import annotations`: the @pipeline decorator reads the parameter annotations as types.
from collections.abc import Callable
from pathlib import Path

from azure.ai.ml import Input, Output, command
from azure.ai.ml.dsl import pipeline
from azure.ai.ml.entities import Command, PipelineJob
from azure.ai.ml.entities._builders import Sweep
from azure.ai.ml.sweep import Choice, LogUniform, MedianStoppingPolicy, RandomSamplingAlgorithm, Uniform

CODE_DIR = Path(__file__).resolve().parent / "src"
ENVIRONMENT = "azureml:taxi-train-env@latest"
DEFAULT_COMPUTE = "azureml:cpu-cluster"
DEFAULT_DATASTORE = "azureml:workspaceblobstore"
EXPERIMENT = "taxi-fare-training"
RAW_DATA = "azureml:taxi-data@latest"
MODEL_NAME = "taxi-fare-model"
SEED = 42
SWEEP_SEARCH_SPACE = {
    "learning_rate": LogUniform(min_value=-3.912, max_value=-1.204),
    "max_leaf_nodes": Choice(values=[15, 31, 63, 127]),
    "min_samples_leaf": Choice(values=[5, 20, 50, 100]),
    "l2_regularization": Uniform(min_value=0.0, max_value=5.0),
}
SWEEP_PARAMETER_TYPES = {
    "learning_rate": "number",
    "max_leaf_nodes": "integer",
    "min_samples_leaf": "integer",
    "l2_regularization": "number",
}


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


def _sweep(train_data: Input, val_data: Input, seed: int) -> Sweep:
    flags = " ".join(f"--{name} ${{{{inputs.{name}}}}}" for name in SWEEP_PARAMETER_TYPES)
    trial = command(
        code=CODE_DIR,
        environment=ENVIRONMENT,
        command="python train.py --train_data ${{inputs.train_data}} --val_data ${{inputs.val_data}}"
        f" --model_output ${{{{outputs.model_output}}}} --seed ${{{{inputs.seed}}}} {flags}",
        inputs={
            "train_data": Input(type="uri_folder"),
            "val_data": Input(type="uri_folder"),
            "seed": Input(type="integer"),
            **{name: Input(type=kind) for name, kind in SWEEP_PARAMETER_TYPES.items()},
        },
        outputs={"model_output": Output(type="uri_folder")},
    )
    node = trial(train_data=train_data, val_data=val_data, seed=seed, **SWEEP_SEARCH_SPACE).sweep(
        sampling_algorithm=RandomSamplingAlgorithm(seed=42),
        primary_metric="val_rmse",
        goal="minimize",
        early_termination_policy=MedianStoppingPolicy(evaluation_interval=1, delay_evaluation=5),
    )
    node.set_limits(max_total_trials=8, max_concurrent_trials=2, timeout=7200, trial_timeout=1800)
    node.name = node.display_name = "sweep"
    node.tags = {"replaces": "train"}
    return node


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


def taxi_fare_training(sweep: bool = False) -> Callable[..., PipelineJob]:
    """The @pipeline function: prep -> train (or its sweep) -> evaluate -> register, wired output to input.

    The variant is chosen when the function is built: inside it, parameters are pipeline inputs.
    """

    @pipeline(
        name=EXPERIMENT,
        display_name=EXPERIMENT,
        description="NYC taxi fare regression - prep, train, evaluate against the champion, register when better",
    )
    def training(raw_data: Input, model_name: str, seed: int) -> None:
        prep = _prep()(raw_data=raw_data, seed=seed)
        splits = {"train_data": prep.outputs.train_data, "val_data": prep.outputs.val_data}
        train = _sweep(**splits, seed=seed) if sweep else _train()(**splits, seed=seed)
        evaluate = _evaluate()(
            model_name=model_name, model_input=train.outputs.model_output, test_data=prep.outputs.test_data
        )
        _register()(
            model_name=model_name,
            model_path=train.outputs.model_output,
            evaluation_output=evaluate.outputs.evaluation_output,
        )

    return training


def build_pipeline_job(sweep: bool = False) -> PipelineJob:
    """The training pipeline job with the same inputs, settings and names as pipeline.yml (that variant)."""
    job: PipelineJob = taxi_fare_training(sweep)(
        raw_data=Input(type="uri_file", path=RAW_DATA), model_name=MODEL_NAME, seed=SEED
    )
    job.experiment_name = EXPERIMENT
    job.settings.default_compute = DEFAULT_COMPUTE
    job.settings.default_datastore = DEFAULT_DATASTORE
    job.settings.continue_on_step_failure = False
    # The decision steps (evaluate, register) must never be reused: see pipeline.yml.
    job.settings.force_rerun = True
    return job
