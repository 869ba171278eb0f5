"""Whether a Kubernetes online deployment fits the stack's AKS nodes: resource quantities and AKS reservations.

Sources (Microsoft Learn):
- how-to-manage-kubernetes-instance-types.md: a deployment's resource limits must be less than its instance
  type's limits; requests and limits are Kubernetes quantities ("500m", "1", "1500Mi", "2Gi"); an MLflow
  model's deployment needs at least 2 CPU and 4 GB, or it fails (AZURE-FACTS 29).
- node-resource-reservations.md (AKS 1.29 and later): kube-reserved CPU by core count (table below); memory
  reserved = min(20 MB x max pods + 50 MB, 25 % of the node's memory), plus the 100 Mi eviction threshold.
- VM sizes: dv5-dsv5-series.md, dasv5-dadsv5-series.md, ddv5-ddsv5-series.md, dv3-dsv3-series.md,
  dv2-dsv2-series.md, bv1-series.md (vCPUs and memory in GiB).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

NODE_SIZES: Mapping[str, tuple[int, float]] = {
    "Standard_D2s_v5": (2, 8),
    "Standard_D4s_v5": (4, 16),
    "Standard_D8s_v5": (8, 32),
    "Standard_D16s_v5": (16, 64),
    "Standard_D2as_v5": (2, 8),
    "Standard_D4as_v5": (4, 16),
    "Standard_D8as_v5": (8, 32),
    "Standard_D2ds_v5": (2, 8),
    "Standard_D4ds_v5": (4, 16),
    "Standard_D8ds_v5": (8, 32),
    "Standard_D2s_v3": (2, 8),
    "Standard_D4s_v3": (4, 16),
    "Standard_D8s_v3": (8, 32),
    "Standard_DS2_v2": (2, 7),
    "Standard_DS3_v2": (4, 14),
    "Standard_DS4_v2": (8, 28),
    "Standard_B2s": (2, 4),
}
"""AKS node VM size -> (vCPUs, memory GiB)."""

KUBE_RESERVED_CPU_M: Mapping[int, int] = {1: 60, 2: 100, 4: 140, 8: 180, 16: 260, 32: 420, 64: 740}
"""Cores on the host -> kube-reserved CPU in millicores (AKS node-resource-reservations.md)."""

EVICTION_THRESHOLD_MI = 100
"""kubelet's memory.available<100Mi eviction rule (AKS 1.29 and later)."""

MLFLOW_MINIMUM = (2000, math.ceil(4 * 10**9 / 2**20))
"""(millicores, MiB) an MLflow model's Kubernetes deployment needs at least: 2 CPU and 4 GB (AZURE-FACTS 29)."""

AZURE_CNI_MAX_PODS = 30
"""Pods per node with Azure CNI when maxPods is not set: what the stack's AKS (network plugin azure) uses."""

_CPU = re.compile(r"^(\d+(?:\.\d+)?)(m?)$")
_MEMORY = re.compile(r"^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$")
_BYTES_PER_UNIT = {
    None: 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


class SizingError(ValueError):
    """A quantity or a resource section is malformed, or the deployment cannot fit the nodes."""


@dataclass(frozen=True)
class Resources:
    """CPU in millicores and memory in MiB."""

    cpu_m: int
    memory_mi: int

    def __str__(self) -> str:
        return f"{self.cpu_m}m CPU, {self.memory_mi}Mi memory"

    def times(self, factor: int) -> Resources:
        return Resources(self.cpu_m * factor, self.memory_mi * factor)

    def exceeds(self, other: Resources) -> bool:
        return self.cpu_m > other.cpu_m or self.memory_mi > other.memory_mi

    def below(self, other: Resources) -> bool:
        return self.cpu_m < other.cpu_m and self.memory_mi < other.memory_mi


def cpu_millicores(quantity: object) -> int:
    """A Kubernetes CPU quantity ("500m", "1", "0.5", 2) in millicores; zero or malformed is an error."""
    match = _CPU.match(str(quantity).strip())
    if match is None:
        raise SizingError(f"CPU quantity {quantity!r}: give millicores like '500m' or cores like '1'")
    number = Decimal(match.group(1))
    millicores = number if match.group(2) else number * 1000
    if millicores <= 0:
        raise SizingError(f"CPU quantity {quantity!r} must be above zero")
    return math.ceil(millicores)


def memory_mebibytes(quantity: object) -> int:
    """A Kubernetes memory quantity ("1500Mi", "2Gi", "2G") in MiB, rounded up; zero or malformed is an error."""
    match = _MEMORY.match(str(quantity).strip())
    if match is None:
        raise SizingError(f"memory quantity {quantity!r}: give a number with a suffix like '1024Mi' or '2Gi'")
    try:
        total = Decimal(match.group(1)) * _BYTES_PER_UNIT[match.group(2)]
    except InvalidOperation:
        raise SizingError(f"memory quantity {quantity!r} is not a number") from None
    if total < 2**20:
        raise SizingError(f"memory quantity {quantity!r} must be at least 1Mi")
    return math.ceil(total / 2**20)


def resources(section: Mapping[str, object] | None, where: str) -> Resources:
    """`{cpu: ..., memory: ...}` of a requests or limits section as Resources; both are required."""
    if not isinstance(section, Mapping) or "cpu" not in section or "memory" not in section:
        raise SizingError(f"{where}: needs both cpu and memory, got {section!r}")
    return Resources(cpu_millicores(section["cpu"]), memory_mebibytes(section["memory"]))


def kube_reserved_cpu_m(cores: int) -> int:
    """AKS's reserved CPU for a host with `cores` (between table points, the smaller host's value)."""
    known = [count for count in sorted(KUBE_RESERVED_CPU_M) if count <= cores]
    if not known:
        raise SizingError(f"a node needs at least one core, got {cores}")
    return KUBE_RESERVED_CPU_M[known[-1]]


def node_allocatable(vm_size: str, max_pods: int = AZURE_CNI_MAX_PODS) -> Resources:
    """What one AKS node of `vm_size` leaves to pods after AKS's own reservations (AKS 1.29 and later)."""
    size = NODE_SIZES.get(vm_size) or next(
        (value for name, value in NODE_SIZES.items() if name.lower() == vm_size.lower()), None
    )
    if size is None:
        raise SizingError(
            f"node size {vm_size!r} is not in mlops/backends/azure/kubernetes_sizing.py NODE_SIZES "
            f"(known: {', '.join(NODE_SIZES)}); add its vCPUs and memory from Microsoft's VM size page"
        )
    cores, memory_gib = size
    memory_mi = int(memory_gib * 1024)
    reserved_mi = min(20 * max_pods + 50, memory_mi // 4)
    return Resources(
        cores * 1000 - kube_reserved_cpu_m(cores), memory_mi - reserved_mi - EVICTION_THRESHOLD_MI
    )


@dataclass(frozen=True)
class DeploymentFit:
    """A Kubernetes deployment's resources against its instance type and the cluster's nodes."""

    requests: Resources
    limits: Resources
    instance_type: str
    instance_type_limits: Resources
    node_size: str
    node_count: int
    instance_count: int

    def problems(self) -> list[str]:
        """Every reason the deployment would fail or never schedule; empty when it fits."""
        node = node_allocatable(self.node_size)
        found = []
        cpu_min, memory_min = MLFLOW_MINIMUM
        if self.requests.cpu_m < cpu_min or self.requests.memory_mi < memory_min:
            found.append(
                f"requests ({self.requests}) are below the 2 CPU and 4 GB an MLflow model's deployment needs "
                "(how-to-manage-kubernetes-instance-types.md), or Azure ML fails it"
            )
        if self.requests.exceeds(self.limits):
            found.append(f"requests ({self.requests}) exceed the deployment's limits ({self.limits})")
        if not self.limits.below(self.instance_type_limits):
            found.append(
                f"limits ({self.limits}) must be less than instance type {self.instance_type}'s limits "
                f"({self.instance_type_limits}), or Azure ML fails the deployment"
            )
        if self.limits.exceeds(node):
            found.append(
                f"limits ({self.limits}) exceed what one {self.node_size} node can allocate ({node})"
            )
        # Blue/green: the new deployment runs beside the serving one until traffic has moved.
        need = self.requests.times(2 * self.instance_count)
        capacity = node.times(self.node_count)
        if need.exceeds(capacity):
            found.append(
                f"blue/green needs {need} of requests (2 deployments x {self.instance_count} instance(s) x "
                f"{self.requests}) but {self.node_count} x {self.node_size} allocate {capacity}"
            )
        return found


def check_fit(fit: DeploymentFit) -> None:
    """Raise SizingError naming the node size, the need and the limit when the deployment does not fit."""
    problems = fit.problems()
    if problems:
        raise SizingError(
            f"Kubernetes deployment on {fit.node_count} x {fit.node_size} (instance type "
            f"{fit.instance_type}): " + "; ".join(problems) + ". Lower resources in "
            "deploy/online/kubernetes-deployment.yml, or raise aksNodeVmSize / aksNodeCount in the stack"
        )
