"""How a network security group decides a flow: its rules by priority, then Azure's default rules.

Source: network-security-groups-overview.md (azure-docs), "Security rules" and "Default security rules":
the rule with the lowest priority number that matches decides; default outbound rules are AllowVnetOutBound
(65000), AllowInternetOutBound (65001) and DenyAllOutBound (65500).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from .values import as_list

_ANY = {"*", "any", "0.0.0.0/0"}
DEFAULT_OUTBOUND: tuple[Mapping[str, Any], ...] = (
    {
        "name": "AllowVnetOutBound",
        "priority": 65000,
        "direction": "Outbound",
        "access": "Allow",
        "protocol": "*",
        "sourceAddressPrefix": "VirtualNetwork",
        "destinationAddressPrefix": "VirtualNetwork",
        "destinationPortRange": "*",
    },
    {
        "name": "AllowInternetOutBound",
        "priority": 65001,
        "direction": "Outbound",
        "access": "Allow",
        "protocol": "*",
        "sourceAddressPrefix": "*",
        "destinationAddressPrefix": "Internet",
        "destinationPortRange": "*",
    },
    {
        "name": "DenyAllOutBound",
        "priority": 65500,
        "direction": "Outbound",
        "access": "Deny",
        "protocol": "*",
        "sourceAddressPrefix": "*",
        "destinationAddressPrefix": "*",
        "destinationPortRange": "*",
    },
)


@dataclass(frozen=True)
class Flow:
    """Outbound traffic from a subnet to a service tag (or VirtualNetwork) on one protocol and port."""

    destination: str
    protocol: str
    port: int
    source_prefix: str | None = None
    """The subnet's address prefix, to tell whether a rule with a CIDR source applies to it."""


def port_ranges_include(ranges: Iterable[Any], port: int) -> bool:
    """Whether NSG port ranges ("*", "443", "8000-9000") include `port`."""
    for text in ranges:
        text = str(text).strip()
        if text == "*":
            return True
        low, _, high = text.partition("-")
        if low.isdigit() and (high or low).isdigit() and int(low) <= port <= int(high or low):
            return True
    return False


def destination_covers(prefix: str, tag: str) -> bool:
    """Whether an NSG destination (a service tag, `*` or a CIDR) certainly includes the addresses of `tag`.

    Service tags of Azure services are public addresses, inside `Internet`; a global tag (`Storage`) holds its
    regional ones (`Storage.WestEurope`). A CIDR destination cannot be compared with a tag: it covers nothing.
    """
    prefix, tag = prefix.strip().lower(), tag.strip().lower()
    if prefix in _ANY:
        return True
    if tag == "virtualnetwork":
        return prefix == "virtualnetwork"
    return prefix in ("internet", "azurecloud", tag) or tag.startswith(f"{prefix}.")


def source_covers(prefix: str, subnet_prefix: str | None) -> bool:
    """Whether an NSG source includes traffic that leaves the subnet."""
    prefix = prefix.strip().lower()
    if prefix in _ANY or prefix == "virtualnetwork":
        return True
    try:
        network = ipaddress.ip_network(prefix, strict=False)
    except ValueError:
        return False  # another service tag (e.g. Internet) is not where outbound traffic starts
    try:
        return subnet_prefix is not None and ipaddress.ip_network(subnet_prefix, strict=False).subnet_of(
            network
        )
    except (ValueError, TypeError):
        return False


def _prefixes(rule: Mapping[str, Any], key: str) -> list[str]:
    single = rule.get(f"{key}AddressPrefix")
    return [str(p) for p in [single, *as_list(rule.get(f"{key}AddressPrefixes"))] if p]


def rule_matches(rule: Mapping[str, Any], flow: Flow) -> bool:
    """Whether an outbound security rule applies to the flow."""
    protocol = str(rule.get("protocol") or "*").lower()
    ports = [p for p in [rule.get("destinationPortRange"), *as_list(rule.get("destinationPortRanges"))] if p]
    return (
        str(rule.get("direction")) == "Outbound"
        and protocol in ("*", flow.protocol.lower())
        and port_ranges_include(ports, flow.port)
        and any(destination_covers(p, flow.destination) for p in _prefixes(rule, "destination"))
        and any(source_covers(p, flow.source_prefix) for p in _prefixes(rule, "source"))
    )


def decide(rules: Iterable[Mapping[str, Any]], flow: Flow) -> tuple[str, str]:
    """(access, rule name) of the rule that decides the flow: the matching rule of lowest priority."""
    ordered = sorted([*rules, *DEFAULT_OUTBOUND], key=lambda rule: float(rule.get("priority") or 0))
    for rule in ordered:
        if rule_matches(rule, flow):
            return str(rule.get("access")), str(rule.get("name"))
    return "Deny", "DenyAllOutBound"
