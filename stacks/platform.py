"""Composition: every component of the platform wired together from one StackConfig; returns the outputs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_azure_native.authorization as authorization

from components.common import CommonArgs
from components.compute_cluster import ComputeCluster, ComputeClusterArgs
from components.container_registry import ContainerRegistry, ContainerRegistryArgs
from components.key_vault import KeyVault, KeyVaultArgs
from components.monitoring import Monitoring, MonitoringArgs
from components.network import Network, NetworkArgs, SubnetSpec
from components.nsg_rules import aml_compute_outbound_rules
from components.private_endpoint import zones_for_groups
from components.resource_group import ResourceGroup, ResourceGroupArgs
from components.storage import StorageAccount, StorageAccountArgs
from components.workspace import Workspace, WorkspaceArgs
from stacks.designs import DesignPlan, plan_of
from stacks.model import StackConfig

if TYPE_CHECKING:
    from components.ci_identity import CiIdentity
    from components.devops_agents import DevOpsAgents


def build_platform(cfg: StackConfig) -> dict[str, pulumi.Input[Any]]:
    """Declare the platform for `cfg` and return the stack outputs (camelCase keys, secrets as secrets)."""
    client = authorization.get_client_config_output()
    names = cfg.names
    plan = plan_of(cfg)
    group = ResourceGroup(
        "resource-group",
        ResourceGroupArgs(
            CommonArgs(cfg.location, names.resource_group, dict(cfg.tags), cfg.protect_stateful)
        ),
    )
    common = CommonArgs(cfg.location, group.resource_group_name, dict(cfg.tags), cfg.protect_stateful)
    monitoring = Monitoring(
        "monitoring",
        MonitoringArgs(
            common, names.log_analytics, names.app_insights, retention_days=cfg.log_retention_days
        ),
    )
    diagnostics = monitoring.log_analytics_workspace_id
    network = Network("network", _network_args(cfg, plan, common))
    placement = network.private_endpoint_placement() if plan.private_endpoints else None
    storage = StorageAccount(
        "storage",
        StorageAccountArgs(
            common,
            names.storage_account,
            sku=cfg.storage_sku,
            public_network_access=cfg.public_network_access,
            diagnostics_workspace_id=diagnostics,
            private_endpoint=placement,
            private_endpoint_groups=plan.storage_endpoint_groups,
            shared_key_access=cfg.storage_shared_key_access,
        ),
    )
    vault = KeyVault(
        "key-vault",
        KeyVaultArgs(
            common,
            names.key_vault,
            tenant_id=client.tenant_id,
            public_network_access=cfg.public_network_access,
            diagnostics_workspace_id=diagnostics,
            private_endpoint=placement,
        ),
    )
    registry = ContainerRegistry(
        "container-registry",
        ContainerRegistryArgs(
            common,
            names.container_registry,
            public_network_access=cfg.public_network_access,
            diagnostics_workspace_id=diagnostics,
            private_endpoint=placement,
        ),
    )
    workspace = Workspace(
        "workspace",
        WorkspaceArgs(
            common,
            names.workspace,
            subscription_id=client.subscription_id,
            storage_account_id=storage.account_id,
            storage_account_name=names.storage_account,
            key_vault_id=vault.vault_id,
            key_vault_name=names.key_vault,
            container_registry_id=registry.registry_id,
            container_registry_name=names.container_registry,
            app_insights_id=monitoring.app_insights_id,
            image_build_compute=names.compute_cluster,
            compute_identity_name=names.compute_identity,
            public_network_access=cfg.public_network_access,
            isolation_mode=plan.workspace_isolation_mode,
            storage_rules=plan.managed_storage_rules,
            provision_network_now=plan.provision_network_now,
            diagnostics_workspace_id=diagnostics,
            private_endpoint=placement,
            storage_private_endpoint_ids=storage.private_endpoint_ids,
        ),
    )
    settings = cfg.compute
    cluster = ComputeCluster(
        "compute-cluster",
        ComputeClusterArgs(
            common,
            workspace_name=workspace.workspace_name,
            compute_name=names.compute_cluster,
            vm_size=settings.vm_size,
            min_nodes=settings.min_nodes,
            max_nodes=settings.max_nodes,
            idle_seconds_before_scale_down=settings.idle_seconds_before_scale_down,
            priority=settings.priority,
            subnet_id=network.subnet_ids["training"] if plan.compute_in_subnet else None,
            identity_id=workspace.compute_identity_id,
            ssh_enabled=settings.ssh_enabled,
            after_deploy=_post_deploy_hook(cfg),
        ),
    )
    outputs: dict[str, pulumi.Input[Any]] = {
        "subscriptionId": client.subscription_id,
        "tenantId": client.tenant_id,
        "resourceGroupName": group.resource_group_name,
        "location": cfg.location,
        "environment": cfg.environment,
        "workspaceName": workspace.workspace_name,
        "workspaceId": workspace.workspace_id,
        "computeClusterName": cluster.compute_name,
        "containerRegistryName": registry.registry_name,
        "containerRegistryLoginServer": registry.login_server,
        "keyVaultName": vault.vault_name,
        "storageAccountName": storage.account_name,
        "applicationInsightsName": monitoring.app_insights_name,
        "applicationInsightsConnectionString": monitoring.app_insights_connection_string,
        "logAnalyticsWorkspaceId": monitoring.log_analytics_workspace_id,
        "vnetName": network.vnet_name,
        # Created by the post-deploy hook, not by Pulumi; named here so every consumer agrees.
        "onlineEndpointName": names.online_endpoint,
        "batchEndpointName": names.batch_endpoint,
        **network_outputs(cfg, plan),
    }
    if cfg.aks is not None:
        outputs.update(_inference(cfg, common, client, workspace, network, diagnostics))
    ci = _ci_identity(cfg, common, client, group, storage, workspace, outputs)
    if ci is not None:
        outputs.update({"ciIdentityClientId": ci.client_id, "ciIdentityPrincipalId": ci.principal_id})
    if cfg.model_registry is not None:
        outputs.update(_model_registry(cfg, common, client, workspace, ci))
    if cfg.devops is not None:
        outputs.update(_devops(cfg, common, client, network, vault, ci, outputs))
    outputs.update(_observability(cfg, common, client, group, workspace, monitoring, placement, outputs))
    return outputs


def _observability(
    cfg: StackConfig,
    common: CommonArgs,
    client: pulumi.Output[Any],
    group: ResourceGroup,
    workspace: Workspace,
    monitoring: Monitoring,
    placement: Any,
    platform_outputs: dict[str, pulumi.Input[Any]],
) -> dict[str, pulumi.Input[Any]]:
    """Alerts (when on) and managed Prometheus + Grafana (when switched on), and what the hook reads of them."""
    from components.alerts import Alerts, AlertsArgs, AlertThresholds
    from stacks.naming import monitoring_names

    names = monitoring_names(cfg.namespace, cfg.postfix, cfg.environment)
    aks_id = platform_outputs.get("aksClusterId")
    outputs: dict[str, pulumi.Input[Any]] = {"driftThreshold": cfg.drift_threshold}
    if cfg.alerts is not None:
        settings = cfg.alerts
        alerts = Alerts(
            "alerts",
            AlertsArgs(
                common,
                action_group_name=names["action_group"],
                action_group_short_name=names["action_group_short"],
                emails=settings.emails,
                webhook_url=settings.webhook_url.reveal() if settings.webhook_url else None,
                log_analytics_workspace_id=monitoring.log_analytics_workspace_id,
                workspace_id=workspace.workspace_id,
                workspace_name=cfg.names.workspace,
                endpoint_name=cfg.names.online_endpoint,
                compute_cluster_name=cfg.names.compute_cluster,
                online_target=_online_target(cfg),
                aks_cluster_id=aks_id,
                thresholds=AlertThresholds(
                    severity=settings.severity,
                    error_rate_percent=settings.error_rate_percent,
                    p99_latency_ms=settings.p99_latency_ms,
                    no_traffic_minutes=settings.no_traffic_minutes,
                    node_cpu_percent=settings.node_cpu_percent,
                    node_memory_percent=settings.node_memory_percent,
                ),
            ),
        )
        outputs |= {"actionGroupId": alerts.action_group_id, "alertEmails": list(settings.emails)}
    if cfg.prometheus is not None and aks_id is not None:
        from components.prometheus import ManagedPrometheus, ManagedPrometheusArgs

        prometheus = ManagedPrometheus(
            "prometheus",
            ManagedPrometheusArgs(
                common,
                monitor_workspace_name=names["monitor_workspace"],
                grafana_name=names["grafana"],
                aks_cluster_id=aks_id,
                aks_cluster_name=cfg.names.aks_cluster,
                subscription_id=client.subscription_id,
                resource_group_id=group.resource_group_id,
                resource_group_key=cfg.names.resource_group,
                private=not cfg.public_network_access and placement is not None,
                private_endpoint=placement,
                grafana_admins=cfg.prometheus.grafana_admins,
            ),
        )
        outputs |= {
            "azureMonitorWorkspaceId": prometheus.monitor_workspace_id,
            "grafanaEndpoint": prometheus.grafana_endpoint,
        }
    return outputs


def _online_target(cfg: StackConfig) -> str:
    """Where the hook deploys the online endpoint: the design's target (the onlineTarget output)."""
    return plan_of(cfg).online_target


def network_outputs(cfg: StackConfig, plan: DesignPlan) -> dict[str, pulumi.Input[Any]]:
    """The design-level outputs the post-deploy hook reads (CONTRACT.md): where to deploy and from where."""
    tls = cfg.aks.tls if cfg.aks is not None else None
    return {
        "isolationDesign": plan.design,
        "onlineTarget": plan.online_target,
        # "Disabled": the hook's data-plane work must run inside the VNet (AZURE-FACTS 5, 32).
        "workspacePublicNetworkAccess": "Enabled" if cfg.public_network_access else "Disabled",
        "inferenceScoringHost": tls.ssl_cname if tls is not None else "",
        "inferenceLoadBalancerIp": (cfg.aks.load_balancer_ip or "") if cfg.aks is not None else "",
    }


def _network_args(cfg: StackConfig, plan: DesignPlan, common: CommonArgs) -> NetworkArgs:
    net, names = cfg.network, cfg.names
    cidrs = {
        "training": net.training_subnet,
        "aks": net.aks_subnet,
        "agents": net.agents_subnet,
        "private-endpoints": net.private_endpoints_subnet,
    }
    subnets = {
        role: SubnetSpec(
            cidrs[role],
            egress=role in plan.egress_roles,
            security_rules=(
                aml_compute_outbound_rules(cfg.location, net.private_endpoints_subnet)
                if role == "training"
                else ()
            ),
        )
        for role in plan.subnet_roles
    }
    groups = (*plan.storage_endpoint_groups, "vault", "registry", "amlworkspace")
    if cfg.prometheus is not None and cfg.aks is not None and not cfg.public_network_access:
        groups = (*groups, "grafana")  # the private Grafana of _observability
    return NetworkArgs(
        common,
        names.vnet,
        net.address_space,
        subnets,
        nat_gateway_name=names.nat_gateway if plan.egress_roles else None,
        nat_public_ip_name=names.nat_public_ip if plan.egress_roles else None,
        private_dns_zones=zones_for_groups(groups) if plan.private_endpoints else (),
    )


def _ci_identity(
    cfg: StackConfig,
    common: CommonArgs,
    client: pulumi.Output[Any],
    group: ResourceGroup,
    storage: StorageAccount,
    workspace: Workspace,
    platform_outputs: dict[str, pulumi.Input[Any]],
) -> CiIdentity | None:
    """The identity CI deploys and runs the hook as: behind the federated service connection, or GitHub."""
    federated = cfg.devops is not None and cfg.devops.service_connection_auth == "WorkloadIdentityFederation"
    if not federated and cfg.github_repository is None:
        return None
    from components.ci_identity import CiIdentity, CiIdentityArgs

    aks_cluster_id = None
    if "aksClusterName" in platform_outputs:
        # Built from the cluster's name output, so the role waits for the cluster to exist.
        aks_cluster_id = pulumi.Output.concat(
            group.resource_group_id,
            "/providers/Microsoft.ContainerService/managedClusters/",
            platform_outputs["aksClusterName"],
        )
    return CiIdentity(
        "ci-identity",
        CiIdentityArgs(
            common,
            identity_name=cfg.names.service_connection_identity,
            subscription_id=client.subscription_id,
            resource_group_id=group.resource_group_id,
            resource_group_name=cfg.names.resource_group,
            storage_account_id=storage.account_id,
            storage_account_name=cfg.names.storage_account,
            workspace_id=workspace.workspace_id,
            workspace_name=cfg.names.workspace,
            aks_cluster_id=aks_cluster_id,
            aks_cluster_name=cfg.names.aks_cluster if aks_cluster_id is not None else None,
            github_repository=cfg.github_repository,
            github_environment=cfg.environment,
            moved_from_service_connection="service-connection" if federated else None,
        ),
    )


def _model_registry(
    cfg: StackConfig,
    common: CommonArgs,
    client: pulumi.Output[Any],
    workspace: Workspace,
    ci: CiIdentity | None,
) -> dict[str, pulumi.Input[Any]]:
    """The registry dev and prod share: declared (with its roles) by its owner, prod; named by both.

    The owner's CI identity writes it: prod's hook job promotes as that identity (GitHub, Azure DevOps).
    """
    settings = cfg.model_registry
    assert settings is not None
    if not settings.owner:
        return {"modelRegistryName": cfg.names.model_registry}
    from components.model_registry import ModelRegistry, ModelRegistryArgs

    # The owner's own workspace and compute identities read what they deploy; the others come from config.
    readers: dict[str, pulumi.Input[str]] = {
        cfg.names.workspace: workspace.principal_id.apply(lambda principal: principal or ""),
        cfg.names.compute_identity: workspace.compute_identity_principal_id,
    }
    registry = ModelRegistry(
        "model-registry",
        ModelRegistryArgs(
            common,
            cfg.names.model_registry,
            subscription_id=client.subscription_id,
            readers=readers | {object_id: object_id for object_id in settings.readers},
            writers={object_id: object_id for object_id in settings.writers}
            | ({cfg.names.service_connection_identity: ci.principal_id} if ci is not None else {}),
            replication_locations=settings.regions,
        ),
    )
    return {"modelRegistryName": registry.registry_name}


def _inference(
    cfg: StackConfig,
    common: CommonArgs,
    client: pulumi.Output[Any],
    workspace: Workspace,
    network: Network,
    diagnostics: pulumi.Output[str],
) -> dict[str, pulumi.Input[Any]]:
    from components.aks import AksCluster, AksClusterArgs, InferenceTlsArgs  # deferred: AKS costs imports

    aks = cfg.aks
    assert aks is not None
    tls = (
        InferenceTlsArgs(
            aks.tls.ssl_cname,
            pulumi.Output.secret(aks.tls.cert_pem.reveal()),
            pulumi.Output.secret(aks.tls.key_pem.reveal()),
        )
        if aks.tls is not None
        else None
    )
    cluster = AksCluster(
        "aks",
        AksClusterArgs(
            common,
            cluster_name=cfg.names.aks_cluster,
            identity_name=cfg.names.aks_identity,
            compute_name=cfg.names.aks_compute,
            subscription_id=client.subscription_id,
            workspace_name=workspace.workspace_name,
            subnet_id=network.subnet_ids["aks"],
            vnet_id=network.vnet_id,
            service_cidr=cfg.network.aks_service_cidr,
            dns_service_ip=cfg.network.aks_dns_service_ip,
            log_analytics_workspace_id=diagnostics,
            node_vm_size=aks.node_vm_size,
            node_count=aks.node_count,
            private_cluster=aks.private_cluster,
            tls=tls,
            load_balancer_ip=aks.load_balancer_ip,
            diagnostics_workspace_id=diagnostics,
            prometheus_metrics=cfg.prometheus is not None,
        ),
    )
    return {
        "aksClusterName": cluster.cluster_name,
        "aksComputeName": cluster.compute_name,
        "aksClusterId": cluster.cluster_id,
        "aksNodeVmSize": aks.node_vm_size,
        "aksNodeCount": aks.node_count,
    }


def _devops(
    cfg: StackConfig,
    common: CommonArgs,
    client: pulumi.Output[Any],
    network: Network,
    vault: KeyVault,
    ci: CiIdentity | None,
    platform_outputs: dict[str, pulumi.Input[Any]],
) -> dict[str, pulumi.Input[Any]]:
    import pulumi_azuredevops as azuredevops  # deferred: only stacks with Azure DevOps on pay its import

    from components.devops_agents import DevOpsAgents, DevOpsAgentsArgs
    from components.pipeline_environments import PipelineEnvironments, PipelineEnvironmentsArgs
    from components.service_connection import ServiceConnection, ServiceConnectionArgs
    from components.variable_group import VariableGroup, VariableGroupArgs

    devops = cfg.devops
    assert devops is not None
    provider = azuredevops.Provider(
        "azure-devops",
        org_service_url=devops.org_url,
        personal_access_token=pulumi.Output.secret(devops.pat.reveal()),
    )
    devops_opts = pulumi.ResourceOptions(providers=[provider])
    # The project is shared by every stack (dev and prod deploy from one project), so it is looked up.
    project_id = azuredevops.get_project_output(
        name=devops.project_name, opts=pulumi.InvokeOutputOptions(provider=provider)
    ).apply(lambda project: project.id)
    agents = DevOpsAgents("devops-agents", DevOpsAgentsArgs(project_id, cfg.names.devops_pool), devops_opts)
    connection = ServiceConnection(
        "service-connection",
        ServiceConnectionArgs(
            common,
            project_id=project_id,
            connection_name=cfg.names.service_connection,
            subscription_id=client.subscription_id,
            subscription_name=client.subscription_id,
            tenant_id=client.tenant_id,
            auth=devops.service_connection_auth,
            service_principal_client_id=devops.service_principal_client_id,
            service_principal_secret=(
                pulumi.Output.secret(devops.service_principal_secret.reveal())
                if devops.service_principal_secret is not None
                else None
            ),
            identity_client_id=ci.client_id if ci is not None else None,
            identity_name=ci.identity_name if ci is not None else None,
            credentials_before=ci.federated_credentials if ci is not None else (),
        ),
        devops_opts,
    )
    variable_keys = (
        "subscriptionId",
        "resourceGroupName",
        "location",
        "environment",
        "workspaceName",
        "computeClusterName",
        "aksComputeName",
        "containerRegistryName",
        "containerRegistryLoginServer",
        "keyVaultName",
        # Pipelines' credentials (AzurePipelinesCredential) name the identity their connection federates to.
        "ciIdentityClientId",
    )
    variables = {key: platform_outputs[key] for key in variable_keys if key in platform_outputs}
    variable_group = VariableGroup(
        "variable-group", VariableGroupArgs(project_id, cfg.names.variable_group, variables), devops_opts
    )
    approvers = {"prod": devops.prod_approvers} if cfg.environment == "prod" else {}
    PipelineEnvironments(
        "pipeline-environments",
        PipelineEnvironmentsArgs(project_id, environments=(cfg.environment,), approvers=approvers),
        devops_opts,
    )
    outputs: dict[str, pulumi.Input[Any]] = {
        "agentPoolName": agents.pool_name,
        "serviceConnectionName": connection.connection_name,
        "variableGroupId": variable_group.group_id,
    }
    if cfg.agent_vm is not None:
        outputs.update(_agent_vm(cfg, common, client, network, vault, agents))
    return outputs


def _agent_vm(
    cfg: StackConfig,
    common: CommonArgs,
    client: pulumi.Output[Any],
    network: Network,
    vault: KeyVault,
    agents: DevOpsAgents,
) -> dict[str, pulumi.Input[Any]]:
    from components.agent_vm import AgentVm, AgentVmArgs

    vm, devops = cfg.agent_vm, cfg.devops
    assert vm is not None and devops is not None
    agent_vm = AgentVm(
        "agent-vm",
        AgentVmArgs(
            common,
            vm_name=cfg.names.agent_vm,
            identity_name=cfg.names.agent_identity,
            subnet_id=network.subnet_ids["agents"],
            vm_size=vm.vm_size,
            admin_username=vm.admin_username,
            ssh_public_key=vm.ssh_public_key,
            org_url=devops.org_url,
            # The pool's output, not its name: the agents register into it, so the VM must wait for it.
            pool_name=agents.pool_name,
            agent_count=vm.agent_count,
            pat=pulumi.Output.secret(devops.pat.reveal()),
            vault_name=vault.vault_name,
            subscription_id=client.subscription_id,
        ),
    )
    return {"agentVmName": agent_vm.vm_name}


def _post_deploy_hook(cfg: StackConfig) -> pulumi.ResourceHook | None:
    """The ML post-deploy hook when the stack switches it on (config postDeployHook); off by default."""
    if not cfg.post_deploy_hook:
        return None
    from stacks.post_deploy import post_deploy_hook

    endpoints = {
        "onlineEndpointName": cfg.names.online_endpoint,
        "batchEndpointName": cfg.names.batch_endpoint,
    }
    return post_deploy_hook(cfg.stack, cfg.environment, enabled=True, known_outputs=endpoints)
