"""Address rules Azure and AKS enforce on a VNET plan: reserved ranges and addresses, sizes, capacity.

Each constant names the Microsoft page it comes from; tests/test_config.py holds them against literals
copied from those pages. Rules return (config key, message) pairs; stacks/config.py reports them.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Mapping

Network = ipaddress.IPv4Network

# virtual-networks-faq.md, "Are there any restrictions on using IP addresses within these subnets?":
# x.x.x.0 (network), .1 (default gateway), .2 and .3 (Azure DNS) and the last address (broadcast).
AZURE_RESERVED_PER_SUBNET = 5
# virtual-networks-faq.md, "How small and how large can virtual networks and subnets be?"
SMALLEST_SUBNET_PREFIX = 29
# virtual-networks-faq.md, "What address ranges can I use in my virtual networks?": "You can't add these".
VNET_FORBIDDEN: tuple[Network, ...] = tuple(
    ipaddress.IPv4Network(cidr)
    for cidr in ("224.0.0.0/4", "255.255.255.255/32", "127.0.0.0/8", "169.254.0.0/16", "168.63.129.16/32")
)
# AKS configure-azure-cni.md, Prerequisites: "AKS clusters may not use 169.254.0.0/16, 172.30.0.0/16,
# 172.31.0.0/16, or 192.0.2.0/24 for the Kubernetes service address range, pod address range, or cluster
# virtual network address range."
AKS_FORBIDDEN: tuple[Network, ...] = tuple(
    ipaddress.IPv4Network(cidr)
    for cidr in ("169.254.0.0/16", "172.30.0.0/16", "172.31.0.0/16", "192.0.2.0/24")
)
# AKS azure-cni-overlay.md, "Kubernetes service address range": "It must be smaller than /12."
AKS_SERVICE_CIDR_LONGEST_FORBIDDEN = 12
# AKS configure-azure-cni.md: Azure CNI (node subnet, as components/aks.py configures it: network_plugin
# "azure", no overlay) gives every pod a subnet address; 30 pods per node by default, and an upgrade adds
# one node: addresses needed = (nodes + 1) + (nodes + 1) * max pods.
AZURE_CNI_DEFAULT_MAX_PODS = 30


def usable_addresses(subnet: Network) -> int:
    """Addresses left for resources once Azure has taken its five."""
    return max(subnet.num_addresses - AZURE_RESERVED_PER_SUBNET, 0)


def aks_subnet_addresses_needed(node_count: int, max_pods: int = AZURE_CNI_DEFAULT_MAX_PODS) -> int:
    """Subnet addresses an Azure CNI node pool of `node_count` nodes needs, an upgrade's surge node included."""
    return (node_count + 1) * (max_pods + 1)


@dataclass(frozen=True)
class AddressPlan:
    """The VNET plan as typed config: address space, subnets by config key, and the AKS service range."""

    vnet: Network
    subnets: Mapping[str, Network]
    service_cidr: Network | None
    dns_service_ip: ipaddress.IPv4Address | None
    aks: bool


def _overlapping(network: Network, ranges: tuple[Network, ...]) -> list[Network]:
    return [reserved for reserved in ranges if network.overlaps(reserved)]


def vnet_problems(plan: AddressPlan) -> list[tuple[str, str]]:
    """Address space and subnets: reserved ranges, containment, overlaps."""
    problems = []
    forbidden = VNET_FORBIDDEN + (AKS_FORBIDDEN if plan.aks else ())
    for reserved in _overlapping(plan.vnet, forbidden):
        who = "AKS" if reserved in AKS_FORBIDDEN and reserved not in VNET_FORBIDDEN else "Azure"
        problems.append(
            (
                "vnetAddressSpace",
                f"overlaps {reserved}, a range {who} reserves; pick a private range such as 10.10.0.0/16",
            )
        )
    placed = list(plan.subnets.items())
    for name, subnet in placed:
        if not subnet.subnet_of(plan.vnet):
            problems.append((name, f"must lie inside vnetAddressSpace {plan.vnet}"))
    for index, (name, subnet) in enumerate(placed):
        for other_name, other in placed[index + 1 :]:
            if subnet.overlaps(other):
                problems.append((other_name, f"overlaps {name} ({subnet}); subnets must not overlap"))
    return problems


def service_problems(plan: AddressPlan) -> list[tuple[str, str]]:
    """The Kubernetes service range and DNS address (only when AKS is on)."""
    service, dns_ip = plan.service_cidr, plan.dns_service_ip
    if not plan.aks or service is None:
        return []
    problems = []
    if service.overlaps(plan.vnet):
        problems.append(
            ("aksServiceCidr", f"overlaps vnetAddressSpace {plan.vnet}; pick a range outside the VNET")
        )
    for reserved in _overlapping(service, AKS_FORBIDDEN):
        problems.append(
            ("aksServiceCidr", f"overlaps {reserved}, which AKS reserves; pick e.g. 10.100.0.0/16")
        )
    if dns_ip is None:
        return problems
    if dns_ip not in service:
        problems.append(("aksDnsServiceIp", f"must be an address inside aksServiceCidr {service}"))
    elif dns_ip == service.network_address + 1:
        problems.append(
            (
                "aksDnsServiceIp",
                f"is the first address of aksServiceCidr, which Kubernetes gives its API service "
                f"(kubernetes.default); use another, e.g. {service.network_address + 10}",
            )
        )
    elif dns_ip in (service.network_address, service.broadcast_address):
        problems.append(
            (
                "aksDnsServiceIp",
                f"is the network or broadcast address of aksServiceCidr {service}, which no service can "
                f"have; use e.g. {service.network_address + 10}",
            )
        )
    return problems


def load_balancer_problems(aks_subnet: Network, address: ipaddress.IPv4Address) -> list[tuple[str, str]]:
    """The scoring load balancer IP: an address of the AKS subnet that Azure does not keep for itself."""
    read_it = (
        "it must be the IPv4 address azureml-fe got inside aksSubnet "
        f"{aks_subnet}; read it with `az aks command invoke ... "
        '"kubectl get svc azureml-fe -n azureml"`'
    )
    if address not in aks_subnet:
        return [("inferenceLoadBalancerIp", f"is outside aksSubnet {aks_subnet}: {read_it}")]
    first_usable = aks_subnet.network_address + AZURE_RESERVED_PER_SUBNET - 1
    if address < first_usable or address == aks_subnet.broadcast_address:
        return [
            (
                "inferenceLoadBalancerIp",
                "is one of the addresses Azure reserves in every subnet (the first four and the last), "
                f"which no load balancer gets: {read_it}",
            )
        ]
    return []


def capacity_problems(
    subnets: Mapping[str, Network], compute_max_nodes: int | None, aks_node_count: int | None
) -> list[tuple[str, str]]:
    """Subnets too small for what is placed in them, after Azure's five reserved addresses."""
    problems = []
    training = subnets.get("trainingSubnet")
    if (
        training is not None
        and compute_max_nodes is not None
        and usable_addresses(training) < compute_max_nodes
    ):
        problems.append(
            (
                "trainingSubnet",
                f"{training} leaves {usable_addresses(training)} addresses after Azure's "
                f"{AZURE_RESERVED_PER_SUBNET} reserved ones, but computeMaxNodes={compute_max_nodes} "
                "nodes need one each; use a larger subnet or fewer nodes",
            )
        )
    aks = subnets.get("aksSubnet")
    if aks is not None and aks_node_count is not None:
        needed = aks_subnet_addresses_needed(aks_node_count)
        if usable_addresses(aks) < needed:
            problems.append(
                (
                    "aksSubnet",
                    f"{aks} leaves {usable_addresses(aks)} addresses after Azure's {AZURE_RESERVED_PER_SUBNET} "
                    f"reserved ones; {aks_node_count} AKS node(s) with Azure CNI need {needed} "
                    f"(nodes + 1 upgrade surge node, each with {AZURE_CNI_DEFAULT_MAX_PODS} pod addresses); "
                    "use a larger subnet, e.g. a /24 for up to 7 nodes",
                )
            )
    return problems
