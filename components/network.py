"""The environment's VNET: subnets with NSGs and, when private endpoints are on, the private DNS zones."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_azure_native.network as network
import pulumi_azure_native.privatedns as privatedns

from components.common import CommonArgs, child_opts
from components.private_endpoint import PrivateEndpointArgs, all_private_dns_zones


@dataclass(frozen=True)
class NetworkArgs:
    """Inputs of a Network (CIDRs already validated and non-overlapping)."""

    common: CommonArgs
    """Location, resource group, tags, protect."""
    vnet_name: str
    """Azure name of the VNET."""
    address_space: str
    """VNET CIDR."""
    training_subnet: str
    """CIDR of the AML compute cluster subnet."""
    aks_subnet: str
    """CIDR of the AKS node subnet."""
    agents_subnet: str
    """CIDR of the Azure DevOps agent VM subnet."""
    private_endpoints_subnet: str
    """CIDR of the private endpoint subnet."""
    private_endpoints: bool = False
    """Create the private DNS zones (linked to the VNET) that private endpoints register in."""

    def subnet_cidrs(self) -> dict[str, str]:
        """CIDR of each subnet by role."""
        return {
            "training": self.training_subnet,
            "aks": self.aks_subnet,
            "agents": self.agents_subnet,
            "private-endpoints": self.private_endpoints_subnet,
        }


def subnet_name(role: str) -> str:
    """Azure name of the subnet for `role`."""
    return f"snet-{role}"


def nsg_name(vnet_name: str, role: str) -> str:
    """Azure name of the NSG guarding the subnet for `role`."""
    return f"nsg-{role}-{vnet_name.removeprefix('vnet-')}"


class Network(pulumi.ComponentResource):
    """A VNET with one NSG-guarded subnet per role (training, aks, agents, private-endpoints)."""

    vnet_id: pulumi.Output[str]
    """Azure resource id of the VNET."""
    vnet_name: pulumi.Output[str]
    """Azure name of the VNET."""
    subnet_ids: dict[str, pulumi.Output[str]]
    """Subnet resource id by role."""
    private_dns_zone_ids: dict[str, pulumi.Output[str]]
    """Private DNS zone id by zone name (empty when private endpoints are off)."""

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
        self.subnet_ids = self._subnets(name, args, vnet)
        self.private_dns_zone_ids = self._dns_zones(name, common, vnet) if args.private_endpoints else {}
        self.register_outputs(
            {
                "vnet_id": self.vnet_id,
                "vnet_name": self.vnet_name,
                "subnet_ids": self.subnet_ids,
                "private_dns_zone_ids": self.private_dns_zone_ids,
            }
        )

    def _subnets(
        self, name: str, args: NetworkArgs, vnet: network.VirtualNetwork
    ) -> dict[str, pulumi.Output[str]]:
        common = args.common
        subnet_ids: dict[str, pulumi.Output[str]] = {}
        previous: list[pulumi.Resource] = []
        for role, cidr in args.subnet_cidrs().items():
            nsg = network.NetworkSecurityGroup(
                f"{name}-{role}-nsg",
                network_security_group_name=nsg_name(args.vnet_name, role),
                resource_group_name=common.resource_group_name,
                location=common.location,
                security_rules=[_deny_internet_inbound()],
                tags=common.tags_with(),
                opts=child_opts(self),
            )
            subnet = network.Subnet(
                f"{name}-{role}-subnet",
                subnet_name=subnet_name(role),
                virtual_network_name=vnet.name,
                resource_group_name=common.resource_group_name,
                address_prefix=cidr,
                network_security_group=network.NetworkSecurityGroupArgs(id=nsg.id),
                # No implicit outbound IP: egress must be explicit (NAT, firewall, managed network).
                default_outbound_access=False,
                private_endpoint_network_policies="Enabled" if role == "private-endpoints" else None,
                # Azure rejects concurrent writes to subnets of one VNET: create them one after another.
                opts=child_opts(self, common.protect, depends_on=previous),
            )
            previous = [subnet]
            subnet_ids[role] = subnet.id
        return subnet_ids

    def _dns_zones(
        self, name: str, common: CommonArgs, vnet: network.VirtualNetwork
    ) -> dict[str, pulumi.Output[str]]:
        zone_ids: dict[str, pulumi.Output[str]] = {}
        for zone_name in all_private_dns_zones():
            role = zone_name.removeprefix("privatelink.").replace(".", "-")
            zone = privatedns.PrivateZone(
                f"{name}-{role}-zone",
                private_zone_name=zone_name,
                resource_group_name=common.resource_group_name,
                location="global",
                tags=common.tags_with(),
                opts=child_opts(self),
            )
            privatedns.VirtualNetworkLink(
                f"{name}-{role}-zone-link",
                virtual_network_link_name=f"link-{role}",
                private_zone_name=zone.name,
                resource_group_name=common.resource_group_name,
                location="global",
                virtual_network=privatedns.SubResourceArgs(id=vnet.id),
                registration_enabled=False,
                tags=common.tags_with(),
                opts=child_opts(self),
            )
            zone_ids[zone_name] = zone.id
        return zone_ids

    def private_endpoint_placement(self) -> PrivateEndpointArgs:
        """Where other components put their private endpoints: this VNET's endpoint subnet and DNS zones."""
        return PrivateEndpointArgs(
            subnet_id=self.subnet_ids["private-endpoints"], dns_zone_ids=self.private_dns_zone_ids
        )


def _deny_internet_inbound() -> network.SecurityRuleArgs:
    # Azure's default rules already drop it; an explicit rule keeps the intent visible in reviews and diffs.
    return network.SecurityRuleArgs(
        name="deny-internet-inbound",
        priority=4096,
        direction="Inbound",
        access="Deny",
        protocol="*",
        source_address_prefix="Internet",
        source_port_range="*",
        destination_address_prefix="*",
        destination_port_range="*",
    )
