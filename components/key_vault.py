"""The workspace's Key Vault: RBAC authorization, purge protection, 90 days soft delete."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_azure_native.keyvault as keyvault

from components.common import CommonArgs, child_opts
from components.attachments import attach_endpoint_and_diagnostics
from components.private_endpoint import PrivateEndpointArgs

SOFT_DELETE_RETENTION_DAYS = 90


@dataclass(frozen=True)
class KeyVaultArgs:
    """Inputs of a KeyVault."""

    common: CommonArgs
    """Location, resource group, tags, protect."""
    vault_name: str
    """Azure name (3-24 characters, validated by the config)."""
    tenant_id: pulumi.Input[str]
    """Entra tenant that authenticates requests to the vault."""
    public_network_access: bool = True
    """Off in prod, where the vault is reached through its private endpoint only."""
    diagnostics_workspace_id: pulumi.Input[str] | None = None
    """Log Analytics workspace receiving the audit logs and metrics; None for none."""
    private_endpoint: PrivateEndpointArgs | None = None
    """Subnet and DNS zones for the private endpoint; None for no private endpoint."""


class KeyVault(pulumi.ComponentResource):
    """An Azure Key Vault authorized by Azure RBAC (no access policies)."""

    vault_name: pulumi.Output[str]
    """Azure name of the vault."""
    vault_id: pulumi.Output[str]
    """Azure resource id of the vault."""

    def __init__(self, name: str, args: KeyVaultArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("aml-platform:security:KeyVault", name, None, opts)
        common = args.common
        vault = keyvault.Vault(
            f"{name}-vault",
            vault_name=args.vault_name,
            resource_group_name=common.resource_group_name,
            location=common.location,
            properties=keyvault.VaultPropertiesArgs(
                tenant_id=args.tenant_id,
                sku=keyvault.SkuArgs(family="A", name=keyvault.SkuName.STANDARD),
                enable_rbac_authorization=True,
                enable_soft_delete=True,
                soft_delete_retention_in_days=SOFT_DELETE_RETENTION_DAYS,
                enable_purge_protection=True,
                public_network_access="Enabled" if args.public_network_access else "Disabled",
                network_acls=keyvault.NetworkRuleSetArgs(
                    bypass="AzureServices", default_action="Allow" if args.public_network_access else "Deny"
                ),
            ),
            tags=common.tags_with(),
            opts=child_opts(self, common.protect),
        )
        attach_endpoint_and_diagnostics(
            name,
            self,
            common,
            vault.id,
            endpoint_name=f"pe-{args.vault_name}-vault",
            group_id="vault",
            private_endpoint=args.private_endpoint,
            diagnostics_workspace_id=args.diagnostics_workspace_id,
        )
        self.vault_name = vault.name
        self.vault_id = vault.id
        self.register_outputs({"vault_name": self.vault_name, "vault_id": self.vault_id})
