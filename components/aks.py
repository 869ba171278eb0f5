"""AKS inference cluster in the VNET with the Azure ML extension, attached to the workspace."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Mapping

import pulumi
import pulumi_azure_native.containerservice as containerservice
import pulumi_azure_native.kubernetesconfiguration as kubernetesconfiguration
import pulumi_azure_native.machinelearningservices as ml
import pulumi_azure_native.privatedns as privatedns

from components.common import (
    BuiltInRole,
    CommonArgs,
    RoleGrant,
    assign_role,
    child_opts,
    user_identity,
)
from components.container_insights import container_insights_addon, send_container_insights
from components.diagnostics import send_diagnostics
from components.network import link_private_zone

AZUREML_EXTENSION_TYPE = "Microsoft.AzureML.Kubernetes"
AZUREML_NAMESPACE = "azureml"
"""The CLI always installs the extension at cluster scope into this release namespace (AzureMLKubernetes.py)."""
HA_ROUTER_MIN_NODES = 3
"""inferenceRouterHA runs three azureml-fe replicas and needs three nodes (AZURE-FACTS 12)."""
SCORING_RECORD_TTL = 300


def azureml_extension_settings(
    cluster_id: pulumi.Input[str],
    cluster_name: str,
    location: str,
    node_count: int,
    ssl_cname: str | None,
) -> dict[str, pulumi.Input[str]]:
    """The extension's configuration settings as the `az` CLI would send them to ARM (AZURE-FACTS 26).

    Inference only, behind an internal Azure load balancer. The CLI (azure-cli-extensions,
    src/k8s-extension/.../partner_extensions/AzureMLKubernetes.py) derives the location and cluster keys,
    turns internalLoadBalancerProvider=azure into scoringFe.serviceType.internalLoadBalancer, keeps relay
    and service bus off and nginx ingress on for AKS, and drops the HA router below three nodes; through ARM
    all of that is ours to send. Without `ssl_cname` the router serves plain HTTP on the internal load
    balancer (dev only, AZURE-FACTS 13).
    """
    small = node_count < HA_ROUTER_MIN_NODES
    settings: dict[str, pulumi.Input[str]] = {
        "enableTraining": "False",
        "enableInference": "True",
        "inferenceRouterServiceType": "loadBalancer",
        "internalLoadBalancerProvider": "azure",
        "scoringFe.serviceType.internalLoadBalancer": "true",
        "inferenceRouterHA": "False" if small else "True",
        "clusterPurpose": "DevTest" if small else "FastProd",
        "allowInsecureConnections": "False" if ssl_cname else "True",
        "installNvidiaDevicePlugin": "False",
        "cluster_name": cluster_id,
        "clusterId": cluster_id,
        "prometheus.prometheusSpec.externalLabels.cluster_name": cluster_id,
        "cluster_name_friendly": cluster_name,
        "domain": f"{location}.cloudapp.azure.com",
        "location": location,
        "jobSchedulerLocation": location,
        "servicebus.enabled": "false",
        "relayserver.enabled": "false",
        "nginxIngress.enabled": "true",
    }
    if ssl_cname:
        settings["sslCname"] = ssl_cname
    return settings


def protected_tls_settings(cert_pem: str, key_pem: str) -> dict[str, str]:
    """The TLS certificate chain and key as the CLI sends them: base64 PEM in the protected settings."""
    return {
        "scoringFe.sslCert": base64.b64encode(cert_pem.encode("ascii")).decode(),
        "scoringFe.sslKey": base64.b64encode(key_pem.encode("ascii")).decode(),
    }


def scoring_uri(host: str, endpoint_name: str) -> str:
    """Scoring URI of a Kubernetes online endpoint behind TLS (AZURE-FACTS 28)."""
    return f"https://{host}/api/v1/endpoint/{endpoint_name}/score"


@dataclass(frozen=True)
class InferenceTlsArgs:
    """TLS of the inference router: the host name clients use and its PEM chain and key (Pulumi secrets)."""

    ssl_cname: str
    """Host name in the certificate; the component owns a private DNS zone of exactly this name."""
    cert_pem: pulumi.Input[str]
    """PEM certificate chain, leaf first."""
    key_pem: pulumi.Input[str]
    """Unencrypted PEM private key."""


@dataclass(frozen=True)
class AksClusterArgs:
    """Inputs of an AksCluster."""

    common: CommonArgs
    """Location, resource group, tags, protect."""
    cluster_name: str
    """Azure name of the managed cluster (also its DNS prefix)."""
    identity_name: str
    """Azure name of the cluster's user-assigned control plane identity."""
    compute_name: str
    """Name of the Kubernetes compute in the workspace."""
    subscription_id: pulumi.Input[str]
    """Subscription of the role definitions granted."""
    workspace_name: pulumi.Input[str]
    """Workspace the cluster is attached to (in the cluster's region: AZURE-FACTS 24)."""
    subnet_id: pulumi.Input[str]
    """AKS subnet the nodes join; it must egress through the NAT gateway (outbound type userAssignedNATGateway)."""
    vnet_id: pulumi.Input[str]
    """VNET the scoring host's private DNS zone is linked to."""
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
    """Private API server (prod), without a public FQDN (AZURE-FACTS 25)."""
    tls: InferenceTlsArgs | None = None
    """TLS of the inference router; None serves plain HTTP on the internal load balancer (dev only)."""
    load_balancer_ip: str | None = None
    """The internal load balancer IP azureml-fe got; the scoring host's A record points at it once known."""
    diagnostics_workspace_id: pulumi.Input[str] | None = None
    """Log Analytics workspace receiving control plane logs and metrics; None for none."""
    prometheus_metrics: bool = False
    """Managed Prometheus metrics addon (azureMonitorProfile); its collection rule is ManagedPrometheus's."""

    def __post_init__(self) -> None:
        if self.load_balancer_ip and self.tls is None:
            raise ValueError("the scoring DNS record needs a host name: give tls (its ssl_cname) with the IP")


class AksCluster(pulumi.ComponentResource):
    """AKS (managed identity, Azure RBAC, network policy, NAT egress), Azure ML extension, workspace attach."""

    cluster_name: pulumi.Output[str]
    """Azure name of the managed cluster."""
    cluster_id: pulumi.Output[str]
    """Azure resource id of the managed cluster."""
    compute_name: pulumi.Output[str]
    """Name of the Kubernetes compute in the workspace."""

    def __init__(self, name: str, args: AksClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("aml-platform:inference:AksCluster", name, None, opts)
        common = args.common
        identity = user_identity(f"{name}-identity", args.identity_name, common, self)
        # The control plane joins the subnet and places the internal load balancer in it; a user-assigned
        # identity gets that right before the cluster exists (Learn: AKS "Use a NAT gateway", user-assigned).
        subnet_role = assign_role(
            f"{name}-subnet-network-role",
            RoleGrant(
                role=BuiltInRole.NETWORK_CONTRIBUTOR,
                scope=args.subnet_id,
                scope_key=f"{args.cluster_name}/subnet",
                principal_id=identity.principal_id,
                principal_key=args.identity_name,
            ),
            args.subscription_id,
            self,
        )
        cluster = self._cluster(name, args, identity.id, subnet_role)
        send_container_insights(
            f"{name}-insights", cluster.id, args.cluster_name, args.log_analytics_workspace_id, common, self
        )
        settings = azureml_extension_settings(
            cluster.id,
            args.cluster_name,
            common.location,
            args.node_count,
            args.tls.ssl_cname if args.tls else None,
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
            scope=kubernetesconfiguration.ScopeArgs(
                cluster=kubernetesconfiguration.ScopeClusterArgs(release_namespace=AZUREML_NAMESPACE)
            ),
            identity=kubernetesconfiguration.IdentityArgs(type="SystemAssigned"),
            configuration_settings=settings,
            configuration_protected_settings=_protected_settings(args.tls),
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
            # The attach fails until the extension runs in the cluster. Kubernetes compute cannot be updated
            # in place (AZURE-FACTS 27): any change replaces it, and its fixed name means delete first. A
            # changed extension configuration invalidates the attach too, until it is re-attached
            # (how-to-troubleshoot-kubernetes-compute.md, InvalidComputeInformation).
            opts=child_opts(
                self,
                depends_on=[extension],
                replace_on_changes=["*"],
                delete_before_replace=True,
                replacement_trigger=pulumi.Output.from_input(settings),
            ),
        )
        if args.tls is not None:
            self._scoring_dns(name, args, args.tls)
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

    def _scoring_dns(self, name: str, args: AksClusterArgs, tls: InferenceTlsArgs) -> None:
        """A private zone named exactly the scoring host (no sibling name is shadowed inside the VNET), and its
        A record to azureml-fe's internal load balancer once the IP is known (AZURE-FACTS 28)."""
        zone = link_private_zone(f"{name}-scoring", tls.ssl_cname, args.common, args.vnet_id, self)
        if args.load_balancer_ip is None:
            return
        privatedns.PrivateRecordSet(
            f"{name}-scoring-record",
            private_zone_name=zone.name,
            resource_group_name=args.common.resource_group_name,
            record_type="A",
            relative_record_set_name="@",
            ttl=SCORING_RECORD_TTL,
            a_records=[privatedns.ARecordArgs(ipv4_address=args.load_balancer_ip)],
            opts=child_opts(self),
        )

    def _cluster(
        self,
        name: str,
        args: AksClusterArgs,
        identity_id: pulumi.Input[str],
        subnet_role: pulumi.Resource,
    ) -> containerservice.ManagedCluster:
        common = args.common
        return containerservice.ManagedCluster(
            f"{name}-cluster",
            resource_name_=args.cluster_name,
            resource_group_name=common.resource_group_name,
            location=common.location,
            dns_prefix=args.cluster_name,
            identity=containerservice.ManagedClusterIdentityArgs(
                type=containerservice.ResourceIdentityType.USER_ASSIGNED,
                user_assigned_identities=[identity_id],
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
            # The Azure ML extension does not support AKS with local accounts disabled (AZURE-FACTS 11):
            # Kubernetes access stays Entra ID + Azure RBAC, and no Trusted Access binding is needed (27).
            disable_local_accounts=False,
            aad_profile=containerservice.ManagedClusterAADProfileArgs(managed=True, enable_azure_rbac=True),
            network_profile=containerservice.ContainerServiceNetworkProfileArgs(
                network_plugin="azure",
                network_policy="azure",
                load_balancer_sku="standard",
                # Egress through the NAT gateway of the AKS subnet, not a public load balancer IP (4).
                outbound_type="userAssignedNATGateway",
                service_cidr=args.service_cidr,
                dns_service_ip=args.dns_service_ip,
            ),
            api_server_access_profile=containerservice.ManagedClusterAPIServerAccessProfileArgs(
                enable_private_cluster=args.private_cluster,
                # Azure ML does not support a private cluster's public FQDN (AZURE-FACTS 25).
                enable_private_cluster_public_fqdn=False if args.private_cluster else None,
            ),
            addon_profiles=container_insights_addon(args.log_analytics_workspace_id),
            oidc_issuer_profile=containerservice.ManagedClusterOIDCIssuerProfileArgs(enabled=True),
            azure_monitor_profile=containerservice.ManagedClusterAzureMonitorProfileArgs(
                metrics=containerservice.ManagedClusterAzureMonitorProfileMetricsArgs(enabled=True)
            )
            if args.prometheus_metrics
            else None,
            security_profile=containerservice.ManagedClusterSecurityProfileArgs(
                workload_identity=containerservice.ManagedClusterSecurityProfileWorkloadIdentityArgs(
                    enabled=True
                )
            ),
            tags=common.tags_with(),
            opts=child_opts(self, depends_on=[subnet_role]),
        )


def _protected_settings(tls: InferenceTlsArgs | None) -> pulumi.Output[Mapping[str, str]] | None:
    """The TLS material as protected settings, a Pulumi secret end to end; None without TLS."""
    if tls is None:
        return None
    return pulumi.Output.secret(
        pulumi.Output.all(tls.cert_pem, tls.key_pem).apply(lambda pems: protected_tls_settings(*pems))
    )
