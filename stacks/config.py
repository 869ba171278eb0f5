"""Parse and validate stack config into a StackConfig, reporting every problem in one pass."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from stacks.designs import DESIGNS, MANAGED_VNET_AKS_REFUSAL, design_plan
from stacks.inference_tls import certificate_problems, hostname_problem, self_signed_pem
from stacks.model import (
    AgentVmSettings,
    AksSettings,
    AlertSettings,
    ComputeSettings,
    DevOpsSettings,
    InferenceTls,
    ModelRegistrySettings,
    SECRET_MASK,
    NetworkSettings,
    PrometheusSettings,
    Secret,
    StackConfig,
)
from stacks.naming import derive_names, max_namespace_length, monitoring_names, name_problems
from stacks.profiles import PROFILES
from stacks.regions import AML_REGIONS
from stacks.schema import KEYS_BY_NAME, PROJECT, unset_marker

VM_SIZE = re.compile(r"^(Standard|Basic)_[A-Z][A-Za-z0-9]*(_[A-Za-z0-9]+)*$")
NAMESPACE = re.compile(r"^[a-z][a-z0-9]*$")
POSTFIX = re.compile(r"^[0-9]{1,6}$")
SSH_KEY = re.compile(r"^(ssh-rsa|ssh-ed25519|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+={0,3}( \S.*)?$")
GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# GitHub names: owner up to 39 letters, digits or hyphens; repository up to 100 of letters, digits, . _ -.
GITHUB_REPOSITORY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}$")
DEVOPS_ORG = re.compile(r"^https://dev\.azure\.com/[A-Za-z0-9][A-Za-z0-9-]{0,48}/?$")
SERVICE_CONNECTION_AUTHS = ("WorkloadIdentityFederation", "ServicePrincipal")
PRIORITIES = ("Dedicated", "LowPriority")
EMAIL = re.compile(r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")


@dataclass(frozen=True)
class Problem:
    """One invalid config value: which key, what was given, what is allowed."""

    key: str
    value: str | None
    message: str

    def __str__(self) -> str:
        given = "unset" if self.value is None else f"'{self.value}'"
        return f"{self.key} ({given}): {self.message}"


class ConfigError(Exception):
    """The stack config is invalid; raised before any resource is declared."""

    def __init__(self, problems: list[Problem], stack: str) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(
            f"stack '{stack}' has {len(problems)} config problem(s); nothing was deployed:\n{lines}\n"
            f"Fix with `pulumi config set <key> <value> --stack {stack}` (add --secret for secrets)."
        )


@dataclass
class _Reader:
    """Typed access to raw string config that records problems instead of stopping at the first one."""

    values: Mapping[str, str]
    secret_keys: frozenset[str]
    project: str
    problems: list[Problem] = field(default_factory=list)

    def key(self, name: str) -> str:
        return f"{self.project}:{name}"

    def raw(self, name: str) -> str | None:
        value = self.values.get(self.key(name))
        marker = unset_marker(KEYS_BY_NAME[name])
        return None if marker is not None and value == str(marker) else value

    def shown(self, name: str) -> str | None:
        value = self.raw(name)
        return SECRET_MASK if value is not None and KEYS_BY_NAME[name].secret else value

    def fail(self, name: str, message: str) -> None:
        self.problems.append(Problem(self.key(name), self.shown(name), message))

    def string(self, name: str, default: Any = None) -> Any:
        value = self.raw(name)
        if value is None:
            return default
        if KEYS_BY_NAME[name].secret and self.key(name) not in self.secret_keys:
            self.fail(
                name, "is a secret but was stored in plaintext; set it with `pulumi config set --secret`"
            )
        return value

    def integer(self, name: str, default: Any, low: int, high: int) -> int | None:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            self.fail(name, f"must be a whole number from {low} to {high}")
            return None
        if not low <= number <= high:
            self.fail(name, f"must be from {low} to {high}")
            return None
        return number

    def boolean(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        if value.lower() in ("true", "false"):
            return value.lower() == "true"
        self.fail(name, "must be true or false")
        return default

    def choice(self, name: str, default: str, allowed: tuple[str, ...]) -> str:
        value = self.raw(name)
        if value is None:
            return default
        if value not in allowed:
            self.fail(name, f"must be one of {', '.join(allowed)}")
            return default
        return value

    def string_list(self, name: str) -> tuple[str, ...]:
        value = self.raw(name)
        if value is None:
            return ()
        try:
            items = json.loads(value)
        except json.JSONDecodeError:
            items = None
        if not isinstance(items, list) or not all(
            isinstance(item, str) and GUID.match(item) for item in items
        ):
            self.fail(
                name,
                'must be a list of Azure DevOps user/group ids (GUIDs), e.g. ["<guid>"], as a YAML '
                "list in the stack file or `pulumi config set --path 'prodApprovers[0]' <guid>`",
            )
            return ()
        return tuple(items)


def parse_config(
    values: Mapping[str, str],
    *,
    stack: str,
    secret_keys: frozenset[str] = frozenset(),
    project: str = PROJECT,
) -> StackConfig:
    """Build the StackConfig for `stack` from `<project>:<key>` strings, or raise ConfigError listing all."""
    reader = _Reader(values, secret_keys, project)
    _check_unknown_keys(reader)
    environment = reader.choice("environment", stack, tuple(PROFILES))
    if environment not in PROFILES:
        reader.fail("environment", f"stack '{stack}' is not dev or prod: set environment to dev or prod")
        raise ConfigError(reader.problems, stack)
    profile = PROFILES[environment]  # type: ignore[index]
    namespace, postfix = _identity(reader, environment)
    location = _location(reader)
    owner = _owner(reader)
    public = reader.boolean("publicNetworkAccess", profile.public_network_access)
    if public and not profile.allow_public_network_access:
        reader.fail(
            "publicNetworkAccess", f"{environment} must not allow public network access; set it to false"
        )
    design = reader.choice("isolationDesign", profile.isolation_design, DESIGNS)
    # Whether the VNET gets private endpoints is the design plan's call, which needs the AKS switch first.
    network = _network(reader, private_endpoints=False)
    compute = _compute(reader, profile)
    aks = _aks(reader, profile, environment, design, network)
    plan = design_plan(
        design,  # type: ignore[arg-type]
        public_network_access=public,
        aks_enabled=aks is not None,
        managed_isolation_mode=profile.managed_network_isolation_mode,
    )
    shared_keys = reader.boolean("storageSharedKeyAccess", plan.storage_shared_key_default)
    if network is not None:
        network = dataclasses.replace(network, private_endpoints=plan.private_endpoints, design=plan.design)
    devops = _devops(reader)
    agent_vm = _agent_vm(reader, devops_enabled=devops is not None)
    retention = reader.integer("logRetentionDays", profile.log_retention_days, 30, 730)
    hook = reader.boolean("postDeployHook", False)
    alerts = _alerts(reader, profile)
    prometheus = _prometheus(
        reader, aks_enabled=aks is not None, grafana_name=_grafana_name(namespace, postfix, environment)
    )
    drift_threshold = _drift_threshold(reader)
    github = _github_repository(reader)
    registry = _model_registry(reader, profile.owns_model_registry)
    names = derive_names(namespace or "x", postfix or "0", environment)
    if namespace and postfix:
        _check_names(reader, names, postfix, environment)
    if reader.problems:
        raise ConfigError(reader.problems, stack)
    return StackConfig(
        project=project,
        stack=stack,
        environment=environment,  # type: ignore[arg-type]
        namespace=namespace,
        postfix=postfix,
        location=location,
        owner=owner,
        names=names,
        tags={"environment": environment, "project": project, "owner": owner, "managed-by": "pulumi"},
        public_network_access=public,
        protect_stateful=profile.protect_stateful,
        log_retention_days=retention,  # type: ignore[arg-type]
        storage_sku=profile.storage_sku,
        workspace_isolation_mode=plan.workspace_isolation_mode,
        network=network,  # type: ignore[arg-type]
        compute=compute,  # type: ignore[arg-type]
        aks=aks,
        agent_vm=agent_vm,
        devops=devops,
        post_deploy_hook=hook,
        alerts=alerts,
        prometheus=prometheus,
        drift_threshold=drift_threshold,
        isolation_design=plan.design,
        storage_shared_key_access=shared_keys,
        github_repository=github,
        model_registry=registry,
    )


def _check_unknown_keys(reader: _Reader) -> None:
    prefix = f"{reader.project}:"
    for key in sorted(reader.values):
        if key.startswith(prefix) and key[len(prefix) :] not in KEYS_BY_NAME:
            reader.problems.append(
                Problem(
                    key,
                    SECRET_MASK if key in reader.secret_keys else reader.values[key],
                    "is not a known config key (typo?); see the README config reference or Pulumi.yaml",
                )
            )


def _identity(reader: _Reader, environment: str) -> tuple[str, str]:
    postfix = reader.string("postfix", "001")
    if not POSTFIX.match(postfix):
        reader.fail("postfix", "must be 1-6 digits, e.g. 001")
        postfix = ""
    namespace = reader.string("namespace")
    limit = max_namespace_length(postfix or "001", environment)
    if namespace is None:
        reader.fail("namespace", f"is required: 2-{limit} lowercase letters/digits starting with a letter")
        return "", postfix
    if not NAMESPACE.match(namespace) or len(namespace) < 2:
        reader.fail(
            "namespace", f"must be 2-{limit} lowercase letters/digits starting with a letter (no hyphens)"
        )
        return "", postfix
    if len(namespace) > limit:
        reader.fail(
            "namespace",
            f"is {len(namespace)} characters; with postfix '{postfix}' and environment "
            f"'{environment}' at most {limit} fit every Azure name (storage account: 24)",
        )
        return "", postfix
    return namespace, postfix


def _location(reader: _Reader) -> str:
    location = reader.string("location", "westeurope")
    if location not in AML_REGIONS:
        reader.fail(
            "location",
            "must be an Azure region offering Azure ML, lowercase without spaces, "
            "e.g. westeurope, eastus2",
        )
    return location


def _owner(reader: _Reader) -> str:
    owner = reader.string("owner", "platform-team")
    if not owner or len(owner) > 256 or re.search(r"[<>%&\\?/]", owner):
        reader.fail("owner", "must be 1-256 characters without <>%&\\?/ (it becomes a tag value)")
    return owner


def _cidr(reader: _Reader, name: str) -> ipaddress.IPv4Network | None:
    value = reader.string(name, KEYS_BY_NAME[name].default)
    try:
        return ipaddress.IPv4Network(value, strict=True)
    except ValueError:
        reader.fail(name, "must be an IPv4 CIDR with no host bits set, e.g. 10.10.1.0/24")
        return None


def _network(reader: _Reader, private_endpoints: bool) -> NetworkSettings | None:
    space = _cidr(reader, "vnetAddressSpace")
    subnet_keys = ("trainingSubnet", "agentsSubnet", "privateEndpointsSubnet", "aksSubnet")
    subnets = {name: _cidr(reader, name) for name in subnet_keys}
    service = _cidr(reader, "aksServiceCidr")
    dns_ip = reader.string("aksDnsServiceIp", KEYS_BY_NAME["aksDnsServiceIp"].default)
    for name, subnet in subnets.items():
        if space and subnet and not subnet.subnet_of(space):
            reader.fail(name, f"must lie inside vnetAddressSpace {space}")
    placed = [(name, subnet) for name, subnet in subnets.items() if subnet]
    for index, (name, subnet) in enumerate(placed):
        for other_name, other in placed[index + 1 :]:
            if subnet.overlaps(other):
                reader.fail(other_name, f"overlaps {reader.key(name)} ({subnet}); subnets must not overlap")
    if service and space and service.overlaps(space):
        reader.fail("aksServiceCidr", f"overlaps vnetAddressSpace {space}; pick a range outside the VNET")
    if service:
        try:
            inside = ipaddress.IPv4Address(dns_ip) in service
        except ValueError:
            inside = False
        if not inside:
            reader.fail("aksDnsServiceIp", f"must be an IPv4 address inside aksServiceCidr {service}")
    if not (space and service and all(subnets.values())):
        return None
    return NetworkSettings(
        address_space=str(space),
        training_subnet=str(subnets["trainingSubnet"]),
        aks_subnet=str(subnets["aksSubnet"]),
        agents_subnet=str(subnets["agentsSubnet"]),
        private_endpoints_subnet=str(subnets["privateEndpointsSubnet"]),
        aks_service_cidr=str(service),
        aks_dns_service_ip=dns_ip,
        private_endpoints=private_endpoints,
    )


def _vm_size(reader: _Reader, name: str) -> str:
    value = reader.string(name, KEYS_BY_NAME[name].default)
    if not VM_SIZE.match(value):
        reader.fail(name, "must be an Azure VM size such as Standard_DS3_v2 or Standard_D4s_v5")
    return value


def _compute(reader: _Reader, profile: Any) -> ComputeSettings | None:
    vm_size = _vm_size(reader, "computeVmSize")
    low = reader.integer("computeMinNodes", 0, 0, 1000)
    high = reader.integer("computeMaxNodes", profile.compute_max_nodes, 1, 1000)
    idle = reader.integer("computeIdleSeconds", profile.compute_idle_seconds, 60, 604800)
    priority = reader.choice("computePriority", profile.compute_priority, PRIORITIES)
    if low is not None and high is not None and low > high:
        reader.fail("computeMinNodes", f"must not exceed computeMaxNodes ({high})")
    if low is None or high is None or idle is None:
        return None
    return ComputeSettings(vm_size, low, high, idle, priority, ssh_enabled=False)  # type: ignore[arg-type]


def _aks(
    reader: _Reader, profile: Any, environment: str, design: str, network: NetworkSettings | None
) -> AksSettings | None:
    enabled = reader.boolean("enableAks", True)
    vm_size = _vm_size(reader, "aksNodeVmSize")
    count = reader.integer("aksNodeCount", profile.aks_node_count, 1, 100)
    if enabled and design == "managedVnet":
        reader.fail("isolationDesign", MANAGED_VNET_AKS_REFUSAL)
    if not enabled or design == "managedVnet":
        return None  # like the other switches: the keys of a part that is off are not read
    tls = _inference_tls(reader, required=profile.inference_tls_required, environment=environment)
    load_balancer_ip = _load_balancer_ip(reader, network)
    if count is None:
        return None
    return AksSettings(
        vm_size, count, private_cluster=profile.private_aks_api, tls=tls, load_balancer_ip=load_balancer_ip
    )


def _inference_tls(reader: _Reader, *, required: bool, environment: str) -> InferenceTls | None:
    """TLS of the inference router (AZURE-FACTS 13): all three values or none, and all three in prod."""
    names = ("inferenceSslCname", "inferenceSslCertPem", "inferenceSslKeyPem")
    values = {name: reader.string(name) for name in names}
    missing = [name for name, value in values.items() if not value]
    if missing and (required or len(missing) < len(names)):
        why = (
            f"{environment} serves inference over TLS only (AZURE-FACTS 13: allowInsecureConnections is for "
            "dev/test, and TLS needs sslCname with its certificate and key)"
            if required
            else "TLS needs the host name, its certificate and its key together"
        )
        for name in missing:
            reader.fail(name, f"is required: {why}; set it (certificate and key with --secret)")
        return None
    if missing:
        return None
    host, cert, key = (str(values[name]) for name in names)
    problem = hostname_problem(host)
    if problem:
        reader.fail("inferenceSslCname", problem)
    elif not _offline_stand_in(reader, "inferenceSslCertPem", cert) and not _offline_stand_in(
        reader, "inferenceSslKeyPem", key
    ):
        cert_problems, key_problems = certificate_problems(cert, key, host)
        for message in cert_problems:
            reader.fail("inferenceSslCertPem", message)
        for message in key_problems:
            reader.fail("inferenceSslKeyPem", message)
    return InferenceTls(host, Secret(cert), Secret(key))


def _offline_stand_in(reader: _Reader, name: str, value: str) -> bool:
    # `stacks plan` cannot decrypt `secure:` values and hands the program this stand-in (stacks/plan.py);
    # a real deployment gets the decrypted PEM, which is checked.
    return value == f"stand-in-for-{reader.key(name)}"


def _load_balancer_ip(reader: _Reader, network: NetworkSettings | None) -> str | None:
    value = reader.string("inferenceLoadBalancerIp")
    if value is None or network is None:
        return value
    subnet = ipaddress.IPv4Network(network.aks_subnet)
    try:
        address = ipaddress.IPv4Address(value)
    except ValueError:
        address = None
    # Azure keeps the network address, the next three and the broadcast address of every subnet.
    reserved = {subnet.network_address + offset for offset in range(4)} | {subnet.broadcast_address}
    if address is None or address not in subnet or address in reserved:
        reader.fail(
            "inferenceLoadBalancerIp",
            f"must be the IPv4 address azureml-fe got inside aksSubnet {subnet} (Azure reserves the first "
            'four and the last address); read it with `az aks command invoke ... "kubectl get svc azureml-fe '
            '-n azureml"`',
        )
        return None
    return value


def _devops(reader: _Reader) -> DevOpsSettings | None:
    enabled = reader.boolean("enableDevops", False)
    auth = reader.choice("serviceConnectionAuth", "WorkloadIdentityFederation", SERVICE_CONNECTION_AUTHS)
    client_id = reader.string("servicePrincipalClientId")
    client_secret = reader.string("servicePrincipalSecret")
    approvers = reader.string_list("prodApprovers")
    org_url = reader.string("devopsOrgUrl")
    project = reader.string("devopsProject", "mlops")
    pat = reader.string("devopsPat")
    if not enabled:
        return None
    if org_url is None or not DEVOPS_ORG.match(org_url):
        reader.fail("devopsOrgUrl", "is required with enableDevops: https://dev.azure.com/<organization>")
    if not project or len(project) > 64 or re.search(r"[\\/:*?\"<>|;#$,'+=@%&]", project):
        reader.fail("devopsProject", "must be 1-64 characters without special characters")
    if not pat:
        reader.fail(
            "devopsPat", "is required with enableDevops: `pulumi config set --secret devopsPat <PAT>`"
        )
    if auth == "ServicePrincipal":
        if not client_id or not GUID.match(client_id):
            reader.fail(
                "servicePrincipalClientId",
                "is required with serviceConnectionAuth=ServicePrincipal: "
                "the application (client) id, a GUID",
            )
        if not client_secret:
            reader.fail(
                "servicePrincipalSecret",
                "is required with serviceConnectionAuth=ServicePrincipal " "(set with --secret)",
            )
    return DevOpsSettings(
        org_url=(org_url or "").rstrip("/"),
        project_name=project,
        pat=Secret(pat or ""),
        service_connection_auth=auth,  # type: ignore[arg-type]
        service_principal_client_id=client_id if auth == "ServicePrincipal" else None,
        service_principal_secret=Secret(client_secret)
        if auth == "ServicePrincipal" and client_secret
        else None,
        prod_approvers=approvers,
    )


def _object_ids(reader: _Reader, name: str) -> tuple[str, ...]:
    """Object ids granted a registry role: assign_role declares principalType ServicePrincipal."""
    return _json_strings(
        reader, name, GUID, "Entra object ids (GUIDs) of service principals or managed identities"
    )


def _model_registry(reader: _Reader, owner: bool) -> ModelRegistrySettings | None:
    enabled = reader.boolean("enableModelRegistry", True)
    writers, readers = (
        _object_ids(reader, "modelRegistryWriters"),
        _object_ids(reader, "modelRegistryReaders"),
    )
    regions = _registry_regions(reader)
    if not owner:
        given_keys = (
            ("modelRegistryWriters", writers),
            ("modelRegistryReaders", readers),
            ("modelRegistryRegions", regions),
        )
        for name, given in given_keys:
            if given:
                reader.fail(name, "is set on the stack that owns the registry (prod), which declares it")
    if not enabled:
        return None
    return ModelRegistrySettings(owner=owner, writers=writers, readers=readers, regions=regions)


def _registry_regions(reader: _Reader) -> tuple[str, ...]:
    value = reader.raw("modelRegistryRegions")
    if value is None:
        return ()
    try:
        regions = json.loads(value)
    except json.JSONDecodeError:
        regions = None
    if not isinstance(regions, list) or not all(
        isinstance(region, str) and region in AML_REGIONS for region in regions
    ):
        reader.fail(
            "modelRegistryRegions",
            'must be a list of Azure ML regions, lowercase without spaces, e.g. ["northeurope"]: the dev '
            "workspace's region when it is not prod's",
        )
        return ()
    return tuple(regions)


def _agent_vm(reader: _Reader, devops_enabled: bool) -> AgentVmSettings | None:
    enabled = reader.boolean("enableAgentVm", False)
    vm_size = _vm_size(reader, "agentVmSize")
    count = reader.integer("agentCount", 2, 1, 10)
    user = reader.string("agentAdminUsername", "azureuser")
    key = reader.string("agentSshPublicKey")
    if not enabled:
        return None
    if not devops_enabled:
        reader.fail("enableAgentVm", "needs enableDevops=true: the agents register into the DevOps pool")
    if not re.match(r"^[a-z_][a-z0-9_-]{0,31}$", user) or user in ("root", "admin", "administrator"):
        reader.fail(
            "agentAdminUsername", "must be a lowercase Linux user name (not root/admin), up to 32 chars"
        )
    if key is None or not SSH_KEY.match(key.strip()):
        reader.fail(
            "agentSshPublicKey",
            "is required with enableAgentVm: an OpenSSH public key "
            "('ssh-ed25519 AAAA...' or 'ssh-rsa AAAA...')",
        )
    if count is None:
        return None
    return AgentVmSettings(vm_size, count, user, (key or "").strip())


def _json_strings(reader: _Reader, name: str, pattern: re.Pattern[str], form: str) -> tuple[str, ...]:
    """A config list of strings each matching `pattern` (a YAML list in the stack file)."""
    value = reader.raw(name)
    if value is None:
        return ()
    try:
        items = json.loads(value)
    except json.JSONDecodeError:
        items = None
    if not isinstance(items, list) or not all(
        isinstance(item, str) and pattern.match(item) for item in items
    ):
        reader.fail(name, f"must be a list of {form}, as a YAML list in the stack file or "
                    f"`pulumi config set --path '{name}[0]' <value>`")  # fmt: skip
        return ()
    return tuple(items)


def _alerts(reader: _Reader, profile: Any) -> AlertSettings | None:
    enabled = reader.boolean("enableAlerts", profile.alerts_enabled)
    emails = _json_strings(reader, "alertEmails", EMAIL, 'email addresses, e.g. ["oncall@contoso.com"]')
    webhook = reader.string("alertWebhookUrl")
    severity = reader.integer("alertSeverity", profile.alert_severity, 0, 4)
    error_rate = reader.integer("alertErrorRatePercent", profile.alert_error_rate_percent, 1, 100)
    p99 = reader.integer("alertP99LatencyMs", profile.alert_p99_latency_ms, 10, 120000)
    quiet = reader.integer("alertNoTrafficMinutes", profile.alert_no_traffic_minutes, 5, 1440)
    cpu = reader.integer("alertNodeCpuPercent", 80, 1, 100)
    memory = reader.integer("alertNodeMemoryPercent", 85, 1, 100)
    if webhook is not None and not re.match(r"^https://[^\s/]+(/\S*)?$", webhook):
        reader.fail("alertWebhookUrl", "must be an https:// URL (the action group calls it with the alert)")
    if not enabled:
        return None
    if not emails and webhook is None:
        reader.fail("enableAlerts", "alerts need a receiver: set alertEmails (a list) or alertWebhookUrl")
    numbers = (severity, error_rate, p99, quiet, cpu, memory)
    if any(number is None for number in numbers):
        return None
    return AlertSettings(emails, Secret(webhook) if webhook else None, *numbers)  # type: ignore[arg-type]


def _grafana_name(namespace: str, postfix: str, environment: str) -> str:
    return monitoring_names(namespace or "x", postfix or "0", environment)["grafana"]


def _prometheus(reader: _Reader, aks_enabled: bool, grafana_name: str) -> PrometheusSettings | None:
    enabled = reader.boolean("enablePrometheusGrafana", False)
    admins = _json_strings(reader, "grafanaAdminObjectIds", GUID, "Entra object ids (GUIDs)")
    if not enabled:
        return None
    if not aks_enabled:
        reader.fail(
            "enablePrometheusGrafana", "needs enableAks=true: managed Prometheus scrapes the AKS cluster"
        )
    if len(grafana_name) > 23:
        reader.fail(
            "enablePrometheusGrafana",
            f"derived Grafana name '{grafana_name}' has {len(grafana_name)} characters; Azure allows 2-23: "
            "shorten namespace or postfix",
        )
    return PrometheusSettings(admins)


def _drift_threshold(reader: _Reader) -> float:
    raw = reader.string("driftThreshold", "0.1")
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 10:
        reader.fail(
            "driftThreshold", "must be a number above 0 and at most 10, e.g. 0.1 (Azure ML's default)"
        )
        return 0.1
    return value


def _github_repository(reader: _Reader) -> str | None:
    repository = reader.string("githubRepository")
    if repository is not None and not GITHUB_REPOSITORY.match(repository):
        reader.fail(
            "githubRepository",
            "must be <owner>/<repository> as on github.com, e.g. contoso/aml-platform (owner up to 39 "
            "letters, digits or hyphens; repository up to 100 letters, digits, '.', '_' or '-')",
        )
        return None
    return repository


def _check_names(reader: _Reader, names: Any, postfix: str, environment: str) -> None:
    for problem in name_problems(names):
        reader.fail(
            "namespace",
            f"derived {problem}; shorten namespace to at most "
            f"{max_namespace_length(postfix, environment)} characters",
        )


EXAMPLE_SCORING_HOST = "ml-scoring.taxi.contoso.com"
EXAMPLE_SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleKeyForTestsOnly0000000000000000000 ci@example"


def example_values(**overrides: str | None) -> dict[str, str]:
    """A complete, valid set of raw config values with every feature on (for tests and the demo)."""
    cert_pem, key_pem = self_signed_pem(EXAMPLE_SCORING_HOST)
    values = {
        "namespace": "taxi",
        "postfix": "001",
        "location": "westeurope",
        "owner": "ml-platform",
        "enableAks": "true",
        "enableDevops": "true",
        "devopsOrgUrl": "https://dev.azure.com/contoso",
        "devopsPat": "example-pat-value",
        "enableAgentVm": "true",
        "agentSshPublicKey": EXAMPLE_SSH_KEY,
        "prodApprovers": '["4f9c2b1e-7d3a-4e8b-9c5f-1a2b3c4d5e6f"]',
        "alertEmails": '["ml-oncall@contoso.com"]',
        "inferenceSslCname": EXAMPLE_SCORING_HOST,
        "inferenceSslCertPem": cert_pem,
        "inferenceSslKeyPem": key_pem,
    }
    values.update(overrides)
    return {f"{PROJECT}:{key}": value for key, value in values.items() if value is not None}


def example_config(environment: str = "dev", **overrides: str | None) -> StackConfig:
    """The StackConfig of `example_values` for the stack named `environment` (secrets flagged as such)."""
    values = example_values(**overrides)
    return parse_config(values, stack=environment, secret_keys=secret_keys_of(values))


def secret_keys_of(values: Mapping[str, str], project: str = PROJECT) -> frozenset[str]:
    """The keys of `values` that the schema marks secret (what `pulumi config set --secret` would flag)."""
    prefix = f"{project}:"
    return frozenset(
        key
        for key in values
        if key.startswith(prefix) and getattr(KEYS_BY_NAME.get(key[len(prefix) :]), "secret", False)
    )


__all__ = ["ConfigError", "Problem", "parse_config", "example_config", "example_values", "secret_keys_of"]
