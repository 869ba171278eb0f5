"""The managed online endpoint target: Azure ML runs the instances; the specs name the SKU.

Sources: quota for a managed deployment is ceil(1.2 x instances) x the SKU's cores of its VM family
(how-to-manage-quotas.md, includes/quota-allocation-online-deployment.md; AZURE-FACTS 20 says 120 % per
instance, the page rounds per deployment); a managed endpoint is public unless `public_network_access:
disabled`, and a disabled one is reachable only through the workspace private endpoint
(concept-secure-online-endpoint.md; AZURE-FACTS 6).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops.backends.azure.session import Session
from mlops.backends.base import BackendError, DeploymentSpec

UPGRADE_RESERVE = 1.2
"""Azure ML reserves 20 % extra instances of a managed deployment for upgrades and recovery."""


@dataclass(frozen=True)
class CoreQuota:
    """One VM family's dedicated core quota in the region, as Azure ML's usages API reports it."""

    family: str
    limit: int
    used: int


def managed_cores_needed(cores_per_instance: int, instance_count: int) -> int:
    """Cores a managed deployment must find free: ceil(1.2 x instances) x cores of the SKU."""
    return math.ceil(round(UPGRADE_RESERVE * instance_count, 6)) * cores_per_instance


def quota_problem(sku: str, family: str, need: int, quota: CoreQuota | None, location: str) -> str | None:
    """Why the deployment would be refused for quota, naming SKU, need and limit; None when it fits."""
    if quota is None:
        return (
            f"no core quota for VM family {family} (SKU {sku}) in {location}; request quota for that family "
            "or choose another instance_type in deploy/online/online-deployment.yml"
        )
    free = quota.limit - quota.used
    if need > free:
        return (
            f"managed deployment on {sku} needs {need} cores of family {family} (ceil(1.2 x instances) x cores), "
            f"but the limit in {location} is {quota.limit} with {quota.used} in use ({free} free); the serving "
            "deployment keeps its cores until traffic has moved (blue/green holds two). Request a quota "
            "increase (how-to-manage-quotas.md) or free cores before re-running"
        )
    return None


def sdk_field(entity: Any, *names: str) -> Any:
    """A field of a VmSize/Usage entity: azure-ai-ml 1.35 fills them from the REST dict, so a value sits under
    its camelCase REST name ("vCPUs", "currentValue") while the snake_case attribute stays None."""
    for name in names:
        value = getattr(entity, name, None)
        if value is not None:
            return value
    return None


def family_quota(usages: Iterable[Any], family: str) -> CoreQuota | None:
    """The usage record of `family` among Azure ML's usages (name.value is the family, e.g. standardDSv2Family)."""
    for usage in usages:
        name = getattr(usage, "name", None)
        value = name.get("value") if isinstance(name, dict) else getattr(name, "value", None)
        if isinstance(value, str) and value.lower() == family.lower():
            limit = sdk_field(usage, "limit") or 0
            used = sdk_field(usage, "current_value", "currentValue") or 0
            return CoreQuota(value, int(limit), int(used))
    return None


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
        if self.session.outputs.private_workspace:
            # A private workspace's endpoint answers only through the workspace private endpoint (AZURE-FACTS 6).
            endpoint.public_network_access = "disabled"
        return endpoint

    def deployment_entity(self, spec: DeploymentSpec, environment: str) -> Any:
        from azure.ai.ml import load_online_deployment

        deployment = load_online_deployment(self.online / "online-deployment.yml")
        deployment.environment = environment
        deployment.name = spec.name
        deployment.endpoint_name = spec.endpoint
        deployment.model = spec.model_reference
        deployment.instance_type = spec.instance_type
        deployment.instance_count = spec.instance_count
        return deployment

    def describe(self, spec: DeploymentSpec) -> str:
        return f"{spec.instance_type} x {spec.instance_count}"

    def prepare(self, spec: DeploymentSpec) -> None:
        """Check the core quota before creating: a refused create would only fail minutes later."""
        s = self.session
        sizes = s.call("VM sizes", lambda: list(s.client.compute.list_sizes()))
        size = next((item for item in sizes if (item.name or "").lower() == spec.instance_type.lower()), None)
        if size is None:
            raise BackendError(
                f"instance_type {spec.instance_type} is not a VM size Azure ML offers in {s.outputs.location}; "
                "choose another in deploy/online/online-deployment.yml"
            )
        cores = int(sdk_field(size, "v_cp_us", "vCPUs") or 0)
        if cores < 1:
            raise BackendError(
                f"Azure ML lists no vCPU count for {spec.instance_type}; cannot check its quota"
            )
        need = managed_cores_needed(cores, spec.instance_count)
        usages = s.call("core quota", lambda: list(s.client.compute.list_usage()))
        quota = family_quota(usages, size.family or "")
        problem = quota_problem(spec.instance_type, size.family or "?", need, quota, s.outputs.location)
        if problem:
            raise BackendError(f"quota: {problem}")
        if s.dry_run:
            assert quota is not None
            s.add_plan("quota", f"{spec.instance_type} ({quota.family})", f"{need} cores needed, "
                       f"{quota.limit - quota.used} of {quota.limit} free")  # fmt: skip

    def planned_uri(self, name: str) -> str:
        return f"https://{name}.{self.session.outputs.location}.inference.ml.azure.com/score"

    def scoring_uri(self, name: str, reported: str) -> str:
        return reported
