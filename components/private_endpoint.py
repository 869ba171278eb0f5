"""Private endpoints with their private DNS zone group: the one way prod resources are reached."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping

import pulumi
import pulumi_azure_native.network as network

from components.common import CommonArgs, child_opts

# Private DNS zone of each private link sub-resource (group id) in the Azure public cloud
# (Learn: "Azure Private Endpoint DNS configuration", articles/private-link/private-endpoint-dns.md).
PRIVATE_DNS_ZONES: Mapping[str, tuple[str, ...]] = {
    "blob": ("privatelink.blob.core.windows.net",),
    "file": ("privatelink.file.core.windows.net",),
    "queue": ("privatelink.queue.core.windows.net",),
    "table": ("privatelink.table.core.windows.net",),
    "vault": ("privatelink.vaultcore.azure.net",),
    "registry": ("privatelink.azurecr.io",),
    "amlworkspace": ("privatelink.api.azureml.ms", "privatelink.notebooks.azure.net"),
    "grafana": ("privatelink.grafana.azure.com",),
}


def zones_for(group_id: str) -> tuple[str, ...]:
    """Private DNS zones a private endpoint for `group_id` registers in; unknown group ids are an error."""
    try:
        return PRIVATE_DNS_ZONES[group_id]
    except KeyError:
        raise ValueError(
            f"no private DNS zone known for private link group id {group_id!r}; "
            f"known: {', '.join(sorted(PRIVATE_DNS_ZONES))}"
        ) from None


def all_private_dns_zones() -> tuple[str, ...]:
    """Every zone a known group id registers in, in a stable order."""
    return zones_for_groups(PRIVATE_DNS_ZONES)


def zones_for_groups(group_ids: Iterable[str]) -> tuple[str, ...]:
    """The zones private endpoints for `group_ids` register in, each once, in the order first needed."""
    return tuple(dict.fromkeys(zone for group_id in group_ids for zone in zones_for(group_id)))


@dataclass(frozen=True)
class PrivateEndpointArgs:
    """Where a component puts its private endpoints: the subnet and the private DNS zones by zone name."""

    subnet_id: pulumi.Input[str]
    """Subnet holding the endpoints' network interfaces."""
    dns_zone_ids: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Resource id of each private DNS zone, keyed by zone name (see PRIVATE_DNS_ZONES)."""


def add_private_endpoint(
    resource_name: str,
    *,
    common: CommonArgs,
    endpoint_name: str,
    target_id: pulumi.Input[str],
    group_id: str,
    placement: PrivateEndpointArgs,
    parent: pulumi.Resource,
) -> network.PrivateEndpoint:
    """Declare a private endpoint to `target_id` (sub-resource `group_id`), registered in its DNS zones."""
    missing = [zone for zone in zones_for(group_id) if zone not in placement.dns_zone_ids]
    if missing:
        raise ValueError(
            f"private endpoint {endpoint_name} ({group_id}) needs the private DNS zones {missing}; list them in "
            "NetworkArgs.private_dns_zones"
        )
    endpoint = network.PrivateEndpoint(
        resource_name,
        private_endpoint_name=endpoint_name,
        resource_group_name=common.resource_group_name,
        location=common.location,
        subnet=network.SubnetArgs(id=placement.subnet_id),
        private_link_service_connections=[
            network.PrivateLinkServiceConnectionArgs(
                name=endpoint_name, private_link_service_id=target_id, group_ids=[group_id]
            )
        ],
        tags=common.tags_with(),
        opts=child_opts(parent),
    )
    network.PrivateDnsZoneGroup(
        f"{resource_name}-dns",
        private_dns_zone_group_name="default",
        private_endpoint_name=endpoint.name,
        resource_group_name=common.resource_group_name,
        private_dns_zone_configs=[
            network.PrivateDnsZoneConfigArgs(
                name=zone.replace(".", "-"), private_dns_zone_id=placement.dns_zone_ids[zone]
            )
            for zone in zones_for(group_id)
        ],
        opts=child_opts(parent),
    )
    return endpoint
