"""Azure ML workspace and compute rules: identity, network isolation in either design, image builds, batch."""

from __future__ import annotations

from typing import Iterator, Mapping

from . import types as t
from .azure import (
    APPROVED_OUTBOUND_ONLY,
    BATCH_EXTRA_STORAGE_GROUPS,
    BATCH_STORAGE_GROUPS,
    MANAGED_ISOLATION_MODES,
    UNSUPPORTED_IN_MANAGED_NETWORK,
)
from .core import M, Check, Rule, StackRule, Subject, Violation, forbid, require, rule
from .graph import PlannedResource, Stack
from .values import as_list, as_map, get

MANAGED_NETWORK_SOURCE = "how-to-managed-network.md"


def isolation_mode(workspace: PlannedResource | Subject) -> str:
    """The workspace's managed network mode; no managedNetwork block means Disabled."""
    props = workspace.props
    return str(get(props, "managedNetwork.isolationMode") or "Disabled")


def compute_type(compute: PlannedResource | Subject) -> str:
    return str(get(compute.props, "properties.computeType") or "")


def _system_identity(subject: Subject) -> str | None:
    kind = str(get(subject.props, "identity.type") or "")
    return (
        None
        if "SystemAssigned" in kind
        else f"`identity.type` is {kind or None!r}, must include SystemAssigned"
    )


def _provisioned_at_create(subject: Subject) -> str | None:
    if (
        isolation_mode(subject) not in MANAGED_ISOLATION_MODES
        or subject.props.get("provisionNetworkNow") is True
    ):
        return None
    return (
        f"the managed network ({isolation_mode(subject)}) is created lazily with the first compute (about 30 "
        "minutes, which can time the compute out) and online deployments need it first: `provisionNetworkNow` "
        "is not true"
    )


def _batch_outbound_rules(subject: Subject) -> str | None:
    if isolation_mode(subject) != APPROVED_OUTBOUND_ONLY:
        return None
    storage = subject.props.get("storageAccount")
    targets = {
        str(get(r, "destination.subresourceTarget") or "").lower()
        for r in as_map(get(subject.props, "managedNetwork.outboundRules")).values()
        if isinstance(r, Mapping)
        and r.get("type") == "PrivateEndpoint"
        and str(get(r, "destination.serviceResourceId") or "").lower() == str(storage or "").lower()
    }
    missing = [group for group in BATCH_EXTRA_STORAGE_GROUPS if group not in targets]
    return (
        f"approved-outbound-only without private endpoint outbound rules to the default storage's {missing}: "
        "batch endpoints (Parallel Run Step) cannot reach their queues and tables"
        if missing
        else None
    )


def _no_customer_managed_keys(subject: Subject) -> str | None:
    status = str(get(subject.props, "encryption.status") or "").lower()
    return (
        "customer-managed keys are on, and batch deployments do not support them"
        if status == "enabled"
        else None
    )


def aml_compute(inner: Check) -> Check:
    """A check that only concerns AmlCompute clusters (Kubernetes compute has no such properties)."""

    def check(subject: Subject) -> str | None:
        return inner(subject) if compute_type(subject) == "AmlCompute" else None

    return check


def workspace_storage(stack: Stack, workspace: PlannedResource) -> list[PlannedResource]:
    return stack.targets(workspace, "storageAccount", [t.STORAGE], workspace.props.get("storageAccount"))


def compute_subnet_id(compute: PlannedResource) -> object:
    return get(compute.props, "properties.properties.subnet.id")


def _managed_network_compute(stack: Stack) -> Iterator[Violation]:
    for workspace in stack.of_type(t.ML_WORKSPACE):
        mode = isolation_mode(workspace)
        if mode not in MANAGED_ISOLATION_MODES:
            continue
        for compute in stack.computes_of(workspace):
            kind = compute_type(compute)
            if kind in UNSUPPORTED_IN_MANAGED_NETWORK:
                yield Violation(
                    compute,
                    f"{kind} compute {compute.name} is attached to workspace {workspace.name}, whose managed network "
                    f"({mode}) does not support Kubernetes or attached VMs",
                )
            elif kind == "AmlCompute" and compute_subnet_id(compute):
                yield Violation(
                    compute,
                    f"compute cluster {compute.name} is placed in a subnet of your VNet, but workspace "
                    f"{workspace.name} has a managed network ({mode}): its compute can only live there",
                )


def _compute_network_isolated(stack: Stack) -> Iterator[Violation]:
    # A cluster is isolated in our subnet, or in the workspace's managed VNET (which forbids a subnet).
    for compute in stack.of_type(t.ML_COMPUTE):
        if compute_type(compute) != "AmlCompute" or compute_subnet_id(compute):
            continue
        workspaces = stack.workspace_of(compute) or stack.of_type(t.ML_WORKSPACE)
        if not any(isolation_mode(w) in MANAGED_ISOLATION_MODES for w in workspaces):
            yield Violation(
                compute, f"compute {compute.name} is neither in a subnet nor in a managed-network workspace"
            )


def private_parts(stack: Stack, workspace: PlannedResource) -> list[PlannedResource]:
    """The workspace and its storage and registry, where public network access is off (behind private endpoints)."""
    linked = [
        *workspace_storage(stack, workspace),
        *stack.targets(
            workspace, "containerRegistry", [t.REGISTRY], workspace.props.get("containerRegistry")
        ),
    ]
    return [r for r in [workspace, *linked] if get(r.props, "publicNetworkAccess") == "Disabled"]


def _image_build_compute(stack: Stack) -> Iterator[Violation]:
    for workspace in stack.of_type(t.ML_WORKSPACE):
        private = private_parts(stack, workspace)
        if not private:
            continue
        name = workspace.props.get("imageBuildCompute")
        clusters = [c for c in stack.computes_of(workspace) if compute_type(c) == "AmlCompute"]
        if not name:
            yield Violation(
                workspace,
                f"{', '.join(r.name for r in private)} of workspace {workspace.name} are private, so serverless "
                "image builds cannot reach them, and `imageBuildCompute` is not set",
            )
        elif clusters and not any(c.arm_name == name for c in clusters):
            yield Violation(
                workspace,
                f"`imageBuildCompute` of workspace {workspace.name} is {name!r}, not one of its compute clusters "
                f"{[c.arm_name for c in clusters]}",
            )


def trusted_by_storage(storage: PlannedResource) -> bool:
    """Whether the storage lets Azure ML through its firewall: trusted services, or a resource instance rule."""
    if "AzureServices" in str(get(storage.props, "networkRuleSet.bypass") or ""):
        return True
    return any(
        "/microsoft.machinelearningservices/workspaces" in str(rule.get("resourceId") or "").lower()
        for rule in as_list(get(storage.props, "networkRuleSet.resourceAccessRules"))
    )


def _private_aks_workspace(stack: Stack) -> Iterator[Violation]:
    for workspace in stack.of_type(t.ML_WORKSPACE):
        if get(workspace.props, "publicNetworkAccess") != "Disabled":
            continue
        attached = [c for c in stack.computes_of(workspace) if compute_type(c) == "Kubernetes"]
        for compute in attached:
            for cluster in stack.targets(
                compute, "properties", [t.AKS], get(compute.props, "properties.resourceId")
            ):
                if (
                    str(cluster.props.get("location") or "").lower()
                    != str(workspace.props.get("location") or "").lower()
                ):
                    yield Violation(
                        cluster,
                        f"AKS cluster {cluster.name} is in {cluster.props.get('location')!r}, not in the region of "
                        f"its private workspace {workspace.name} ({workspace.props.get('location')!r})",
                    )
        if not attached:
            continue
        if "SystemAssigned" not in str(get(workspace.props, "identity.type") or ""):
            yield Violation(
                workspace,
                f"private workspace {workspace.name} with Kubernetes compute has no system-assigned identity "
                "(storage behind a private endpoint only allows that identity)",
            )
        for storage in workspace_storage(stack, workspace):
            if not trusted_by_storage(storage):
                yield Violation(
                    storage,
                    f"storage {storage.name} of private workspace {workspace.name} does not let Azure ML through "
                    "(`networkRuleSet.bypass` lacks AzureServices and no resource access rule names a workspace)",
                )


def _private_batch_storage(stack: Stack) -> Iterator[Violation]:
    for workspace in stack.of_type(t.ML_WORKSPACE):
        if (
            get(workspace.props, "publicNetworkAccess") != "Disabled"
            or isolation_mode(workspace) in MANAGED_ISOLATION_MODES
        ):
            continue  # a managed network reaches storage through its own outbound rules (AZURE-FACTS 9)
        for storage in workspace_storage(stack, workspace):
            groups = set().union(*(groups for _, groups in stack.private_endpoints_to(storage)))
            missing = [group for group in BATCH_STORAGE_GROUPS if group not in groups]
            if missing:
                yield Violation(
                    storage,
                    f"batch deployments of private workspace {workspace.name} need private endpoints for blob, "
                    f"file, queue and table of storage {storage.name}; missing: {missing}",
                )
        for compute in stack.computes_of(workspace):
            if compute_type(compute) == "AmlCompute" and not compute_subnet_id(compute):
                yield Violation(
                    compute,
                    f"compute cluster {compute.name} of private workspace {workspace.name} is not in the VNet, "
                    "where batch deployment jobs must run",
                )


RULES: tuple[Rule, ...] = (
    rule(
        "workspace-system-identity",
        t.ML_WORKSPACE,
        M,
        "The AML workspace has a system-assigned identity.",
        'set identity=ManagedServiceIdentityArgs(type="SystemAssigned")',
        _system_identity,
    ),
    rule(
        "workspace-v1-legacy-mode-off",
        t.ML_WORKSPACE,
        M,
        "The workspace does not run in v1 legacy mode.",
        "leave v1_legacy_mode unset or False",
        forbid("v1LegacyMode", True, "v1 legacy mode is on"),
    ),
    rule(
        "workspace-identity-datastore-auth",
        t.ML_WORKSPACE,
        M,
        "Datastores authenticate with the workspace identity.",
        'set system_datastores_auth_mode="identity" (lets storage keep shared keys off)',
        require("systemDatastoresAuthMode", "identity", "datastores use account keys"),
    ),
    rule(
        "workspace-public-network-disabled",
        t.ML_WORKSPACE,
        M,
        "The workspace is reached through its private endpoint.",
        'set public_network_access="Disabled" and add an amlworkspace private endpoint (prod profile)',
        require("publicNetworkAccess", "Disabled", "public network access is on"),
        network_isolation=True,
    ),
    rule(
        "workspace-managed-network-isolated",
        t.ML_WORKSPACE,
        M,
        "Workspace outbound traffic is restricted: approved rules in the managed network, or your VNet "
        "(isolation Disabled, compute in your subnets).",
        'use isolationDesign=managedVnet (AllowOnlyApprovedOutbound) or customerVnet (isolation "Disabled")',
        forbid("managedNetwork.isolationMode", "AllowInternetOutbound", "outbound traffic is unrestricted"),
        network_isolation=True,
    ),
    rule(
        "workspace-managed-network-provisioned",
        t.ML_WORKSPACE,
        M,
        "A managed network is provisioned when the workspace is created.",
        "set provision_network_now=True on the workspace",
        _provisioned_at_create,
        facts=(2,),
        source=f"{MANAGED_NETWORK_SOURCE}, Manually provision a managed VNet",
    ),
    rule(
        "workspace-managed-network-batch-outbound",
        t.ML_WORKSPACE,
        M,
        "Approved-outbound-only managed networks reach the default storage's queues and tables.",
        'add managed_network.outbound_rules of type "PrivateEndpoint" to the storage account with '
        'subresource_target "queue" and "table"',
        _batch_outbound_rules,
        facts=(9,),
        source=f"{MANAGED_NETWORK_SOURCE}, Scenario: Use batch endpoints or ParallelRunStep",
    ),
    rule(
        "workspace-no-customer-managed-keys",
        t.ML_WORKSPACE,
        M,
        "The workspace does not use customer-managed keys, which batch deployments do not support.",
        "leave encryption unset (Microsoft-managed keys)",
        _no_customer_managed_keys,
        facts=(31,),
        source="how-to-secure-batch-endpoint.md, Limitations",
    ),
    rule(
        "compute-no-node-public-ip",
        t.ML_COMPUTE,
        M,
        "Compute cluster nodes have no public IP.",
        "set properties.properties.enable_node_public_ip=False and place the cluster in a subnet",
        aml_compute(require("properties.properties.enableNodePublicIp", False, "nodes get public IPs")),
        network_isolation=True,
    ),
    rule(
        "compute-ssh-disabled",
        t.ML_COMPUTE,
        M,
        "No SSH port is open on compute cluster nodes.",
        'set properties.properties.remote_login_port_public_access="Disabled"',
        aml_compute(require("properties.properties.remoteLoginPortPublicAccess", "Disabled", "SSH is open")),
    ),
    rule(
        "compute-local-auth-disabled",
        t.ML_COMPUTE,
        M,
        "Compute uses Entra ID, not local keys.",
        "set properties.disable_local_auth=True",
        aml_compute(require("properties.disableLocalAuth", True, "local authentication is on")),
    ),
)

STACK_RULES: tuple[StackRule, ...] = (
    StackRule(
        "compute-network-isolated",
        "Compute clusters run in the platform VNET or the workspace's managed network.",
        M,
        "set properties.properties.subnet to the training subnet, or give the workspace a managed network "
        "(managed_network.isolation_mode AllowOnlyApprovedOutbound)",
        _compute_network_isolated,
        network_isolation=True,
    ),
    StackRule(
        "managed-network-compute-placement",
        "A workspace with a managed network has no Kubernetes or attached VM compute, and no cluster in your subnet.",
        M,
        "use isolationDesign=customerVnet (workspace isolation Disabled, private endpoints, compute in the training "
        "subnet) for AKS inference, or drop the Kubernetes compute (enableAks=false) and serve on managed online "
        "endpoints",
        _managed_network_compute,
        facts=(1,),
        source=f"{MANAGED_NETWORK_SOURCE}, Limitations",
    ),
    StackRule(
        "workspace-image-build-compute",
        "A workspace that is private, or whose storage or registry is, builds images on one of its compute clusters.",
        M,
        "set image_build_compute to the name of the workspace's CPU compute cluster",
        _image_build_compute,
        facts=(24,),
        source="how-to-secure-workspace-vnet.md, Limitations (Azure Container Registry); "
        f"{MANAGED_NETWORK_SOURCE}, Configure image builds",
    ),
    StackRule(
        "private-workspace-kubernetes-requirements",
        "A private workspace with Kubernetes compute has a system identity, AKS in its region and storage open to "
        "trusted services.",
        M,
        'keep identity type "SystemAssigned", create AKS in the workspace\'s location and set the storage '
        'account\'s network_rule_set.bypass="AzureServices"',
        _private_aks_workspace,
        facts=(24,),
        source="how-to-secure-kubernetes-inferencing-environment.md, Limitations and special notes",
    ),
    StackRule(
        "private-workspace-batch-network",
        "Batch in a private workspace of your VNet: blob, file, queue and table private endpoints, compute in the "
        "VNet.",
        M,
        "add storage private endpoints for all four sub-resources and place the compute cluster in the training subnet",
        _private_batch_storage,
        facts=(31,),
        source="how-to-secure-batch-endpoint.md, Securing batch endpoints and Securing batch deployment jobs",
    ),
)
