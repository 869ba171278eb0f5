"""The Azure side of `python -m mlops promote`: workspaces and the shared registry as model stores, via MLClient.

Each store wraps one MLClient (a workspace's, or the registry's: `MLClient(credential,
registry_name=...)`, whose calls go to the registry's own endpoint found by discovery). The calls are
the documented ones (how-to-share-models-pipelines-across-workspaces-with-registries.md, "Create a
model in registry from local files"): `models.get`, `models.download`, and `models.create_or_update`
of an `mlflow_model` from the downloaded folder, so the tags (the lineage) are set in the same call
that creates the version. Transient failures are retried (mlops.retry); the others become
PromotionError with the Azure message.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from mlops.promote import PromotionError, StoredModel, newest_version
from mlops.retry import RetryExhausted, RetryPolicy, call_with_retry, describe
from mlops.stack_outputs import StackOutputs

T = TypeVar("T")
DEFAULT_POLICY = RetryPolicy()


def workspace_where(outputs: StackOutputs) -> str:
    """How lineage tags name a workspace: the path Azure ML uses in asset ids, unique across tenants."""
    return (
        f"azureml://subscriptions/{outputs.subscription_id}/resourceGroups/{outputs.resource_group}"
        f"/workspaces/{outputs.workspace_name}"
    )


def registry_where(registry_name: str) -> str:
    """How lineage tags name the registry (the prefix of its asset ids)."""
    return f"azureml://registries/{registry_name}"


class AzureModels:
    """The models of one Azure ML workspace or registry, through its MLClient."""

    def __init__(
        self,
        client: Any,
        where: str,
        *,
        policy: RetryPolicy = DEFAULT_POLICY,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.where = where
        self._policy = policy
        self._sleep = sleep

    def _call(self, what: str, operation: Callable[[], T]) -> T:
        try:
            return call_with_retry(operation, self._policy, sleep=self._sleep)
        except RetryExhausted as exhausted:
            raise PromotionError(f"{what} in {self.where}: {exhausted}") from None
        except PromotionError:
            raise
        except Exception as error:  # noqa: BLE001 - every SDK failure becomes a PromotionError
            raise PromotionError(f"{what} in {self.where}: {describe(error)}") from None

    def get(self, name: str, version: str) -> StoredModel | None:
        from azure.core.exceptions import ResourceNotFoundError

        def read() -> Any:
            try:
                return self.client.models.get(name=name, version=version)
            except ResourceNotFoundError:
                return None

        model = self._call(f"reading model {name}:{version}", read)
        if model is None:
            return None
        return StoredModel(name, str(model.version), dict(model.tags or {}), getattr(model, "job_name", None))

    def champion(self, name: str) -> str | None:
        models = self._call(f"listing versions of {name}", lambda: list(self.client.models.list(name=name)))
        return newest_version([str(model.version) for model in models])

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


def workspace_client(outputs: StackOutputs, credential: Any) -> Any:
    """The MLClient of the workspace a stack's outputs name (no network call at construction)."""
    from azure.ai.ml import MLClient

    return MLClient(
        credential,
        outputs.subscription_id,
        outputs.resource_group,
        outputs.workspace_name,
        show_progress=False,
    )


def registry_client(registry_name: str, credential: Any) -> Any:
    """The MLClient of the registry; its construction asks the registry discovery service where it lives."""
    from azure.ai.ml import MLClient

    try:
        return MLClient(credential, registry_name=registry_name, show_progress=False)
    except Exception as error:  # noqa: BLE001 - discovery failing means the registry is not reachable
        raise PromotionError(
            f"cannot reach Azure ML registry {registry_name!r} ({describe(error)}); does the prod stack "
            "(its owner) exist, and may this identity read it (modelRegistryWriters)?"
        ) from None
