"""Kubernetes InstanceTypes for Azure ML: read and check the manifest, apply it through AKS run command.

The manifest format and its rules are how-to-manage-kubernetes-instance-types.md's (apiVersion
amlarc.azureml.com/v1alpha1, kind InstanceType or InstanceTypeList; CPU and memory requests and limits
required and non-zero; GPUs only as an integer limit; nodeSelector a map of strings). Applying needs kubectl
inside the cluster; from CI that is `az aks command invoke`, i.e. ARM's managedClusters/runCommand
(AZURE-FACTS 29), which works for private clusters and from outside the VNet.
"""

from __future__ import annotations

import base64
import io
import re
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mlops.backends.azure.kubernetes_sizing import Resources, SizingError, resources
from mlops.backends.azure.session import Session
from mlops.backends.base import BackendError

API_VERSION = "amlarc.azureml.com/v1alpha1"
KINDS = ("InstanceType", "InstanceTypeList")
APPLY_DEADLINE_S = 600.0
"""One run command: AKS starts a pod with kubectl, applies the manifest and returns its output."""
GPU_KEY = "nvidia.com/gpu"
_APPLIED = re.compile(r"instancetype\.amlarc\.azureml\.com/(\S+) (created|configured|unchanged)")


@dataclass(frozen=True)
class InstanceType:
    """One InstanceType as the manifest defines it."""

    name: str
    requests: Resources
    limits: Resources


def instance_type_problems(raw: object) -> list[tuple[str, str]]:
    """(field, problem) for every rule of Microsoft's page the manifest breaks; empty when it is sound."""
    if not isinstance(raw, Mapping):
        return [("(file)", f"expected a mapping at the top level, got {type(raw).__name__}")]
    found = []
    if raw.get("apiVersion") != API_VERSION:
        found.append(("apiVersion", f"must be {API_VERSION}, got {raw.get('apiVersion')!r}"))
    kind = raw.get("kind")
    if kind not in KINDS:
        return [*found, ("kind", f"must be one of {', '.join(KINDS)}, got {kind!r}")]
    items = raw.get("items") if kind == "InstanceTypeList" else [raw]
    if not isinstance(items, list) or not items:
        return [*found, ("items", "an InstanceTypeList needs at least one item")]
    names: list[str] = []
    for index, item in enumerate(items):
        where = f"items[{index}]" if kind == "InstanceTypeList" else "(instance type)"
        found += [(f"{where}.{field}", problem) for field, problem in _item_problems(item, names)]
    return found


def _item_problems(item: object, names: list[str]) -> list[tuple[str, str]]:
    if not isinstance(item, Mapping):
        return [("", f"expected a mapping, got {item!r}")]
    name = (item.get("metadata") or {}).get("name")
    found = []
    if not isinstance(name, str) or not name:
        found.append(("metadata.name", "required: a name unique in the cluster"))
    elif name in names:
        found.append(("metadata.name", f"{name!r} is defined twice; names must be unique in a cluster"))
    else:
        names.append(name)
    spec = item.get("spec") or {}
    selector = spec.get("nodeSelector")
    if selector is not None and not (
        isinstance(selector, Mapping) and all(isinstance(v, str) for v in selector.values())
    ):
        found.append(("spec.nodeSelector", f"must map label names to string values, got {selector!r}"))
    section = spec.get("resources") or {}
    if GPU_KEY in (section.get("requests") or {}):
        found.append((f"spec.resources.requests.{GPU_KEY}", "GPUs may be given only under limits"))
    gpu = (section.get("limits") or {}).get(GPU_KEY)
    if gpu is not None and (isinstance(gpu, bool) or not isinstance(gpu, int)):
        found.append((f"spec.resources.limits.{GPU_KEY}", f"must be an integer, got {gpu!r}"))
    for part in ("requests", "limits"):
        try:
            resources(section.get(part), f"spec.resources.{part}")
        except SizingError as problem:
            found.append((f"spec.resources.{part}", str(problem)))
    return found


def load_instance_types(path: Path) -> dict[str, InstanceType]:
    """The instance types a manifest defines, by name; SizingError listing every problem otherwise."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    problems = instance_type_problems(raw)
    if problems:
        raise SizingError(f"{path}: " + "; ".join(f"{field}: {problem}" for field, problem in problems))
    items = raw["items"] if raw["kind"] == "InstanceTypeList" else [raw]
    return {
        item["metadata"]["name"]: InstanceType(
            item["metadata"]["name"],
            resources(item["spec"]["resources"]["requests"], "requests"),
            resources(item["spec"]["resources"]["limits"], "limits"),
        )
        for item in items
    }


def command_context(manifest: Path) -> str:
    """The run command's `context`: a base64 zip holding the manifest under its own file name."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(manifest.name, manifest.read_bytes())
    return base64.b64encode(buffer.getvalue()).decode()


def applied(logs: str) -> dict[str, str]:
    """Instance type name -> what kubectl did (created, configured, unchanged), from its output."""
    return {name: action for name, action in _APPLIED.findall(logs or "")}


AKS_SERVER_APP_ID = "6dae42f8-4368-4678-94ff-3960e28e3630"
"""The Entra application of AKS's API server (managed Entra integration): the audience of a cluster token."""


class InstanceTypeApplier:
    """Applies the manifest to the stack's AKS once per run; kubectl apply makes a re-run a no-op."""

    def __init__(
        self,
        session: Session,
        manifest: Path,
        *,
        deadline_s: float = APPLY_DEADLINE_S,
        client_factory: Callable[[Session], Any] | None = None,
    ) -> None:
        self.session = session
        self.manifest = manifest
        self.deadline_s = deadline_s
        self._client_factory = client_factory or _container_service_client
        self._done = False

    def ensure(self, cluster: str) -> None:
        s = self.session
        names = ", ".join(load_instance_types(self.manifest))
        if self._done:
            return
        if s.dry_run:
            s.add_plan(
                "instancetype", f"{names} on {cluster}", "would apply (AKS run command: kubectl apply)"
            )
            self._done = True
            return
        from azure.mgmt.containerservice.models import RunCommandRequest

        # With Azure RBAC for Kubernetes, kubectl runs as the caller only when the request carries the caller's
        # token for the AKS server application, as `az aks command invoke` sends it (Azure/azure-cli,
        # aks_runcommand); without it the command does not run with the CI identity's Kubernetes role.
        cluster_token = s.credential_object.get_token(f"{AKS_SERVER_APP_ID}/.default").token
        request = RunCommandRequest(
            command=f"kubectl apply -f {self.manifest.name}",
            context=command_context(self.manifest),
            cluster_token=cluster_token,
        )
        client = self._client_factory(s)
        what = f"instance types {names} on AKS {cluster}"
        result = s.finish(
            what,
            lambda: client.managed_clusters.begin_run_command(s.outputs.resource_group, cluster, request),
            self.deadline_s,
        )
        properties = getattr(result, "properties", None)
        exit_code = getattr(properties, "exit_code", None)
        logs = s.safe(str(getattr(properties, "logs", "") or ""))
        if exit_code != 0:
            raise BackendError(
                f"{what}: kubectl apply exited {exit_code} ({getattr(properties, 'reason', None) or 'no reason'}): "
                f"{logs[-1500:]}. The deploying identity needs managedClusters/runcommand/action on the cluster "
                "and Kubernetes RBAC to write instancetypes (Azure Kubernetes Service RBAC Admin at cluster scope, which the stack grants the CI identity)"
            )
        outcome = applied(logs)
        s.say(f"instance types: {', '.join(f'{n} {a}' for n, a in outcome.items()) or logs.strip()[:200]}")
        self._done = True


def _container_service_client(session: Session) -> Any:
    from azure.mgmt.containerservice import ContainerServiceClient

    return ContainerServiceClient(session.credential_object, session.outputs.subscription_id)
