"""The AzureRM service connection pipelines deploy with: workload identity federation by default."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pulumi
import pulumi_azure_native.managedidentity as managedidentity
import pulumi_azuredevops as azuredevops

from components.ci_identity import FEDERATION_AUDIENCE
from components.common import CommonArgs, child_opts

WORKLOAD_IDENTITY_FEDERATION = "WorkloadIdentityFederation"
SERVICE_PRINCIPAL = "ServicePrincipal"


@dataclass(frozen=True)
class ServiceConnectionArgs:
    """Inputs of a ServiceConnection."""

    common: CommonArgs
    """Resource group of the federated identity."""
    project_id: pulumi.Input[str]
    """Azure DevOps project the connection belongs to."""
    connection_name: str
    """Name pipelines reference as `azureSubscription: <name>`."""
    subscription_id: pulumi.Input[str]
    """Subscription the connection targets."""
    subscription_name: pulumi.Input[str]
    """Display name of that subscription in Azure DevOps."""
    tenant_id: pulumi.Input[str]
    """Entra tenant of the subscription."""
    auth: str = WORKLOAD_IDENTITY_FEDERATION
    """WorkloadIdentityFederation (no secret anywhere) or ServicePrincipal (client id + secret)."""
    service_principal_client_id: str | None = None
    """Application (client) id when auth is ServicePrincipal."""
    service_principal_secret: pulumi.Input[str] | None = None
    """Client secret when auth is ServicePrincipal (a Pulumi secret)."""
    identity_client_id: pulumi.Input[str] | None = None
    """Client id of the CI identity the connection federates to (WorkloadIdentityFederation)."""
    identity_name: pulumi.Input[str] | None = None
    """Azure name of that identity: its federated credential trusts the connection's tokens."""
    credentials_before: Sequence[pulumi.Resource] = ()
    """Federated credentials already on the identity: this connection's credential is written after them."""

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
        if self.auth == WORKLOAD_IDENTITY_FEDERATION and (
            self.identity_client_id is None or self.identity_name is None
        ):
            raise ValueError(
                "a WorkloadIdentityFederation service connection needs the CI identity's client id and name "
                "(components.ci_identity.CiIdentity)"
            )


class ServiceConnection(pulumi.ComponentResource):
    """An AzureRM service endpoint; with federation also the CI identity's credential that trusts it."""

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
        endpoint = self._endpoint(
            name,
            args,
            azuredevops.ServiceEndpointAzureRMCredentialsArgs(serviceprincipalid=args.identity_client_id),
        )
        # Azure DevOps mints tokens for this issuer/subject; the credential makes Entra trust them.
        managedidentity.FederatedIdentityCredential(
            f"{name}-federated-credential",
            federated_identity_credential_resource_name="azure-devops",
            resource_name_=args.identity_name,
            resource_group_name=args.common.resource_group_name,
            issuer=endpoint.workload_identity_federation_issuer,
            subject=endpoint.workload_identity_federation_subject,
            audiences=[FEDERATION_AUDIENCE],
            # Entra refuses concurrent writes of federated credentials to one identity (409 Conflict:
            # workload-identity-federation-considerations.md): this one waits for the identity's others.
            opts=child_opts(self, depends_on=list(args.credentials_before)),
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
