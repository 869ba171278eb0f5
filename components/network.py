"""The environment's VNET: NSG-guarded subnets, one NAT gateway for machine egress, private DNS zones."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import pulumi
import pulumi_azure_native.network as network
import pulumi_azure_native.privatedns as privatedns

from components.common import CommonArgs, child_opts
from components.nsg_rules import SecurityRule, deny_internet_inbound
from components.private_endpoint import PrivateEndpointArgs

PRIVATE_ENDPOINTS_ROLE = "private-endpoints"


@dataclass(frozen=True)
class SubnetSpec:
    """One subnet: its CIDR, whether its machines egress through the NAT gateway, and its extra NSG rules."""

    cidr: str
    """CIDR inside the VNET (validated by the config)."""
    egress: bool = False
    """Associate the NAT gateway: the only outbound path of a subnet without default outbound access."""
    security_rules: tuple[SecurityRule, ...] = ()
    """Rules besides the explicit deny of inbound internet traffic every subnet gets."""


@dataclass(frozen=True)
class NetworkArgs:
    """Inputs of a Network."""

    common: CommonArgs
    """Location, resource group, tags, protect."""
    vnet_name: str
    """Azure name of the VNET."""
    address_space: str
    """VNET CIDR."""
    subnets: Mapping[str, SubnetSpec]
    """Subnets by role (training, aks, agents, private-endpoints), declared in this order."""
    nat_gateway_name: str | None = None
    """Azure name of the NAT gateway; required when a subnet egresses."""
    nat_public_ip_name: str | None = None
    """Azure name of the NAT gateway's Standard public IP; required when a subnet egresses."""
    private_dns_zones: tuple[str, ...] = field(default_factory=tuple)
    """Private DNS zones (linked to the VNET) that private endpoints register in; empty for none."""

    def __post_init__(self) -> None:
        egress = [role for role, spec in self.subnets.items() if spec.egress]
        if egress and not (self.nat_gateway_name and self.nat_public_ip_name):
            raise ValueError(f"subnets {egress} egress through a NAT gateway: name it and its public IP")
        if self.private_dns_zones and PRIVATE_ENDPOINTS_ROLE not in self.subnets:
            raise ValueError(f"private DNS zones need a '{PRIVATE_ENDPOINTS_ROLE}' subnet for the endpoints")


def subnet_name(role: str) -> str:
    """Azure name of the subnet for `role`."""
    return f"snet-{role}"


def nsg_name(vnet_name: str, role: str) -> str:
    """Azure name of the NSG guarding the subnet for `role`."""
    return f"nsg-{role}-{vnet_name.removeprefix('vnet-')}"


def zone_resource_role(zone_name: str) -> str:
    """Short logical name of a private DNS zone (privatelink.blob.core.windows.net -> blob-core-windows-net)."""
    return zone_name.removeprefix("privatelink.").replace(".", "-")


def security_rule_args(rule: SecurityRule) -> network.SecurityRuleArgs:
    """The azure-native form of `rule` (a single port goes to destination_port_range, several to ..._ranges)."""
    single = rule.ports[0] if len(rule.ports) == 1 else None
    return network.SecurityRuleArgs(
        name=rule.name,
        priority=rule.priority,
        direction=rule.direction,
        access=rule.access,
        protocol=rule.protocol,
        source_address_prefix=rule.source,
        source_port_range="*",
        destination_address_prefix=rule.destination,
        destination_port_range=single,
        destination_port_ranges=None if single else list(rule.ports),
    )


class Network(pulumi.ComponentResource):
    """A VNET with one NSG-guarded subnet per role, the NAT gateway its machine subnets egress through."""

    vnet_id: pulumi.Output[str]
    """Azure resource id of the VNET."""
    vnet_name: pulumi.Output[str]
    """Azure name of the VNET."""
    subnet_ids: dict[str, pulumi.Output[str]]
    """Subnet resource id by role."""
    private_dns_zone_ids: dict[str, pulumi.Output[str]]
    """Private DNS zone id by zone name (empty when there are no private endpoints)."""
    nat_gateway_id: pulumi.Output[str] | None
    """Azure resource id of the NAT gateway, None when no subnet egresses."""

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("aml-platform:network:Network", name, None, opts)
        common = args.common
        vnet = network.VirtualNetwork(
            f"{name}-vnet",
            virtual_network_name=args.vnet_name,
            resource_group_name=common.resource_group_name,
            location=common.location,
            address_space=network.AddressSpaceArgs(address_prefixes=[args.address_space]),
            tags=common.tags_with(),
            opts=child_opts(self, common.protect),
        )
        self.vnet_id = vnet.id
        self.vnet_name = vnet.name
        self.nat_gateway_id = self._nat_gateway(name, args)
        self.subnet_ids = self._subnets(name, args, vnet)
        self.private_dns_zone_ids = self._dns_zones(name, args, vnet)
        self.register_outputs(
            {
                "vnet_id": self.vnet_id,
                "vnet_name": self.vnet_name,
                "subnet_ids": self.subnet_ids,
                "private_dns_zone_ids": self.private_dns_zone_ids,
                "nat_gateway_id": self.nat_gateway_id,
            }
        )

    def _nat_gateway(self, name: str, args: NetworkArgs) -> pulumi.Output[str] | None:
        if not any(spec.egress for spec in args.subnets.values()):
            return None
        common = args.common
        # NAT gateways take Standard, static public IPs only (Learn: "What is Azure NAT Gateway?").
        public_ip = network.PublicIPAddress(
            f"{name}-nat-public-ip",
            public_ip_address_name=args.nat_public_ip_name,
            resource_group_name=common.resource_group_name,
            location=common.location,
            sku=network.PublicIPAddressSkuArgs(name="Standard", tier="Regional"),
            public_ip_allocation_method="Static",
            public_ip_address_version="IPv4",
            tags=common.tags_with(),
            opts=child_opts(self),
        )
        gateway = network.NatGateway(
            f"{name}-nat-gateway",
            nat_gateway_name=args.nat_gateway_name,
            resource_group_name=common.resource_group_name,
            location=common.location,
            sku=network.NatGatewaySkuArgs(name="Standard"),
            public_ip_addresses=[network.SubResourceArgs(id=public_ip.id)],
            idle_timeout_in_minutes=4,
            tags=common.tags_with(),
            opts=child_opts(self),
        )
        return gateway.id

    def _subnets(
        self, name: str, args: NetworkArgs, vnet: network.VirtualNetwork
    ) -> dict[str, pulumi.Output[str]]:
        common = args.common
        subnet_ids: dict[str, pulumi.Output[str]] = {}
        previous: list[pulumi.Resource] = []
        for role, spec in args.subnets.items():
            nsg = network.NetworkSecurityGroup(
                f"{name}-{role}-nsg",
                network_security_group_name=nsg_name(args.vnet_name, role),
                resource_group_name=common.resource_group_name,
                location=common.location,
                security_rules=[
                    security_rule_args(r) for r in (*spec.security_rules, deny_internet_inbound())
                ],
                tags=common.tags_with(),
                opts=child_opts(self),
            )
            subnet = network.Subnet(
                f"{name}-{role}-subnet",
                subnet_name=subnet_name(role),
                virtual_network_name=vnet.name,
                resource_group_name=common.resource_group_name,
                address_prefix=spec.cidr,
                network_security_group=network.NetworkSecurityGroupArgs(id=nsg.id),
                # No implicit outbound IP: machines egress through the NAT gateway or not at all (AZURE-FACTS 3).
                default_outbound_access=False,
                nat_gateway=network.SubResourceArgs(id=self.nat_gateway_id) if spec.egress else None,
                private_endpoint_network_policies="Enabled" if role == PRIVATE_ENDPOINTS_ROLE else None,
                # Azure rejects concurrent writes to subnets of one VNET: create them one after another.
                opts=child_opts(self, common.protect, depends_on=previous),
            )
            previous = [subnet]
            subnet_ids[role] = subnet.id
        return subnet_ids

    def _dns_zones(
        self, name: str, args: NetworkArgs, vnet: network.VirtualNetwork
    ) -> dict[str, pulumi.Output[str]]:
        return {
            zone_name: link_private_zone(
                f"{name}-{zone_resource_role(zone_name)}", zone_name, args.common, vnet.id, self
            ).id
            for zone_name in args.private_dns_zones
        }

    def private_endpoint_placement(self) -> PrivateEndpointArgs:
        """Where other components put their private endpoints: this VNET's endpoint subnet and DNS zones."""
        return PrivateEndpointArgs(
            subnet_id=self.subnet_ids[PRIVATE_ENDPOINTS_ROLE], dns_zone_ids=self.private_dns_zone_ids
        )


def link_private_zone(
    resource_name: str,
    zone_name: str,
    common: CommonArgs,
    vnet_id: pulumi.Input[str],
    parent: pulumi.Resource,
) -> privatedns.PrivateZone:
    """A private DNS zone linked to `vnet_id` for resolution only."""
    zone = privatedns.PrivateZone(
        f"{resource_name}-zone",
        private_zone_name=zone_name,
        resource_group_name=common.resource_group_name,
        location="global",
        tags=common.tags_with(),
        opts=child_opts(parent),
    )
    privatedns.VirtualNetworkLink(
        f"{resource_name}-zone-link",
        virtual_network_link_name=f"link-{zone_resource_role(zone_name)}",
        private_zone_name=zone.name,
        resource_group_name=common.resource_group_name,
        location="global",
        virtual_network=privatedns.SubResourceArgs(id=vnet_id),
        registration_enabled=False,
        tags=common.tags_with(),
        opts=child_opts(parent),
    )
    return zone
