"""Azure DevOps pipeline environments (dev, prod) with approval checks where approvers are given."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import pulumi
import pulumi_azuredevops as azuredevops

from components.common import child_opts


@dataclass(frozen=True)
class PipelineEnvironmentsArgs:
    """Inputs of PipelineEnvironments."""

    project_id: pulumi.Input[str]
    """Project the environments belong to."""
    environments: tuple[str, ...] = ("dev", "prod")
    """Environment names deployment jobs target."""
    approvers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Approver ids (users or groups) by environment; an environment listed here gets an approval check."""
    approval_timeout_minutes: int = 24 * 60
    """How long a deployment waits for approval before it fails."""

    def __post_init__(self) -> None:
        unknown = sorted(set(self.approvers) - set(self.environments))
        if unknown:
            raise ValueError(
                f"approvers given for unknown environments {unknown}; environments: {self.environments}"
            )
        empty = sorted(env for env, ids in self.approvers.items() if not ids)
        if empty:
            raise ValueError(
                f"environments {empty} have an approval check but no approvers; add at least one id"
            )


class PipelineEnvironments(pulumi.ComponentResource):
    """One pipeline environment per stage; approvals gate deployments into the guarded ones."""

    environment_ids: dict[str, pulumi.Output[str]]
    """Environment id by name."""

    def __init__(
        self, name: str, args: PipelineEnvironmentsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("aml-platform:devops:PipelineEnvironments", name, None, opts)
        self.environment_ids = {}
        for env_name in args.environments:
            environment = azuredevops.Environment(
                f"{name}-{env_name}",
                project_id=args.project_id,
                name=env_name,
                description=f"Deployments of the {env_name} platform",
                opts=child_opts(self),
            )
            self.environment_ids[env_name] = environment.id
            if env_name in args.approvers:
                azuredevops.CheckApproval(
                    f"{name}-{env_name}-approval",
                    project_id=args.project_id,
                    target_resource_type="environment",
                    target_resource_id=environment.id,
                    approvers=list(args.approvers[env_name]),
                    requester_can_approve=False,
                    instructions=f"Approve the {env_name} deployment after reviewing the infra diff.",
                    timeout=args.approval_timeout_minutes,
                    opts=child_opts(self),
                )
        self.register_outputs({"environment_ids": self.environment_ids})
