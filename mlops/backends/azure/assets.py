"""Workspace assets for the Azure backend: environments and data by content hash, compute, models."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from mlops.backends.azure.session import Session, plain
from mlops.backends.base import AssetRef, BackendError, DataSpec, EnvironmentSpec, UsageError
from mlops.src.gate import pick_champion, version_key


def content_hash(parts: Sequence[bytes], length: int = 16) -> str:
    """A short, stable sha256 of the given byte strings (length-prefixed, so ("ab","c") != ("a","bc"))."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()[:length]


def tree_bytes(path: Path, suffixes: tuple[str, ...] = ()) -> list[bytes]:
    """Relative names and contents of a file or of every file under a folder (optionally only `suffixes`)."""
    if path.is_file():
        return [path.read_bytes()]
    files = sorted(
        p
        for p in path.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and (not suffixes or p.suffix in suffixes)
    )
    return [
        part for file in files for part in (file.relative_to(path).as_posix().encode(), file.read_bytes())
    ]


def environment_version(spec: EnvironmentSpec) -> str:
    """Environment versions are immutable in AML: version = hash of the image name and the conda file."""
    return content_hash([spec.image.encode(), spec.conda_file.read_bytes()])


def data_version(spec: DataSpec) -> str:
    """The data asset version: hash of the file (or folder) content, so the same data is registered once."""
    return content_hash(tree_bytes(spec.path))


def environment_spec(spec_file: Path) -> EnvironmentSpec:
    """An environment as its AML spec file names it (name, image, conda file beside the spec)."""
    raw = yaml.safe_load(spec_file.read_text(encoding="utf-8"))
    return EnvironmentSpec(raw["name"], raw["image"], spec_file.parent / raw["conda_file"])


class Assets:
    """Environments, data, compute and registered models of the workspace."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._environments: dict[Path, str] = {}
        self.training_data: str | None = None
        """The data asset this run registered or found (`azureml:<name>:<version>`), for the model monitor."""

    def ensure_environment(self, spec: EnvironmentSpec) -> AssetRef:
        from azure.ai.ml.entities import Environment

        s = self.session
        version = environment_version(spec)
        target = f"environment {spec.name}:{version}"
        if s.exists(target, lambda: s.client.environments.get(spec.name, version=version)):
            if s.dry_run:
                s.add_plan("environment", f"{spec.name}:{version}", "exists")
            return AssetRef(spec.name, version, created=False)
        if s.dry_run:
            s.add_plan("environment", f"{spec.name}:{version}", "would create")
            return AssetRef(spec.name, version, created=True)
        environment = Environment(
            name=spec.name, version=version, image=spec.image, conda_file=str(spec.conda_file)
        )
        s.create(
            target,
            lambda: s.client.environments.create_or_update(environment),
            lambda: s.client.environments.get(spec.name, version=version),
        )
        return AssetRef(spec.name, version, created=True)

    def environment_id(self, spec_file: Path) -> str:
        """Ensure the environment a deployment spec names (once per run); `azureml:<name>:<hash version>`."""
        if spec_file not in self._environments:
            ref = self.ensure_environment(environment_spec(spec_file))
            self._environments[spec_file] = f"azureml:{ref.name}:{ref.version}"
        return self._environments[spec_file]

    def ensure_data(self, spec: DataSpec) -> AssetRef:
        from azure.ai.ml.constants import AssetTypes
        from azure.ai.ml.entities import Data

        s = self.session
        if not spec.path.exists():
            raise BackendError(
                f"data asset {spec.name}: {spec.path} does not exist; generate or pass the data file"
            )
        version = data_version(spec)
        target = f"data {spec.name}:{version}"
        # The model monitor compares production traffic with exactly this version.
        self.training_data = f"azureml:{spec.name}:{version}"
        if s.exists(target, lambda: s.client.data.get(spec.name, version=version)):
            if s.dry_run:
                s.add_plan("data", f"{spec.name}:{version}", "exists")
            return AssetRef(spec.name, version, created=False)
        if s.dry_run:
            s.add_plan("data", f"{spec.name}:{version}", f"would upload {spec.path.name} and create")
            return AssetRef(spec.name, version, created=True)
        data = Data(
            name=spec.name,
            version=version,
            path=str(spec.path),
            type=AssetTypes.URI_FILE if spec.path.is_file() else AssetTypes.URI_FOLDER,
            description=spec.description or None,
        )
        # azure-storage-blob retries the upload itself; the version is the content hash, so a re-read
        # after a lost response finds the same data.
        s.create(
            target,
            lambda: s.client.data.create_or_update(data),
            lambda: s.client.data.get(spec.name, version=version),
        )
        return AssetRef(spec.name, version, created=True)

    def compute_name(self, requested: str) -> str:
        """The stack's cluster wins over the spec's default name: Pulumi named it per environment."""
        return self.session.outputs.compute_cluster_name or requested

    def check_compute(self, name: str) -> str:
        s = self.session
        name = self.compute_name(name)
        compute = s.exists(f"compute {name}", lambda: s.client.compute.get(name))
        if compute is None:
            raise BackendError(
                f"compute {name!r} does not exist in workspace {s.outputs.workspace_name!r}; "
                "Pulumi creates it (computeClusterName output): run `pulumi up` for this stack first"
            )
        state = plain(getattr(compute, "provisioning_state", None), "unknown")
        size = getattr(compute, "size", None) or "?"
        scale = f"{getattr(compute, 'min_instances', '?')}-{getattr(compute, 'max_instances', '?')} nodes"
        if s.dry_run:
            s.add_plan("compute", name, f"exists ({state})")
        if state not in ("Succeeded", "unknown"):
            raise BackendError(
                f"compute {name!r} is {state}; wait for it to finish provisioning or fix it in Azure"
            )
        return f"{name}: {getattr(compute, 'type', 'compute')} {size}, {scale}, {state}"

    def models(self, model_name: str) -> list[Any]:
        """Every registered version of the model; none on a workspace that never registered it (404)."""
        s = self.session
        return s.exists(f"model {model_name}", lambda: list(s.client.models.list(name=model_name))) or []

    def model_versions(self, model_name: str) -> list[str]:
        """Every registered version number (as text) of the model."""
        return [str(model.version) for model in self.models(model_name)]

    def champion_version(self, model_name: str) -> str | None:
        """The version tagged champion, chosen on the client side: Azure ML's MLflow registry supports
        version tags, not aliases, and cannot search by tag (how-to-manage-models-mlflow.md; AZURE-FACTS 16)."""
        return pick_champion((str(model.version), model.tags or {}) for model in self.models(model_name))

    def require_model(self, model_name: str, version: str) -> None:
        """UsageError unless the workspace holds that version (before anything is created for it)."""
        versions = self.model_versions(model_name)
        if version not in versions:
            shown = ", ".join(sorted(versions, key=version_key)) or "none"
            raise UsageError(
                f"model {model_name} has no version {version} in workspace {self.session.outputs.workspace_name} "
                f"(registered: {shown}); give a registered version"
            )
