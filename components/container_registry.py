"""The container registry holding the training and inference environment images."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_azure_native.containerregistry as containerregistry

from components.common import CommonArgs, child_opts
from components.attachments import attach_endpoint_and_diagnostics
from components.private_endpoint import PrivateEndpointArgs


@dataclass(frozen=True)
class ContainerRegistryArgs:
    """Inputs of a ContainerRegistry."""

    common: CommonArgs
    """Location, resource group, tags, protect."""
    registry_name: str
    """Azure name (5-50 alphanumerics, validated by the config)."""
    public_network_access: bool = True
    """Off in prod; a private registry needs the Premium SKU for its private endpoint."""
    diagnostics_workspace_id: pulumi.Input[str] | None = None
    """Log Analytics workspace receiving the registry's logs and metrics; None for none."""
    private_endpoint: PrivateEndpointArgs | None = None
    """Subnet and DNS zones for the private endpoint; None for no private endpoint."""

    @property
    def sku(self) -> str:
        """Premium where a private endpoint or closed public access needs it (the one SKU with either)."""
        return "Premium" if self.private_endpoint is not None or not self.public_network_access else "Basic"


class ContainerRegistry(pulumi.ComponentResource):
    """An Azure Container Registry with the admin user off."""

    registry_name: pulumi.Output[str]
    """Azure name of the registry."""
    registry_id: pulumi.Output[str]
    """Azure resource id of the registry."""
    login_server: pulumi.Output[str]
    """Host name images are pushed to and pulled from."""

    def __init__(
        self, name: str, args: ContainerRegistryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("aml-platform:data:ContainerRegistry", name, None, opts)
        common = args.common
        registry = containerregistry.Registry(
            f"{name}-registry",
            registry_name=args.registry_name,
            resource_group_name=common.resource_group_name,
            location=common.location,
            sku=containerregistry.SkuArgs(name=args.sku),
            admin_user_enabled=False,
            anonymous_pull_enabled=False,
            public_network_access="Enabled" if args.public_network_access else "Disabled",
            network_rule_bypass_options="AzureServices",
            tags=common.tags_with(),
            opts=child_opts(self, common.protect),
        )
        attach_endpoint_and_diagnostics(
            name,
            self,
            common,
            registry.id,
            endpoint_name=f"pe-{args.registry_name}-registry",
            group_id="registry",
            private_endpoint=args.private_endpoint,
            diagnostics_workspace_id=args.diagnostics_workspace_id,
        )
        self.registry_name = registry.name
        self.registry_id = registry.id
        self.login_server = registry.login_server.apply(
            lambda server: server or f"{args.registry_name}.azurecr.io"
        )
        self.register_outputs(
            {
                "registry_name": self.registry_name,
                "registry_id": self.registry_id,
                "login_server": self.login_server,
            }
        )
