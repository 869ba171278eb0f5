"""The Azure Machine Learning workspace, its managed network, and the roles its identities need."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import pulumi
import pulumi_azure_native.machinelearningservices as ml

from components.common import (
    BuiltInRole,
    CommonArgs,
    RoleGrant,
    assign_role,
    child_opts,
    principal_id_of,
    user_identity,
)
from components.attachments import attach_endpoint_and_diagnostics
from components.private_endpoint import PrivateEndpointArgs

# Hosts for installing Python packages under approved outbound, as Microsoft lists them (how-to-managed-network.md,
# "Scenario: Access public machine learning packages"); pip downloads from *.pythonhosted.org. Microsoft's
# images (MicrosoftContainerRegistry, AzureFrontDoor.FirstParty) are required rules Azure ML adds itself.
TRAINING_PACKAGE_FEEDS: tuple[str, ...] = (
    "anaconda.com",
    "*.anaconda.com",
    "*.anaconda.org",
    "pypi.org",
    "*.pythonhosted.org",
)


def outbound_rule_name(fqdn: str) -> str:
    """Name of the managed network rule that allows `fqdn` (letters, digits and dashes; wildcards spelled)."""
    if not fqdn or " " in fqdn or fqdn.count("*") > 1 or ("*" in fqdn and not fqdn.startswith("*.")):
        raise ValueError(f"outbound FQDN {fqdn!r} is not a host name or a '*.'-prefixed wildcard host name")
    return "allow-" + fqdn.replace("*.", "any-").replace(".", "-")


def storage_rule_name(sub_resource: str) -> str:
    """Name of the managed network's private endpoint rule to a storage sub-resource."""
    return f"allow-storage-{sub_resource}"


def managed_network_settings(
    isolation_mode: str,
    outbound_fqdns: tuple[str, ...],
    storage_account_id: pulumi.Input[str] | None = None,
    storage_rules: tuple[str, ...] = (),
) -> ml.ManagedNetworkSettingsArgs:
    """The workspace's managed network: off ("Disabled") in the customer-VNet design, else its rules.

    FQDN rules only exist under approved outbound (how-to-managed-network.md); private endpoint rules to the
    storage sub-resources batch needs (AZURE-FACTS 9) work in both managed modes.
    """
    if isolation_mode == "Disabled":
        if storage_rules:
            raise ValueError("a workspace without managed network (Disabled) takes no outbound rules")
        return ml.ManagedNetworkSettingsArgs(isolation_mode="Disabled")
    rules: dict[str, pulumi.Input[ml.FqdnOutboundRuleArgs | ml.PrivateEndpointOutboundRuleArgs]] = {}
    if isolation_mode == "AllowOnlyApprovedOutbound":
        rules.update(
            {
                outbound_rule_name(fqdn): ml.FqdnOutboundRuleArgs(
                    type="FQDN", category="UserDefined", destination=fqdn
                )
                for fqdn in outbound_fqdns
            }
        )
    if storage_rules and storage_account_id is None:
        raise ValueError(f"private endpoint rules {list(storage_rules)} need the storage account id")
    for sub_resource in storage_rules:
        rules[storage_rule_name(sub_resource)] = ml.PrivateEndpointOutboundRuleArgs(
            type="PrivateEndpoint",
            category="UserDefined",
            destination=ml.PrivateEndpointDestinationArgs(
                service_resource_id=storage_account_id, subresource_target=sub_resource, spark_enabled=False
            ),
        )
    return ml.ManagedNetworkSettingsArgs(isolation_mode=isolation_mode, outbound_rules=rules or None)


@dataclass(frozen=True)
class WorkspaceArgs:
    """Inputs of a Workspace."""

    common: CommonArgs
    """Location, resource group, tags, protect."""
    workspace_name: str
    """Azure name of the workspace."""
    subscription_id: pulumi.Input[str]
    """Subscription of the role definitions granted."""
    storage_account_id: pulumi.Input[str]
    """Default storage account."""
    storage_account_name: str
    """Azure name of the storage account (names its role assignments)."""
    key_vault_id: pulumi.Input[str]
    """Key Vault of the workspace."""
    key_vault_name: str
    """Azure name of the Key Vault (names its role assignments)."""
    container_registry_id: pulumi.Input[str]
    """Registry environment images are built into."""
    container_registry_name: str
    """Azure name of the registry (names its role assignments)."""
    app_insights_id: pulumi.Input[str]
    """Application Insights of the workspace."""
    image_build_compute: str
    """Compute cluster that builds environment images (needed when the registry is private)."""
    compute_identity_name: str
    """Azure name of the user-assigned identity the compute clusters run as."""
    public_network_access: bool = True
    """Off in prod, where the workspace is reached through its private endpoint only."""
    isolation_mode: str = "Disabled"
    """Managed network: Disabled (customer VNet design), AllowInternetOutbound or AllowOnlyApprovedOutbound."""
    outbound_fqdns: tuple[str, ...] = TRAINING_PACKAGE_FEEDS
    """Hosts the managed network may reach when outbound traffic needs approval."""
    storage_rules: tuple[str, ...] = ()
    """Storage sub-resources the managed network reaches through private endpoint rules (batch: queue, table)."""
    provision_network_now: bool = False
    """Provision the managed network with the workspace instead of with the first compute (AZURE-FACTS 2)."""
    diagnostics_workspace_id: pulumi.Input[str] | None = None
    """Log Analytics workspace receiving the workspace's logs and metrics; None for none."""
    private_endpoint: PrivateEndpointArgs | None = None
    """Subnet and DNS zones for the workspace's private endpoint; None for no private endpoint."""
    storage_private_endpoint_ids: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """The storage account's private endpoints by sub-resource; the workspace identity reads blob and file."""


class Workspace(pulumi.ComponentResource):
    """AML workspace (system identity, v1 legacy off, identity-based datastores) and its compute identity."""

    workspace_name: pulumi.Output[str]
    """Azure name of the workspace."""
    workspace_id: pulumi.Output[str]
    """Azure resource id of the workspace."""
    principal_id: pulumi.Output[str | None]
    """Object id of the workspace's system-assigned identity."""
    compute_identity_id: pulumi.Output[str]
    """Resource id of the user-assigned identity compute runs as."""
    compute_identity_principal_id: pulumi.Output[str]
    """Object id of that identity."""

    def __init__(self, name: str, args: WorkspaceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("aml-platform:ml:Workspace", name, None, opts)
        common = args.common
        workspace = ml.Workspace(
            f"{name}-workspace",
            workspace_name=args.workspace_name,
            resource_group_name=common.resource_group_name,
            location=common.location,
            sku=ml.SkuArgs(name="Basic"),
            kind="Default",
            identity=ml.ManagedServiceIdentityArgs(type="SystemAssigned"),
            storage_account=args.storage_account_id,
            key_vault=args.key_vault_id,
            container_registry=args.container_registry_id,
            application_insights=args.app_insights_id,
            v1_legacy_mode=False,
            # Datastores authenticate with identities, so the storage account can keep shared keys off.
            system_datastores_auth_mode="identity",
            image_build_compute=args.image_build_compute,
            public_network_access="Enabled" if args.public_network_access else "Disabled",
            managed_network=managed_network_settings(
                args.isolation_mode, args.outbound_fqdns, args.storage_account_id, args.storage_rules
            ),
            provision_network_now=True if args.provision_network_now else None,
            tags=common.tags_with(),
            opts=child_opts(self, common.protect),
        )
        compute_identity = user_identity(f"{name}-compute-identity", args.compute_identity_name, common, self)
        self.workspace_name = workspace.name
        self.workspace_id = workspace.id
        self.principal_id = principal_id_of(workspace.identity)
        self.compute_identity_id = compute_identity.id
        self.compute_identity_principal_id = compute_identity.principal_id
        for role_name, grant in self._grants(args).items():
            assign_role(f"{name}-{role_name}", grant, args.subscription_id, self)
        attach_endpoint_and_diagnostics(
            name,
            self,
            common,
            workspace.id,
            endpoint_name=f"pe-{args.workspace_name}",
            group_id="amlworkspace",
            private_endpoint=args.private_endpoint,
            diagnostics_workspace_id=args.diagnostics_workspace_id,
        )
        self.register_outputs(
            {
                "workspace_name": self.workspace_name,
                "workspace_id": self.workspace_id,
                "principal_id": self.principal_id,
                "compute_identity_id": self.compute_identity_id,
                "compute_identity_principal_id": self.compute_identity_principal_id,
            }
        )

    def _grants(self, args: WorkspaceArgs) -> dict[str, RoleGrant]:
        """The roles the platform owns: the compute identity's, and the workspace identity's PE readers.

        Azure ML gives its system identity its roles on the workspace's storage, Key Vault and registry
        itself; declaring any of them again fails `pulumi up` with 409 RoleAssignmentExists (AZURE-FACTS 7:
        how-to-identity-based-service-authentication.md). Behind private endpoints, studio reads data only
        if the workspace identity may read the blob and file endpoints (AZURE-FACTS 10: how-to-managed-network.md).
        """
        storage = (args.storage_account_id, args.storage_account_name)
        compute_roles = [
            ("storage-blob", BuiltInRole.STORAGE_BLOB_DATA_CONTRIBUTOR, storage),
            # Batch endpoints run Parallel Run Step, which keeps its state in tables and queues
            # (AZURE-FACTS 9: how-to-disable-local-auth-storage.md, "Scenarios for role assignments").
            ("storage-table", BuiltInRole.STORAGE_TABLE_DATA_CONTRIBUTOR, storage),
            ("storage-queue", BuiltInRole.STORAGE_QUEUE_DATA_CONTRIBUTOR, storage),
            ("key-vault", BuiltInRole.KEY_VAULT_SECRETS_USER, (args.key_vault_id, args.key_vault_name)),
            (
                "registry-pull",
                BuiltInRole.ACR_PULL,
                (args.container_registry_id, args.container_registry_name),
            ),
            ("data-scientist", BuiltInRole.AZUREML_DATA_SCIENTIST, (self.workspace_id, args.workspace_name)),
        ]
        workspace_roles = [
            (
                f"{group_id}-endpoint-reader",
                BuiltInRole.READER,
                (
                    args.storage_private_endpoint_ids[group_id],
                    f"{args.storage_account_name}/{group_id}-endpoint",
                ),
            )
            for group_id in ("blob", "file")
            if group_id in args.storage_private_endpoint_ids
        ]
        by_principal = {
            "compute": (self.compute_identity_principal_id, args.compute_identity_name, compute_roles),
            "workspace": (self.principal_id, args.workspace_name, workspace_roles),
        }
        return {
            f"{principal}-{role_name}-role": RoleGrant(
                role=role,
                scope=scope_id,
                scope_key=scope_key,
                principal_id=principal_id,
                principal_key=principal_key,
            )
            for principal, (principal_id, principal_key, roles) in by_principal.items()
            for role_name, role, (scope_id, scope_key) in roles
        }
