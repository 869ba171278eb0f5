"""The CI identity: the user-assigned identity pipelines deploy and run the ML lifecycle as, with its roles."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_azure_native.managedidentity as managedidentity

from components.common import (
    DELEGABLE_ROLES,
    BuiltInRole,
    CommonArgs,
    RoleGrant,
    assign_role,
    child_opts,
    delegation_condition,
    user_identity,
)

FEDERATION_AUDIENCE = "api://AzureADTokenExchange"
"""Audience Entra expects in federated tokens (Learn: "Configure a user-assigned managed identity to trust
an external identity provider")."""
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
"""Issuer of GitHub Actions OIDC tokens (GitHub docs: "OpenID Connect reference", claim `iss`)."""
# It grants roles to managed identities (service principals) only, never to users or groups.
PRINCIPAL_TYPES_IT_MAY_GRANT = ("ServicePrincipal",)
SERVICE_CONNECTION_TYPE = "aml-platform:devops:ServiceConnection"


def github_subject(repository: str, environment: str) -> str:
    """The `sub` claim of a GitHub Actions job that runs in `environment` of `repository`.

    Format from GitHub's "About security hardening with OpenID Connect" (filtering for a specific
    environment): `repo:<owner>/<repo>:environment:<name>`. The deploy workflow's jobs name their
    environment after the stack's (dev, prod), so only those jobs get the identity; pull requests do not.
    """
    owner, _, name = repository.partition("/")
    if not owner or not name or "/" in name or ":" in repository:
        raise ValueError(
            f"GitHub repository {repository!r} is not <owner>/<repository>, e.g. contoso/aml-platform"
        )
    if not environment or ":" in environment:
        raise ValueError(f"GitHub environment {environment!r} must be a non-empty name without ':'")
    return f"repo:{repository}:environment:{environment}"


@dataclass(frozen=True)
class CiIdentityArgs:
    """Inputs of a CiIdentity."""

    common: CommonArgs
    """Location, resource group, tags."""
    identity_name: str
    """Azure name of the user-assigned identity."""
    subscription_id: pulumi.Input[str]
    """Subscription of the role definitions granted."""
    resource_group_id: pulumi.Input[str]
    """The environment's resource group: what `pulumi up` from CI changes."""
    resource_group_name: str
    """Azure name of that resource group (names the role assignments)."""
    storage_account_id: pulumi.Input[str]
    """Workspace storage: the hook uploads data and code and downloads job outputs with its own token."""
    storage_account_name: str
    """Azure name of the storage account."""
    workspace_id: pulumi.Input[str]
    """Workspace the hook trains, registers and deploys in."""
    workspace_name: str
    """Azure name of the workspace."""
    aks_cluster_id: pulumi.Input[str] | None = None
    """AKS cluster whose instance types the hook applies through run command; None without AKS."""
    aks_cluster_name: str | None = None
    """Azure name of that cluster."""
    github_repository: str | None = None
    """`<owner>/<repo>` whose deploy jobs may sign in as this identity (GitHub OIDC); None for none."""
    github_environment: str = ""
    """GitHub environment of those jobs (the stack's environment name)."""
    moved_from_service_connection: str | None = None
    """Logical name of the ServiceConnection component that owned the identity and its Contributor role
    before they moved here: aliases keep Pulumi from replacing them (a replace of the same Azure name
    creates the new one, then deletes it with the old); None on stacks that never had one."""

    def __post_init__(self) -> None:
        if self.github_repository is not None:
            github_subject(self.github_repository, self.github_environment)
        if (self.aks_cluster_id is None) != (self.aks_cluster_name is None):
            raise ValueError("aks_cluster_id and aks_cluster_name go together: set both or neither")


class CiIdentity(pulumi.ComponentResource):
    """A user-assigned identity that deploys the stack and runs the post-deploy hook, and its roles."""

    identity_name: pulumi.Output[str]
    """Azure name of the identity (parent of its federated credentials)."""
    client_id: pulumi.Output[str]
    """Application (client) id pipelines sign in with."""
    principal_id: pulumi.Output[str]
    """Object id role assignments name."""

    def __init__(self, name: str, args: CiIdentityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("aml-platform:identity:CiIdentity", name, None, opts)
        common = args.common
        identity = user_identity(
            f"{name}-identity", args.identity_name, common, self, self._moved(args, "identity")
        )
        for role_name, grant, condition in self._grants(args, identity.principal_id):
            moved = self._moved(args, "contributor-role") if role_name == "contributor" else []
            assign_role(
                f"{name}-{role_name}-role",
                grant,
                args.subscription_id,
                self,
                condition=condition,
                aliases=moved,
            )
        self.federated_credentials: list[pulumi.Resource] = []
        if args.github_repository is not None:
            github = managedidentity.FederatedIdentityCredential(
                f"{name}-github-credential",
                federated_identity_credential_resource_name=f"github-{args.github_environment}",
                resource_name_=identity.name,
                resource_group_name=common.resource_group_name,
                issuer=GITHUB_ISSUER,
                subject=github_subject(args.github_repository, args.github_environment),
                audiences=[FEDERATION_AUDIENCE],
                opts=child_opts(self),
            )
            self.federated_credentials.append(github)
        self.identity_name = identity.name
        self.client_id = identity.client_id
        self.principal_id = identity.principal_id
        self.register_outputs(
            {
                "identity_name": self.identity_name,
                "client_id": self.client_id,
                "principal_id": self.principal_id,
            }
        )

    @staticmethod
    def _moved(args: CiIdentityArgs, suffix: str) -> list[pulumi.Alias]:
        previous = args.moved_from_service_connection
        if previous is None:
            return []
        parent = pulumi.create_urn(previous, SERVICE_CONNECTION_TYPE)
        return [pulumi.Alias(name=f"{previous}-{suffix}", parent=parent)]

    def _grants(
        self, args: CiIdentityArgs, principal_id: pulumi.Output[str]
    ) -> list[tuple[str, RoleGrant, str | None]]:
        """Deploy rights on the resource group, the hook's data-plane roles, and run command's Kubernetes role.

        - Contributor has no data actions and cannot write role assignments (AZURE-FACTS 8), so `pulumi up`
          also gets Role Based Access Control Administrator, conditioned to assign only DELEGABLE_ROLES to
          service principals (managed identities): it cannot grant itself or anyone Owner or Contributor.
        - With storage shared keys off, uploads, code snapshots and downloads use the caller's own token:
          Storage Blob Data Contributor and Storage File Data Privileged Contributor
          (how-to-disable-local-auth-storage.md, "Scenarios for role assignments").
        - AzureML Data Scientist: jobs, models, endpoints in the workspace, even if deploy rights are narrowed.
        - Run command (`az aks command invoke`) runs kubectl with the caller's Entra token when Azure RBAC for
          Kubernetes is on; InstanceType objects are cluster-scoped custom resources, and Azure Kubernetes
          Service RBAC Admin is the least built-in role whose data actions (managedClusters/*) reach custom
          resources; RBAC Writer lists named API groups only (built-in roles, Containers).
        """
        key = args.identity_name
        group = (args.resource_group_id, args.resource_group_name)
        storage = (args.storage_account_id, args.storage_account_name)
        roles: list[tuple[str, str, tuple[pulumi.Input[str], str], str | None]] = [
            ("contributor", BuiltInRole.CONTRIBUTOR, group, None),
            (
                "role-assignments",
                BuiltInRole.ROLE_BASED_ACCESS_CONTROL_ADMINISTRATOR,
                group,
                delegation_condition(DELEGABLE_ROLES, PRINCIPAL_TYPES_IT_MAY_GRANT),
            ),
            ("storage-blob", BuiltInRole.STORAGE_BLOB_DATA_CONTRIBUTOR, storage, None),
            ("storage-file", BuiltInRole.STORAGE_FILE_DATA_PRIVILEGED_CONTRIBUTOR, storage, None),
            (
                "data-scientist",
                BuiltInRole.AZUREML_DATA_SCIENTIST,
                (args.workspace_id, args.workspace_name),
                None,
            ),
        ]
        if args.aks_cluster_id is not None and args.aks_cluster_name is not None:
            roles.append(
                (
                    "aks-rbac-admin",
                    BuiltInRole.AKS_RBAC_ADMIN,
                    (args.aks_cluster_id, args.aks_cluster_name),
                    None,
                )
            )
        return [
            (
                role_name,
                RoleGrant(
                    role=role, scope=scope, scope_key=scope_key, principal_id=principal_id, principal_key=key
                ),
                condition,
            )
            for role_name, role, (scope, scope_key), condition in roles
        ]
