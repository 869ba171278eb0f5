"""Promotion on Azure ML: a workspace's or the shared registry's models as mlops.promote's stores.

Each store is one MLClient behind a Session of the Azure backend (session.py): the workspace's own client,
or the registry's (`MLClient(credential, registry_name=...)`, whose calls go to the registry's endpoint
that its discovery names), with the session's credential (chosen per CI system, refreshing), azure-core's
HTTP and polling retries and its error advice. The calls are the documented ones
(how-to-share-models-pipelines-across-workspaces-with-registries.md, "Create a model in registry from
local files"): `models.get`, `models.list`, `models.download`, and `models.create_or_update` of an
`mlflow_model` from the downloaded folder, so the lineage tags are set in the call that creates the version.
Failures are the session's BackendErrors (transient ones exit 5, like the hook's); a failed create is
re-read by mlops.promote before it counts as failed (AZURE-FACTS 22).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from mlops.backends.azure.session import SDK_RETRIES, Session
from mlops.promote import PromotionError, StoredModel
from mlops.retry import describe
from mlops.src.gate import pick_champion
from mlops.stack_outputs import StackOutputs

T = TypeVar("T")


def workspace_where(session: Session) -> str:
    """How lineage tags name a workspace: the path Azure ML uses in asset ids, unique across tenants."""
    outputs = session.outputs
    return (
        f"azureml://subscriptions/{outputs.subscription_id}/resourceGroups/{outputs.resource_group}"
        f"/workspaces/{outputs.workspace_name}"
    )


def registry_where(registry_name: str) -> str:
    """How lineage tags name the registry (the prefix of its asset ids)."""
    return f"azureml://registries/{registry_name}"


class AzureModels:
    """The models of one Azure ML workspace or registry, through its MLClient and the session's error mapping."""

    def __init__(self, session: Session, client: Any, where: str) -> None:
        self.session = session
        self.client = client
        self.where = where

    def _call(self, what: str, operation: Callable[[], T]) -> T:
        """One SDK call; a failure is the session's BackendError (transient or not, with advice)."""
        return self.session.call(f"{what} in {self.where}", operation)

    def get(self, name: str, version: str) -> StoredModel | None:
        model = self.session.exists(
            f"reading model {name}:{version} in {self.where}",
            lambda: self.client.models.get(name=name, version=version),
        )
        if model is None:
            return None
        return StoredModel(name, str(model.version), dict(model.tags or {}), getattr(model, "job_name", None))

    def champion(self, name: str) -> str | None:
        """The version tagged champion=true, chosen on the client side (AZURE-FACTS 16; mlops/src/gate.py)."""
        models = self.session.exists(
            f"listing versions of {name} in {self.where}", lambda: list(self.client.models.list(name=name))
        )
        return pick_champion((str(model.version), model.tags or {}) for model in models or [])

    def download(self, name: str, version: str, into: Path) -> Path:
        into.mkdir(parents=True, exist_ok=True)
        self._call(
            f"downloading model {name}:{version}",
            lambda: self.client.models.download(name=name, version=version, download_path=str(into)),
        )
        found = sorted(into.rglob("MLmodel"))
        if not found:
            raise PromotionError(
                f"model {name}:{version} in {self.where} holds no MLmodel file: not an MLflow model"
            )
        return found[0].parent

    def create(self, name: str, version: str, folder: Path, tags: Mapping[str, str]) -> None:
        from azure.ai.ml.constants import AssetTypes
        from azure.ai.ml.entities import Model

        model = Model(
            name=name,
            version=version,
            path=str(folder),
            type=AssetTypes.MLFLOW_MODEL,
            tags=dict(tags),
            description=f"promoted from {tags.get('promoted_from', 'unknown')} ({tags.get('source_model', '')})",
        )
        self._call(f"creating model {name}:{version}", lambda: self.client.models.create_or_update(model))


def location_problem(outputs: StackOutputs, env: Mapping[str, str]) -> str | None:
    """Why this machine cannot promote from or into the stack: a private workspace's downloads and uploads
    are data-plane work, reachable only from inside its VNet (AZURE-FACTS 5, 32), never from a GitHub-hosted
    runner. (Unlike the hook, promotion calls no endpoint, so an AKS-served one does not matter here.)"""
    if outputs.private_workspace and env.get("RUNNER_ENVIRONMENT") == "github-hosted":
        return (
            f"workspace {outputs.workspace_name} has public network access Disabled, so its model downloads "
            "and uploads work only from inside its VNet (AZURE-FACTS 5, 32); this job runs on a GitHub-hosted "
            f"runner. Promote from the self-hosted runner in the agents subnet (label aml-vnet-{outputs.environment})"
        )
    return None


def workspace_models(session: Session) -> AzureModels:
    """The models of the session's workspace."""
    return AzureModels(session, session.client, workspace_where(session))


def registry_models(session: Session, registry_name: str) -> AzureModels:
    """The models of the registry, with the session's credential; its client asks the registry's discovery
    service where the registry lives when it is built, so an unreachable registry fails here."""
    from azure.ai.ml import MLClient

    try:
        client = MLClient(
            session.credential_object, registry_name=registry_name, show_progress=False, **SDK_RETRIES
        )
    except Exception as error:  # noqa: BLE001 - discovery failing means the registry is not reachable
        raise PromotionError(
            f"cannot reach Azure ML registry {registry_name!r} ({session.safe(describe(error))}); does the "
            "prod stack (its owner) exist, and may this identity use it (modelRegistryWriters)?"
        ) from None
    return AzureModels(session, client, registry_where(registry_name))
