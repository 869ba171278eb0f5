"""The deploy orchestration against an in-memory backend, and its pure planning functions."""

from __future__ import annotations

import io
import re
from dataclasses import replace
from pathlib import Path

import pytest

from mlops.backends.base import (
    BackendError,
    ConfigurationError,
    DataSpec,
    EndpointState,
    EnvironmentSpec,
    TransientBackendError,
)
from mlops.orchestrate import (
    DeployError,
    DeploymentAction,
    DeployRequest,
    Progress,
    SmokeTestFailed,
    StaleVersionRefused,
    TrainingFailed,
    UsageError,
    deploy,
    deployment_action,
    deployment_name,
    deployments_to_delete,
    exit_code,
    parse_traffic_steps,
    rollback_traffic,
    serving_deployment,
    traffic_plan,
)
from tests._fake_backend import CREATING_CALLS, FakeBackend

ENDPOINT = "taxi-online"


def make_request(**changes: object) -> DeployRequest:
    request = DeployRequest(
        environment=EnvironmentSpec("taxi-train-env", "python:3.11", Path("conda.yml")),
        data=DataSpec("taxi-data", Path("taxi.csv")),
        compute="cpu-cluster",
        pipeline=Path("pipeline.yml"),
        experiment="taxi-fare",
        model_name="taxi-fare-model",
        online_endpoint=ENDPOINT,
        batch_endpoint="taxi-batch",
        request_sample=Path("request-sample.json"),
        batch_sample=Path("batch-sample.csv"),
    )
    return replace(request, **changes)


def run(backend: FakeBackend, **changes: object) -> tuple:
    stream = io.StringIO()
    summary = deploy(backend, make_request(**changes), Progress(stream=stream))
    return summary, stream.getvalue()


# ---------------------------------------------------------------- whole runs


def test_first_run_trains_deploys_shifts_all_traffic_and_scores_the_batch() -> None:
    backend = FakeBackend()
    summary, log = run(backend)
    assert summary.model_version == "1" and summary.changed and summary.registered
    assert summary.deployment == "taxi-fare-model-v1"
    assert backend.traffic == {"taxi-fare-model-v1": 100}
    assert summary.batch is not None and summary.batch.rows == 100
    assert summary.metrics["r2"] == 0.9
    assert [name for name in backend.call_names() if name in CREATING_CALLS] == [
        "create_deployment",
        "set_traffic",
        "run_batch",
    ]
    for step in (
        "environment",
        "data",
        "compute",
        "training",
        "gate",
        "deployment",
        "smoke",
        "traffic",
        "batch",
    ):
        assert re.search(rf"^\[\s*\d+\.\ds\] {step}: finished \(\d+\.\ds\)$", log, re.MULTILINE), step
        assert step in summary.timings


def test_summary_lines_name_metrics_version_gate_uri_batch_and_timings() -> None:
    backend = FakeBackend(metrics={"r2": 0.93123, "rmse": 3.20449, "mae": 2})
    summary, _ = run(backend)
    lines = summary.lines()
    assert "metrics: r2=0.9312 rmse=3.204 mae=2" in lines
    assert "model: taxi-fare-model version 1 (registered in this run: yes)" in lines
    assert "gate: deploy_flag=1; better than the champion" in lines
    assert "deployment: taxi-fare-model-v1 on taxi-online (changed); traffic: taxi-fare-model-v1=100" in lines
    assert "scoring URI: https://taxi-online.fake/score" in lines
    assert "batch: Completed, 100 rows -> taxi-batch/taxi-fare-batch-dp/predictions.csv" in lines
    assert re.fullmatch(r"timings: environment \d+\.\ds, data .*, batch \d+\.\ds", lines[-1])


def test_second_run_with_a_tied_gate_changes_nothing_and_says_why() -> None:
    backend = FakeBackend()
    run(backend)
    backend.calls.clear()
    summary, _ = run(backend)
    assert not [name for name in backend.call_names() if name in CREATING_CALLS]
    assert not summary.changed and not summary.registered
    assert summary.model_version == "1" and summary.deploy_flag == 0
    assert "not better than the champion" in summary.reason and "already serving" in summary.reason
    assert summary.scoring_uri


def test_better_model_replaces_the_serving_one_and_keeps_it_as_rollback_target() -> None:
    backend = FakeBackend(improves=True)
    run(backend)
    summary, _ = run(backend)
    assert backend.traffic == {"taxi-fare-model-v1": 0, "taxi-fare-model-v2": 100}
    assert summary.deleted == ()
    summary, _ = run(backend)
    assert summary.deleted == ("taxi-fare-model-v1",)
    assert sorted(backend.deployments) == ["taxi-fare-model-v2", "taxi-fare-model-v3"]


def test_failed_smoke_test_leaves_traffic_deletes_the_new_deployment_and_exits_4() -> None:
    backend = FakeBackend(improves=True)
    run(backend)
    backend.smoke_failures.add("taxi-fare-model-v2")
    with pytest.raises(SmokeTestFailed, match="taxi-fare-model-v2.*model failed to load") as failure:
        run(backend)
    assert exit_code(failure.value) == 4
    assert backend.traffic == {"taxi-fare-model-v1": 100}
    assert list(backend.deployments) == ["taxi-fare-model-v1"]


def test_smoke_failure_between_traffic_steps_gives_the_traffic_back() -> None:
    backend = FakeBackend(improves=True)
    run(backend)
    # The first smoke test (before any traffic) passes, the one after the 10 % step fails.
    original = backend.smoke_test

    def fail_once_traffic_moved(endpoint: str, deployment: str, sample: Path):
        result = original(endpoint, deployment, sample)
        return (
            replace(result, ok=False, detail="5xx under load") if backend.traffic.get(deployment) else result
        )

    backend.smoke_test = fail_once_traffic_moved  # type: ignore[method-assign]
    with pytest.raises(SmokeTestFailed, match="5xx under load"):
        run(backend, traffic_steps=(10, 50, 100))
    assert backend.traffic == {"taxi-fare-model-v1": 100}
    assert list(backend.deployments) == ["taxi-fare-model-v1"]


def test_rerun_after_a_crash_before_the_traffic_shift_finishes_without_a_duplicate() -> None:
    backend = FakeBackend(improves=True)
    run(backend)
    backend.improves = False
    backend.improves = True
    backend.failures["set_traffic"] = [ConnectionAbortedError("the orchestrator died")]
    with pytest.raises(ConnectionAbortedError):
        run(backend)
    assert backend.traffic == {"taxi-fare-model-v1": 100, "taxi-fare-model-v2": 0}
    backend.improves = False  # the re-run's gate ties with the new champion (version 2)
    summary, log = run(backend)
    assert "resume" in log
    assert backend.traffic == {"taxi-fare-model-v1": 0, "taxi-fare-model-v2": 100}
    assert summary.model_version == "2" and summary.changed
    assert backend.deployments_made == ["taxi-fare-model-v1", "taxi-fare-model-v2"]


def test_model_version_skips_training_and_the_gate() -> None:
    backend = FakeBackend(versions=["1", "2", "3"], champion="3")
    summary, log = run(backend, model_version="2")
    assert "run_training" not in backend.call_names() and "ensure_data" not in backend.call_names()
    assert "training: skipped (--model-version 2)" in log
    assert backend.traffic == {"taxi-fare-model-v2": 100}
    assert summary.deploy_flag is None and "gate skipped" in summary.reason


def test_skip_training_deploys_the_champion() -> None:
    backend = FakeBackend(versions=["1", "2"], champion="2")
    summary, _ = run(backend, skip_training=True)
    assert "run_training" not in backend.call_names()
    assert summary.model_version == "2" and backend.traffic == {"taxi-fare-model-v2": 100}


def test_skip_training_without_a_champion_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="no champion") as failure:
        run(FakeBackend(), skip_training=True)
    assert exit_code(failure.value) == 2


def test_gate_with_nothing_to_serve_changes_no_deployment() -> None:
    backend = FakeBackend()
    backend.run_training = lambda request: replace(  # type: ignore[method-assign]
        FakeBackend().run_training(request),
        deploy_flag=0,
        model_version=None,
        metrics={"reason": "r2 below 0.5"},
    )
    summary, _ = run(backend)
    assert summary.model_version is None and not summary.changed
    assert "r2 below 0.5" in summary.reason and "no champion" in summary.reason
    assert "ensure_online_endpoint" not in backend.call_names()


def test_exhausted_transient_errors_exit_5() -> None:
    backend = FakeBackend(failures={"create_deployment": [TransientBackendError("429 after 3 retries")]})
    with pytest.raises(TransientBackendError) as failure:
        run(backend)
    assert exit_code(failure.value) == 5
    assert backend.traffic == {}


def test_failed_training_exits_3_and_deploys_nothing() -> None:
    backend = FakeBackend(training_status="Failed")
    with pytest.raises(TrainingFailed, match="run-1 ended Failed.*boom") as failure:
        run(backend)
    assert exit_code(failure.value) == 3
    assert "ensure_online_endpoint" not in backend.call_names()


def test_stepwise_traffic_applies_each_step_in_order() -> None:
    backend = FakeBackend(improves=True)
    run(backend)
    run(backend, traffic_steps=(10, 50, 100))
    shifts = [args[1] for name, args in backend.calls if name == "set_traffic"][1:]
    assert [shift["taxi-fare-model-v2"] for shift in shifts] == [10, 50, 100]
    assert [shift["taxi-fare-model-v1"] for shift in shifts] == [90, 50, 0]


def test_progress_reports_a_failed_step_with_its_time() -> None:
    stream = io.StringIO()
    ticks = iter([0.0, 1.0, 1.0, 3.0, 3.5])
    progress = Progress(stream=stream, clock=lambda: next(ticks))
    with pytest.raises(RuntimeError), progress.step("train"):
        raise RuntimeError("out of memory")
    assert stream.getvalue().splitlines() == [
        "[    1.0s] train: started",
        "[    3.5s] train: failed (2.0s): out of memory",
    ]


# ---------------------------------------------------------------- pure functions


@pytest.mark.parametrize(
    ("model", "version", "expected"),
    [
        ("taxi-fare-model", "1", "taxi-fare-model-v1"),
        ("Taxi_Fare.Model", "12", "taxi-fare-model-v12"),
        ("a-very-long-model-name-for-taxi-fares", "123", "a-very-long-model-name-for-v123"),
        ("2024-model", "3", "m-2024-model-v3"),
        ("___", "7", "model-v7"),
        ("x", "2024.01", "x-v2024-01"),
    ],
)
def test_deployment_name(model: str, version: str, expected: str) -> None:
    name = deployment_name(model, version)
    assert name == expected
    assert 3 <= len(name) <= 32 and re.fullmatch(r"[a-z][a-z0-9-]*[a-z0-9]", name)


@pytest.mark.parametrize("version", ["", "...", "9" * 40])
def test_deployment_name_rejects_unusable_versions(version: str) -> None:
    with pytest.raises(UsageError, match="version"):
        deployment_name("taxi", version)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("100", (100,)), ("10,50,100", (10, 50, 100)), ("1, 100", (1, 100))],
)
def test_parse_traffic_steps(text: str, expected: tuple[int, ...]) -> None:
    assert parse_traffic_steps(text) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("50", "last step must be 100"),
        ("50,10,100", "strictly increasing"),
        ("0,100", "between 1 and 100"),
        ("10,half,100", "comma-separated integers"),
        ("", "comma-separated integers"),
    ],
)
def test_parse_traffic_steps_rejects(text: str, problem: str) -> None:
    with pytest.raises(UsageError, match=problem):
        parse_traffic_steps(text)


@pytest.mark.parametrize(
    ("current", "steps", "expected"),
    [
        ({}, (10, 50, 100), [{"new": 100}]),
        ({"old": 100}, (100,), [{"old": 0, "new": 100}]),
        (
            {"old": 100},
            (10, 50, 100),
            [{"old": 90, "new": 10}, {"old": 50, "new": 50}, {"old": 0, "new": 100}],
        ),
        ({"old": 50, "new": 50}, (10, 50, 100), [{"old": 0, "new": 100}]),
        ({"older": 0, "old": 100, "new": 0}, (100,), [{"older": 0, "old": 0, "new": 100}]),
    ],
)
def test_traffic_plan(
    current: dict[str, int], steps: tuple[int, ...], expected: list[dict[str, int]]
) -> None:
    assert traffic_plan(current, "new", steps) == expected


@pytest.mark.parametrize(
    ("traffic", "exclude", "expected"),
    [
        ({}, None, None),
        ({"a": 0}, None, None),
        ({"a": 30, "b": 70}, None, "b"),
        ({"a": 50, "b": 50}, "a", "b"),
    ],
)
def test_serving_deployment(traffic: dict[str, int], exclude: str | None, expected: str | None) -> None:
    assert serving_deployment(traffic, exclude) == expected


@pytest.mark.parametrize(
    ("current", "expected"),
    [
        ({"old": 100, "new": 0}, None),
        ({"old": 90, "new": 10}, {"old": 100, "new": 0}),
        ({"older": 0, "old": 50, "new": 50}, {"older": 0, "old": 100, "new": 0}),
    ],
)
def test_rollback_traffic(current: dict[str, int], expected: dict[str, int] | None) -> None:
    assert rollback_traffic(current, "new") == expected


@pytest.mark.parametrize(
    ("deployments", "traffic", "previous", "expected"),
    [
        (["v1", "v2", "v3"], {"v3": 100}, "v2", ["v1"]),
        (["v2", "v3"], {"v3": 100}, "v2", []),
        (["v3"], {"v3": 100}, None, []),
        (["v1", "v2", "v3"], {"v2": 50, "v3": 50}, "v2", []),
        (["stale", "v3"], {"v3": 100}, None, ["stale"]),
        (["v1", "v2", "v3"], {"v3": 0, "v2": 100}, "v2", []),
    ],
)
def test_deployments_to_delete(
    deployments: list[str], traffic: dict[str, int], previous: str | None, expected: list[str]
) -> None:
    assert deployments_to_delete(deployments, traffic, "v3", previous) == expected


@pytest.mark.parametrize(
    ("traffic", "deployments", "expected"),
    [
        ({}, [], DeploymentAction.CREATE),
        ({"other": 100}, ["other"], DeploymentAction.CREATE),
        ({"other": 100, "new": 0}, ["other", "new"], DeploymentAction.RESUME),
        ({"other": 50, "new": 50}, ["other", "new"], DeploymentAction.RESUME),
        ({"new": 100}, ["new"], DeploymentAction.KEEP),
    ],
)
def test_deployment_action(
    traffic: dict[str, int], deployments: list[str], expected: DeploymentAction
) -> None:
    state = EndpointState("ep", "https://ep/score", traffic, deployments)
    assert deployment_action(state, "new") is expected


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"data": None}, "training needs data"),
        ({"traffic_steps": (50,)}, "last step must be 100"),
        ({"model_registry": "shared-models"}, "--registry needs --model-version"),
        ({"deadline_s": 0}, "deadline must be positive"),
    ],
)
def test_request_rejects_contradictions(changes: dict[str, object], problem: str) -> None:
    with pytest.raises(UsageError, match=problem):
        make_request(**changes)


def test_request_without_data_is_fine_when_not_training() -> None:
    backend = FakeBackend(versions=["1"], champion="1")
    summary, _ = run(backend, data=None, skip_training=True)
    assert summary.model_version == "1"


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (UsageError("bad flag"), 2),
        (ConfigurationError("stack outputs missing"), 2),
        (TrainingFailed("prep failed"), 3),
        (SmokeTestFailed("500"), 4),
        (TransientBackendError("429"), 5),
        (BackendError("403"), 6),
        (KeyError("bug"), 1),
    ],
)
def test_exit_code(error: BaseException, code: int) -> None:
    assert exit_code(error) == code


def test_backends_import_nothing_from_the_orchestration() -> None:
    import ast

    backends = Path(__file__).resolve().parents[1] / "mlops" / "backends"
    reaching_up = []
    for module in sorted(backends.rglob("*.py")):
        for node in ast.walk(ast.parse(module.read_text())):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            reaching_up += [
                f"{module.name}: {name}" for name in names if name in ("mlops.orchestrate", "mlops.cli")
            ]
    assert reaching_up == []


# ---------------------------------------------------------------- no silent rollback, versions, deadlines


def test_a_reused_old_verdict_is_refused_and_nothing_changes() -> None:
    backend = FakeBackend(improves=True)
    run(backend)
    run(backend)
    run(backend)
    backend.calls.clear()
    # Step reuse re-emits the first run's "registered v1, deploy_flag 1" while v3 is the champion.
    backend.run_training = lambda request: replace(  # type: ignore[method-assign]
        FakeBackend().run_training(request), model_version="1", deploy_flag=1
    )
    with pytest.raises(StaleVersionRefused, match="champion is version 3") as refused:
        run(backend)
    assert exit_code(refused.value) == 2
    assert "--model-version 1" in str(refused.value)
    assert not [name for name in backend.call_names() if name in CREATING_CALLS]
    assert backend.traffic["taxi-fare-model-v3"] == 100


def test_an_older_version_deploys_when_asked_for_by_model_version() -> None:
    backend = FakeBackend(improves=True)
    for _ in range(3):
        run(backend)
    summary, log = run(backend, model_version="1")
    assert backend.traffic["taxi-fare-model-v1"] == 100
    assert "older than the champion (version 3): a deliberate rollback" in summary.reason
    assert "deploying older version 1 as asked" in log


def test_skip_training_with_model_version_deploys_that_version() -> None:
    backend = FakeBackend(versions=["1", "2"], champion="2")
    summary, log = run(backend, data=None, skip_training=True, model_version="1")
    assert "run_training" not in backend.call_names()
    assert summary.model_version == "1" and backend.traffic == {"taxi-fare-model-v1": 100}
    assert "training: skipped (--skip-training --model-version 1)" in log


def test_a_registry_version_reaches_the_backend_with_its_registry() -> None:
    backend = FakeBackend()
    run(backend, model_version="4", model_registry="shared-models")
    [spec] = [args[0] for name, args in backend.calls if name == "create_deployment"]
    assert spec.model_registry == "shared-models"
    assert spec.model_reference == "azureml://registries/shared-models/models/taxi-fare-model/versions/4"


def test_one_batch_deployment_name_serves_every_version() -> None:
    backend = FakeBackend(improves=True)
    run(backend)
    run(backend)
    batch_calls = [args for name, args in backend.calls if name == "run_batch"]
    assert [args[1] for args in batch_calls] == ["taxi-fare-batch-dp", "taxi-fare-batch-dp"]
    assert [args[3] for args in batch_calls] == ["1", "2"]


class FakeClock:
    """A clock that steps only when a fake backend call says time passed."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_every_wait_is_capped_by_what_is_left_of_the_hook_deadline() -> None:
    clock = FakeClock()
    backend = FakeBackend()
    real_training = backend.run_training

    def slow_training(request):  # training takes 3.5 h of the 4 h the hook has
        clock.now += 3.5 * 3600
        return real_training(request)

    backend.run_training = slow_training  # type: ignore[method-assign]
    request = make_request(deadline_s=4 * 3600)
    deploy(backend, request, Progress(stream=io.StringIO(), clock=clock))

    deadlines = {name: args[-1] for name, args in backend.calls if name in ("create_deployment", "run_batch")}
    [training_request] = [args[0] for name, args in backend.calls if name == "run_training"]
    assert training_request.deadline_s == 4 * 3600  # min(training's own 4 h, 4 h left)
    assert deadlines == {"create_deployment": 1800, "run_batch": 1800}


def test_a_hook_past_its_deadline_stops_before_the_next_step() -> None:
    clock = FakeClock()
    backend = FakeBackend()
    real_training = backend.run_training

    def overrunning_training(request):
        clock.now += request.deadline_s + 1
        return real_training(request)

    backend.run_training = overrunning_training  # type: ignore[method-assign]
    with pytest.raises(DeployError, match="deadline .* passed before step deployment"):
        deploy(backend, make_request(deadline_s=2 * 3600), Progress(stream=io.StringIO(), clock=clock))
    assert "create_deployment" not in backend.call_names()
