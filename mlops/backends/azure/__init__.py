"""The Azure ML backend, split by concern: session, assets, training, online targets, batch."""

from mlops.backends.azure.assets import content_hash, data_version, environment_version
from mlops.backends.azure.backend import SPECS_ROOT, AzureBackend
from mlops.backends.azure.session import PlanItem, Session

__all__ = [
    "SPECS_ROOT",
    "AzureBackend",
    "PlanItem",
    "Session",
    "content_hash",
    "data_version",
    "environment_version",
]
