"""The AzureRM service connection pipelines deploy with: workload identity federation by default."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_azure_native.managedidentity as managedidentity
import pulumi_azuredevops as azuredevops

from components.common import BuiltInRole, CommonArgs, RoleGrant, assign_role, child_opts, user_identity

WORKLOAD_IDENTITY_FEDERATION = "WorkloadIdentityFederation"
SERVICE_PRINCIPAL = "ServicePrincipal"
FEDERATION_AUDIENCE = "api://AzureADTokenExchange"


@dataclass(frozen=True)
class ServiceConnectionArgs:
    """Inputs of a ServiceConnection."""

    common: CommonArgs
    """Location, resource group (of the federated identity), tags, protect."""
    project_id: pulumi.Input[str]
    """Azure DevOps project the connection belongs to."""
    connection_name: str
    """Name pipelines reference as `azureSubscription: <name>`."""
    identity_name: str
    """Azure name of the user-assigned identity the connection federates to."""
    subscription_id: pulumi.Input[str]
    """Subscription the connection targets."""
    subscription_name: pulumi.Input[str]
    """Display name of that subscription in Azure DevOps."""
    tenant_id: pulumi.Input[str]
    """Entra tenant of the subscription."""
    scope_id: pulumi.Input[str]
    """Resource id the connection may change (the environment's resource group)."""
    scope_key: str
    """Azure name of that scope (names the role assignment)."""
    auth: str = WORKLOAD_IDENTITY_FEDERATION
    """WorkloadIdentityFederation (no secret anywhere) or ServicePrincipal (client id + secret)."""
    service_principal_client_id: str | None = None
    """Application (client) id when auth is ServicePrincipal."""
    service_principal_secret: pulumi.Input[str] | None = None
    """Client secret when auth is ServicePrincipal (a Pulumi secret)."""

    def __post_init__(self) -> None:
        if self.auth not in (WORKLOAD_IDENTITY_FEDERATION, SERVICE_PRINCIPAL):
            raise ValueError(
                f"devops.service_connection_auth is {self.auth!r}; use "
                f"{WORKLOAD_IDENTITY_FEDERATION!r} or {SERVICE_PRINCIPAL!r}"
            )
        if self.auth == SERVICE_PRINCIPAL and not (
            self.service_principal_client_id and self.service_principal_secret
        ):
            raise ValueError(
                "devops.service_connection_auth is 'ServicePrincipal' but the service principal client id or "
                "secret is missing; set both or use 'WorkloadIdentityFederation'"
            )


class ServiceConnection(pulumi.ComponentResource):
    """An AzureRM service endpoint; with federation also its identity, federated credential and role."""

    connection_id: pulumi.Output[str]
    """Id of the service endpoint."""
    connection_name: pulumi.Output[str]
    """Name of the service endpoint."""

    def __init__(
        self, name: str, args: ServiceConnectionArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("aml-platform:devops:ServiceConnection", name, None, opts)
        if args.auth == WORKLOAD_IDENTITY_FEDERATION:
            endpoint = self._federated(name, args)
        else:
            endpoint = self._endpoint(
                name,
                args,
                azuredevops.ServiceEndpointAzureRMCredentialsArgs(
                    serviceprincipalid=args.service_principal_client_id or "",
                    serviceprincipalkey=pulumi.Output.secret(args.service_principal_secret),
                ),
            )
        self.connection_id = endpoint.id
        self.connection_name = endpoint.service_endpoint_name
        self.register_outputs({"connection_id": self.connection_id, "connection_name": self.connection_name})

    def _federated(self, name: str, args: ServiceConnectionArgs) -> azuredevops.ServiceEndpointAzureRM:
        common = args.common
        identity = user_identity(f"{name}-identity", args.identity_name, common, self)
        endpoint = self._endpoint(
            name,
            args,
            azuredevops.ServiceEndpointAzureRMCredentialsArgs(serviceprincipalid=identity.client_id),
        )
        # Azure DevOps mints tokens for this issuer/subject; the credential makes Entra trust them.
        managedidentity.FederatedIdentityCredential(
            f"{name}-federated-credential",
            federated_identity_credential_resource_name="azure-devops",
            resource_name_=identity.name,
            resource_group_name=common.resource_group_name,
            issuer=endpoint.workload_identity_federation_issuer,
            subject=endpoint.workload_identity_federation_subject,
            audiences=[FEDERATION_AUDIENCE],
            opts=child_opts(self),
        )
        assign_role(
            f"{name}-contributor-role",
            RoleGrant(
                role=BuiltInRole.CONTRIBUTOR,
                scope=args.scope_id,
                scope_key=args.scope_key,
                principal_id=identity.principal_id,
                principal_key=args.identity_name,
            ),
            args.subscription_id,
            self,
        )
        return endpoint

    def _endpoint(
        self,
        name: str,
        args: ServiceConnectionArgs,
        credentials: azuredevops.ServiceEndpointAzureRMCredentialsArgs,
    ) -> azuredevops.ServiceEndpointAzureRM:
        return azuredevops.ServiceEndpointAzureRM(
            f"{name}-endpoint",
            project_id=args.project_id,
            service_endpoint_name=args.connection_name,
            service_endpoint_authentication_scheme=args.auth,
            description="Deploys the AML platform and runs its ML lifecycle; managed by Pulumi.",
            azurerm_spn_tenantid=args.tenant_id,
            azurerm_subscription_id=args.subscription_id,
            azurerm_subscription_name=args.subscription_name,
            credentials=credentials,
            opts=child_opts(self),
        )
