"""The Kubernetes online endpoint target: deployments on the stack's AKS, scored through the internal LB.

Sources: the TLS scoring URI is https://<sslCname>/api/v1/endpoint/<name>/score, auth key or aml_token
(how-to-secure-kubernetes-online-endpoint.md, concept-endpoints-online-auth.md; AZURE-FACTS 28); resources
are checked against the instance type and the nodes (kubernetes_sizing.py; AZURE-FACTS 29); registry and
catalog models are not supported on Kubernetes endpoints (how-to-attach-kubernetes-anywhere.md; AZURE-FACTS
30); a Kubernetes endpoint and deployment name together take 6-62 characters (how-to-manage-quotas.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from mlops.backends.azure.instance_types import InstanceTypeApplier, load_instance_types
from mlops.backends.azure.kubernetes_sizing import DeploymentFit, SizingError, check_fit, resources
from mlops.backends.azure.session import Session
from mlops.backends.base import DeploymentSpec, UsageError

NAME_LENGTHS = (6, 62)
"""Endpoint name plus deployment name, in characters, on a Kubernetes endpoint."""


def kubernetes_scoring_uri(
    endpoint: str, host: str | None, load_balancer_ip: str | None, reported: str
) -> str:
    """The URI to score through: the TLS host when the stack set one, else what Azure reports, else the ILB IP."""
    if host:
        return f"https://{host}/api/v1/endpoint/{endpoint}/score"
    if reported:
        return reported
    if load_balancer_ip:
        return f"http://{load_balancer_ip}/api/v1/endpoint/{endpoint}/score"
    return ""


class KubernetesTarget:
    """Kubernetes online endpoints on the attached AKS compute, from deploy/online/kubernetes-*.yml."""

    kind = "kubernetes"

    def __init__(
        self, session: Session, specs_root: Path, applier: InstanceTypeApplier | None = None
    ) -> None:
        self.session = session
        self.online = specs_root / "deploy" / "online"
        self.applier = applier or InstanceTypeApplier(session, self.online / "instance-types.yml")
        outputs = session.outputs
        if not outputs.aks_compute_name:
            raise UsageError(
                f"stack {outputs.workspace_name} exports no aksComputeName, so there is no Kubernetes compute "
                "to deploy to; switch enableAks on or deploy to the managed target"
            )
        self.compute = outputs.aks_compute_name

    def _deployment_spec(self) -> dict[str, Any]:
        return yaml.safe_load((self.online / "kubernetes-deployment.yml").read_text(encoding="utf-8"))

    def endpoint_entity(self, name: str) -> Any:
        from azure.ai.ml import load_online_endpoint

        endpoint = load_online_endpoint(self.online / "kubernetes-endpoint.yml")
        endpoint.name = name
        endpoint.compute = self.compute
        endpoint.auth_mode = "key"
        return endpoint

    def deployment_entity(self, spec: DeploymentSpec, environment: str) -> Any:
        from azure.ai.ml import load_online_deployment

        deployment = load_online_deployment(self.online / "kubernetes-deployment.yml")
        deployment.environment = environment
        deployment.name = spec.name
        deployment.endpoint_name = spec.endpoint
        deployment.model = f"azureml:{spec.model_name}:{spec.model_version}"
        deployment.instance_count = spec.instance_count
        return deployment

    def describe(self, spec: DeploymentSpec) -> str:
        raw = self._deployment_spec()
        return f"{self.compute} instance type {raw.get('instance_type', 'defaultinstancetype')}"

    def prepare(self, spec: DeploymentSpec) -> None:
        if spec.model_registry:
            raise UsageError(
                f"model {spec.model_name}:{spec.model_version} comes from registry {spec.model_registry!r}; "
                "Kubernetes online endpoints do not support registry models (how-to-attach-kubernetes-anywhere.md). "
                "Copy it into this workspace first (`python -m mlops promote`), then deploy the workspace version"
            )
        length = len(spec.endpoint) + len(spec.name)
        low, high = NAME_LENGTHS
        if not low <= length <= high:
            raise UsageError(
                f"endpoint {spec.endpoint!r} and deployment {spec.name!r} take {length} characters together; "
                f"a Kubernetes endpoint allows {low}-{high} (how-to-manage-quotas.md)"
            )
        self._check_fit(spec)
        self.applier.ensure(self.session.outputs.aks_cluster_name or self.compute)

    def _check_fit(self, spec: DeploymentSpec) -> None:
        outputs = self.session.outputs
        if not outputs.aks_node_vm_size:
            self.session.say(
                "kubernetes: the stack exports no aksNodeVmSize; resource fit against the nodes not checked"
            )
            return
        raw = self._deployment_spec()
        name = raw.get("instance_type", "defaultinstancetype")
        try:
            defined = load_instance_types(self.online / "instance-types.yml")
            if name not in defined:
                raise SizingError(
                    f"kubernetes-deployment.yml names instance type {name!r}, which instance-types.yml does not "
                    f"define (it defines {', '.join(defined)})"
                )
            section = raw.get("resources") or {}
            check_fit(
                DeploymentFit(
                    requests=resources(section.get("requests"), "resources.requests"),
                    limits=resources(section.get("limits"), "resources.limits"),
                    instance_type=name,
                    instance_type_limits=defined[name].limits,
                    node_size=outputs.aks_node_vm_size,
                    node_count=outputs.aks_node_count or 1,
                    instance_count=spec.instance_count,
                )
            )
        except SizingError as problem:
            raise UsageError(str(problem)) from None

    def planned_uri(self, name: str) -> str:
        outputs = self.session.outputs
        return (
            kubernetes_scoring_uri(
                name, outputs.inference_scoring_host, outputs.inference_load_balancer_ip, ""
            )
            or f"https://<internal load balancer>/api/v1/endpoint/{name}/score"
        )

    def scoring_uri(self, name: str, reported: str) -> str:
        outputs = self.session.outputs
        return kubernetes_scoring_uri(
            name, outputs.inference_scoring_host, outputs.inference_load_balancer_ip, reported
        )
