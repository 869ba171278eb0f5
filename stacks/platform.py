"""Composition: every component of the platform wired together from one StackConfig; returns the outputs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_azure_native.authorization as authorization

from components.common import CommonArgs
from components.compute_cluster import ComputeCluster, ComputeClusterArgs, compute_subnet
from components.container_registry import ContainerRegistry, ContainerRegistryArgs
from components.key_vault import KeyVault, KeyVaultArgs
from components.monitoring import Monitoring, MonitoringArgs
from components.network import Network, NetworkArgs
from components.resource_group import ResourceGroup, ResourceGroupArgs
from components.storage import StorageAccount, StorageAccountArgs
from components.workspace import Workspace, WorkspaceArgs
from stacks.model import StackConfig

if TYPE_CHECKING:
    from components.ci_identity import CiIdentity
    from components.devops_agents import DevOpsAgents


def build_platform(cfg: StackConfig) -> dict[str, pulumi.Input[Any]]:
    """Declare the platform for `cfg` and return the stack outputs (camelCase keys, secrets as secrets)."""
    client = authorization.get_client_config_output()
    names = cfg.names
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
    net = cfg.network
    network = Network(
        "network",
        NetworkArgs(
            common,
            names.vnet,
            net.address_space,
            net.training_subnet,
            net.aks_subnet,
            net.agents_subnet,
            net.private_endpoints_subnet,
            private_endpoints=net.private_endpoints,
        ),
    )
    placement = network.private_endpoint_placement() if net.private_endpoints else None
    storage = StorageAccount(
        "storage",
        StorageAccountArgs(
            common,
            names.storage_account,
            sku=cfg.storage_sku,
            public_network_access=cfg.public_network_access,
            diagnostics_workspace_id=diagnostics,
            private_endpoint=placement,
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
            isolation_mode=cfg.workspace_isolation_mode,
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
            subnet_id=compute_subnet(cfg.workspace_isolation_mode, network.subnet_ids["training"]),
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
    }
    if cfg.aks is not None:
        outputs.update(_inference(cfg, common, client, workspace, network, diagnostics))
    ci = _ci_identity(cfg, common, client, group, storage, workspace, outputs)
    if ci is not None:
        outputs.update({"ciIdentityClientId": ci.client_id, "ciIdentityPrincipalId": ci.principal_id})
    if cfg.devops is not None:
        outputs.update(_devops(cfg, common, client, network, vault, ci, outputs))
    return outputs


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


def _inference(
    cfg: StackConfig,
    common: CommonArgs,
    client: pulumi.Output[Any],
    workspace: Workspace,
    network: Network,
    diagnostics: pulumi.Output[str],
) -> dict[str, pulumi.Input[Any]]:
    from components.aks import AksCluster, AksClusterArgs  # deferred: AKS modules cost import time

    aks = cfg.aks
    assert aks is not None
    cluster = AksCluster(
        "aks",
        AksClusterArgs(
            common,
            cluster_name=cfg.names.aks_cluster,
            compute_name=cfg.names.aks_compute,
            subscription_id=client.subscription_id,
            workspace_name=workspace.workspace_name,
            workspace_id=workspace.workspace_id,
            subnet_id=network.subnet_ids["aks"],
            service_cidr=cfg.network.aks_service_cidr,
            dns_service_ip=cfg.network.aks_dns_service_ip,
            log_analytics_workspace_id=diagnostics,
            node_vm_size=aks.node_vm_size,
            node_count=aks.node_count,
            private_cluster=aks.private_cluster,
            diagnostics_workspace_id=diagnostics,
        ),
    )
    return {"aksClusterName": cluster.cluster_name, "aksComputeName": cluster.compute_name}


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
