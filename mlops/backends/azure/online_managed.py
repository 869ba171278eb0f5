"""The managed online endpoint target: Azure ML runs the instances; the specs name the SKU."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlops.backends.azure.session import Session
from mlops.backends.base import DeploymentSpec


class ManagedTarget:
    """Managed online endpoints and deployments from deploy/online/online-*.yml."""

    kind = "managed"

    def __init__(self, session: Session, specs_root: Path) -> None:
        self.session = session
        self.online = specs_root / "deploy" / "online"

    def endpoint_entity(self, name: str) -> Any:
        from azure.ai.ml import load_online_endpoint

        endpoint = load_online_endpoint(self.online / "online-endpoint.yml")
        endpoint.name = name
        endpoint.auth_mode = "key"
        return endpoint

    def deployment_entity(self, spec: DeploymentSpec, environment: str) -> Any:
        from azure.ai.ml import load_online_deployment

        deployment = load_online_deployment(self.online / "online-deployment.yml")
        deployment.environment = environment
        deployment.name = spec.name
        deployment.endpoint_name = spec.endpoint
        deployment.model = f"azureml:{spec.model_name}:{spec.model_version}"
        deployment.instance_type = spec.instance_type
        deployment.instance_count = spec.instance_count
        return deployment

    def describe(self, spec: DeploymentSpec) -> str:
        return spec.instance_type

    def prepare(self, spec: DeploymentSpec) -> None:
        return None

    def planned_uri(self, name: str) -> str:
        return f"https://{name}.{self.session.outputs.location}.inference.ml.azure.com/score"

    def scoring_uri(self, name: str, reported: str) -> str:
        return reported
