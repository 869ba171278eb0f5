"""The Azure DevOps agent pool the agent VM registers into, and its queue in the project."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_azuredevops as azuredevops

from components.common import child_opts


def pool_number(pool_id: str) -> int | str:
    """Azure DevOps pool ids are numeric strings; the queue wants the number (other values pass through)."""
    return int(pool_id) if pool_id and pool_id.isdigit() else pool_id


@dataclass(frozen=True)
class DevOpsAgentsArgs:
    """Inputs of DevOpsAgents."""

    project_id: pulumi.Input[str]
    """Project the queue is created in."""
    pool_name: str
    """Name of the organization-level agent pool."""


class DevOpsAgents(pulumi.ComponentResource):
    """A self-hosted agent pool and the project queue pipelines target with `pool: <name>`."""

    pool_id: pulumi.Output[str]
    """Id of the agent pool."""
    pool_name: pulumi.Output[str]
    """Name of the agent pool."""
    queue_id: pulumi.Output[str]
    """Id of the project queue."""

    def __init__(self, name: str, args: DevOpsAgentsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("aml-platform:devops:DevOpsAgents", name, None, opts)
        pool = azuredevops.Pool(
            f"{name}-pool",
            name=args.pool_name,
            pool_type="automation",
            # Projects opt in through their queue below, not implicitly.
            auto_provision=False,
            auto_update=True,
            opts=child_opts(self),
        )
        queue = azuredevops.Queue(
            f"{name}-queue",
            project_id=args.project_id,
            agent_pool_id=pool.id.apply(pool_number),
            opts=child_opts(self),
        )
        self.pool_id = pool.id
        self.pool_name = pool.name
        self.queue_id = queue.id
        self.register_outputs(
            {"pool_id": self.pool_id, "pool_name": self.pool_name, "queue_id": self.queue_id}
        )
