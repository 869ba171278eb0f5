"""The resource group that holds every Azure resource of one environment."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_azure_native.resources as resources

from components.common import CommonArgs, child_opts


@dataclass(frozen=True)
class ResourceGroupArgs:
    """Inputs of a ResourceGroup (its `common.resource_group_name` is the group's own name)."""

    common: CommonArgs
    """Location, name, tags, protect."""


class ResourceGroup(pulumi.ComponentResource):
    """An Azure resource group."""

    resource_group_name: pulumi.Output[str]
    """Name of the group."""
    resource_group_id: pulumi.Output[str]
    """Azure resource id of the group."""

    def __init__(
        self, name: str, args: ResourceGroupArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("aml-platform:core:ResourceGroup", name, None, opts)
        common = args.common
        group = resources.ResourceGroup(
            f"{name}-group",
            resource_group_name=common.resource_group_name,
            location=common.location,
            tags=common.tags_with(),
            opts=child_opts(self, common.protect),
        )
        self.resource_group_name = group.name
        self.resource_group_id = group.id
        self.register_outputs(
            {"resource_group_name": self.resource_group_name, "resource_group_id": self.resource_group_id}
        )
