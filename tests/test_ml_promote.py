"""Promotion dev -> registry -> prod: the rules on in-memory stores, then for real between local workdirs."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mlops.cli import main
from mlops.promote import (
    LocalRegistry,
    LocalWorkdir,
    PromotionConflict,
    PromotionError,
    PromotionRefused,
    StoredModel,
    check_champion,
    evaluation_record,
    lineage_tags,
    promote,
    same_model,
)
from tests._local_training import train_locally

NAME = "taxi-fare-model"
RECORD = {"test_rmse": "3.1", "test_r2": "0.91", "test_mae": "2.2", "deploy_reason": "no champion yet"}
MLMODEL = "flavors: {}\nmetadata:\n  lineage:\n    data_sha256: d1\n    code_sha256: c1\n"


@dataclass
class MemoryStore:
    """A model store in memory, counting the copies made into it; `fail_create` loses the next create."""

    where: str
    models: dict[str, StoredModel] = field(default_factory=dict)
    champion_version: str | None = None
    created: list[str] = field(default_factory=list)
    fail_create: Exception | None = None
    keep_failed_create: bool = False

    def get(self, name: str, version: str) -> StoredModel | None:
        return self.models.get(version)

    def champion(self, name: str) -> str | None:
        return self.champion_version

    def download(self, name: str, version: str, into: Path) -> Path:
        into.mkdir(parents=True, exist_ok=True)
        (into / "MLmodel").write_text(MLMODEL)
        return into

    def create(self, name: str, version: str, folder: Path, tags: Mapping[str, str]) -> None:
        assert (folder / "MLmodel").is_file()
        if self.fail_create is not None:
            error, self.fail_create = self.fail_create, None
            if self.keep_failed_create:
                self.models[version] = StoredModel(name, version, dict(tags))
            raise error
        self.models[version] = StoredModel(name, version, dict(tags))
        self.created.append(version)


def stores(
    version: str = "3", champion: str | None = "3", tags: Mapping[str, str] = RECORD
) -> tuple[MemoryStore, ...]:
    dev = MemoryStore("ws-dev", {version: StoredModel(NAME, version, dict(tags), "job-7")}, champion)
    return dev, MemoryStore("registry"), MemoryStore("ws-prod")


def test_promotion_copies_into_the_registry_then_prod_with_lineage(tmp_path: Path) -> None:
    dev, registry, prod = stores()
    result = promote(dev, registry, prod, NAME, "3")
    assert (registry.created, prod.created) == (["3"], ["3"])
    tags = registry.models["3"].tags
    assert tags == {
        "promoted_from": "ws-dev",
        "source_model": f"{NAME}:3",
        "source_run": "job-7",
        "data_sha256": "d1",
        "code_sha256": "c1",
        **RECORD,
        "promotion": "champion",
    }
    assert prod.models["3"].tags == {**tags, "registry_asset": f"registry/models/{NAME}/versions/3"}
    assert result.changed and [c.action for c in result.copies] == ["created", "created"]


def test_promoting_the_same_version_twice_changes_nothing() -> None:
    dev, registry, prod = stores()
    promote(dev, registry, prod, NAME, "3")
    again = promote(dev, registry, prod, NAME, "3")
    assert (registry.created, prod.created) == (["3"], ["3"])
    assert not again.changed and [c.action for c in again.copies] == ["unchanged", "unchanged"]


def test_a_registry_copy_missing_in_prod_is_completed_on_rerun() -> None:
    dev, registry, prod = stores()
    prod.fail_create = RuntimeError("connection reset")
    with pytest.raises(PromotionError, match="into ws-prod failed: connection reset"):
        promote(dev, registry, prod, NAME, "3")
    result = promote(dev, registry, prod, NAME, "3")
    assert [c.action for c in result.copies] == ["unchanged", "created"]


def test_a_create_whose_response_was_lost_is_read_back_not_failed() -> None:
    dev, registry, prod = stores()
    registry.fail_create, registry.keep_failed_create = TimeoutError("response lost"), True
    result = promote(dev, registry, prod, NAME, "3")
    assert [c.action for c in result.copies] == ["created", "created"]


@pytest.mark.parametrize("where", ["registry", "prod"])
def test_a_different_model_under_that_version_is_a_conflict_never_overwritten(where: str) -> None:
    dev, registry, prod = stores()
    other = StoredModel(
        NAME, "3", {"promoted_from": "ws-other", "source_model": f"{NAME}:3", "source_run": "j"}
    )
    (registry if where == "registry" else prod).models["3"] = other
    with pytest.raises(
        PromotionConflict, match=r"already holds taxi-fare-model version 3 from elsewhere.*ws-other"
    ):
        promote(dev, registry, prod, NAME, "3")
    assert (registry if where == "registry" else prod).models["3"] is other
    assert prod.created == []


def test_champion_as_the_version_promotes_the_sources_champion() -> None:
    dev, registry, prod = stores()
    assert promote(dev, registry, prod, NAME, "champion").version == "3"
    dev.champion_version = None
    with pytest.raises(PromotionRefused, match="has no champion in ws-dev"):
        promote(dev, registry, prod, NAME, "champion")


def test_a_version_that_is_not_there_is_refused() -> None:
    dev, registry, prod = stores()
    with pytest.raises(PromotionRefused, match="version 9 is not registered in ws-dev"):
        promote(dev, registry, prod, NAME, "9")


def test_a_version_without_its_evaluation_record_is_refused_even_when_forced() -> None:
    dev, registry, prod = stores(tags={"test_rmse": "3.1"})
    with pytest.raises(
        PromotionRefused,
        match=r"no evaluation record \(missing tags \['test_r2', 'test_mae', 'deploy_reason'\]\)",
    ):
        promote(dev, registry, prod, NAME, "3", force=True)
    assert registry.created == prod.created == []


def test_a_non_champion_is_refused_unless_forced_and_then_says_so() -> None:
    dev, registry, prod = stores(champion="4")
    with pytest.raises(PromotionRefused, match="not the champion in ws-dev \\(version 4 is\\).*--force"):
        promote(dev, registry, prod, NAME, "3")
    assert registry.created == []
    promote(dev, registry, prod, NAME, "3", force=True)
    assert registry.models["3"].tags["promotion"] == prod.models["3"].tags["promotion"] == "forced"


@pytest.mark.parametrize(
    ("version", "champion", "force", "forced"),
    [("3", "3", False, False), ("3", "3", True, False), ("3", "4", True, True), ("3", None, True, True)],
)
def test_check_champion(version: str, champion: str | None, force: bool, forced: bool) -> None:
    assert check_champion(StoredModel(NAME, version, {}), champion, force, "ws") is forced


def test_check_champion_without_a_champion_says_there_is_none() -> None:
    with pytest.raises(PromotionRefused, match=r"\(no version is\)"):
        check_champion(StoredModel(NAME, "1", {}), None, False, "ws")


def test_evaluation_record_keeps_only_the_evaluation_tags() -> None:
    assert evaluation_record(StoredModel(NAME, "1", {**RECORD, "other": "x"})) == RECORD


def test_same_model_compares_identity_not_metrics() -> None:
    wanted = lineage_tags("ws", StoredModel(NAME, "1", {}, "run"), RECORD, {}, forced=False)
    assert same_model(StoredModel(NAME, "1", {**wanted, "test_rmse": "9"}), wanted)
    assert not same_model(StoredModel(NAME, "1", {**wanted, "source_run": "other"}), wanted)


# ---------------------------------------------------------------- for real, between local workdirs


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A dev workdir with version 1 (the champion), 2 (registered by hand) and 3 (by hand, evaluated)."""
    root = tmp_path_factory.mktemp("promote")
    dev = root / "dev"
    result = train_locally(dev, seed=1)
    assert result.model_version == "1"
    from mlflow import MlflowClient

    uri = f"sqlite:///{dev.resolve() / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    first = client.get_model_version(NAME, "1")
    client.create_model_version(NAME, first.source, run_id=first.run_id)
    client.create_model_version(NAME, first.source, run_id=first.run_id, tags=dict(first.tags))
    yield root


def _stored(workdir: Path, version: str) -> StoredModel | None:
    """The version as the workdir's store sees it (its warm interpreter stopped after the read)."""
    store = LocalWorkdir(workdir)
    try:
        return store.get(NAME, version)
    finally:
        store.close()


def _promote(root: Path, version: str, *extra: str) -> int:
    return main(
        [
            "promote",
            "--target",
            "local",
            "--model-version",
            version,
            "--from-workdir",
            str(root / "dev"),
            "--to-workdir",
            str(root / "prod"),
            "--registry-dir",
            str(root / "registry"),
            *extra,
        ]
    )


def test_local_refusals_copy_nothing(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _promote(trained, "2") == 2
    assert "has no evaluation record" in capsys.readouterr().err
    assert _promote(trained, "3") == 2
    assert "is not the champion" in capsys.readouterr().err
    assert _promote(trained, "7") == 2
    assert not (trained / "registry").exists() and not (trained / "prod").exists()


def test_local_promotion_copies_with_lineage_and_is_idempotent(
    trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    version_file = trained / "promoted-version"
    assert _promote(trained, "champion", "--version-file", str(version_file)) == 0
    out = capsys.readouterr().out
    assert "(changed)" in out and version_file.read_text() == "1\n"
    asset = json.loads((trained / "registry" / NAME / "1" / "asset.json").read_text())
    tags = asset["tags"]
    source = _stored(trained / "dev", "1")
    assert source is not None
    assert (
        tags["promoted_from"] == f"local:{(trained / 'dev').resolve()}" and tags["source_run"] == source.run
    )
    assert {key: tags[key] for key in ("test_rmse", "test_r2", "test_mae", "deploy_reason")} == {
        key: source.tags[key] for key in ("test_rmse", "test_r2", "test_mae", "deploy_reason")
    }
    mlmodel = (trained / "registry" / NAME / "1" / "model" / "MLmodel").read_text()
    assert (
        f"data_sha256: {tags['data_sha256']}" in mlmodel and f"code_sha256: {tags['code_sha256']}" in mlmodel
    )
    copied = _stored(trained / "prod", "1")
    assert copied is not None and copied.tags["registry_asset"].endswith(f"/models/{NAME}/versions/1")
    before = {p: p.stat().st_mtime_ns for p in (trained / "registry").rglob("*")}
    assert _promote(trained, "1") == 0
    assert "(unchanged)" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in (trained / "registry").rglob("*")} == before


def test_forcing_a_non_champion_is_recorded(trained: Path, tmp_path: Path) -> None:
    root = tmp_path / "forced"
    shutil.copytree(trained / "dev", root / "dev")
    assert _promote(root, "3", "--force") == 0
    assert LocalRegistry(root / "registry").get(NAME, "3").tags["promotion"] == "forced"  # type: ignore[union-attr]


def test_the_prod_workdirs_endpoint_serves_the_promoted_version(
    trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if _stored(trained / "prod", "1") is None:
        assert _promote(trained, "1") == 0
    code = main(["deploy", "--target", "local", "--workdir", str(trained / "prod"), "--model-version", "1"])
    summary = capsys.readouterr().out
    assert code == 0, summary
    assert f"model: {NAME} version 1" in summary and "deployment: taxi-fare-model-v1" in summary
    endpoints = json.loads((trained / "prod" / "endpoints.json").read_text())
    deployment = endpoints["taxi-fare-online"]["deployments"]["taxi-fare-model-v1"]
    served = Path(deployment["model_dir"])
    assert served.is_relative_to((trained / "prod").resolve())
    assert (served / "MLmodel").read_bytes() == (
        trained / "registry" / NAME / "1" / "model" / "MLmodel"
    ).read_bytes()
