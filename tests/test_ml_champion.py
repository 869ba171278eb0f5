"""The champion mark: an alias on MLflow's registry, a version tag on Azure ML's, chosen on the client side."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from mlflow import MlflowClient

from mlops.src.gate import CHAMPION_TAG, pick_champion

SRC = Path(__file__).resolve().parents[1] / "mlops" / "src"
MODEL = "taxi-fare-model"


@pytest.mark.parametrize(
    ("versions", "champion"),
    [
        ([], None),
        ([("1", {}), ("2", {})], None),
        ([("1", {"champion": "true"}), ("2", {})], "1"),
        ([("2", {"champion": "true"}), ("10", {"champion": "true"})], "10"),
        ([("3", {"champion": "TRUE"}), ("4", {"champion": "false"})], "3"),
        ([("1", {"test_rmse": "3.1"}), ("2", None)], None),
    ],
)
def test_pick_champion_takes_the_newest_tagged_version(
    versions: list[tuple[str, dict[str, str] | None]], champion: str | None
) -> None:
    assert pick_champion(versions) == champion  # type: ignore[arg-type]


def test_the_tag_is_the_one_azure_ml_documents_for_versions() -> None:
    # how-to-manage-models-mlflow.md: "To edit tags, use the set_model_version_tag and
    # remove_model_version_tag methods"; aliases are not in its supported-capabilities table.
    assert CHAMPION_TAG == "champion"


@pytest.fixture(scope="module")
def steps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ModuleType]]:
    """register.py and evaluate.py imported as Azure ML runs them (siblings on the path), on one sqlite registry
    per module (creating an MLflow database costs seconds)."""
    with pytest.MonkeyPatch.context() as patch:
        database = tmp_path_factory.mktemp("registry") / "mlflow.db"
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{database}")
        patch.syspath_prepend(str(SRC))
        yield {name: importlib.import_module(name) for name in ("register", "evaluate")}
    for name in ("register", "evaluate", "gate", "tracking", "taxi_schema"):
        sys.modules.pop(name, None)


def _register_version(client: MlflowClient, model: str, tmp_path: Path) -> str:
    if not client.search_registered_models(f"name='{model}'"):
        client.create_registered_model(model)
    return str(client.create_model_version(model, source=tmp_path.as_uri()).version)


def test_on_azure_the_champion_tag_moves_and_evaluate_finds_it(
    steps: dict[str, ModuleType], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    register, evaluate = steps["register"], steps["evaluate"]
    for module in (register, evaluate):
        monkeypatch.setattr(module, "registry_supports_aliases", lambda: False)
    client, model = MlflowClient(), f"{MODEL}-azure"

    assert evaluate.champion_version(client, model) is None
    first = _register_version(client, model, tmp_path)
    register.mark_champion(client, model, first)
    second = _register_version(client, model, tmp_path)
    register.mark_champion(client, model, second)

    tags = {str(v.version): v.tags for v in client.search_model_versions(f"name='{model}'")}
    assert tags[second].get(CHAMPION_TAG) == "true" and CHAMPION_TAG not in tags[first]
    assert (
        client.get_registered_model(model).aliases == {}
    ), "no alias on a registry that does not support them"
    assert str(evaluate.champion_version(client, model).version) == second


def test_locally_the_champion_is_the_alias(steps: dict[str, ModuleType], tmp_path: Path) -> None:
    register, evaluate = steps["register"], steps["evaluate"]
    client, model = MlflowClient(), f"{MODEL}-local"
    first = _register_version(client, model, tmp_path)
    register.mark_champion(client, model, first)
    second = _register_version(client, model, tmp_path)
    register.mark_champion(client, model, second)

    assert str(client.get_model_version_by_alias(model, "champion").version) == second
    assert str(evaluate.champion_version(client, model).version) == second
