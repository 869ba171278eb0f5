"""AKS and Azure ML extension rules: cluster security, what the extension supports, inference routing and TLS."""

from __future__ import annotations

import base64
import binascii
from typing import Any, Iterator, Mapping

from . import types as t
from .azure import (
    MIN_NODES_FOR_ROUTER_HA,
    OUTBOUND_LOAD_BALANCER,
    OUTBOUND_MANAGED_NAT_GATEWAYS,
    OUTBOUND_USER_DEFINED_ROUTING,
    OUTBOUND_USER_NAT_GATEWAY,
    TRUSTED_ACCESS_ML_ROLE,
    Extension,
)
from .core import A, M, Rule, StackRule, Subject, Violation, require, rule
from .graph import PlannedResource, Stack
from .network import aks_outbound_type
from .values import SECRET_MASK, UNKNOWN, as_list, as_map, get, known, truthy

EXTENSION_SOURCE = "how-to-deploy-kubernetes-extension.md"
CLI_SOURCE = (
    "Azure/azure-cli-extensions src/k8s-extension/azext_k8s_extension/partner_extensions/AzureMLKubernetes.py; "
    "Azure/AML-Kubernetes files/deployextension.json"
)


def is_azureml_extension(props: Any) -> bool:
    return str(get(props, "extensionType") or "").lower() == Extension.TYPE.lower()


def settings(props: Any) -> Mapping[str, Any]:
    return as_map(get(props, "configurationSettings"))


def inference_on(props: Any) -> bool:
    return is_azureml_extension(props) and truthy(settings(props).get(Extension.ENABLE_INFERENCE))


def tls_on(props: Any) -> bool:
    return inference_on(props) and not truthy(settings(props).get(Extension.ALLOW_INSECURE))


def _managed_identity(subject: Subject) -> str | None:
    kind = str(get(subject.props, "identity.type") or "")
    if kind in ("SystemAssigned", "UserAssigned"):
        return None
    return f"the cluster has no managed identity (`identity.type` is {kind or None!r})"


def _aks_rbac(subject: Subject) -> str | None:
    managed = get(subject.props, "aadProfile.managed") is True
    azure_rbac = get(subject.props, "aadProfile.enableAzureRBAC") is True
    if managed and azure_rbac:
        return None
    return f"Kubernetes authorization is not Entra ID + Azure RBAC (aadProfile.managed={managed}, enableAzureRBAC={azure_rbac})"


def _network_policy(subject: Subject) -> str | None:
    policy = get(subject.props, "networkProfile.networkPolicy")
    if policy in ("azure", "calico", "cilium"):
        return None
    return f"`networkProfile.networkPolicy` is {policy!r}, pods can reach each other unrestricted"


def _node_public_ip(subject: Subject) -> str | None:
    pools = [
        p.get("name") for p in as_list(subject.props.get("agentPoolProfiles")) if p.get("enableNodePublicIP")
    ]
    return f"node pools {pools} give nodes public IPs" if pools else None


def _private_cluster_public_fqdn(subject: Subject) -> str | None:
    if get(subject.props, "apiServerAccessProfile.enablePrivateCluster") is not True:
        return None
    fqdn = get(subject.props, "apiServerAccessProfile.enablePrivateClusterPublicFQDN")
    if fqdn is False:
        return None
    return (
        f"the private cluster's public FQDN is not turned off (`enablePrivateClusterPublicFQDN` is {fqdn!r})"
    )


def _internal_inference(subject: Subject) -> str | None:
    if not is_azureml_extension(subject.props):
        return None
    values = settings(subject.props)
    router = str(values.get(Extension.ROUTER_SERVICE_TYPE) or "")
    provider = values.get(Extension.ILB_PROVIDER)
    if router.lower() == "loadbalancer" and provider == "azure":
        return None
    return (
        f"the inference router is exposed: {Extension.ROUTER_SERVICE_TYPE}={router or None!r}, "
        f"{Extension.ILB_PROVIDER}={provider!r} (need loadBalancer + azure)"
    )


def _cli_derived_settings(subject: Subject) -> str | None:
    """What `az k8s-extension create` adds before its ARM call, which an ARM install must send itself."""
    if not is_azureml_extension(subject.props):
        return None
    values = settings(subject.props)
    problems = []
    namespace = get(subject.props, "scope.cluster.releaseNamespace")
    if namespace != Extension.RELEASE_NAMESPACE:
        problems.append(
            f"cluster-scoped release namespace is {namespace!r}, must be {Extension.RELEASE_NAMESPACE!r}"
        )
    cluster = subject.props.get("clusterName")
    for key in (Extension.CLUSTER_NAME, Extension.CLUSTER_ID):
        value = str(values.get(key) or "")
        if value == UNKNOWN:  # the cluster's id, computed during the update: right by construction
            continue
        if not value or (
            known(cluster) and not value.lower().endswith(f"/managedclusters/{str(cluster).lower()}")
        ):
            problems.append(f"{key} is {value or None!r}, must be the cluster's resource id")
    problems += [
        f"{key} is not set"
        for key in (Extension.LOCATION, Extension.JOB_SCHEDULER_LOCATION)
        if not values.get(key)
    ]
    if subject.props.get("clusterResourceName") == "managedClusters":
        problems += [
            f"{key} is {values.get(key)!r}, must be {expected!r}"
            for key, expected in Extension.FIXED_FOR_AKS.items()
            if str(values.get(key)).lower() != expected
        ]
    if values.get(Extension.ILB_PROVIDER) == "azure" and not truthy(values.get(Extension.SCORING_ILB)):
        problems.append(f"{Extension.ILB_PROVIDER}=azure without {Extension.SCORING_ILB}=true")
    return f"settings the az CLI would derive are missing: {'; '.join(problems)}" if problems else None


def _tls(subject: Subject) -> str | None:
    if not inference_on(subject.props):
        return None
    values = settings(subject.props)
    if not tls_on(subject.props):
        if subject.environment == "prod":
            return f"{Extension.ALLOW_INSECURE}=True serves prod scoring over plain HTTP (for development or test only)"
        return None
    protected = subject.props.get("configurationProtectedSettings")
    pem_keys = (Extension.SCORING_SSL_CERT, Extension.SCORING_SSL_KEY)
    cert_files = protected == SECRET_MASK or set(pem_keys) <= set(as_map(protected))
    secret = values.get(Extension.SCORING_SSL_SECRET) or values.get(Extension.SSL_SECRET)
    problems = []
    if not values.get(Extension.SSL_CNAME):
        problems.append(f"{Extension.SSL_CNAME} is not set")
    if not (cert_files or secret):
        problems.append(f"no certificate: neither protected {'/'.join(pem_keys)} nor {Extension.SSL_SECRET}")
    problems += [f"{key} is in the plain configurationSettings" for key in pem_keys if key in values]
    problems += [
        f"{key} is not base64 of a PEM file, as the az CLI sends it"
        for key in pem_keys
        if not _base64_pem(as_map(protected).get(key))
    ]
    return f"HTTPS inference is on but {' and '.join(problems)}" if problems else None


def _base64_pem(value: Any) -> bool:
    """Whether a protected setting is a base64-encoded PEM (masked or absent values cannot be judged here)."""
    if not isinstance(value, str) or not known(value):
        return True
    try:
        return base64.b64decode(value, validate=True).lstrip().startswith(b"-----BEGIN ")
    except (binascii.Error, ValueError):
        return False


def extensions_on(stack: Stack, cluster: PlannedResource) -> list[PlannedResource]:
    """The Azure ML extensions installed on a planned cluster."""
    return [
        extension
        for extension in stack.of_type(t.K8S_EXTENSION)
        if is_azureml_extension(extension.props)
        and cluster
        in stack.named(t.AKS, extension.props.get("clusterName"), extension.props.get("resourceGroupName"))
    ]


def pools_of(stack: Stack, cluster: PlannedResource) -> list[Mapping[str, Any]]:
    """The cluster's node pools: inline profiles and separately declared AgentPool resources."""
    separate = [
        pool.props
        for pool in stack.of_type(t.AKS_AGENT_POOL)
        if cluster in stack.named(t.AKS, pool.props.get("resourceName"), pool.props.get("resourceGroupName"))
    ]
    return [*as_list(cluster.props.get("agentPoolProfiles")), *separate]


def node_count(pools: list[Mapping[str, Any]]) -> int:
    """Nodes the pools keep at their smallest: `minCount` when autoscaling, else `count` (ARM's default 1)."""
    total = 0
    for pool in pools:
        size = pool.get("minCount") if truthy(pool.get("enableAutoScaling")) else pool.get("count")
        total += int(size) if isinstance(size, (int, float)) else 1
    return total


def _local_accounts(stack: Stack) -> Iterator[Violation]:
    for cluster in stack.of_type(t.AKS):
        if cluster.props.get("disableLocalAccounts") is True and extensions_on(stack, cluster):
            yield Violation(
                cluster,
                f"AKS cluster {cluster.name} has local accounts disabled, which the Azure ML extension does not support",
            )


def _router_ha(stack: Stack) -> Iterator[Violation]:
    for cluster in stack.of_type(t.AKS):
        nodes = node_count(pools_of(stack, cluster))
        for extension in extensions_on(stack, cluster):
            ha = settings(extension.props).get(Extension.ROUTER_HA)
            if (
                inference_on(extension.props)
                and (ha is None or truthy(ha))
                and nodes < MIN_NODES_FOR_ROUTER_HA
            ):
                yield Violation(
                    extension,
                    f"{Extension.ROUTER_HA} is {'on by default' if ha is None else ha!r} on {cluster.name}, which has "
                    f"{nodes} node(s): azureml-fe needs {MIN_NODES_FOR_ROUTER_HA} and stays pending (E40002)",
                )


def _outbound_type(stack: Stack) -> Iterator[Violation]:
    for cluster in stack.of_type(t.AKS):
        outbound = aks_outbound_type(cluster)
        for pool in pools_of(stack, cluster):
            for subnet in stack.subnet_of(cluster, "agentPoolProfiles", pool.get("vnetSubnetID")):
                problem = _outbound_mismatch(outbound, subnet)
                if problem:
                    yield Violation(cluster, f"AKS cluster {cluster.name}: {problem}")


def _outbound_mismatch(outbound: str, subnet: PlannedResource) -> str | None:
    nat = bool(get(subnet.props, "natGateway.id"))
    route = bool(get(subnet.props, "routeTable.id"))
    name = subnet.arm_name
    if outbound == OUTBOUND_USER_NAT_GATEWAY and not nat:
        return f"outbound type {outbound} but node subnet {name} has no NAT gateway"
    if outbound == OUTBOUND_USER_DEFINED_ROUTING and not route:
        return f"outbound type {outbound} but node subnet {name} has no route table"
    if outbound in OUTBOUND_MANAGED_NAT_GATEWAYS:
        return f"outbound type {outbound} does not work with your own subnet ({name})"
    if outbound == OUTBOUND_LOAD_BALANCER and nat:
        return (
            f"outbound type {outbound} creates a public IP for egress, but node subnet {name} egresses through its "
            f"NAT gateway: use {OUTBOUND_USER_NAT_GATEWAY}"
        )
    return None


def trusted_access_needed(cluster: PlannedResource) -> list[str]:
    """Why Azure ML needs Trusted Access to reach the cluster's API server (empty when it does not)."""
    access = as_map(cluster.props.get("apiServerAccessProfile"))
    reasons = []
    if cluster.props.get("disableLocalAccounts") is True:
        reasons.append("local accounts are disabled")
    if as_list(access.get("authorizedIPRanges")):
        reasons.append("the API server has authorized IP ranges")
    if access.get("enablePrivateCluster") is True and access.get("enablePrivateClusterPublicFQDN") is True:
        reasons.append("the private cluster has a public FQDN")
    return reasons


def _trusted_access(stack: Stack) -> Iterator[Violation]:
    for cluster in stack.of_type(t.AKS):
        bindings = [
            b
            for b in stack.of_type(t.TRUSTED_ACCESS)
            if cluster in stack.named(t.AKS, b.props.get("resourceName"), b.props.get("resourceGroupName"))
            and TRUSTED_ACCESS_ML_ROLE in as_list(b.props.get("roles"))
        ]
        attached = any(
            cluster in stack.targets(c, "properties", [t.AKS], get(c.props, "properties.resourceId"))
            for c in stack.of_type(t.ML_COMPUTE)
            if get(c.props, "properties.computeType") == "Kubernetes"
        )
        reasons = trusted_access_needed(cluster)
        if reasons and attached and not bindings:
            yield Violation(
                cluster,
                f"Azure ML needs Trusted Access to {cluster.name} ({', '.join(reasons)}) and has none",
            )
        for binding in bindings if not reasons else []:
            yield Violation(
                binding,
                f"Trusted Access binding {binding.name} on {cluster.name} is not needed: the cluster keeps local accounts, "
                "has no authorized IP ranges and no public FQDN",
            )


def record_fqdn(record: PlannedResource) -> str:
    relative = str(record.props.get("relativeRecordSetName") or "@")
    zone = str(record.props.get("privateZoneName") or "")
    return (zone if relative == "@" else f"{relative}.{zone}").lower()


def scoring_hosts(stack: Stack) -> Iterator[tuple[PlannedResource, str]]:
    """(extension, sslCname) of every HTTPS inference router."""
    for extension in stack.of_type(t.K8S_EXTENSION):
        cname = str(settings(extension.props).get(Extension.SSL_CNAME) or "").lower().rstrip(".")
        if tls_on(extension.props) and cname:
            yield extension, cname


def _zone_holds(zone: str, host: str) -> bool:
    return host == zone or host.endswith(f".{zone}")


def _scoring_zone(stack: Stack) -> Iterator[Violation]:
    linked = {
        str(link.props.get("privateZoneName") or "").lower() for link in stack.of_type(t.PRIVATE_DNS_LINK)
    }
    for extension, cname in scoring_hosts(stack):
        zones = [
            str(zone.props.get("privateZoneName") or "").lower()
            for zone in stack.of_type(t.PRIVATE_DNS_ZONE)
            if _zone_holds(str(zone.props.get("privateZoneName") or "").lower(), cname)
        ]
        if not set(zones) & linked:
            yield Violation(
                extension,
                f"the scoring host {cname} is in no private DNS zone linked to the VNet: the scoring URI "
                "https://<sslCname>/api/v1/endpoint/<name>/score resolves nowhere inside it",
            )


def _scoring_record(stack: Stack) -> Iterator[Violation]:
    for extension, cname in scoring_hosts(stack):
        records = [
            r
            for r in stack.of_type(t.PRIVATE_DNS_RECORD)
            if r.props.get("recordType") == "A"
            and record_fqdn(r) == cname
            and as_list(r.props.get("aRecords"))
        ]
        if not records:
            yield Violation(
                extension,
                f"the scoring host {cname} has no A record to the inference load balancer's IP yet",
            )


RULES: tuple[Rule, ...] = (
    rule(
        "aks-managed-identity",
        t.AKS,
        M,
        "The AKS cluster runs with a managed identity (Azure ML does not support service principals).",
        'set identity=ManagedClusterIdentityArgs(type="SystemAssigned")',
        _managed_identity,
        facts=(25,),
        source=f"{EXTENSION_SOURCE}, Limitations",
    ),
    rule(
        "aks-azure-rbac",
        t.AKS,
        M,
        "Kubernetes access is Entra ID + Azure RBAC.",
        "set aad_profile=ManagedClusterAADProfileArgs(managed=True, enable_azure_rbac=True)",
        _aks_rbac,
    ),
    rule(
        "aks-network-policy",
        t.AKS,
        M,
        "Pod traffic is governed by a network policy engine.",
        'set network_profile.network_policy="azure" (or calico/cilium)',
        _network_policy,
    ),
    rule(
        "aks-private-api-server",
        t.AKS,
        M,
        "The Kubernetes API server has no public endpoint.",
        "set api_server_access_profile.enable_private_cluster=True (prod profile)",
        require("apiServerAccessProfile.enablePrivateCluster", True, "the API server is public"),
        network_isolation=True,
    ),
    rule(
        "aks-private-cluster-no-public-fqdn",
        t.AKS,
        M,
        "A private cluster exposes no public FQDN (Azure ML does not support one).",
        "set api_server_access_profile.enable_private_cluster_public_fqdn=False",
        _private_cluster_public_fqdn,
        facts=(25,),
        source="how-to-secure-kubernetes-inferencing-environment.md, Limitations",
    ),
    rule(
        "aks-no-node-public-ip",
        t.AKS,
        M,
        "AKS nodes have no public IP.",
        "set enable_node_public_ip=False on every agent pool profile",
        _node_public_ip,
    ),
    rule(
        "aks-inference-internal-load-balancer",
        t.K8S_EXTENSION,
        M,
        "AML inference is served on an internal load balancer.",
        f'set configuration_settings {Extension.ROUTER_SERVICE_TYPE}="loadBalancer", {Extension.ILB_PROVIDER}="azure"',
        _internal_inference,
    ),
    rule(
        "aks-extension-cli-settings",
        t.K8S_EXTENSION,
        M,
        "An ARM install of the Azure ML extension sends what the az CLI derives before its own ARM call.",
        f"set configuration_settings {Extension.CLUSTER_NAME} and {Extension.CLUSTER_ID} (the cluster id), "
        f"{Extension.LOCATION} and {Extension.JOB_SCHEDULER_LOCATION} (its region), {Extension.RELAY_ENABLED}=false, "
        f"{Extension.SERVICE_BUS_ENABLED}=false, {Extension.NGINX_INGRESS_ENABLED}=true, "
        f"{Extension.SCORING_ILB}=true with the internal load balancer, and "
        f'scope=ScopeArgs(cluster=ScopeClusterArgs(release_namespace="{Extension.RELEASE_NAMESPACE}"))',
        _cli_derived_settings,
        facts=(26,),
        source=f"{CLI_SOURCE}; hashicorp/terraform-provider-azurerm#24547",
    ),
    rule(
        "aks-extension-tls",
        t.K8S_EXTENSION,
        M,
        "Prod inference is HTTPS; HTTPS has its sslCname and certificate.",
        f"set {Extension.ALLOW_INSECURE}=False with {Extension.SSL_CNAME} and the PEM certificate and key, base64, as "
        f"protected settings {Extension.SCORING_SSL_CERT}/{Extension.SCORING_SSL_KEY} (insecure only in dev)",
        _tls,
        facts=(13,),
        source=f"{EXTENSION_SOURCE}, Review Azure Machine Learning extension configuration settings",
    ),
    rule(
        "aks-trusted-access-scoped",
        t.TRUSTED_ACCESS,
        M,
        "The workspace's trusted access to AKS uses its ML role only.",
        f'set roles=["{TRUSTED_ACCESS_ML_ROLE}"]',
        lambda subject: _trusted_access_roles(subject.props.get("roles")),
    ),
)


def _trusted_access_roles(roles: Any) -> str | None:
    roles = as_list(roles)
    foreign = [
        role for role in roles if not str(role).startswith("Microsoft.MachineLearningServices/workspaces/")
    ]
    return (
        None
        if roles and not foreign
        else f"roles {foreign or roles} reach beyond the AML workspace's workload role"
    )


STACK_RULES: tuple[StackRule, ...] = (
    StackRule(
        "aks-extension-local-accounts",
        "A cluster with the Azure ML extension keeps its local accounts.",
        M,
        "leave disable_local_accounts unset or False (Azure RBAC on Entra ID still governs users)",
        _local_accounts,
        facts=(11,),
        source=f"{EXTENSION_SOURCE}, Limitations",
    ),
    StackRule(
        "aks-inference-router-ha-nodes",
        "The highly available inference router runs only on clusters of three or more nodes.",
        M,
        f"set {Extension.ROUTER_HA}=False below {MIN_NODES_FOR_ROUTER_HA} nodes, or run "
        f"{MIN_NODES_FOR_ROUTER_HA} or more",
        _router_ha,
        facts=(12,),
        source=f"{EXTENSION_SOURCE}, Review Azure Machine Learning extension configuration settings",
    ),
    StackRule(
        "aks-outbound-type-matches-subnet",
        "The cluster's outbound type matches how its node subnets reach the internet.",
        M,
        f"with a NAT gateway on the node subnet use network_profile.outbound_type={OUTBOUND_USER_NAT_GATEWAY}; "
        f"{OUTBOUND_USER_DEFINED_ROUTING} needs a route table",
        _outbound_type,
        facts=(4,),
        source="egress-outboundtype.md, Outbound types in AKS, and nat-gateway.md, Before you begin (azure-docs, aks)",
    ),
    StackRule(
        "aks-trusted-access-where-needed",
        "Trusted Access for Azure ML is declared exactly where the cluster needs it.",
        M,
        "declare a TrustedAccessRoleBinding with the mlworkload role only for clusters with local accounts off, "
        "authorized IP ranges, or a private cluster with a public FQDN; remove it elsewhere",
        _trusted_access,
        facts=(27,),
        source="Azure/AML-Kubernetes docs/azureml-aks-ta-support.md",
    ),
    StackRule(
        "aks-scoring-dns-zone",
        "The HTTPS scoring host has its private DNS zone, linked to the VNet: you own that name.",
        M,
        "declare a private DNS zone holding the sslCname (the host itself, or its domain) and link it to the VNet",
        _scoring_zone,
        facts=(28,),
        source="how-to-secure-kubernetes-online-endpoint.md, Update your DNS with an FQDN; Azure/AML-Kubernetes#196",
    ),
    StackRule(
        "aks-scoring-dns-record",
        "The HTTPS scoring host's A record points at the inference load balancer. Advisory: azureml-fe gets its "
        "internal IP from the AKS subnet only after the extension runs (the extension cannot pin it), so the "
        "first `pulumi up` cannot hold it.",
        A,
        "after the first `pulumi up`, read the IP of the azureml-fe service (EXTERNAL-IP of `kubectl get svc "
        "azureml-fe -n azureml`) into config inferenceLoadBalancerIp and run `pulumi up` again",
        _scoring_record,
        source="how-to-secure-kubernetes-online-endpoint.md, Update your DNS with an FQDN",
    ),
)
