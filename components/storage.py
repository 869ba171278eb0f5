"""The workspace's default storage account: private by default, shared keys a switch, soft delete on."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_azure_native.storage as storage

from components.common import CommonArgs, child_opts
from components.diagnostics import send_diagnostics
from components.private_endpoint import PrivateEndpointArgs, add_private_endpoint

STORAGE_METRICS = ("Transaction", "Capacity")
"""The metric categories storage accounts and blob services accept (they refuse "AllMetrics")."""


@dataclass(frozen=True)
class StorageAccountArgs:
    """Inputs of a StorageAccount."""

    common: CommonArgs
    """Location, resource group, tags, protect."""
    account_name: str
    """Azure name (3-24 lowercase alphanumerics, validated by the config)."""
    sku: str = "Standard_LRS"
    """Replication SKU, e.g. Standard_LRS (dev) or Standard_ZRS (prod)."""
    public_network_access: bool = True
    """Off in prod, where the account is reached through private endpoints only."""
    soft_delete_days: int = 7
    """Retention of deleted blobs and containers."""
    diagnostics_workspace_id: pulumi.Input[str] | None = None
    """Log Analytics workspace receiving the blob service logs and account metrics; None for none."""
    private_endpoint: PrivateEndpointArgs | None = None
    """Subnet and DNS zones for the private endpoints; None for no private endpoint."""
    private_endpoint_groups: tuple[str, ...] = ("blob", "file")
    """Sub-resources that get a private endpoint: blob for datastores and artifacts, file for code snapshots
    and notebooks; batch in our VNet also needs queue and table (AZURE-FACTS 31)."""
    shared_key_access: bool = False
    """Account keys authorize requests; off unless the design needs it (AZURE-FACTS 33)."""


class StorageAccount(pulumi.ComponentResource):
    """A StorageV2 account with blob and container soft delete."""

    account_name: pulumi.Output[str]
    """Azure name of the account."""
    account_id: pulumi.Output[str]
    """Azure resource id of the account."""
    private_endpoint_ids: dict[str, pulumi.Output[str]]
    """Resource id of each private endpoint by sub-resource (blob, file); empty without private endpoints."""

    def __init__(
        self, name: str, args: StorageAccountArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("aml-platform:data:StorageAccount", name, None, opts)
        common = args.common
        account = storage.StorageAccount(
            f"{name}-account",
            account_name=args.account_name,
            resource_group_name=common.resource_group_name,
            location=common.location,
            kind="StorageV2",
            sku=storage.SkuArgs(name=args.sku),
            enable_https_traffic_only=True,
            minimum_tls_version="TLS1_2",
            allow_blob_public_access=False,
            # AML reaches the account with its identity (system_datastores_auth_mode="identity"); keys stay on
            # only where keys-off has no Microsoft source (AZURE-FACTS 33).
            allow_shared_key_access=args.shared_key_access,
            default_to_o_auth_authentication=True,
            allow_cross_tenant_replication=False,
            public_network_access="Enabled" if args.public_network_access else "Disabled",
            network_rule_set=storage.NetworkRuleSetArgs(
                default_action=storage.DefaultAction.ALLOW
                if args.public_network_access
                else storage.DefaultAction.DENY,
                bypass="AzureServices",
            ),
            tags=common.tags_with(),
            opts=child_opts(self, common.protect),
        )
        blob_service = storage.BlobServiceProperties(
            f"{name}-blob-service",
            account_name=account.name,
            resource_group_name=common.resource_group_name,
            blob_services_name="default",
            delete_retention_policy=storage.DeleteRetentionPolicyArgs(
                enabled=True, days=args.soft_delete_days
            ),
            container_delete_retention_policy=storage.DeleteRetentionPolicyArgs(
                enabled=True, days=args.soft_delete_days
            ),
            opts=child_opts(self, common.protect),
        )
        self.private_endpoint_ids = {}
        if args.private_endpoint is not None:
            for group_id in args.private_endpoint_groups:
                self.private_endpoint_ids[group_id] = add_private_endpoint(
                    f"{name}-{group_id}-private-endpoint",
                    common=common,
                    endpoint_name=f"pe-{args.account_name}-{group_id}",
                    target_id=account.id,
                    group_id=group_id,
                    placement=args.private_endpoint,
                    parent=self,
                ).id
        if args.diagnostics_workspace_id is not None:
            send_diagnostics(
                f"{name}-diagnostics",
                account.id,
                args.diagnostics_workspace_id,
                self,
                logs=False,
                metric_categories=STORAGE_METRICS,
            )
            send_diagnostics(
                f"{name}-blob-diagnostics",
                blob_service.id,
                args.diagnostics_workspace_id,
                self,
                metric_categories=STORAGE_METRICS,
            )
        self.account_name = account.name
        self.account_id = account.id
        self.register_outputs({"account_name": self.account_name, "account_id": self.account_id})
