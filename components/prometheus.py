"""Managed Prometheus for AKS and Azure Managed Grafana over it: workspace, collection wiring, Grafana, roles.

The AKS side is the cluster's `azureMonitorProfile.metrics` (AksClusterArgs.prometheus_metrics); the
metrics addon sends through a data collection endpoint and rule into the Azure Monitor workspace, and the
rule is associated with the cluster. Grafana reads the workspace with its system identity (Monitoring Data
Reader on the workspace, Monitoring Reader on the resource group for Azure Monitor). Private in prod:
Grafana and the Azure Monitor workspace refuse public access; Grafana is reached through a private endpoint
in our VNet and reaches the workspace through a Grafana managed private endpoint. Sources: Learn
azure-monitor/containers/kubernetes-monitoring-enable (DCE, DCR with the Microsoft-PrometheusMetrics stream,
DCRA on the cluster), managed-grafana/how-to-connect-to-data-source-privately (managed private endpoint,
group id prometheusMetrics), private-endpoint-dns (privatelink.grafana.azure.com).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_azure_native.authorization as authorization
import pulumi_azure_native.dashboard as dashboard
import pulumi_azure_native.monitor as monitor

from components.common import (
    BuiltInRole,
    CommonArgs,
    RoleGrant,
    assign_role,
    child_opts,
    principal_id_of,
    role_assignment_name,
    role_definition_id,
)
from components.private_endpoint import PrivateEndpointArgs, add_private_endpoint

PROMETHEUS_STREAM = "Microsoft-PrometheusMetrics"
DESTINATION = "MonitoringAccount1"


@dataclass(frozen=True)
class ManagedPrometheusArgs:
    """Inputs of ManagedPrometheus."""

    common: CommonArgs
    """Location, resource group, tags."""
    monitor_workspace_name: str
    """Azure name of the Azure Monitor workspace."""
    grafana_name: str
    """Azure name of the Grafana workspace (2-23 letters, digits, hyphens)."""
    aks_cluster_id: pulumi.Input[str]
    """The cluster whose metrics addon sends here."""
    aks_cluster_name: str
    """Its Azure name (names the collection rule)."""
    subscription_id: pulumi.Input[str]
    """Subscription of the role definitions."""
    resource_group_id: pulumi.Input[str]
    """Scope of Grafana's Monitoring Reader role."""
    resource_group_key: str
    """Stable name of that scope (the resource group's Azure name)."""
    private: bool = False
    """Refuse public access (prod) and reach Grafana through `private_endpoint`."""
    private_endpoint: PrivateEndpointArgs | None = None
    """Where Grafana's private endpoint goes when private."""
    grafana_admins: tuple[str, ...] = ()
    """Entra object ids of the users given Grafana Admin."""

    def __post_init__(self) -> None:
        if self.private and self.private_endpoint is None:
            raise ValueError(
                "a private Grafana needs private_endpoint placement (the VNet's endpoint subnet)"
            )


class ManagedPrometheus(pulumi.ComponentResource):
    """Azure Monitor workspace, its collection endpoint/rule/association to AKS, and Grafana reading it."""

    monitor_workspace_id: pulumi.Output[str]
    """Resource id of the Azure Monitor workspace."""
    grafana_endpoint: pulumi.Output[str]
    """Grafana's URL."""

    def __init__(
        self, name: str, args: ManagedPrometheusArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("aml-platform:monitoring:ManagedPrometheus", name, None, opts)
        common = args.common
        access = "Disabled" if args.private else "Enabled"
        workspace = monitor.AzureMonitorWorkspace(
            f"{name}-workspace",
            azure_monitor_workspace_name=args.monitor_workspace_name,
            resource_group_name=common.resource_group_name,
            location=common.location,
            public_network_access=access,
            tags=common.tags_with(),
            opts=child_opts(self),
        )
        endpoint = monitor.DataCollectionEndpoint(
            f"{name}-collection-endpoint",
            data_collection_endpoint_name=f"MSProm-{common.location}-{args.aks_cluster_name}"[:44],
            resource_group_name=common.resource_group_name,
            location=common.location,
            kind="Linux",
            # Ingestion stays public (Entra-authenticated) even in prod: a private one needs an Azure Monitor
            # private link scope for the cluster's VNet, which this platform does not declare yet.
            network_acls=monitor.DataCollectionEndpointNetworkAclsArgs(public_network_access="Enabled"),
            tags=common.tags_with(),
            opts=child_opts(self),
        )
        rule = monitor.DataCollectionRule(
            f"{name}-collection-rule",
            data_collection_rule_name=f"MSProm-{common.location}-{args.aks_cluster_name}"[:64],
            resource_group_name=common.resource_group_name,
            location=common.location,
            kind="Linux",
            data_collection_endpoint_id=endpoint.id,
            data_sources=monitor.DataCollectionRuleDataSourcesArgs(
                prometheus_forwarder=[
                    monitor.PrometheusForwarderDataSourceArgs(
                        name="PrometheusDataSource", streams=[PROMETHEUS_STREAM]
                    )
                ]
            ),
            destinations=monitor.DataCollectionRuleDestinationsArgs(
                monitoring_accounts=[
                    monitor.MonitoringAccountDestinationArgs(
                        account_resource_id=workspace.id, name=DESTINATION
                    )
                ]
            ),
            data_flows=[monitor.DataFlowArgs(streams=[PROMETHEUS_STREAM], destinations=[DESTINATION])],
            tags=common.tags_with(),
            opts=child_opts(self),
        )
        monitor.DataCollectionRuleAssociation(
            f"{name}-rule-association",
            association_name=f"MSProm-{common.location}-{args.aks_cluster_name}",
            resource_uri=args.aks_cluster_id,
            data_collection_rule_id=rule.id,
            opts=child_opts(self),
        )
        monitor.DataCollectionRuleAssociation(
            f"{name}-endpoint-association",
            # The one name Azure accepts for associating a collection endpoint with a resource.
            association_name="configurationAccessEndpoint",
            resource_uri=args.aks_cluster_id,
            data_collection_endpoint_id=endpoint.id,
            opts=child_opts(self),
        )
        grafana = self._grafana(name, args, workspace, access)
        self.monitor_workspace_id = workspace.id
        self.grafana_endpoint = grafana.properties.apply(lambda props: getattr(props, "endpoint", None) or "")
        self.register_outputs(
            {"monitor_workspace_id": self.monitor_workspace_id, "grafana_endpoint": self.grafana_endpoint}
        )

    def _grafana(
        self, name: str, args: ManagedPrometheusArgs, workspace: monitor.AzureMonitorWorkspace, access: str
    ) -> dashboard.Grafana:
        common = args.common
        grafana = dashboard.Grafana(
            f"{name}-grafana",
            workspace_name=args.grafana_name,
            resource_group_name=common.resource_group_name,
            location=common.location,
            sku=dashboard.ResourceSkuArgs(name="Standard"),
            identity=dashboard.ManagedServiceIdentityArgs(type="SystemAssigned"),
            properties=dashboard.ManagedGrafanaPropertiesArgs(
                public_network_access=access,
                grafana_integrations=dashboard.GrafanaIntegrationsArgs(
                    azure_monitor_workspace_integrations=[
                        dashboard.AzureMonitorWorkspaceIntegrationArgs(
                            azure_monitor_workspace_resource_id=workspace.id
                        )
                    ]
                ),
            ),
            tags=common.tags_with(),
            opts=child_opts(self),
        )
        identity = principal_id_of(grafana.identity)
        grants = [
            RoleGrant(BuiltInRole.MONITORING_DATA_READER, workspace.id, args.monitor_workspace_name, identity,
                      args.grafana_name),
            RoleGrant(BuiltInRole.MONITORING_READER, args.resource_group_id, args.resource_group_key, identity,
                      args.grafana_name),
        ]  # fmt: skip
        for index, grant in enumerate(grants):
            assign_role(f"{name}-grafana-reads-{index}", grant, args.subscription_id, self)
        for admin in args.grafana_admins:
            # People, not service principals (assign_role's type).
            authorization.RoleAssignment(
                f"{name}-grafana-admin-{admin}",
                role_assignment_name=role_assignment_name(
                    args.grafana_name, admin, BuiltInRole.GRAFANA_ADMIN
                ),
                scope=grafana.id,
                principal_id=admin,
                role_definition_id=role_definition_id(args.subscription_id, BuiltInRole.GRAFANA_ADMIN),
                principal_type="User",
                opts=child_opts(self),
            )
        if args.private:
            assert args.private_endpoint is not None
            add_private_endpoint(
                f"{name}-grafana-endpoint",
                common=common,
                endpoint_name=f"pe-{args.grafana_name}",
                target_id=grafana.id,
                group_id="grafana",
                placement=args.private_endpoint,
                parent=self,
            )
            dashboard.ManagedPrivateEndpoint(
                f"{name}-grafana-to-workspace",
                managed_private_endpoint_name="prometheus",
                workspace_name=grafana.name,
                resource_group_name=common.resource_group_name,
                location=common.location,
                group_ids=["prometheusMetrics"],
                private_link_resource_id=workspace.id,
                private_link_resource_region=common.location,
                request_message="Grafana reads the platform's Azure Monitor workspace",
                tags=common.tags_with(),
                opts=child_opts(self),
            )
        return grafana
