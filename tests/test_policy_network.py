"""Network rules on both sides: NSGs, private endpoints, egress of machine subnets (3), training NSG (23)."""

from __future__ import annotations

import copy

import pytest

from policy import rules as r
from policy.rules.graph import PlannedResource, refers_to
from tests._policy_cases import (
    DELETE,
    ENVIRONMENTS,
    TRAINING_NSG_RULES,
    adding,
    assert_resource_case,
    assert_stack_case,
    breaking,
    build,
    chain,
    edit,
    resource_findings,
    stack_findings,
)


def _ssh_rule(source: str, ports: list[str]) -> list[dict]:
    return [
        {
            "name": "ssh",
            "priority": 100,
            "direction": "Inbound",
            "access": "Allow",
            "protocol": "Tcp",
            "sourceAddressPrefix": source,
            "destinationAddressPrefix": "*",
            "destinationPortRanges": ports,
        }
    ]


RESOURCE_CASES = [
    ("nsg-no-open-management-ports", r.NSG, breaking(securityRules=_ssh_rule("*", ["20-23"]))),
    ("subnet-has-nsg", r.SUBNET, breaking(networkSecurityGroup=DELETE)),
    ("subnet-no-default-outbound", r.SUBNET, breaking(defaultOutboundAccess=DELETE)),
    ("private-endpoint-connection", r.PRIVATE_ENDPOINT, breaking(privateLinkServiceConnections=[])),
    ("private-endpoint-dns", r.PRIVATE_DNS_ZONE_GROUP, breaking(privateDnsZoneConfigs=[{"name": "api"}])),
    ("private-dns-link-no-autoregistration", r.PRIVATE_DNS_LINK, breaking(registrationEnabled=True)),
]


def _without_nsg_rule(name: str):
    return edit(
        "training-nsg", "securityRules", [rule for rule in TRAINING_NSG_RULES if rule["name"] != name]
    )


STACK_CASES = [
    ("subnet-machines-have-egress", "customerVnet", edit("agents-subnet", "natGateway", DELETE)),
    ("subnet-machines-have-egress", "managedVnet", edit("agents-subnet", "natGateway", DELETE)),
    ("subnet-machines-have-egress", "customerVnet", edit("training-subnet", "natGateway", DELETE)),
    ("subnet-machines-have-egress", "managedVnet", edit("nat", "publicIpAddresses", [])),
    (
        "subnet-machines-have-egress",
        "managedVnet",
        chain(
            edit("agents-subnet", "natGateway", DELETE),
            adding(
                r.ROUTE_TABLE,
                "agents-routes",
                lambda b: {
                    "routeTableName": "rt-agents",
                    "location": "westeurope",
                    "routes": [{"name": "local", "addressPrefix": "10.0.0.0/8", "nextHopType": "VnetLocal"}],
                },
            ),
            edit(
                "agents-subnet",
                "routeTable",
                {
                    "id": "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-taxi-001{env}/providers/Microsoft.Network/routeTables/rt-agents"
                },
            ),
        ),
    ),
    ("training-subnet-nsg-outbound", "customerVnet", _without_nsg_rule("aml-udp")),
    ("training-subnet-nsg-outbound", "customerVnet", _without_nsg_rule("batch")),
    ("training-subnet-nsg-outbound", "customerVnet", _without_nsg_rule("vnet")),
    ("training-subnet-nsg-outbound", "customerVnet", _without_nsg_rule("frontdoor")),
    (
        "training-subnet-nsg-outbound",
        "customerVnet",
        edit("training-subnet", "delegations", [{"name": "d", "serviceName": "Microsoft.Web/serverFarms"}]),
    ),
]


def _format_env(change, env: str):
    # Ids in the cases above name the stack's resource group, which depends on the environment.
    def apply(resources):
        out = change(resources)
        return [
            res
            if "{env}" not in str(res.props)
            else PlannedResource(
                res.type,
                res.name,
                _fill(res.props, env),
                res.urn,
                res.property_dependencies,
                res.dependencies,
            )
            for res in out
        ]

    return apply


def _fill(value, env: str):
    if isinstance(value, dict):
        return {k: _fill(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, env) for v in value]
    return value.replace("{env}", env) if isinstance(value, str) else value


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize(
    ("rule", "resource_type", "breaks"), RESOURCE_CASES, ids=[c[0] for c in RESOURCE_CASES]
)
def test_a_broken_network_setting_is_reported_by_its_rule(
    rule: str, resource_type: str, breaks, env: str
) -> None:
    assert_resource_case(rule, resource_type, breaks, env)


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize(
    ("rule", "design", "change"), STACK_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(STACK_CASES)]
)
def test_a_broken_network_stack_is_reported(rule: str, design, change, env: str) -> None:
    assert_stack_case(rule, design, env, _format_env(change, env))


@pytest.mark.parametrize(
    ("source", "ports", "reported"),
    [
        ("*", ["22"], True),
        ("Internet", ["3389"], True),
        ("0.0.0.0/0", ["21-22"], True),
        ("*", ["23"], False),
        ("*", ["3390-4000"], False),
        ("VirtualNetwork", ["22"], False),
        ("10.10.2.0/24", ["*"], False),
        ("*", ["*"], True),
    ],
)
def test_management_ports_open_to_the_internet(source: str, ports: list[str], reported: bool) -> None:
    findings = resource_findings(r.NSG, breaking(securityRules=_ssh_rule(source, ports)), "prod")
    assert bool(findings) is reported


def test_a_denied_flow_is_named_with_the_rule_that_denies_it() -> None:
    findings = assert_stack_case(
        "training-subnet-nsg-outbound", "customerVnet", "prod", _without_nsg_rule("aml-udp")
    )
    assert "AzureMachineLearning UDP 5831 (by deny-all-outbound)" in findings[0].message


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_without_any_deny_rule_the_default_rules_allow_what_training_needs(env: str) -> None:
    change = edit("training-nsg", "securityRules", [])
    assert stack_findings(change(build("customerVnet", env)), env) == []


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_public_storage_takes_smb_to_the_regional_storage_tag(env: str) -> None:
    private = [rule for rule in TRAINING_NSG_RULES if rule["name"] != "vnet"]
    private.append({**TRAINING_NSG_RULES[9], "name": "vnet", "destinationPortRanges": ["443"]})
    change = edit("training-nsg", "securityRules", private)
    findings = assert_stack_case("training-subnet-nsg-outbound", "customerVnet", env, change)
    assert "VirtualNetwork TCP 445" in findings[0].message
    public = chain(
        change,
        edit("storage-account", "publicNetworkAccess", "Enabled"),
        edit(
            "training-nsg",
            "securityRules",
            [
                *private,
                {**TRAINING_NSG_RULES[3], "name": "smb", "priority": 135, "destinationPortRanges": ["445"]},
            ],
        ),
    )
    left = {f.rule for f in stack_findings(public(build("customerVnet", env)), env)}
    assert "training-subnet-nsg-outbound" not in left


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_aks_with_a_load_balancer_outbound_has_its_own_egress(env: str) -> None:
    change = chain(
        edit("aks-subnet", "natGateway", DELETE),
        edit("aks-cluster", "networkProfile.outboundType", "loadBalancer"),
    )
    assert stack_findings(change(build("customerVnet", env)), env) == []


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_subnets_keeping_default_outbound_access_have_an_implicit_path(env: str) -> None:
    change = chain(
        edit("agents-subnet", "natGateway", DELETE), edit("agents-subnet", "defaultOutboundAccess", True)
    )
    findings = stack_findings(change(build("managedVnet", env)), env)
    assert [(f.rule, f.level) for f in findings] == [("subnet-no-default-outbound", "advisory")]


@pytest.mark.parametrize(
    ("resource_id", "matches"),
    [
        (
            "/subscriptions/s/resourceGroups/rg-taxi-001prod/providers/Microsoft.Network/virtualNetworks/vnet-taxi/subnets/snet-agents",
            True,
        ),
        (
            "/subscriptions/s/resourceGroups/RG-TAXI-001PROD/providers/Microsoft.Network/virtualNetworks/vnet-taxi/subnets/SNET-AGENTS",
            True,
        ),
        (
            "/subscriptions/s/resourceGroups/rg-taxi-001prod/providers/Microsoft.Network/subnets/snet-agents",
            True,
        ),
        (
            "/subscriptions/s/resourceGroups/rg-taxi-001prod/providers/Microsoft.Network/virtualNetworks/other/subnets/snet-agents",
            False,
        ),
        (
            "/subscriptions/s/resourceGroups/other-rg/providers/Microsoft.Network/virtualNetworks/vnet-taxi/subnets/snet-agents",
            False,
        ),
        (
            "/subscriptions/s/resourceGroups/rg-taxi-001prod/providers/Microsoft.Network/networkSecurityGroups/snet-agents",
            False,
        ),
        ("snet-agents", False),
        ("[unknown]", False),
    ],
)
def test_an_arm_id_names_a_planned_subnet(resource_id: str, matches: bool) -> None:
    subnet = next(res for res in build("managedVnet", "prod") if res.name == "agents-subnet")
    assert refers_to(resource_id, subnet) is matches


def test_an_id_computed_at_update_time_falls_back_to_the_input_dependencies() -> None:
    resources = build("managedVnet", "prod")
    nic = next(res for res in resources if res.name == "agent-vm-nic")
    props = copy.deepcopy(dict(nic.props))
    props["ipConfigurations"][0]["subnet"]["id"] = "[unknown]"
    stack = r.Stack(
        [PlannedResource(nic.type, nic.name, props, nic.urn, nic.property_dependencies), *resources]
    )
    assert [s.name for s in stack.subnet_of(stack.resources[0], "ipConfigurations", "[unknown]")] == [
        "agents-subnet"
    ]
