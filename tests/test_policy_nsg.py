"""How an NSG decides an outbound flow: priorities, Azure's default rules, tags, ports, protocols, sources."""

from __future__ import annotations

import pytest

from policy.rules.nsg import Flow, decide, destination_covers, port_ranges_include, source_covers


def _rule(name: str, priority: int, destination: str, access: str = "Allow", **extra: object) -> dict:
    return {
        "name": name,
        "priority": priority,
        "direction": "Outbound",
        "access": access,
        "protocol": extra.pop("protocol", "*"),
        "sourceAddressPrefix": extra.pop("source", "*"),
        "destinationAddressPrefix": destination,
        "destinationPortRange": extra.pop("ports", "*"),
        **extra,
    }


@pytest.mark.parametrize(
    ("ranges", "port", "included"),
    [
        (["*"], 443, True),
        (["443"], 443, True),
        (["400-443"], 443, True),
        (["443-500"], 443, True),
        (["444-500"], 443, False),
        (["442"], 443, False),
        (["80", "443"], 443, True),
        ([], 443, False),
        (["https"], 443, False),
    ],
)
def test_port_ranges(ranges: list[str], port: int, included: bool) -> None:
    assert port_ranges_include(ranges, port) is included


@pytest.mark.parametrize(
    ("prefix", "tag", "covered"),
    [
        ("*", "AzureMachineLearning", True),
        ("0.0.0.0/0", "Storage.WestEurope", True),
        ("Internet", "AzureMonitor", True),
        ("Internet", "VirtualNetwork", False),
        ("VirtualNetwork", "VirtualNetwork", True),
        ("Storage", "Storage.WestEurope", True),
        ("storage.westeurope", "Storage.WestEurope", True),
        ("Storage.NorthEurope", "Storage.WestEurope", False),
        ("Storage.WestEurope", "Storage", False),
        ("AzureCloud", "AzureResourceManager", True),
        ("20.0.0.0/8", "AzureMonitor", False),
        ("AzureMachineLearning", "AzureMonitor", False),
    ],
)
def test_destinations_cover_service_tags(prefix: str, tag: str, covered: bool) -> None:
    assert destination_covers(prefix, tag) is covered


@pytest.mark.parametrize(
    ("prefix", "subnet", "covered"),
    [
        ("*", "10.10.1.0/24", True),
        ("VirtualNetwork", "10.10.1.0/24", True),
        ("10.10.0.0/16", "10.10.1.0/24", True),
        ("10.10.1.0/24", "10.10.1.0/24", True),
        ("10.10.2.0/24", "10.10.1.0/24", False),
        ("10.10.1.0/25", "10.10.1.0/24", False),
        ("Internet", "10.10.1.0/24", False),
        ("10.10.0.0/16", None, False),
    ],
)
def test_sources_cover_the_subnet(prefix: str, subnet: str | None, covered: bool) -> None:
    assert source_covers(prefix, subnet) is covered


def test_without_rules_the_defaults_allow_internet_and_vnet() -> None:
    assert decide([], Flow("AzureMonitor", "Tcp", 443)) == ("Allow", "AllowInternetOutBound")
    assert decide([], Flow("VirtualNetwork", "Tcp", 445)) == ("Allow", "AllowVnetOutBound")


def test_the_lowest_priority_number_decides() -> None:
    rules = [_rule("deny", 200, "Internet", "Deny"), _rule("allow", 100, "AzureMonitor", ports="443")]
    assert decide(rules, Flow("AzureMonitor", "Tcp", 443)) == ("Allow", "allow")
    assert decide(rules, Flow("AzureMonitor", "Tcp", 80)) == ("Deny", "deny")
    assert decide([{**rules[1], "priority": 300.0}, rules[0]], Flow("AzureMonitor", "Tcp", 443)) == (
        "Deny",
        "deny",
    )


def test_a_deny_internet_rule_leaves_the_vnet_reachable() -> None:
    rules = [_rule("deny-internet", 4000, "Internet", "Deny")]
    assert decide(rules, Flow("VirtualNetwork", "Tcp", 443))[0] == "Allow"
    assert decide(rules, Flow("Storage.WestEurope", "Tcp", 443)) == ("Deny", "deny-internet")


@pytest.mark.parametrize(
    ("protocol", "flow_protocol", "allowed"),
    [("Udp", "Udp", True), ("Tcp", "Udp", False), ("*", "Udp", True)],
)
def test_protocols(protocol: str, flow_protocol: str, allowed: bool) -> None:
    rules = [
        _rule("aml", 100, "AzureMachineLearning", protocol=protocol, ports="5831"),
        _rule("deny", 4000, "*", "Deny"),
    ]
    assert (decide(rules, Flow("AzureMachineLearning", flow_protocol, 5831))[0] == "Allow") is allowed


def test_inbound_rules_do_not_decide_outbound_flows() -> None:
    rules = [{**_rule("deny-in", 100, "*", "Deny"), "direction": "Inbound"}]
    assert decide(rules, Flow("AzureMonitor", "Tcp", 443))[0] == "Allow"


def test_a_rule_for_another_source_does_not_apply() -> None:
    rules = [
        _rule("allow-other", 100, "AzureMonitor", source="10.20.0.0/16"),
        _rule("deny", 4000, "*", "Deny"),
    ]
    assert decide(rules, Flow("AzureMonitor", "Tcp", 443, "10.10.1.0/24")) == ("Deny", "deny")
    assert decide(rules, Flow("AzureMonitor", "Tcp", 443, "10.20.1.0/24")) == ("Allow", "allow-other")
