"""The Azure ML registry shared by the dev and prod workspaces: promotion copies dev's champion into it.

Sources (MicrosoftDocs/azure-ai-docs, articles/machine-learning/):
- how-to-manage-registries.md: a registry names its primary region in `regionDetails` with a
  system-created storage account and a system-created (Premium) container registry per region;
  reading assets needs `registries/read` + `registries/assets/read` (the built-in Reader role);
  names are 2-32 alphanumerics, `-` or `_`, starting alphanumeric, unique in the tenant, and
  cannot change (they are part of every asset id).
- how-to-registry-network-isolation.md: the identity that creates assets in a registry needs
  AzureML Registry User (or Owner / Contributor, which can also delete the registry).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import pulumi
import pulumi_azure_native.machinelearningservices as ml

from components.common import BuiltInRole, CommonArgs, RoleGrant, assign_role, child_opts

REGISTRY_STORAGE_TYPE = "Standard_LRS"
REGISTRY_ACR_SKU = "Premium"
"""The SKU how-to-manage-registries.md creates: geo-replication of environment images needs Premium."""


@dataclass(frozen=True)
class ModelRegistryArgs:
    """Inputs of a ModelRegistry."""

    common: CommonArgs
    """Location (the registry's primary region), resource group, tags, protect."""
    registry_name: str
    """Azure name (2-32 characters, validated by the config)."""
    subscription_id: pulumi.Input[str]
    """Subscription of the role definitions granted."""
    readers: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Stable key -> object id of each identity that deploys or uses the registry's assets (Reader)."""
    writers: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Stable key -> object id of each identity that promotes models into it (AzureML Registry User)."""
    replication_locations: tuple[str, ...] = ()
    """Further regions to replicate to (a workspace must be in one of the registry's regions)."""

    @property
    def regions(self) -> tuple[str, ...]:
        """The primary region first, then each other region once."""
        return tuple(dict.fromkeys((self.common.location, *self.replication_locations)))


def registry_grants(args: ModelRegistryArgs, registry_id: pulumi.Input[str]) -> dict[str, RoleGrant]:
    """Role assignment resource name suffix -> grant: Reader for readers, AzureML Registry User for writers."""
    roles = (
        (BuiltInRole.READER, "reader", args.readers),
        (BuiltInRole.AZUREML_REGISTRY_USER, "writer", args.writers),
    )
    return {
        f"{kind}-{key}": RoleGrant(
            role=role,
            scope=registry_id,
            scope_key=args.registry_name,
            principal_id=principal,
            principal_key=key,
        )
        for role, kind, principals in roles
        for key, principal in principals.items()
    }


class ModelRegistry(pulumi.ComponentResource):
    """An Azure ML registry with system-created storage and container registry, and who may read or write it."""

    registry_name: pulumi.Output[str]
    """Azure name of the registry."""
    registry_id: pulumi.Output[str]
    """Azure resource id of the registry."""

    def __init__(
        self, name: str, args: ModelRegistryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("aml-platform:ml:ModelRegistry", name, None, opts)
        common = args.common
        registry = ml.Registry(
            f"{name}-registry",
            registry_name=args.registry_name,
            resource_group_name=common.resource_group_name,
            location=common.location,
            identity=ml.ManagedServiceIdentityArgs(type="SystemAssigned"),
            region_details=[
                ml.RegistryRegionArmDetailsArgs(
                    location=region,
                    storage_account_details=[
                        ml.StorageAccountDetailsArgs(
                            system_created_storage_account=ml.SystemCreatedStorageAccountArgs(
                                storage_account_type=REGISTRY_STORAGE_TYPE,
                                storage_account_hns_enabled=False,
                                allow_blob_public_access=False,
                            )
                        )
                    ],
                    acr_details=[
                        ml.AcrDetailsArgs(
                            system_created_acr_account=ml.SystemCreatedAcrAccountArgs(
                                acr_account_sku=REGISTRY_ACR_SKU
                            )
                        )
                    ],
                )
                for region in args.regions
            ],
            # Public, with Entra ID auth only: a private registry also needs private endpoints to the storage
            # and container registry Azure creates in its managed resource group (names known only after).
            public_network_access="Enabled",
            tags=common.tags_with(),
            opts=child_opts(self, common.protect),
        )
        self.registry_name = registry.name
        self.registry_id = registry.id
        for suffix, grant in registry_grants(args, registry.id).items():
            assign_role(f"{name}-{suffix}-role", grant, args.subscription_id, self)
        self.register_outputs({"registry_name": self.registry_name, "registry_id": self.registry_id})
