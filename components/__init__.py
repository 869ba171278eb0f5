"""Pulumi components of the AML platform: one ComponentResource per Azure or Azure DevOps building block.

Each module is imported on its own (e.g. `from components.workspace import Workspace, WorkspaceArgs`) so a
program only pays the import time of the provider modules it uses; `components.common` holds the shared
vocabulary (CommonArgs, child options, tags, role assignment naming).
"""

from components.common import BuiltInRole, CommonArgs, RoleGrant, child_opts, merge_tags, role_assignment_name

__all__ = ["BuiltInRole", "CommonArgs", "RoleGrant", "child_opts", "merge_tags", "role_assignment_name"]
