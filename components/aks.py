"""AKS inference cluster in the VNET with the Azure ML extension, attached to the workspace."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_azure_native.containerservice as containerservice
import pulumi_azure_native.kubernetesconfiguration as kubernetesconfiguration
import pulumi_azure_native.machinelearningservices as ml

from components.common import BuiltInRole, CommonArgs, RoleGrant, assign_role, child_opts, principal_id_of
from components.container_insights import container_insights_addon, send_container_insights
from components.diagnostics import send_diagnostics

AZUREML_EXTENSION_TYPE = "Microsoft.AzureML.Kubernetes"
AZUREML_NAMESPACE = "azureml"
# Lets the workspace's identity operate the cluster through Azure RBAC (local accounts are off).
AZUREML_TRUSTED_ACCESS_ROLE = "Microsoft.MachineLearningServices/workspaces/mlworkload"


def azureml_extension_settings(tls_secret_name: str | None) -> dict[str, str]:
    """Configuration of the AzureML extension: inference only, behind an internal Azure load balancer.

    Without a TLS secret the router serves plain HTTP, acceptable only because the load balancer is
    internal (reachable from the VNET alone); with one, the router terminates TLS.
    """
    settings = {
        "enableTraining": "False",
        "enableInference": "True",
        "inferenceRouterServiceType": "loadBalancer",
        "internalLoadBalancerProvider": "azure",
        "inferenceRouterHA": "True",
        "allowInsecureConnections": "False" if tls_secret_name else "True",
        "installNvidiaDevicePlugin": "False",
    }
    if tls_secret_name:
        settings["sslSecret"] = tls_secret_name
    return settings


@dataclass(frozen=True)
class AksClusterArgs:
    """Inputs of an AksCluster."""

    common: CommonArgs
    """Location, resource group, tags, protect."""
    cluster_name: str
    """Azure name of the managed cluster (also its DNS prefix)."""
    compute_name: str
    """Name of the Kubernetes compute in the workspace."""
    subscription_id: pulumi.Input[str]
    """Subscription of the role definitions granted."""
    workspace_name: pulumi.Input[str]
    """Workspace the cluster is attached to."""
    workspace_id: pulumi.Input[str]
    """Resource id of that workspace (trusted access source)."""
    subnet_id: pulumi.Input[str]
    """AKS subnet the nodes join."""
    service_cidr: str
    """Kubernetes service CIDR (outside the VNET)."""
    dns_service_ip: str
    """Cluster DNS IP inside service_cidr."""
    log_analytics_workspace_id: pulumi.Input[str]
    """Workspace of Container Insights."""
    node_vm_size: str = "Standard_D4s_v5"
    """VM size of the system node pool."""
    node_count: int = 3
    """Nodes of the system node pool."""
    private_cluster: bool = False
    """Private API server (prod)."""
    tls_secret_name: str | None = None
    """Kubernetes secret with the inference router's TLS certificate; None serves HTTP inside the VNET."""
    diagnostics_workspace_id: pulumi.Input[str] | None = None
    """Log Analytics workspace receiving control plane logs and metrics; None for none."""


class AksCluster(pulumi.ComponentResource):
    """AKS (managed identity, Azure RBAC, network policy), AzureML extension, workspace attach."""

    cluster_name: pulumi.Output[str]
    """Azure name of the managed cluster."""
    cluster_id: pulumi.Output[str]
    """Azure resource id of the managed cluster."""
    compute_name: pulumi.Output[str]
    """Name of the Kubernetes compute in the workspace."""

    def __init__(self, name: str, args: AksClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("aml-platform:inference:AksCluster", name, None, opts)
        common = args.common
        cluster = self._cluster(name, args)
        send_container_insights(
            f"{name}-insights", cluster.id, args.cluster_name, args.log_analytics_workspace_id, common, self
        )
        assign_role(
            f"{name}-subnet-network-role",
            RoleGrant(
                role=BuiltInRole.NETWORK_CONTRIBUTOR,
                scope=args.subnet_id,
                scope_key=f"{args.cluster_name}/subnet",
                principal_id=principal_id_of(cluster.identity),
                principal_key=args.cluster_name,
            ),
            args.subscription_id,
            self,
        )
        extension = kubernetesconfiguration.Extension(
            f"{name}-azureml-extension",
            extension_name="azureml",
            extension_type=AZUREML_EXTENSION_TYPE,
            cluster_rp="Microsoft.ContainerService",
            cluster_resource_name="managedClusters",
            cluster_name=cluster.name,
            resource_group_name=common.resource_group_name,
            auto_upgrade_minor_version=True,
            release_train="stable",
            identity=kubernetesconfiguration.IdentityArgs(type="SystemAssigned"),
            configuration_settings=azureml_extension_settings(args.tls_secret_name),
            opts=child_opts(self),
        )
        trusted_access = containerservice.TrustedAccessRoleBinding(
            f"{name}-workspace-trusted-access",
            trusted_access_role_binding_name="azureml-workspace",
            resource_group_name=common.resource_group_name,
            resource_name_=cluster.name,
            source_resource_id=args.workspace_id,
            roles=[AZUREML_TRUSTED_ACCESS_ROLE],
            opts=child_opts(self),
        )
        compute = ml.Compute(
            f"{name}-compute",
            compute_name=args.compute_name,
            workspace_name=args.workspace_name,
            resource_group_name=common.resource_group_name,
            location=common.location,
            identity=ml.ManagedServiceIdentityArgs(type="SystemAssigned"),
            properties=ml.KubernetesArgs(
                compute_type="Kubernetes",
                resource_id=cluster.id,
                properties=ml.KubernetesPropertiesArgs(namespace=AZUREML_NAMESPACE),
            ),
            tags=common.tags_with(),
            # The attach fails until the extension runs in the cluster and the workspace may reach it.
            opts=child_opts(self, depends_on=[extension, trusted_access]),
        )
        if args.diagnostics_workspace_id is not None:
            send_diagnostics(f"{name}-diagnostics", cluster.id, args.diagnostics_workspace_id, self)
        self.cluster_name = cluster.name
        self.cluster_id = cluster.id
        self.compute_name = compute.name
        self.register_outputs(
            {
                "cluster_name": self.cluster_name,
                "cluster_id": self.cluster_id,
                "compute_name": self.compute_name,
            }
        )

    def _cluster(self, name: str, args: AksClusterArgs) -> containerservice.ManagedCluster:
        common = args.common
        return containerservice.ManagedCluster(
            f"{name}-cluster",
            resource_name_=args.cluster_name,
            resource_group_name=common.resource_group_name,
            location=common.location,
            dns_prefix=args.cluster_name,
            identity=containerservice.ManagedClusterIdentityArgs(
                type=containerservice.ResourceIdentityType.SYSTEM_ASSIGNED
            ),
            sku=containerservice.ManagedClusterSKUArgs(
                name="Base", tier="Standard" if args.private_cluster else "Free"
            ),
            agent_pool_profiles=[
                containerservice.ManagedClusterAgentPoolProfileArgs(
                    name="system",
                    mode="System",
                    type="VirtualMachineScaleSets",
                    os_type="Linux",
                    vm_size=args.node_vm_size,
                    count=args.node_count,
                    vnet_subnet_id=args.subnet_id,
                    enable_node_public_ip=False,
                )
            ],
            enable_rbac=True,
            disable_local_accounts=True,
            aad_profile=containerservice.ManagedClusterAADProfileArgs(managed=True, enable_azure_rbac=True),
            network_profile=containerservice.ContainerServiceNetworkProfileArgs(
                network_plugin="azure",
                network_policy="azure",
                load_balancer_sku="standard",
                service_cidr=args.service_cidr,
                dns_service_ip=args.dns_service_ip,
            ),
            api_server_access_profile=containerservice.ManagedClusterAPIServerAccessProfileArgs(
                enable_private_cluster=args.private_cluster
            ),
            addon_profiles=container_insights_addon(args.log_analytics_workspace_id),
            oidc_issuer_profile=containerservice.ManagedClusterOIDCIssuerProfileArgs(enabled=True),
            security_profile=containerservice.ManagedClusterSecurityProfileArgs(
                workload_identity=containerservice.ManagedClusterSecurityProfileWorkloadIdentityArgs(
                    enabled=True
                )
            ),
            tags=common.tags_with(),
            opts=child_opts(self),
        )
