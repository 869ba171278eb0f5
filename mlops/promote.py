"""`python -m mlops promote`: copy dev's champion into the shared model registry, then into prod, with lineage.

The flow, the same on Azure (mlops/backends/azure/promotion.py) and locally (the stores below):
1. The source version must exist in dev and carry its evaluation record (the test scores and the
   gate's reason that mlops/src/register.py tags every version it registers with); a version
   registered by hand has none and is refused.
2. It must be dev's champion (the champion alias locally, the champion=true version tag on Azure ML:
   mlops/src/gate.py), unless --force (then its tags say `promotion: forced`).
3. It is copied into the registry under the same name and version, tagged with its lineage: source
   workspace, source model and run, data and code hashes (from the model's own MLmodel metadata),
   test scores and gate reason.
4. The registry's version is copied into the prod workspace, tagged the same plus the registry asset
   it came from. Kubernetes online endpoints cannot serve registry models (AZURE-FACTS 30), and one
   path for every target means prod deploys its own workspace copy (`deploy --model-version N`)
   whatever its online target, and a version number prod already used for a model of its own is
   refused instead of shadowed.
Idempotent: a copy that already holds the same source model and run is left as it is; a copy under
the same name and version from anywhere else is a conflict, never overwritten.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import yaml

if TYPE_CHECKING:
    from mlops.backends.local import LocalBackend

EVALUATION_TAGS = ("test_rmse", "test_r2", "test_mae", "deploy_reason")
"""What register.py tags a version with after evaluate scored it: the evaluation record promotion requires."""
CHAMPION = "champion"
"""Give this as the version to promote whatever the source's champion is (CI does)."""
IDENTITY_TAGS = ("promoted_from", "source_model", "source_run")
"""The tags that say which model a copy is; equal identity means the copy is already there."""


class PromotionError(Exception):
    """A promotion that could not be carried out; the message says what to change."""


class PromotionRefused(PromotionError):
    """The version may not be promoted as asked (no such version, no evaluation record, not the champion)."""


class PromotionConflict(PromotionError):
    """The registry or prod already holds a different model under that name and version."""


@dataclass(frozen=True)
class StoredModel:
    """A model version as a store holds it."""

    name: str
    version: str
    tags: Mapping[str, str]
    run: str | None = None
    """The run (MLflow run id, or Azure ML job name) that produced it, when known."""


class ModelStore(Protocol):
    """Where model versions live: a workspace or the registry (Azure), a workdir or a folder (locally)."""

    where: str
    """What this store is, as lineage tags and messages name it."""

    def get(self, name: str, version: str) -> StoredModel | None: ...

    def download(self, name: str, version: str, into: Path) -> Path:
        """Write the version's files under `into`; return the folder holding its MLmodel file."""
        ...

    def create(self, name: str, version: str, folder: Path, tags: Mapping[str, str]) -> None: ...


class SourceStore(ModelStore, Protocol):
    """The workspace models are promoted from: it also knows its champion."""

    def champion(self, name: str) -> str | None: ...


# ---------------------------------------------------------------- pure pieces


def evaluation_record(model: StoredModel) -> dict[str, str]:
    """The version's evaluation tags; PromotionRefused naming the missing ones otherwise."""
    missing = [tag for tag in EVALUATION_TAGS if not model.tags.get(tag)]
    if missing:
        raise PromotionRefused(
            f"{model.name} version {model.version} has no evaluation record (missing tags {missing}); "
            "only versions the pipeline's register step registered after evaluate can be promoted: "
            "train it through the pipeline"
        )
    return {tag: str(model.tags[tag]) for tag in EVALUATION_TAGS}


def check_champion(model: StoredModel, champion: str | None, force: bool, where: str) -> bool:
    """Whether the version is forced through (not the champion, --force); PromotionRefused without --force."""
    if champion == model.version:
        return False
    if force:
        return True
    which = f"version {champion} is" if champion else "no version is"
    raise PromotionRefused(
        f"{model.name} version {model.version} is not the champion in {where} ({which}); promote the "
        f"champion, or pass --force to promote version {model.version} anyway (its lineage then says so)"
    )


def model_lineage(folder: Path) -> dict[str, str]:
    """The data and code hashes train.py stamped into the model's MLmodel metadata (empty if none)."""
    spec = yaml.safe_load((folder / "MLmodel").read_text()) or {}
    lineage = (spec.get("metadata") or {}).get("lineage") or {}
    return {key: str(lineage[key]) for key in ("data_sha256", "code_sha256") if lineage.get(key)}


def lineage_tags(
    source_where: str, model: StoredModel, record: Mapping[str, str], hashes: Mapping[str, str], forced: bool
) -> dict[str, str]:
    """The tags a promoted copy carries: where it came from, what made it, how it scored, why it passed."""
    return {
        "promoted_from": source_where,
        "source_model": f"{model.name}:{model.version}",
        "source_run": model.run or "unknown",
        **hashes,
        **record,
        "promotion": "forced" if forced else "champion",
    }


def same_model(existing: StoredModel, wanted: Mapping[str, str]) -> bool:
    """Whether a copy already there is this promotion's model (same source workspace, model and run)."""
    return all(existing.tags.get(tag) == wanted.get(tag) for tag in IDENTITY_TAGS)


def conflict(store: str, existing: StoredModel, wanted: Mapping[str, str]) -> PromotionConflict:
    """The error for a different model under the name and version being promoted."""
    held = ", ".join(f"{tag}={existing.tags.get(tag, 'unset')}" for tag in IDENTITY_TAGS)
    return PromotionConflict(
        f"{store} already holds {existing.name} version {existing.version} from elsewhere ({held}); "
        f"it is not {wanted['source_model']} of {wanted['promoted_from']} and is never overwritten: "
        "promote a version number the target has not used, or retire the old one there first"
    )


# ---------------------------------------------------------------- the promotion


@dataclass(frozen=True)
class CopyOutcome:
    """What one copy did: `created`, or `unchanged` (the same model was there already)."""

    store: str
    action: str


@dataclass(frozen=True)
class PromotionResult:
    """What a promotion did, for the summary."""

    name: str
    version: str
    tags: Mapping[str, str]
    copies: tuple[CopyOutcome, ...] = ()
    timings: Mapping[str, float] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        """Whether this run copied anything (False: promoting the same version again)."""
        return any(copy.action == "created" for copy in self.copies)

    def lines(self) -> list[str]:
        """The human-readable summary."""
        copies = "; ".join(f"{copy.store}: {copy.action}" for copy in self.copies)
        lineage = ", ".join(f"{key}={value}" for key, value in self.tags.items())
        timings = ", ".join(f"{step} {seconds:.1f}s" for step, seconds in self.timings.items())
        return [
            "== promote summary ==",
            f"model: {self.name} version {self.version} ({'changed' if self.changed else 'unchanged'})",
            f"copies: {copies}",
            f"lineage: {lineage}",
            f"timings: {timings}",
        ]


Say = Callable[[str], None]


def promote(
    source: SourceStore,
    registry: ModelStore,
    target: ModelStore,
    name: str,
    version: str,
    *,
    force: bool = False,
    say: Say = lambda line: None,
    clock: Callable[[], float] = time.monotonic,
) -> PromotionResult:
    """Check, then copy source -> registry -> target (each copy skipped when already there)."""
    timings: dict[str, float] = {}
    started = clock()
    if version == CHAMPION:
        resolved = source.champion(name)
        if resolved is None:
            raise PromotionRefused(f"{name} has no champion in {source.where}: train and register one first")
        version = resolved
    model = source.get(name, version)
    if model is None:
        raise PromotionRefused(
            f"{name} version {version} is not registered in {source.where}; give a version it has "
            "(the deploy summary names the version each training registered)"
        )
    record = evaluation_record(model)
    forced = check_champion(model, source.champion(name), force, source.where)
    say(f"{name}:{version} in {source.where}: {'forced, not the champion' if forced else 'the champion'}")
    timings["checks"] = clock() - started
    with tempfile.TemporaryDirectory(prefix="promote-") as scratch:
        began = clock()
        wanted = lineage_tags(source.where, model, record, {}, forced)
        existing = registry.get(name, version)
        if existing is not None and not same_model(existing, wanted):
            raise conflict(registry.where, existing, wanted)
        if existing is None:
            folder = source.download(name, version, Path(scratch) / "source")
            tags = lineage_tags(source.where, model, record, model_lineage(folder), forced)
            _create(registry, name, version, folder, tags)
            outcomes = [CopyOutcome(registry.where, "created")]
        else:
            tags = dict(existing.tags)
            outcomes = [CopyOutcome(registry.where, "unchanged")]
        say(f"{registry.where}: {outcomes[0].action}")
        timings["registry"] = clock() - began
        began = clock()
        outcomes.append(_copy_to_target(registry, target, name, version, tags, Path(scratch) / "registry"))
        say(f"{target.where}: {outcomes[-1].action}")
        timings["target"] = clock() - began
    return PromotionResult(name, version, tags, tuple(outcomes), timings)


def _copy_to_target(
    registry: ModelStore, target: ModelStore, name: str, version: str, tags: Mapping[str, str], scratch: Path
) -> CopyOutcome:
    existing = target.get(name, version)
    if existing is not None:
        if not same_model(existing, tags):
            raise conflict(target.where, existing, tags)
        return CopyOutcome(target.where, "unchanged")
    folder = registry.download(name, version, scratch)
    asset = f"{registry.where}/models/{name}/versions/{version}"  # the registry's asset id
    _create(target, name, version, folder, {**tags, "registry_asset": asset})
    return CopyOutcome(target.where, "created")


def _create(store: ModelStore, name: str, version: str, folder: Path, tags: Mapping[str, str]) -> None:
    """Create the copy; if the call failed but the copy is there as wanted (a lost response), that is success."""
    try:
        store.create(name, version, folder, tags)
    except Exception as error:  # noqa: BLE001 - re-read before failing (AZURE-FACTS 22)
        if _holds(store, name, version, tags):
            return
        if isinstance(error, PromotionError):
            raise
        raise PromotionError(f"copying {name}:{version} into {store.where} failed: {error}") from error


def _holds(store: ModelStore, name: str, version: str, tags: Mapping[str, str]) -> bool:
    """Whether the store holds this promotion's model now (a read that fails says no)."""
    try:
        existing = store.get(name, version)
    except Exception:  # noqa: BLE001 - the create's own error is the one to report
        return False
    return existing is not None and same_model(existing, tags)


# ---------------------------------------------------------------- local stores


@dataclass
class LocalWorkdir:
    """A local workdir as a model store: its MLflow registry (source) and its promoted copies (target).

    Nothing is written (not even the folder) until a copy is created in it. Its registry reads run in the
    local backend's warm interpreter (mlops.prefork): close() stops it.
    """

    workdir: Path
    where: str = ""
    _backend: LocalBackend | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir).resolve()
        self.where = self.where or f"local:{self.workdir}"

    def backend(self) -> LocalBackend:
        """The workdir's local backend, one per store (creates the folder)."""
        from mlops.backends.local import LocalBackend

        if self._backend is None:
            self._backend = LocalBackend(self.workdir)
        return self._backend

    def close(self) -> None:
        """Stop the backend's warm interpreter, if one started."""
        if self._backend is not None:
            self._backend.close()
            self._backend = None

    def get(self, name: str, version: str) -> StoredModel | None:
        if not self.workdir.is_dir():
            return None
        imported = self.backend().imported_model(name, version)
        if imported is not None:
            return StoredModel(name, version, imported)
        return self._registered(name, version)

    def _registered(self, name: str, version: str) -> StoredModel | None:
        if not (self.workdir / "mlflow.db").is_file():
            return None
        found = self.backend().registered_model(name, version)
        return None if found is None else StoredModel(name, version, found["tags"], found["run_id"])

    def champion(self, name: str) -> str | None:
        return self.backend().champion_version(name) if (self.workdir / "mlflow.db").is_file() else None

    def download(self, name: str, version: str, into: Path) -> Path:
        return self.backend().model_folder(name, version)

    def create(self, name: str, version: str, folder: Path, tags: Mapping[str, str]) -> None:
        self.backend().import_model(name, version, folder, tags)


@dataclass
class LocalRegistry:
    """A folder standing in for the Azure ML registry: <root>/<name>/<version>/{model/, asset.json}."""

    root: Path
    where: str = ""

    def __post_init__(self) -> None:
        self.root = Path(self.root).resolve()
        self.where = self.where or f"local-registry:{self.root}"

    def _version(self, name: str, version: str) -> Path:
        return self.root / name / version

    def get(self, name: str, version: str) -> StoredModel | None:
        asset = self._version(name, version) / "asset.json"
        if not asset.is_file():
            return None
        return StoredModel(name, version, json.loads(asset.read_text())["tags"])

    def download(self, name: str, version: str, into: Path) -> Path:
        return self._version(name, version) / "model"

    def create(self, name: str, version: str, folder: Path, tags: Mapping[str, str]) -> None:
        target = self._version(name, version)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=target.parent))
        shutil.copytree(folder, staging / "model")
        (staging / "asset.json").write_text(
            json.dumps({"name": name, "version": version, "tags": dict(tags)})
        )
        # The asset appears whole or not at all: a crash mid-copy leaves only a hidden staging folder.
        staging.replace(target)
