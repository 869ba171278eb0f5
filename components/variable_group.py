"""The Azure DevOps variable group pipelines read the platform's coordinates from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import pulumi
import pulumi_azuredevops as azuredevops

from components.common import child_opts


@dataclass(frozen=True)
class VariableGroupArgs:
    """Inputs of a VariableGroup."""

    project_id: pulumi.Input[str]
    """Project the group belongs to."""
    group_name: str
    """Name pipelines reference with `- group: <name>`."""
    variables: Mapping[str, pulumi.Input[str]]
    """Plain (non-secret) variables by name: stack outputs such as the resource group and workspace."""


class VariableGroup(pulumi.ComponentResource):
    """A library variable group filled from the stack's outputs."""

    group_id: pulumi.Output[str]
    """Id of the variable group."""
    group_name: pulumi.Output[str]
    """Name of the variable group."""

    def __init__(
        self, name: str, args: VariableGroupArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("aml-platform:devops:VariableGroup", name, None, opts)
        if not args.variables:
            raise ValueError(f"variable group {args.group_name!r} needs at least one variable")
        group = azuredevops.VariableGroup(
            f"{name}-group",
            project_id=args.project_id,
            name=args.group_name,
            description="Platform coordinates exported by the Pulumi stack; edit the stack, not this group.",
            # Only non-secret coordinates live here, so every pipeline of the project may read them.
            allow_access=True,
            variables=[
                azuredevops.VariableGroupVariableArgs(name=key, value=value)
                for key, value in sorted(args.variables.items())
            ],
            opts=child_opts(self),
        )
        self.group_id = group.id
        self.group_name = group.name
        self.register_outputs({"group_id": self.group_id, "group_name": self.group_name})
