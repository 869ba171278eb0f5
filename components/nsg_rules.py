"""NSG rules as plain data: what a subnet's security group allows, decided without Pulumi."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# Service tags of Azure ML's outbound requirements (how-to-secure-training-vnet.md, "Compute instance/cluster
# or serverless compute with no public IP").
AZURE_MACHINE_LEARNING_TAG = "AzureMachineLearning"
AZURE_ML_TCP_PORTS = ("443", "8787", "18881")
AZURE_ML_UDP_PORTS = ("5831",)
HTTPS_PORT = "443"
SMB_PORT = "445"
"""Compute reaches the default storage account's file share over SMB (same article, Limitations)."""


@dataclass(frozen=True)
class SecurityRule:
    """One NSG rule; `ports` are destination ports ("*" for any)."""

    name: str
    priority: int
    direction: Literal["Inbound", "Outbound"]
    access: Literal["Allow", "Deny"]
    protocol: Literal["Tcp", "Udp", "*"]
    destination: str
    ports: tuple[str, ...]
    source: str = "*"

    def __post_init__(self) -> None:
        if not 100 <= self.priority <= 4096:
            raise ValueError(f"NSG rule {self.name}: priority {self.priority} is outside Azure's 100-4096")
        if not self.ports:
            raise ValueError(f"NSG rule {self.name}: needs at least one destination port")


def regional_tag(service: str, location: str) -> str:
    """A regional service tag such as `Storage.westeurope` (the form Azure itself writes into SQL MI routes)."""
    return f"{service}.{location}"


def deny_internet_inbound() -> SecurityRule:
    """Azure's default rules already drop it; the explicit rule keeps the intent visible in reviews and diffs."""
    return SecurityRule("deny-internet-inbound", 4096, "Inbound", "Deny", "*", "*", ("*",), source="Internet")


def aml_compute_outbound_rules(location: str, storage_endpoints_cidr: str) -> tuple[SecurityRule, ...]:
    """What a compute cluster without public IP must reach (AZURE-FACTS 23); no inbound rule is needed.

    These allow rules sit above any deny-internet rule an organisation adds later; the platform adds none,
    because image builds and training install packages from public feeds through the NAT gateway.
    """
    return (
        SecurityRule(
            "allow-azureml-tcp",
            100,
            "Outbound",
            "Allow",
            "Tcp",
            AZURE_MACHINE_LEARNING_TAG,
            AZURE_ML_TCP_PORTS,
        ),
        SecurityRule(
            "allow-azureml-udp",
            110,
            "Outbound",
            "Allow",
            "Udp",
            AZURE_MACHINE_LEARNING_TAG,
            AZURE_ML_UDP_PORTS,
        ),
        SecurityRule(
            "allow-batch-node-management",
            120,
            "Outbound",
            "Allow",
            "*",
            regional_tag("BatchNodeManagement", location),
            (HTTPS_PORT,),
        ),
        SecurityRule(
            "allow-batch-storage",
            130,
            "Outbound",
            "Allow",
            "Tcp",
            regional_tag("Storage", location),
            (HTTPS_PORT,),
        ),
        SecurityRule(
            "allow-storage-smb", 140, "Outbound", "Allow", "Tcp", storage_endpoints_cidr, (SMB_PORT,)
        ),
    )
