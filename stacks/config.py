"""Parse and validate stack config into a StackConfig: every problem found in one pass, before any resource.

The pass has three layers, so that adding a key with its rules stays a local change:
1. keys: every config key is known (else "did you mean"), in a namespace something reads;
2. values: each schema key's value against its own form (stacks/schema.py `form=`, stacks/forms.py);
3. sections: rules between keys and the environment profile, one small function per part of the
   platform (`_network`, `_devops`, ...), which build that part's typed settings.
Then placeholders (refused for a real deployment, warned about offline) and keys that have no effect
(warned about, with `pulumi config rm`). A new key: append a ConfigKey with its form to stacks/schema.py,
read it in the section that uses it with `reader.value(name, default)`, and report cross-key rules there
with `reader.fail(name, message)`; tests/test_config.py asks for a bad value of every key.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from stacks.addresses import (
    AddressPlan,
    capacity_problems,
    load_balancer_problems,
    service_problems,
    vnet_problems,
)
from stacks.designs import MANAGED_VNET_AKS_REFUSAL, DesignPlan, design_plan
from stacks.forms import FormError, shown_value
from stacks.inference_tls import certificate_problems, self_signed_pem
from stacks.model import (
    AgentVmSettings,
    AksSettings,
    AlertSettings,
    ComputeSettings,
    DevOpsSettings,
    InferenceTls,
    ModelRegistrySettings,
    NetworkSettings,
    PrometheusSettings,
    Secret,
    StackConfig,
)
from stacks.naming import derive_names, max_namespace_length, monitoring_names, name_problems
from stacks.plan import STAND_IN_PREFIX
from stacks.profiles import PROFILES, Profile
from stacks.regions import AML_REGIONS
from stacks.schema import DESIGN, KEYS, KEYS_BY_NAME, PROFILE, PROJECT

# Namespaces a stack file may carry: the project's, the providers the program uses, and Pulumi's own.
AZURE_NATIVE = "azure-native"
AZURE_DEVOPS = "azuredevops"
# The azure-native provider's config keys (pulumi_azure_native/config/vars.py; a test keeps them equal).
AZURE_NATIVE_KEYS = frozenset(
    {
        "auxiliaryTenantIds",
        "clientCertificatePassword",
        "clientCertificatePath",
        "clientId",
        "clientSecret",
        "disableInstanceDiscovery",
        "disablePulumiPartnerId",
        "environment",
        "location",
        "metadataHost",
        "msiEndpoint",
        "oidcRequestToken",
        "oidcRequestUrl",
        "oidcToken",
        "oidcTokenFilePath",
        "partnerId",
        "subscriptionId",
        "tenantId",
        "useDefaultAzureCredential",
        "useMsi",
        "useOidc",
    }
)
# Microsoft's sample organization names: a URL with one of them is documentation, not a deployment target.
SAMPLE_ORGANIZATIONS = frozenset({"contoso", "fabrikam", "example", "myorg", "yourorg", "your-org", "org"})
# Domains of documentation, not of anyone's mailbox or certificate: Microsoft's fictitious companies and
# the names RFC 2606 reserves (example.com/.net/.org and the .example, .test, .invalid, .localhost TLDs).
SAMPLE_DOMAIN_LABELS = frozenset(
    {
        "contoso",
        "fabrikam",
        "example",
        "adventure-works",
        "northwindtraders",
        "wingtiptoys",
        "tailspintoys",
        "woodgrovebank",
        "litwareinc",
    }
)
RESERVED_TLDS = frozenset({"example", "test", "invalid", "localhost"})
SAMPLE_APPROVER = "4f9c2b1e-7d3a-4e8b-9c5f-1a2b3c4d5e6f"
"""The approver id shipped in Pulumi.prod.yaml as an example."""
TEMPLATE_MARKERS = re.compile(r"ReplaceWith|ExampleKey|CHANGEME|<[A-Za-z][^<>\s]*>", re.IGNORECASE)
RESERVED_ADMIN_NAMES = ("root", "admin", "administrator")
# Switches and the keys that only matter while they are on (a key set while it is off has no effect).
DEPENDENT_KEYS: Mapping[tuple[str, object], tuple[str, ...]] = {
    ("enableAks", False): (
        "aksNodeVmSize",
        "aksNodeCount",
        "aksServiceCidr",
        "aksDnsServiceIp",
        "inferenceSslCname",
        "inferenceSslCertPem",
        "inferenceSslKeyPem",
        "inferenceLoadBalancerIp",
    ),
    ("enableDevops", False): (
        "devopsOrgUrl",
        "devopsProject",
        "devopsPat",
        "serviceConnectionAuth",
        "servicePrincipalClientId",
        "servicePrincipalSecret",
        "prodApprovers",
    ),
    ("enableAgentVm", False): ("agentVmSize", "agentCount", "agentAdminUsername", "agentSshPublicKey"),
    ("serviceConnectionAuth", "WorkloadIdentityFederation"): (
        "servicePrincipalClientId",
        "servicePrincipalSecret",
    ),
    ("enableAlerts", False): (
        "alertEmails",
        "alertWebhookUrl",
        "alertSeverity",
        "alertErrorRatePercent",
        "alertP99LatencyMs",
        "alertNoTrafficMinutes",
        "alertNodeCpuPercent",
        "alertNodeMemoryPercent",
    ),
    ("enablePrometheusGrafana", False): ("grafanaAdminObjectIds",),
    # Azure ML runs compute in its managed network: our VNet has no training or AKS subnet.
    ("isolationDesign", "managedVnet"): ("trainingSubnet", "aksSubnet"),
}
PROFILE_FIELDS: Mapping[str, str] = {
    "publicNetworkAccess": "public_network_access",
    "logRetentionDays": "log_retention_days",
    "computeMaxNodes": "compute_max_nodes",
    "computeIdleSeconds": "compute_idle_seconds",
    "computePriority": "compute_priority",
    "aksNodeCount": "aks_node_count",
    "enableAlerts": "alerts_enabled",
    "alertSeverity": "alert_severity",
    "alertErrorRatePercent": "alert_error_rate_percent",
    "alertP99LatencyMs": "alert_p99_latency_ms",
    "alertNoTrafficMinutes": "alert_no_traffic_minutes",
    "isolationDesign": "isolation_design",
}
"""Keys whose default comes from the environment profile: the Profile field that holds it."""
GRAFANA_NAME_LENGTH = (2, 23)
"""Azure Managed Grafana names: 2-23 characters (Microsoft.Dashboard/grafana, naming rules)."""


@dataclass(frozen=True)
class Problem:
    """One invalid config value: which key, what was given (masked where secret), what is allowed."""

    key: str
    value: str | None
    message: str
    default: bool = False
    """`value` is the key's default, which applies because the stack leaves the key unset."""

    def __str__(self) -> str:
        given = "unset" if self.value is None else f"'{self.value}'"
        return f"{self.key} ({'default ' if self.default else ''}{given}): {self.message}"


class ConfigError(Exception):
    """The stack config is invalid; raised before any resource is declared."""

    def __init__(self, problems: list[Problem], stack: str) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(
            f"stack '{stack}' has {len(problems)} config problem(s); nothing was deployed:\n{lines}\n"
            f"Fix with `pulumi config set <key> <value> --stack {stack}` (add --secret for secrets), "
            f"or `pulumi config rm <key> --stack {stack}` for keys that should not be there."
        )


@dataclass(frozen=True)
class ConfigCheck:
    """The outcome of validating one stack's config: the config, or the problems; warnings either way."""

    config: StackConfig | None
    problems: tuple[Problem, ...]
    warnings: tuple[Problem, ...]


@dataclass
class _Reader:
    """One stack's raw config with typed access; records problems and warnings instead of stopping."""

    values: Mapping[str, str]
    secret_keys: frozenset[str]
    project: str
    stack: str
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    typed: dict[str, Any] = field(default_factory=dict)
    failed: set[str] = field(default_factory=set)
    profile: Profile | None = None
    """The environment profile, once known: the defaults of PROFILE keys come from it."""

    def key(self, name: str) -> str:
        return f"{self.project}:{name}"

    def raw(self, name: str) -> str | None:
        """The string the key arrived as, or None when the stack does not set it."""
        return self.values.get(self.key(name))

    def is_set(self, name: str) -> bool:
        """Set to something other than its Pulumi.yaml default (which the CLI fills in for unset keys)."""
        value = self.raw(name)
        default = KEYS_BY_NAME[name].default
        return value is not None and value != _default_text(default)

    def shown(self, name: str) -> str | None:
        value = self.raw(name)
        if value is None:
            return None
        secret = self.key(name) in self.secret_keys or getattr(KEYS_BY_NAME.get(name), "secret", False)
        return shown_value(value, secret)

    def fail(self, name: str, message: str) -> None:
        default = self.default_text(name) if self.raw(name) is None else None
        shown = self.shown(name) if default is None else default
        problem = Problem(self.key(name), shown, message, default=default is not None)
        if problem not in self.problems:
            self.problems.append(problem)
        self.failed.add(name)

    def default_text(self, name: str) -> str | None:
        """The default that applies to unset key `name`, as text; None when it has none (yet)."""
        if name in PROFILE_FIELDS and self.profile is not None:
            return _default_text(getattr(self.profile, PROFILE_FIELDS[name]))
        return _default_text(KEYS_BY_NAME[name].default)

    def warn(self, name: str, message: str) -> None:
        self.warnings.append(Problem(self.key(name), self.shown(name), message))

    def check_values(self) -> None:
        """Layer 2: each key's value against its own form, once."""
        for key in KEYS:
            raw = self.raw(key.name)
            if raw is None:
                continue
            if key.secret and self.key(key.name) not in self.secret_keys:
                self.fail(
                    key.name,
                    "is a secret but was stored in plaintext; remove it from the stack file and set it "
                    f"with `pulumi config set --secret {key.name} <value> --stack {self.stack}`",
                )
            if key.secret and self.is_stand_in(key.name):
                self.typed[key.name] = raw  # what it stands for is checked when `pulumi up` decrypts it
                continue
            try:
                self.typed[key.name] = key.value_form.parse(raw)
            except FormError as error:
                self.fail(key.name, str(error))

    def is_stand_in(self, name: str) -> bool:
        """An offline plan's stand-in for a `secure:` value it cannot decrypt (stacks/plan.py)."""
        return self.raw(name) == f"{STAND_IN_PREFIX}{self.key(name)}"

    def value(self, name: str, default: Any = None) -> Any:
        """The typed value of a key, `default` when unset, None when its value was refused."""
        if name in self.failed:
            return None
        return self.typed.get(name, default) if self.raw(name) is not None else default

    # The typed accessors below keep sections written before forms existed working (their bounds are
    # checked here when the key's form does not already do so).

    def string(self, name: str, default: Any = None) -> Any:
        return self.value(name, default)

    def integer(self, name: str, default: Any, low: int, high: int) -> int | None:
        number = self.value(name, default)
        if self.raw(name) is not None and isinstance(number, int) and not low <= number <= high:
            self.fail(name, f"is out of range: it must be a whole number from {low} to {high}")
            return None
        return number

    def boolean(self, name: str, default: bool) -> bool:
        value = self.value(name, default)
        return default if value is None else bool(value)

    def choice(self, name: str, default: str, allowed: tuple[str, ...]) -> str:
        value = self.value(name, default)
        if value is not None and value not in allowed:
            self.fail(name, f"must be one of {', '.join(allowed)}")
            return default
        return default if value is None else value

    def string_list(self, name: str) -> tuple[str, ...]:
        return tuple(self.value(name, ()) or ())


def _default_text(default: object) -> str | None:
    if default is PROFILE or default is DESIGN or default is None or default == "<stack>":
        return None
    if isinstance(default, bool):
        return "true" if default else "false"
    return str(default)


def check_config(
    values: Mapping[str, str],
    *,
    stack: str,
    secret_keys: frozenset[str] = frozenset(),
    project: str = PROJECT,
    deploying: bool = False,
) -> ConfigCheck:
    """Validate `values` (`<namespace>:<key>` strings) for `stack`; `deploying` refuses placeholders."""
    reader = _Reader(values, secret_keys, project, stack)
    _check_keys(reader)
    reader.check_values()
    environment = _environment(reader)
    if environment is None:
        return ConfigCheck(None, tuple(reader.problems), tuple(reader.warnings))
    profile = PROFILES[environment]  # type: ignore[index]
    reader.profile = profile
    namespace, postfix = _identity(reader, environment)
    location = _location(reader)
    owner = reader.value("owner", KEYS_BY_NAME["owner"].default)
    public = reader.boolean("publicNetworkAccess", profile.public_network_access)
    if public and not profile.allow_public_network_access:
        reader.fail(
            "publicNetworkAccess",
            f"{environment} must not allow public network access; set it to false or remove it "
            f"(`pulumi config rm publicNetworkAccess --stack {stack}`)",
        )
    plan = _design(reader, profile, public)
    compute = _compute(reader, profile)
    aks = _aks(reader, profile, environment, plan)
    network = _network(reader, plan, compute, aks)
    shared_keys = reader.boolean("storageSharedKeyAccess", plan.storage_shared_key_default)
    devops = _devops(reader, environment)
    agent_vm = _agent_vm(reader, devops_enabled=devops is not None)
    retention = reader.value("logRetentionDays", profile.log_retention_days)
    hook = reader.boolean("postDeployHook", False)
    alerts = _alerts(reader, profile, environment)
    prometheus = _prometheus(reader, plan, namespace, postfix, environment)
    drift_threshold = reader.value("driftThreshold", _default("driftThreshold"))
    github = reader.value("githubRepository")
    registry = _model_registry(reader, profile.owns_model_registry)
    names = derive_names(namespace or "x", postfix or "0", environment)
    if namespace and postfix:
        _check_names(reader, names, postfix, environment)
    _placeholders(reader, deploying)
    _no_effect(reader, environment, profile)
    if reader.problems:
        return ConfigCheck(None, tuple(reader.problems), tuple(reader.warnings))
    config = StackConfig(
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
        log_retention_days=retention,
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
    return ConfigCheck(config, (), tuple(reader.warnings))


def parse_config(
    values: Mapping[str, str],
    *,
    stack: str,
    secret_keys: frozenset[str] = frozenset(),
    project: str = PROJECT,
    deploying: bool = False,
) -> StackConfig:
    """The StackConfig for `stack`, or ConfigError listing every problem (warnings are dropped)."""
    check = check_config(values, stack=stack, secret_keys=secret_keys, project=project, deploying=deploying)
    if check.config is None:
        raise ConfigError(list(check.problems), stack)
    return check.config


# --- layer 1: keys ---


def _suggestion(name: str, candidates: list[str]) -> str | None:
    lowered = {candidate.lower(): candidate for candidate in candidates}
    if name.lower() in lowered:
        return lowered[name.lower()]
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.75)
    return close[0] if close else None


def _check_keys(reader: _Reader) -> None:
    project, stack = reader.project, reader.stack
    names = [key.name for key in KEYS]
    for key in sorted(reader.values):
        namespace, _, name = key.partition(":")
        shown = shown_value(reader.values[key], key in reader.secret_keys)
        remove = f"`pulumi config rm '{key}' --stack {stack}`"
        if namespace == project:
            if name in KEYS_BY_NAME:
                continue
            near = _suggestion(name, names)
            message = f"is not a config key of {project}; " + (
                f"did you mean {project}:{near}? Move the value: {remove}, then "
                f"`pulumi config set {near} <value> --stack {stack}`"
                if near
                else f"remove it ({remove}); the README's config reference lists every key"
            )
            reader.problems.append(Problem(key, shown, message))
        elif namespace == AZURE_NATIVE:
            if name not in AZURE_NATIVE_KEYS:
                near = _suggestion(name, sorted(AZURE_NATIVE_KEYS))
                hint = f"did you mean {AZURE_NATIVE}:{near}? " if near else ""
                reader.problems.append(
                    Problem(
                        key,
                        shown,
                        f"is not a setting of the azure-native provider; {hint}remove it ({remove})",
                    )
                )
        elif namespace == AZURE_DEVOPS:
            reader.warnings.append(
                Problem(
                    key,
                    shown,
                    f"has no effect: the program configures its Azure DevOps provider from {project}:devopsOrgUrl "
                    f"and {project}:devopsPat; remove it ({remove})",
                )
            )
        elif namespace != "pulumi":
            near = _suggestion(namespace, [project, AZURE_NATIVE, AZURE_DEVOPS])
            if near:
                reader.problems.append(
                    Problem(
                        key,
                        shown,
                        f"has a misspelt namespace '{namespace}'; did you mean {near}:{name}? Move the "
                        f"value: {remove}, then `pulumi config set '{near}:{name}' <value> --stack {stack}`",
                    )
                )
            else:
                reader.warnings.append(
                    Problem(
                        key, shown, f"has no effect: this program uses no '{namespace}' provider; {remove}"
                    )
                )


# --- layer 3: sections ---


def _environment(reader: _Reader) -> str | None:
    stack = reader.stack
    chosen = reader.value("environment")
    override = reader.boolean("environmentOverride", False)
    if "environment" in reader.failed:
        return None
    if chosen is None:
        if stack in PROFILES:
            return stack
        reader.fail(
            "environment",
            f"is required: stack '{stack}' is not named dev or prod, so set environment to dev or prod "
            f"(`pulumi config set environment prod --stack {stack}`)",
        )
        return None
    if stack in PROFILES and chosen != stack and not override:
        reader.fail(
            "environment",
            f"would run the {chosen} profile on the stack named {stack}, which keeps the {stack} profile; "
            f"remove it (`pulumi config rm environment --stack {stack}`), or set environmentOverride=true "
            "if this stack really is meant to run the other profile",
        )
        return None
    if override and chosen != stack and stack == "prod":
        reader.warn(
            "environment",
            "makes the stack named prod run the dev profile (environmentOverride=true): public access "
            "allowed, no private endpoints, nothing protected",
        )
    return str(chosen)


def _identity(reader: _Reader, environment: str) -> tuple[str, str]:
    postfix = reader.value("postfix", KEYS_BY_NAME["postfix"].default) or ""
    namespace = reader.value("namespace")
    limit = max_namespace_length(postfix or "001", environment)
    if reader.raw("namespace") is None:
        reader.fail(
            "namespace",
            f"is required: 2-{limit} lowercase letters/digits starting with a letter, e.g. "
            f"`pulumi config set namespace mlteam --stack {reader.stack}`",
        )
        return "", postfix
    if namespace is None:
        return "", postfix
    if len(namespace) > limit:
        reader.fail(
            "namespace",
            f"is {len(namespace)} characters; with postfix '{postfix}' and environment "
            f"'{environment}' at most {limit} fit every Azure name (Key Vault: 24)",
        )
        return "", postfix
    return namespace, postfix


def _location(reader: _Reader) -> str:
    location = reader.value("location", KEYS_BY_NAME["location"].default)
    if location is not None and location not in AML_REGIONS:
        normal = location.lower().replace(" ", "")
        hint = f" (did you mean {normal}?)" if normal in AML_REGIONS else ""
        reader.fail(
            "location",
            f"must be an Azure region offering Azure ML, lowercase without spaces, e.g. westeurope, "
            f"eastus2{hint}",
        )
    return location or ""


SUBNET_KEYS = ("trainingSubnet", "agentsSubnet", "privateEndpointsSubnet", "aksSubnet")


def _default(name: str) -> Any:
    """A key's schema default in its typed form (a CIDR default as a network, ...)."""
    return KEYS_BY_NAME[name].value_form.parse(str(KEYS_BY_NAME[name].default))


def _subnets(reader: _Reader) -> dict[str, ipaddress.IPv4Network]:
    found = {name: reader.value(name, _default(name)) for name in SUBNET_KEYS}
    return {name: subnet for name, subnet in found.items() if subnet is not None}


def _design(reader: _Reader, profile: Profile, public: bool) -> DesignPlan:
    """The isolation design's plan; managedVnet cannot host AKS (AZURE-FACTS 1)."""
    design = reader.value("isolationDesign", profile.isolation_design) or profile.isolation_design
    aks_on = reader.boolean("enableAks", True)
    if aks_on and design == "managedVnet":
        reader.fail("isolationDesign", MANAGED_VNET_AKS_REFUSAL)
    return design_plan(
        design,
        public_network_access=public,
        aks_enabled=aks_on and design == "customerVnet",
        managed_isolation_mode=profile.managed_network_isolation_mode,
    )


def _network(
    reader: _Reader, design: DesignPlan, compute: ComputeSettings | None, aks: AksSettings | None
) -> NetworkSettings | None:
    space = reader.value("vnetAddressSpace", _default("vnetAddressSpace"))
    subnets = _subnets(reader)
    aks_on = reader.boolean("enableAks", True)
    service = reader.value("aksServiceCidr", _default("aksServiceCidr"))
    dns_ip = reader.value("aksDnsServiceIp", _default("aksDnsServiceIp"))
    if space is None:
        return None
    plan = AddressPlan(space, subnets, service, dns_ip, aks_on)
    problems = vnet_problems(plan) + service_problems(plan)
    # In the managed VNet Azure ML places the compute nodes: our training subnet holds none of them.
    nodes_in_subnet = compute.max_nodes if compute and design.compute_in_subnet else None
    problems += capacity_problems(subnets, nodes_in_subnet, aks.node_count if aks else None)
    for name, message in problems:
        reader.fail(name, message)
    if problems or len(subnets) < len(SUBNET_KEYS) or service is None or dns_ip is None:
        return None
    return NetworkSettings(
        address_space=str(space),
        training_subnet=str(subnets["trainingSubnet"]),
        aks_subnet=str(subnets["aksSubnet"]),
        agents_subnet=str(subnets["agentsSubnet"]),
        private_endpoints_subnet=str(subnets["privateEndpointsSubnet"]),
        aks_service_cidr=str(service),
        aks_dns_service_ip=str(dns_ip),
        private_endpoints=design.private_endpoints,
        design=design.design,
    )


def _compute(reader: _Reader, profile: Profile) -> ComputeSettings | None:
    vm_size = reader.value("computeVmSize", KEYS_BY_NAME["computeVmSize"].default)
    low = reader.value("computeMinNodes", 0)
    high = reader.value("computeMaxNodes", profile.compute_max_nodes)
    idle = reader.value("computeIdleSeconds", profile.compute_idle_seconds)
    priority = reader.value("computePriority", profile.compute_priority)
    if low is not None and high is not None and low > high:
        reader.fail("computeMinNodes", f"must not exceed computeMaxNodes ({high})")
        return None
    if None in (vm_size, low, high, idle, priority):
        return None
    return ComputeSettings(vm_size, low, high, idle, priority, ssh_enabled=False)


def _aks(reader: _Reader, profile: Profile, environment: str, plan: DesignPlan) -> AksSettings | None:
    enabled = reader.boolean("enableAks", True)
    vm_size = reader.value("aksNodeVmSize", KEYS_BY_NAME["aksNodeVmSize"].default)
    count = reader.value("aksNodeCount", profile.aks_node_count)
    if not enabled or plan.design == "managedVnet":
        return None  # like the other switches: the keys of a part that is off get no cross-key rules
    tls = _inference_tls(reader, required=profile.inference_tls_required, environment=environment)
    load_balancer_ip = _load_balancer_ip(reader)
    if count is None or vm_size is None:
        return None
    return AksSettings(
        vm_size, count, private_cluster=profile.private_aks_api, tls=tls, load_balancer_ip=load_balancer_ip
    )


TLS_KEYS = ("inferenceSslCname", "inferenceSslCertPem", "inferenceSslKeyPem")
TLS_COMMANDS = {
    "inferenceSslCname": "pulumi config set inferenceSslCname <host the certificate names>",
    "inferenceSslCertPem": 'pulumi config set --secret inferenceSslCertPem -- "$(cat fullchain.pem)"',
    "inferenceSslKeyPem": 'pulumi config set --secret inferenceSslKeyPem -- "$(cat privkey.pem)"',
}


def _inference_tls(reader: _Reader, *, required: bool, environment: str) -> InferenceTls | None:
    """TLS of the inference router (AZURE-FACTS 13): all three values or none, and all three in prod."""
    missing = [name for name in TLS_KEYS if reader.raw(name) is None]
    if missing and (required or len(missing) < len(TLS_KEYS)):
        why = (
            f"{environment} serves inference over TLS only (AZURE-FACTS 13: allowInsecureConnections is for "
            "dev/test, and TLS needs sslCname with its certificate and key)"
            if required
            else "TLS needs the host name, its certificate and its key together"
        )
        for name in missing:
            reader.fail(
                name,
                f"is required: {why}; set it (certificate and key with --secret): "
                f"`{TLS_COMMANDS[name]} --stack {reader.stack}`",
            )
        return None
    host, cert, key = (reader.value(name) for name in TLS_KEYS)
    if missing or None in (host, cert, key):
        return None
    if not reader.is_stand_in("inferenceSslCertPem") and not reader.is_stand_in("inferenceSslKeyPem"):
        cert_problems, key_problems = certificate_problems(cert, key, host)
        for message in cert_problems:
            reader.fail("inferenceSslCertPem", message)
        for message in key_problems:
            reader.fail("inferenceSslKeyPem", message)
    return InferenceTls(host, Secret(cert), Secret(key))


def _load_balancer_ip(reader: _Reader) -> str | None:
    address = reader.value("inferenceLoadBalancerIp")
    subnet = reader.value("aksSubnet", _default("aksSubnet"))
    if address is None or subnet is None:
        return None
    problems = load_balancer_problems(subnet, address)
    for name, message in problems:
        reader.fail(name, message)
    return None if problems else str(address)


def _devops(reader: _Reader, environment: str) -> DevOpsSettings | None:
    stack = reader.stack
    if not reader.boolean("enableDevops", False):
        return None
    auth = reader.value("serviceConnectionAuth", "WorkloadIdentityFederation")
    client_id = reader.value("servicePrincipalClientId")
    client_secret = reader.value("servicePrincipalSecret")
    approvers = reader.value("prodApprovers", ())
    org_url = reader.value("devopsOrgUrl")
    project = reader.value("devopsProject", KEYS_BY_NAME["devopsProject"].default)
    pat = reader.value("devopsPat")
    without = "or set enableDevops=false to deploy without Azure DevOps"
    if reader.raw("devopsOrgUrl") is None:
        reader.fail(
            "devopsOrgUrl",
            f"is required with enableDevops=true: https://dev.azure.com/<organization> "
            f"(`pulumi config set devopsOrgUrl https://dev.azure.com/<org> --stack {stack}`), {without}",
        )
    if reader.raw("devopsPat") is None:
        reader.fail(
            "devopsPat",
            f"is required with enableDevops=true: `pulumi config set --secret devopsPat <PAT> --stack {stack}` "
            f"(scopes: see the README), {without}",
        )
    if auth == "ServicePrincipal":
        if reader.raw("servicePrincipalClientId") is None:
            reader.fail(
                "servicePrincipalClientId",
                "is required with serviceConnectionAuth=ServicePrincipal: the application (client) id, a GUID; "
                "or use serviceConnectionAuth=WorkloadIdentityFederation, which needs no secret",
            )
        if reader.raw("servicePrincipalSecret") is None:
            reader.fail(
                "servicePrincipalSecret",
                "is required with serviceConnectionAuth=ServicePrincipal: "
                f"`pulumi config set --secret servicePrincipalSecret <secret> --stack {stack}`",
            )
    if environment == "prod":
        _prod_approvers(reader)
    if None in (org_url, project, pat, auth, approvers) or reader.failed & {
        "servicePrincipalClientId",
        "servicePrincipalSecret",
        "prodApprovers",
    }:
        return None
    return DevOpsSettings(
        org_url=org_url.rstrip("/"),
        project_name=project,
        pat=Secret(pat),
        service_connection_auth=auth,
        service_principal_client_id=client_id if auth == "ServicePrincipal" else None,
        service_principal_secret=Secret(client_secret)
        if auth == "ServicePrincipal" and client_secret
        else None,
        prod_approvers=approvers if environment == "prod" else (),
    )


def _prod_approvers(reader: _Reader) -> None:
    """prod's pipeline environment gets an approval check, which Azure DevOps refuses without approvers."""
    example = "`pulumi config set --path 'prodApprovers[0]' <origin id> --stack prod`"
    if reader.raw("prodApprovers") is None:
        reader.fail(
            "prodApprovers",
            f"is required on prod with enableDevops=true: the prod approval check needs at least one "
            f"Azure DevOps user or group origin id, e.g. {example}",
        )
    elif reader.value("prodApprovers") == ():
        reader.fail(
            "prodApprovers",
            f"is an empty list; the prod approval check needs at least one user or group origin id: {example}",
        )


REGISTRY_KEYS = ("modelRegistryWriters", "modelRegistryReaders", "modelRegistryRegions")
"""Keys only the stack that owns the registry (prod) reads."""


def _model_registry(reader: _Reader, owner: bool) -> ModelRegistrySettings | None:
    """The registry dev and prod share: who writes and reads it and where it replicates (owner's keys only)."""
    enabled = reader.value("enableModelRegistry", True) is not False
    writers, readers, regions = (tuple(reader.value(name, ()) or ()) for name in REGISTRY_KEYS)
    unknown = [region for region in regions if region not in AML_REGIONS]
    if unknown:
        reader.fail(
            "modelRegistryRegions",
            f"lists {', '.join(unknown)}: it must be a list of Azure ML regions, lowercase without spaces, "
            'e.g. ["northeurope"] (the dev workspace\'s region when it is not prod\'s)',
        )
    if not owner:
        for name, given in zip(REGISTRY_KEYS, (writers, readers, regions)):
            if given:
                reader.fail(
                    name,
                    f"belongs on the stack that owns the registry (prod), which declares it; remove it here "
                    f"(`pulumi config rm {name} --stack {reader.stack}`)",
                )
    if not enabled:
        return None
    return ModelRegistrySettings(owner=owner, writers=writers, readers=readers, regions=regions)


def _agent_vm(reader: _Reader, devops_enabled: bool) -> AgentVmSettings | None:
    if not reader.boolean("enableAgentVm", False):
        return None
    vm_size = reader.value("agentVmSize", KEYS_BY_NAME["agentVmSize"].default)
    count = reader.value("agentCount", KEYS_BY_NAME["agentCount"].default)
    user = reader.value("agentAdminUsername", KEYS_BY_NAME["agentAdminUsername"].default)
    key = reader.value("agentSshPublicKey")
    if not reader.boolean("enableDevops", False):
        reader.fail(
            "enableAgentVm",
            "needs enableDevops=true: the agents register into the Azure DevOps pool; set enableDevops=true "
            "or enableAgentVm=false",
        )
    if user in RESERVED_ADMIN_NAMES:
        reader.fail(
            "agentAdminUsername", "must not be root, admin or administrator: Azure refuses them for Linux VMs"
        )
    if reader.raw("agentSshPublicKey") is None:
        reader.fail(
            "agentSshPublicKey",
            "is required with enableAgentVm=true: an OpenSSH public key, e.g. "
            f'`pulumi config set agentSshPublicKey "$(cat ~/.ssh/id_ed25519.pub)" --stack {reader.stack}`',
        )
    if None in (vm_size, count, user, key) or not devops_enabled:
        return None
    return AgentVmSettings(vm_size, count, user, key)


def _alerts(reader: _Reader, profile: Profile, environment: str) -> AlertSettings | None:
    if not reader.boolean("enableAlerts", profile.alerts_enabled):
        return None
    emails = reader.value("alertEmails", ())
    webhook = reader.value("alertWebhookUrl")
    if reader.raw("alertWebhookUrl") is None and "alertEmails" not in reader.failed and not emails:
        switched = "" if reader.raw("enableAlerts") else f" (the {environment} profile switches them on)"
        reader.fail(
            "enableAlerts",
            f"alerts need a receiver{switched}: set alertEmails (a list) or alertWebhookUrl, e.g. "
            f"`pulumi config set --path 'alertEmails[0]' <on-call address> --stack {reader.stack}`",
        )
    numbers = (
        reader.value("alertSeverity", profile.alert_severity),
        reader.value("alertErrorRatePercent", profile.alert_error_rate_percent),
        reader.value("alertP99LatencyMs", profile.alert_p99_latency_ms),
        reader.value("alertNoTrafficMinutes", profile.alert_no_traffic_minutes),
        reader.value("alertNodeCpuPercent", KEYS_BY_NAME["alertNodeCpuPercent"].default),
        reader.value("alertNodeMemoryPercent", KEYS_BY_NAME["alertNodeMemoryPercent"].default),
    )
    if emails is None or None in numbers:
        return None
    return AlertSettings(emails, Secret(webhook) if webhook else None, *numbers)


def _prometheus(
    reader: _Reader, plan: DesignPlan, namespace: str, postfix: str, environment: str
) -> PrometheusSettings | None:
    if not reader.boolean("enablePrometheusGrafana", False):
        return None
    admins = reader.value("grafanaAdminObjectIds", ())
    if not reader.boolean("enableAks", True) or plan.design == "managedVnet":
        reader.fail(
            "enablePrometheusGrafana",
            "needs enableAks=true: managed Prometheus scrapes the AKS cluster; set enableAks=true "
            "(isolationDesign=customerVnet) or enablePrometheusGrafana=false",
        )
    if namespace and postfix:
        grafana = monitoring_names(namespace, postfix, environment)["grafana"]
        low, high = GRAFANA_NAME_LENGTH
        if not low <= len(grafana) <= high:
            fits = high - (len(grafana) - len(namespace))
            reader.fail(
                "enablePrometheusGrafana",
                f"derived Grafana name '{grafana}' has {len(grafana)} characters; Azure allows {low}-{high}: "
                f"shorten namespace (at most {fits} characters with postfix '{postfix}') or postfix",
            )
    return None if admins is None else PrometheusSettings(admins)


def _check_names(reader: _Reader, names: Any, postfix: str, environment: str) -> None:
    for problem in name_problems(names):
        reader.fail(
            "namespace",
            f"derived {problem}; shorten namespace to at most "
            f"{max_namespace_length(postfix, environment)} characters",
        )


# --- placeholders and keys without effect ---


def _placeholder_fix(reader: _Reader, name: str) -> str | None:
    """What to put instead, when the key's value is a shipped or sample placeholder."""
    raw = reader.raw(name) or ""
    stack = reader.stack
    if name == "devopsOrgUrl" and raw.rstrip("/").rsplit("/", 1)[-1].lower() in SAMPLE_ORGANIZATIONS:
        return (
            "names a sample organization; set your organization's URL "
            f"(`pulumi config set devopsOrgUrl https://dev.azure.com/<your-org> --stack {stack}`), "
            "or enableDevops=false to deploy without Azure DevOps"
        )
    if name == "prodApprovers" and SAMPLE_APPROVER in raw.lower():
        return (
            "holds the sample approver id shipped in Pulumi.prod.yaml; set the origin id of your approving "
            "group (`az devops security group list --project <project> --query "
            "\"graphGroups[?displayName=='<group>'].originId\" -o tsv`, then "
            f"`pulumi config set --path 'prodApprovers[0]' <id> --stack {stack}`)"
        )
    sample = _sample_receiver_fix(reader, name)
    if sample is not None:
        return sample
    if TEMPLATE_MARKERS.search(raw):
        if name == "agentSshPublicKey":
            return (
                "is the shipped placeholder key; set your team's public key "
                f'(`pulumi config set agentSshPublicKey "$(cat ~/.ssh/id_ed25519.pub)" --stack {stack}`)'
            )
        return f"is a placeholder; set a real value (`pulumi config set {name} <value> --stack {stack}`)"
    return None


def is_sample_domain(host: str) -> bool:
    """Whether `host` (or a mail domain) belongs to a documentation domain rather than to anyone's."""
    labels = host.lower().rstrip(".").split(".")
    return labels[-1] in RESERVED_TLDS or any(label in SAMPLE_DOMAIN_LABELS for label in labels[:-1])


def _sample_receiver_fix(reader: _Reader, name: str) -> str | None:
    """Sample addresses, hosts and owners: what reaches nobody, or names a domain nobody here owns."""
    value = reader.value(name)
    stack = reader.stack
    if name == "alertEmails" and value:
        samples = [email for email in value if is_sample_domain(email.rpartition("@")[2])]
        if samples:
            return (
                f"names sample address(es) {', '.join(samples)}, which reach nobody; set who the alerts "
                f"reach (`pulumi config set --path 'alertEmails[0]' <on-call address> --stack {stack}`)"
            )
    if name == "inferenceSslCname" and value and is_sample_domain(value):
        return (
            "is a sample host name; set the host name your certificate names, with that certificate and "
            f"its key in inferenceSslCertPem and inferenceSslKeyPem (`{TLS_COMMANDS[name]} --stack {stack}`)"
        )
    if name == "alertWebhookUrl" and value and is_sample_domain(value.split("/")[2].split(":")[0]):
        return (
            "calls a sample host; set your webhook "
            f"(`pulumi config set --secret alertWebhookUrl <https URL> --stack {stack}`)"
        )
    if name == "githubRepository" and value and value.split("/")[0].lower() in SAMPLE_ORGANIZATIONS:
        return (
            "names a sample owner; set your repository "
            f"(`pulumi config set githubRepository <owner>/<repository> --stack {stack}`)"
        )
    return None


def secret_command(name: str, stack: str) -> str:
    """The command that sets secret key `name` (PEM files read with `--`, so that their dashes pass)."""
    return f"{TLS_COMMANDS.get(name, f'pulumi config set --secret {name} <value>')} --stack {stack}"


def _placeholders(reader: _Reader, deploying: bool) -> None:
    for key in KEYS:
        if key.name in reader.failed or reader.raw(key.name) is None:
            continue
        fix = _placeholder_fix(reader, key.name)
        if fix is None:
            continue
        if deploying:
            reader.fail(key.name, fix)
        else:
            reader.warn(key.name, f"{fix}; an offline plan accepts it, a real `pulumi up` refuses it")


def _no_effect(reader: _Reader, environment: str, profile: Profile) -> None:
    stack = reader.stack
    for (switch, off), dependents in DEPENDENT_KEYS.items():
        default = KEYS_BY_NAME[switch].default
        if switch in PROFILE_FIELDS:
            default = getattr(profile, PROFILE_FIELDS[switch])
        current = reader.value(switch, default)
        if current != off:
            continue
        for name in dependents:
            if reader.is_set(name) and name not in reader.failed:
                shown_off = str(off).lower() if isinstance(off, bool) else off
                reader.warn(
                    name,
                    f"has no effect while {switch} is {shown_off}; remove it "
                    f"(`pulumi config rm {name} --stack {stack}`) or change {switch}",
                )
    if environment != "prod" and reader.is_set("prodApprovers") and reader.boolean("enableDevops", False):
        reader.warn(
            "prodApprovers",
            f"has no effect on a {environment} stack (only prod gets an approval check); "
            f"remove it (`pulumi config rm prodApprovers --stack {stack}`)",
        )
    if reader.is_set("environmentOverride") and reader.value("environment", stack) == stack:
        reader.warn(
            "environmentOverride",
            f"has no effect: the stack runs its own profile; remove it (`pulumi config rm environmentOverride "
            f"--stack {stack}`)",
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


__all__ = [
    "ConfigCheck",
    "ConfigError",
    "Problem",
    "check_config",
    "parse_config",
    "example_config",
    "example_values",
    "secret_keys_of",
]
