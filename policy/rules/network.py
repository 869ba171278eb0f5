"""Network rules: NSGs, private endpoints and DNS, egress of every subnet that hosts machines, training NSG."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Mapping

from . import types as t
from .azure import OUTBOUND_LOAD_BALANCER, SMB_PORT, TRAINING_OUTBOUND
from .core import A, M, Rule, StackRule, Subject, Violation, require, rule
from .graph import PlannedResource, Stack
from .nsg import Flow, decide, port_ranges_include
from .values import as_list, get

OPEN_SOURCES = {"*", "internet", "0.0.0.0/0", "any"}
MANAGEMENT_PORTS = (22, 3389)
PLATFORM_SUBNETS = ("GatewaySubnet", "AzureFirewallSubnet", "AzureBastionSubnet")


def _open_management_ports(subject: Subject) -> str | None:
    opened = []
    for security_rule in as_list(subject.props.get("securityRules")):
        sources = {
            str(s).lower()
            for s in [
                security_rule.get("sourceAddressPrefix"),
                *as_list(security_rule.get("sourceAddressPrefixes")),
            ]
        }
        ports = [
            p
            for p in [
                security_rule.get("destinationPortRange"),
                *as_list(security_rule.get("destinationPortRanges")),
            ]
            if p
        ]
        inbound_allow = security_rule.get("direction") == "Inbound" and security_rule.get("access") == "Allow"
        if (
            inbound_allow
            and sources & OPEN_SOURCES
            and any(port_ranges_include(ports, p) for p in MANAGEMENT_PORTS)
        ):
            opened.append(security_rule.get("name"))
    return f"rules {opened} open SSH/RDP to the internet" if opened else None


def _subnet_nsg(subject: Subject) -> str | None:
    # Azure forbids an NSG on these platform subnets.
    if get(subject.props, "subnetName") in PLATFORM_SUBNETS:
        return None
    return (
        None if get(subject.props, "networkSecurityGroup.id") else "the subnet has no network security group"
    )


def _private_link(subject: Subject) -> str | None:
    connections = as_list(subject.props.get("privateLinkServiceConnections"))
    if connections and all(c.get("privateLinkServiceId") and c.get("groupIds") for c in connections):
        return None
    return "the private endpoint has no private link connection with a target id and group ids"


def _dns_zone_configs(subject: Subject) -> str | None:
    configs = as_list(subject.props.get("privateDnsZoneConfigs"))
    if configs and all(config.get("privateDnsZoneId") for config in configs):
        return None
    return "the private endpoint's name would resolve publicly: no private DNS zone is configured"


@dataclass(frozen=True)
class Host:
    """A resource that puts machines into a subnet, and whether it brings its own explicit egress."""

    resource: PlannedResource
    subnet_id: Any
    prop: str
    own_egress: bool = False


def hosts(stack: Stack) -> Iterator[Host]:
    """Every planned placement of machines into a subnet: NICs, compute clusters, AKS pools, DevOps pools."""
    for nic in stack.of_type(t.NIC):
        for config in as_list(nic.props.get("ipConfigurations")):
            yield Host(nic, get(config, "subnet.id"), "ipConfigurations", bool(config.get("publicIPAddress")))
    for compute in stack.of_type(t.ML_COMPUTE):
        subnet_id = get(compute.props, "properties.properties.subnet.id")
        if subnet_id:
            yield Host(compute, subnet_id, "properties")
    for cluster in stack.of_type(t.AKS):
        load_balancer = aks_outbound_type(cluster) == OUTBOUND_LOAD_BALANCER
        for pool in as_list(cluster.props.get("agentPoolProfiles")):
            if pool.get("vnetSubnetID"):
                yield Host(cluster, pool.get("vnetSubnetID"), "agentPoolProfiles", load_balancer)
    for pool in stack.of_type(t.AKS_AGENT_POOL):
        clusters = stack.named(t.AKS, pool.props.get("resourceName"), pool.props.get("resourceGroupName"))
        load_balancer = any(aks_outbound_type(c) == OUTBOUND_LOAD_BALANCER for c in clusters)
        if pool.props.get("vnetSubnetID"):
            yield Host(pool, pool.props.get("vnetSubnetID"), "vnetSubnetID", load_balancer)
    for devops_pool in stack.of_type(t.MANAGED_DEVOPS_POOL):
        subnet_id = get(devops_pool.props, "fabricProfile.networkProfile.subnetId")
        if subnet_id:
            yield Host(devops_pool, subnet_id, "fabricProfile")


def aks_outbound_type(cluster: PlannedResource) -> str:
    """The cluster's outbound type; ARM's default is loadBalancer."""
    return str(get(cluster.props, "networkProfile.outboundType") or OUTBOUND_LOAD_BALANCER)


def egress_gap(stack: Stack, subnet: PlannedResource) -> str | None:
    """Why machines in the subnet have no path out, or None when they have one."""
    if subnet.props.get("defaultOutboundAccess") is not False:
        return None  # Azure's implicit default outbound access (retiring; subnet-no-default-outbound says so)
    nat_id = get(subnet.props, "natGateway.id")
    if nat_id:
        for gateway in stack.targets(subnet, "natGateway", [t.NAT_GATEWAY], nat_id):
            if not as_list(gateway.props.get("publicIpAddresses")) and not as_list(
                gateway.props.get("publicIpPrefixes")
            ):
                return f"its NAT gateway {gateway.name} has no public IP address or prefix"
        return None
    route_id = get(subnet.props, "routeTable.id")
    if route_id:
        for table in stack.targets(subnet, "routeTable", [t.ROUTE_TABLE], route_id):
            routes = as_list(table.props.get("routes"))
            if routes and not any(r.get("addressPrefix") == "0.0.0.0/0" for r in routes):
                return f"its route table {table.name} has no default route (0.0.0.0/0) to a firewall"
        return None
    return "default outbound access is off and it has no NAT gateway or route table to a firewall"


def _machines_have_egress(stack: Stack) -> Iterator[Violation]:
    for host in hosts(stack):
        if host.own_egress:
            continue
        for subnet in stack.subnet_of(host.resource, host.prop, host.subnet_id):
            gap = egress_gap(stack, subnet)
            if gap:
                yield Violation(
                    subnet,
                    f"subnet {subnet.arm_name} hosts {host.resource.name} ({host.resource.type.rsplit(':', 1)[-1]}), "
                    f"but {gap}: its machines cannot reach the internet or Microsoft's public endpoints",
                )


def security_rules_of(stack: Stack, nsg: PlannedResource) -> list[Mapping[str, Any]]:
    """The NSG's inline rules plus the separately declared SecurityRule resources of it."""
    separate = [
        r.props
        for r in stack.of_type(t.SECURITY_RULE)
        if r.props.get("networkSecurityGroupName") == nsg.arm_name
        and r.same_group(nsg.props.get("resourceGroupName"))
    ]
    return [*as_list(nsg.props.get("securityRules")), *separate]


def training_requirements(region: str, storage_private: bool) -> list[Flow]:
    """The outbound flows a no-public-IP compute cluster needs; SMB to storage goes to its private endpoint
    (inside the VNet) when the storage is private, else to Storage.<region>."""
    flows = [Flow(tag.format(region=region), protocol, port) for tag, protocol, port in TRAINING_OUTBOUND]
    smb = "VirtualNetwork" if storage_private else f"Storage.{region}"
    return [*flows, Flow(smb, "Tcp", SMB_PORT)]


def _training_subnet(stack: Stack) -> Iterator[Violation]:
    for compute in stack.of_type(t.ML_COMPUTE):
        subnet_id = get(compute.props, "properties.properties.subnet.id")
        if get(compute.props, "properties.computeType") != "AmlCompute" or not subnet_id:
            continue
        workspaces = stack.workspace_of(compute)
        region = str(
            compute.props.get("location") or (workspaces[0].props.get("location") if workspaces else "") or ""
        )
        storages = [
            s
            for w in workspaces
            for s in stack.targets(w, "storageAccount", [t.STORAGE], w.props.get("storageAccount"))
        ]
        private = any(get(s.props, "publicNetworkAccess") == "Disabled" for s in storages)
        for subnet in stack.subnet_of(compute, "properties", subnet_id):
            yield from _training_subnet_problems(
                stack, compute, subnet, training_requirements(region, private)
            )


def _training_subnet_problems(
    stack: Stack, compute: PlannedResource, subnet: PlannedResource, flows: Iterable[Flow]
) -> Iterator[Violation]:
    if as_list(subnet.props.get("delegations")):
        yield Violation(
            subnet, f"training subnet {subnet.arm_name} of {compute.name} is delegated to a service"
        )
    nsg_id = get(subnet.props, "networkSecurityGroup.id")
    for nsg in stack.targets(subnet, "networkSecurityGroup", [t.NSG], nsg_id):
        rules = security_rules_of(stack, nsg)
        source = subnet.props.get("addressPrefix")
        denied = [
            f"{flow.destination} {flow.protocol.upper()} {flow.port} (by {name})"
            for flow in flows
            for access, name in [decide(rules, Flow(flow.destination, flow.protocol, flow.port, source))]
            if access != "Allow"
        ]
        if denied:
            yield Violation(
                nsg,
                f"NSG {nsg.arm_name} of training subnet {subnet.arm_name} blocks outbound traffic compute cluster "
                f"{compute.name} needs: {', '.join(denied)}",
            )


RULES: tuple[Rule, ...] = (
    rule(
        "nsg-no-open-management-ports",
        t.NSG,
        M,
        "No NSG rule opens SSH or RDP to the internet.",
        "remove the rule or restrict its source to a known address range / the agents subnet",
        _open_management_ports,
    ),
    rule(
        "subnet-has-nsg",
        t.SUBNET,
        M,
        "Every workload subnet has a network security group.",
        "set network_security_group=NetworkSecurityGroupArgs(id=<nsg id>)",
        _subnet_nsg,
    ),
    rule(
        "subnet-no-default-outbound",
        t.SUBNET,
        A,
        "Subnets have no implicit internet outbound access.",
        "set default_outbound_access=False (egress through the managed network or a NAT gateway)",
        require("defaultOutboundAccess", False, "VMs get implicit outbound internet access"),
    ),
    rule(
        "private-endpoint-connection",
        t.PRIVATE_ENDPOINT,
        M,
        "A private endpoint targets a resource and group.",
        "set private_link_service_connections with private_link_service_id and group_ids",
        _private_link,
    ),
    rule(
        "private-endpoint-dns",
        t.PRIVATE_DNS_ZONE_GROUP,
        M,
        "Private endpoints register in a private DNS zone.",
        "add a PrivateDnsZoneGroup with the privatelink zone of the endpoint's group id",
        _dns_zone_configs,
    ),
    rule(
        "private-dns-link-no-autoregistration",
        t.PRIVATE_DNS_LINK,
        M,
        "Private link zones are linked for resolution only.",
        "set registration_enabled=False",
        require("registrationEnabled", False, "VMs auto-register into a private link zone"),
    ),
)

STACK_RULES: tuple[StackRule, ...] = (
    StackRule(
        "subnet-machines-have-egress",
        "Every subnet that hosts machines (VMs, compute clusters, AKS nodes, agent pools) has an explicit outbound "
        "path when default outbound access is off.",
        M,
        "associate the subnet with a NAT gateway that has a Standard public IP (or a route table sending "
        "0.0.0.0/0 to a firewall)",
        _machines_have_egress,
        facts=(3,),
        source="default-outbound-access.md (azure-docs, virtual-network/ip-services), explicit outbound methods",
    ),
    StackRule(
        "training-subnet-nsg-outbound",
        "The training subnet is not delegated and its NSG lets compute clusters reach what Azure ML needs.",
        M,
        "add outbound allow rules above any deny: AzureMachineLearning TCP 443/8787/18881 and UDP 5831, "
        "BatchNodeManagement.<region> 443, Storage.<region> 443, SMB 445 to the storage, and AzureActiveDirectory, "
        "AzureResourceManager, MicrosoftContainerRegistry, AzureFrontDoor.FirstParty, AzureMonitor and "
        "VirtualNetwork on 443",
        _training_subnet,
        facts=(23,),
        source="how-to-secure-training-vnet.md, Compute instance/cluster with no public IP and Limitations; "
        "how-to-access-azureml-behind-firewall.md, Basic configuration",
    ),
)
