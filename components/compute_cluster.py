"""The AML compute cluster that runs training pipelines and builds environment images."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_azure_native.machinelearningservices as ml

from components.common import CommonArgs, child_opts


def iso8601_seconds(seconds: int) -> str:
    """ISO 8601 duration AML expects for the idle time before scale-down (e.g. 120 -> 'PT120S')."""
    if seconds < 0:
        raise ValueError(f"idle time before scale-down must be >= 0 seconds, got {seconds}")
    return f"PT{seconds}S"


def remote_login_access(ssh_enabled: bool) -> str:
    """SSH port setting: 'Disabled' closes it; 'NotSpecified' opens it only if an admin key is configured."""
    return "NotSpecified" if ssh_enabled else "Disabled"


@dataclass(frozen=True)
class ComputeClusterArgs:
    """Inputs of a ComputeCluster."""

    common: CommonArgs
    """Location, resource group, tags, protect."""
    workspace_name: pulumi.Input[str]
    """Workspace the cluster is attached to (an output of Workspace, so the cluster waits for it)."""
    compute_name: str
    """AML compute name (also the workspace's image build compute)."""
    vm_size: str
    """Node VM size, e.g. Standard_DS3_v2."""
    min_nodes: int
    """Nodes kept running (0 to scale to zero)."""
    max_nodes: int
    """Upper bound of the autoscaler."""
    idle_seconds_before_scale_down: int
    """Seconds a node idles before it is released."""
    priority: str
    """Dedicated or LowPriority."""
    identity_id: pulumi.Input[str]
    """User-assigned identity the nodes run as."""
    subnet_id: pulumi.Input[str] | None = None
    """Training subnet of the nodes (customer VNet design); None keeps them in the workspace's managed network,
    where a customer subnet is not supported (AZURE-FACTS 1)."""
    ssh_enabled: bool = False
    """Leave the SSH port configurable (dev only; prod closes it)."""
    after_deploy: pulumi.ResourceHook | None = None
    """Hook run after the cluster is created or updated (the ML post-deploy hook); None for none."""


class ComputeCluster(pulumi.ComponentResource):
    """An autoscaling AmlCompute cluster without node public IPs, in our training subnet or the managed network."""

    compute_name: pulumi.Output[str]
    """AML name of the compute."""
    compute_id: pulumi.Output[str]
    """Azure resource id of the compute."""

    def __init__(
        self, name: str, args: ComputeClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("aml-platform:ml:ComputeCluster", name, None, opts)
        common = args.common
        compute = ml.Compute(
            f"{name}-compute",
            compute_name=args.compute_name,
            workspace_name=args.workspace_name,
            resource_group_name=common.resource_group_name,
            location=common.location,
            identity=ml.ManagedServiceIdentityArgs(
                type="UserAssigned", user_assigned_identities=[args.identity_id]
            ),
            properties=ml.AmlComputeArgs(
                compute_type="AmlCompute",
                disable_local_auth=True,
                properties=ml.AmlComputePropertiesArgs(
                    vm_size=args.vm_size,
                    vm_priority=args.priority,
                    os_type="Linux",
                    scale_settings=ml.ScaleSettingsArgs(
                        min_node_count=args.min_nodes,
                        max_node_count=args.max_nodes,
                        node_idle_time_before_scale_down=iso8601_seconds(args.idle_seconds_before_scale_down),
                    ),
                    subnet=ml.ResourceIdArgs(id=args.subnet_id) if args.subnet_id is not None else None,
                    enable_node_public_ip=False,
                    remote_login_port_public_access=remote_login_access(args.ssh_enabled),
                ),
            ),
            tags=common.tags_with(),
            opts=child_opts(self, hooks=_hook_binding(args.after_deploy)),
        )
        self.compute_name = compute.name
        self.compute_id = compute.id
        self.register_outputs({"compute_name": self.compute_name, "compute_id": self.compute_id})


def _hook_binding(hook: pulumi.ResourceHook | None) -> pulumi.ResourceHookBinding | None:
    """Run `hook` after every create and update of the cluster (the engine skips hooks in preview)."""
    if hook is None:
        return None
    return pulumi.ResourceHookBinding(after_create=[hook], after_update=[hook])
