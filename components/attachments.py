"""The attachments every data-plane resource takes the same way: a private endpoint and diagnostic settings."""

from __future__ import annotations

import pulumi

from components.common import CommonArgs
from components.diagnostics import send_diagnostics
from components.private_endpoint import PrivateEndpointArgs, add_private_endpoint


def attach_endpoint_and_diagnostics(
    name: str,
    parent: pulumi.Resource,
    common: CommonArgs,
    target_id: pulumi.Input[str],
    *,
    endpoint_name: str,
    group_id: str,
    private_endpoint: PrivateEndpointArgs | None,
    diagnostics_workspace_id: pulumi.Input[str] | None,
) -> None:
    """Give `target_id` its private endpoint (`group_id` sub-resource) and its logs, each when asked for."""
    if private_endpoint is not None:
        add_private_endpoint(
            f"{name}-private-endpoint",
            common=common,
            endpoint_name=endpoint_name,
            target_id=target_id,
            group_id=group_id,
            placement=private_endpoint,
            parent=parent,
        )
    if diagnostics_workspace_id is not None:
        send_diagnostics(f"{name}-diagnostics", target_id, diagnostics_workspace_id, parent)
