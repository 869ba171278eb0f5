"""Preflight: what can be known before `pulumi up`, offline from the stack files and with read-only ARM calls.

Offline: the stack file read as the CLI reads it, its config validated as a real deployment would be
(placeholders refused), secrets that are still shipped stand-ins, the Pulumi CLI and its version, the
toolchain Pulumi.yaml names, and the policy pack's virtualenv. With Azure credentials, read-only calls
through the Azure SDK: resource providers registered, the deploying identity's roles on the subscription,
VM sizes offered in the region, vCPU quota for the compute cluster, the AKS nodes and the agent VM, and
whether the globally unique names are free (storage, Key Vault including soft-deleted vaults, registry,
soft-deleted workspaces). Every finding names its fix. Nothing is created or changed.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from stacks.config import check_config, secret_command
from stacks.model import StackConfig
from stacks.plan import ROOT, PlanInputError, StackInput, is_placeholder_ciphertext, stack_input
from stacks.stackfile import load_yaml

ARM_SCOPE = "https://management.azure.com/.default"
# pulumi/pulumi CHANGELOG 3.182.0: "[engine] Implement ResourceHooks in the engine" (postDeployHook needs
# them); the uv toolchain of Pulumi.yaml arrived earlier, in 3.139.0.
MIN_PULUMI_CLI = (3, 182, 0)
# Built-in role ids (Learn role-based-access-control/built-in-roles.md). The program creates role
# assignments, which needs Owner, or Contributor plus a role that may write role assignments.
OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
USER_ACCESS_ADMINISTRATOR = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"
RBAC_ADMINISTRATOR = "f58310d9-a9f6-439a-9e8d-f62e7b41a168"
ROLE_NAMES = {
    OWNER: "Owner",
    CONTRIBUTOR: "Contributor",
    USER_ACCESS_ADMINISTRATOR: "User Access Administrator",
    RBAC_ADMINISTRATOR: "Role Based Access Control Administrator",
}
# ARM namespaces of the azure-native modules each part of the platform declares (a test keeps this equal
# to the modules in the offline plans of both stacks).
MODULE_NAMESPACES: Mapping[str, str] = {
    "resources": "Microsoft.Resources",
    "storage": "Microsoft.Storage",
    "keyvault": "Microsoft.KeyVault",
    "containerregistry": "Microsoft.ContainerRegistry",
    "operationalinsights": "Microsoft.OperationalInsights",
    "applicationinsights": "Microsoft.Insights",
    "monitor": "Microsoft.Insights",
    "machinelearningservices": "Microsoft.MachineLearningServices",
    "network": "Microsoft.Network",
    "privatedns": "Microsoft.Network",
    "authorization": "Microsoft.Authorization",
    "managedidentity": "Microsoft.ManagedIdentity",
    "containerservice": "Microsoft.ContainerService",
    "kubernetesconfiguration": "Microsoft.KubernetesConfiguration",
    "compute": "Microsoft.Compute",
    "eventgrid": "Microsoft.EventGrid",
    "dashboard": "Microsoft.Dashboard",
}
BASE_MODULES = (
    "resources",
    "storage",
    "keyvault",
    "containerregistry",
    "operationalinsights",
    "applicationinsights",
    "monitor",
    "machinelearningservices",
    "network",
    "authorization",
    "managedidentity",
)
AKS_MODULES = ("containerservice", "kubernetesconfiguration")
AGENT_VM_MODULES = ("compute",)
# Alerts: the drift alert subscribes to the workspace's Event Grid system topic (components/alerts.py).
ALERT_NAMESPACES = ("Microsoft.EventGrid",)
# Managed Prometheus: the Azure Monitor workspace is Microsoft.Monitor (its data collection rules are
# Microsoft.Insights, which every stack needs), Managed Grafana is Microsoft.Dashboard (components/prometheus.py).
PROMETHEUS_NAMESPACES = ("Microsoft.Monitor", "Microsoft.Dashboard")
# Learn "Deleted Workspaces - List" (Log Analytics): a deleted workspace keeps its name for 14 days.
LOG_ANALYTICS_DELETED = "/providers/Microsoft.OperationalInsights/deletedWorkspaces?api-version=2023-09-01"
# Learn "Usages - List" (Azure ML): quota of AML compute per VM family, in the region.
AML_USAGES = "/providers/Microsoft.MachineLearningServices/locations/{location}/usages?api-version=2024-04-01"
# Learn REST: "Resource Skus - List", "Usage - List" (Compute), "Storage Accounts - Check Name Availability"
# and "Get Properties".
COMPUTE_SKUS = "/providers/Microsoft.Compute/skus?api-version=2021-07-01"
COMPUTE_USAGES = "/providers/Microsoft.Compute/locations/{location}/usages?api-version=2024-07-01"
STORAGE_NAME_CHECK = "providers/Microsoft.Storage/checkNameAvailability?api-version=2023-05-01"
STORAGE_ACCOUNT = (
    "resourceGroups/{group}/providers/Microsoft.Storage/storageAccounts/{name}?api-version=2023-05-01"
)


@dataclass(frozen=True)
class Finding:
    """Something that would make `pulumi up` fail or misbehave, and how to fix it."""

    check: str
    subject: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"[{self.check}] {self.subject}: {self.problem}\n      fix: {self.fix}"


@dataclass
class Report:
    """What preflight found for one stack, and what it checked."""

    stack: str
    findings: list[Finding] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Config warnings (keys without effect ...): worth a look, not in the way of `pulumi up`."""

    @property
    def ready(self) -> bool:
        return not self.findings


Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


# --- offline ---


def _fix_in(message: str, default: str) -> str:
    """The commands a message quotes (`...`), which are the fix it names, in order."""
    commands = re.findall(r"`([^`]+)`", message)
    return ", then ".join(f"`{command}`" for command in commands) if commands else default


def config_findings(stack_in: StackInput) -> tuple[list[Finding], list[str], StackConfig | None]:
    """The config validated as a real deployment validates it (placeholders refused); warnings; the config."""
    findings = [
        Finding("stack file", stack_in.stack, note, "quote the value, or write the text you meant")
        for note in stack_in.notes
        if "placeholder ciphertext" not in note  # reported by secret_findings
    ]
    strict = check_config(
        stack_in.values,
        stack=stack_in.stack,
        secret_keys=stack_in.secret_keys,
        project=stack_in.project,
        deploying=True,
    )
    default_fix = (
        f"set a value of the allowed form: `pulumi config set <key> <value> --stack {stack_in.stack}`"
    )
    for problem in strict.problems:
        given = ("default " if problem.default else "") + (
            "unset" if problem.value is None else f"'{problem.value}'"
        )
        findings.append(
            Finding(
                "config", problem.key, f"({given}) {problem.message}", _fix_in(problem.message, default_fix)
            )
        )
    lenient = check_config(
        stack_in.values, stack=stack_in.stack, secret_keys=stack_in.secret_keys, project=stack_in.project
    )
    return findings, [str(warning) for warning in strict.warnings], lenient.config


def secret_findings(root: Path, stack: str, project: str) -> list[Finding]:
    """`secure:` values that are still the shipped placeholder ciphertext."""
    document = load_yaml((root / f"Pulumi.{stack}.yaml").read_text()) or {}
    findings = []
    for key, value in (document.get("config") or {}).items():
        if isinstance(value, dict) and is_placeholder_ciphertext(str(value.get("secure", ""))):
            name = str(key).split(":", 1)[-1]
            findings.append(
                Finding(
                    "secrets",
                    key if ":" in str(key) else f"{project}:{key}",
                    "is the shipped placeholder ciphertext, which no secrets provider can decrypt: "
                    "`pulumi up` stops at it",
                    f"`{secret_command(name, stack)}`",
                )
            )
    return findings


def _version(text: str) -> tuple[int, ...] | None:
    match = re.search(r"v?(\d+)\.(\d+)\.(\d+)", text)
    return tuple(int(part) for part in match.groups()) if match else None


def cli_findings(
    which: Callable[[str], str | None] = shutil.which, run: Callable[..., Any] = subprocess.run
) -> list[Finding]:
    """The Pulumi CLI is installed and new enough (resource hooks), and uv, which Pulumi.yaml's toolchain uses."""
    findings = []
    minimum = ".".join(map(str, MIN_PULUMI_CLI))
    install = f"install the Pulumi CLI {minimum} or newer: https://www.pulumi.com/docs/install/"
    cli = which("pulumi")
    if cli is None:
        findings.append(Finding("pulumi cli", "pulumi", "is not on PATH", install))
    else:
        try:
            result = run([cli, "version"], capture_output=True, text=True, timeout=60)
            version = _version(result.stdout)
        except (OSError, subprocess.TimeoutExpired) as error:
            version, result = None, error
        if version is None:
            findings.append(
                Finding("pulumi cli", cli, "did not report its version (`pulumi version`)", install)
            )
        elif version < MIN_PULUMI_CLI:
            findings.append(
                Finding(
                    "pulumi cli",
                    cli,
                    f"is {'.'.join(map(str, version))}; this program's resource hooks need the engine of {minimum}",
                    f"upgrade: `pulumi self-update` or {install}",
                )
            )
    if which("uv") is None:
        findings.append(
            Finding(
                "toolchain",
                "uv",
                "is not on PATH; Pulumi.yaml runs the program with `toolchain: uv`",
                '`make venv` (it bootstraps uv into .work/uv), then `export PATH="$PWD/.work/uv/bin:$PATH"`',
            )
        )
    return findings


def policy_venv_findings(root: Path) -> list[Finding]:
    """The local policy pack runs in its own virtualenv, which `pulumi preview --policy-pack` does not create."""
    pack = load_yaml((root / "policy" / "PulumiPolicy.yaml").read_text()) or {}
    venv = root / "policy" / str(((pack.get("runtime") or {}).get("options") or {}).get("virtualenv", "venv"))
    install = f"policy/{venv.name}/bin/pip install -r policy/requirements.txt"
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    if not python.exists():
        return [
            Finding(
                "policy pack",
                f"policy/{venv.name}",
                "does not exist; `pulumi preview --policy-pack policy` loads a local pack from it as it is",
                f"`python3 -m venv policy/{venv.name} && {install}`",
            )
        ]
    pins = dict(
        line.split("==", 1)
        for line in (root / "policy" / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    installed = {}
    for folder in [*venv.glob("lib/python*/site-packages"), *venv.glob("Lib/site-packages")]:
        for path in folder.glob("*.dist-info"):
            name, _, version = path.name.removesuffix(".dist-info").rpartition("-")
            installed[re.sub(r"[-_.]+", "-", name).lower()] = version
    wrong = [
        f"{name} {installed.get(name.lower(), 'missing')} (wants {pin})"
        for name, pin in pins.items()
        if installed.get(name.lower()) != pin
    ]
    if wrong:
        return [Finding("policy pack", f"policy/{venv.name}", f"has {', '.join(wrong)}", f"`{install}`")]
    return []


# --- with Azure credentials ---


@dataclass(frozen=True)
class Azure:
    """How to reach ARM: a credential, the subscription, and the deploying identity's object id."""

    credential: Any
    subscription_id: str
    object_id: str | None


def token_object_id(token: str) -> str | None:
    """The `oid` claim of an Entra access token (the identity the token was issued to)."""
    try:
        payload = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))).get("oid")
    except (IndexError, ValueError):
        return None


def required_namespaces(cfg: StackConfig) -> list[str]:
    """The ARM resource providers the stack's resources live in."""
    modules = list(BASE_MODULES)
    if cfg.aks is not None:
        modules += AKS_MODULES
    if cfg.agent_vm is not None:
        modules += AGENT_VM_MODULES
    namespaces = {MODULE_NAMESPACES[module] for module in modules}
    if cfg.alerts is not None:
        namespaces.update(ALERT_NAMESPACES)
    if cfg.prometheus is not None and cfg.aks is not None:
        namespaces.update(PROMETHEUS_NAMESPACES)
    return sorted(namespaces)


def _http_error(check: str, subject: str, error: Exception) -> Finding:
    status = getattr(error, "status_code", None)
    message = str(getattr(error, "message", error)).splitlines()[0][:200]
    if status == 403:
        fix = "give the deploying identity Reader (at least) on the subscription, or check as one that has it"
    elif status == 401:
        fix = "sign in again (`az login`), or check AZURE_CLIENT_ID/AZURE_TENANT_ID and the federated token"
    else:
        fix = "re-run preflight; if it persists, check https://azure.status.microsoft"
    return Finding(check, subject, f"cannot be read ({status or type(error).__name__}: {message})", fix)


class ArmChecks:
    """Read-only ARM checks for one stack; each method appends findings and returns nothing."""

    def __init__(self, cfg: StackConfig, azure: Azure, report: Report, progress: Progress) -> None:
        self.cfg, self.azure, self.report, self.progress = cfg, azure, report, progress
        self.scope = f"/subscriptions/{azure.subscription_id}"
        self._clients: dict[str, Any] = {}
        self._providers: dict[str, Any] = {}

    def provider(self, namespace: str) -> Any:
        if namespace not in self._providers:
            self._providers[namespace] = self.client("resource").providers.get(namespace)
        return self._providers[namespace]

    def client(self, name: str) -> Any:
        """The SDK client `name`, imported on first use."""
        if name not in self._clients:
            from importlib import import_module

            module, cls = {
                "resource": ("azure.mgmt.resource.resources", "ResourceManagementClient"),
                "authorization": ("azure.mgmt.authorization", "AuthorizationManagementClient"),
                "keyvault": ("azure.mgmt.keyvault", "KeyVaultManagementClient"),
                "containerregistry": ("azure.mgmt.containerregistry", "ContainerRegistryManagementClient"),
            }[name]
            # retry_total=2: a preflight should answer in seconds, not wait out a long backoff.
            self._clients[name] = getattr(import_module(module), cls)(
                self.azure.credential, self.azure.subscription_id, retry_total=2
            )
        return self._clients[name]

    def add(self, *findings: Finding) -> None:
        self.report.findings.extend(findings)

    def rest(self, method: str, path: str, body: Any = None) -> Any:
        """A documented ARM REST call through the SDK's ARM pipeline (auth, retries); None on 404.

        Used where the typed client would cost more to import than the call itself: azure-mgmt-compute
        and azure-mgmt-storage take 1.7 s and 1.1 s to import, for one or two GETs.
        """
        from azure.core.exceptions import HttpResponseError
        from azure.core.rest import HttpRequest

        request = HttpRequest(method, path if path.startswith("/") else f"{self.scope}/{path}", json=body)
        response = self.client("resource").send_request(request)
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise HttpResponseError(response=response)
        return response.json()

    def run(self) -> None:
        from azure.core.exceptions import HttpResponseError, ServiceRequestError

        for title, check in (
            ("resource providers", self.providers),
            ("roles of the deploying identity", self.roles),
            ("VM sizes and vCPU quota", self.sizes_and_quota),
            ("global names", self.names),
        ):
            self.progress(f"checking {title} ...")
            try:
                check()
                self.report.checked.append(title)
            except (HttpResponseError, ServiceRequestError) as error:
                self.add(_http_error(title, self.scope, error))

    def providers(self) -> None:
        for namespace in required_namespaces(self.cfg):
            state = self.provider(namespace).registration_state
            if state != "Registered":
                self.add(
                    Finding(
                        "providers",
                        namespace,
                        f"is {state or 'not registered'} in subscription {self.azure.subscription_id}",
                        f"`az provider register --namespace {namespace} --subscription {self.azure.subscription_id}`",
                    )
                )

    def roles(self) -> None:
        oid = self.azure.object_id
        if oid is None:
            self.report.skipped.append("roles: the access token carries no object id (oid claim)")
            return
        assignments = self.client("authorization").role_assignments.list_for_scope(
            self.scope, filter=f"assignedTo('{oid}')"
        )
        held = {
            str(a.role_definition_id).rsplit("/", 1)[-1]
            for a in assignments
            # At the subscription or above (management groups); resource group roles do not let the program
            # create its resource group.
            if self.scope.startswith(str(a.scope).rstrip("/"))
            or str(a.scope).startswith("/providers/Microsoft.Management")
        }
        if OWNER in held or (CONTRIBUTOR in held and held & {USER_ACCESS_ADMINISTRATOR, RBAC_ADMINISTRATOR}):
            return
        names = sorted(ROLE_NAMES[role] for role in held if role in ROLE_NAMES) or [
            "none of Owner, Contributor"
        ]
        self.add(
            Finding(
                "roles",
                f"identity {oid}",
                f"holds {', '.join(names)} on the subscription; the program creates a resource group and role "
                "assignments, which needs Owner, or Contributor plus User Access Administrator (Contributor "
                "alone cannot write role assignments)",
                f"`az role assignment create --assignee-object-id {oid} --role Owner --scope {self.scope}` "
                "(or Contributor and User Access Administrator)",
            )
        )

    def _needed_sizes(self) -> dict[str, list[tuple[str, int, str]]]:
        """VM size -> (what, node count, quota kind) for every VM the stack runs."""
        cfg, needed = self.cfg, defaultdict(list)
        priority = "lowPriority" if cfg.compute.priority == "LowPriority" else "dedicated"
        needed[cfg.compute.vm_size].append(
            ("compute cluster (computeMaxNodes)", cfg.compute.max_nodes, f"aml-{priority}")
        )
        if cfg.aks is not None:  # an upgrade adds one surge node
            needed[cfg.aks.node_vm_size].append(
                ("AKS nodes (aksNodeCount + 1 surge)", cfg.aks.node_count + 1, "compute")
            )
        if cfg.agent_vm is not None:
            needed[cfg.agent_vm.vm_size].append(("agent VM", 1, "compute"))
        return needed

    def sizes_and_quota(self) -> None:
        location = self.cfg.location
        needed = self._needed_sizes()
        skus = {
            sku["name"]: sku
            for sku in self._pages(f"{self.scope}{COMPUTE_SKUS}&$filter=location eq '{location}'")
            if sku.get("resourceType") == "virtualMachines"
        }
        demand: dict[tuple[str, str], int] = defaultdict(int)
        for size, uses in needed.items():
            sku = skus.get(size)
            what = ", ".join(use[0] for use in uses)
            if sku is None:
                self.add(
                    Finding(
                        "vm sizes",
                        size,
                        f"is not offered in {location} (needed by {what})",
                        f"pick a size that `az vm list-skus --location {location} --resource-type virtualMachines` lists",
                    )
                )
                continue
            blocked = [r for r in sku.get("restrictions") or [] if r.get("type") == "Location"]
            if blocked:
                reason = blocked[0].get("reasonCode")
                self.add(
                    Finding(
                        "vm sizes",
                        size,
                        f"is not available to this subscription in {location} ({reason}; needed by {what})",
                        "pick another size, or ask for access: https://aka.ms/azureskunotavailable",
                    )
                )
                continue
            vcpus = int(
                next((c["value"] for c in sku.get("capabilities") or [] if c["name"] == "vCPUs"), "0")
            )
            for _, count, kind in uses:
                demand[(kind, str(sku.get("family")))] += vcpus * count
        self._compute_quota(demand)
        self._aml_quota(demand)

    def _compute_quota(self, demand: Mapping[tuple[str, str], int]) -> None:
        wanted = {family: cores for (kind, family), cores in demand.items() if kind == "compute"}
        if not wanted:
            return
        url = self.scope + COMPUTE_USAGES.format(location=self.cfg.location)
        usage = {str(u["name"]["value"]).lower(): u for u in self._pages(url)}
        for family, cores in sorted(wanted.items()) + [("cores", sum(wanted.values()))]:
            item = usage.get(family.lower())
            if item is not None and int(item["limit"]) - int(item["currentValue"]) < cores:
                self.add(
                    self._quota_finding(
                        family, cores, int(item["limit"]), int(item["currentValue"]), "Compute"
                    )
                )

    def _aml_quota(self, demand: Mapping[tuple[str, str], int]) -> None:
        wanted = {
            (kind, family): cores for (kind, family), cores in demand.items() if kind.startswith("aml-")
        }
        if not wanted:
            return
        url = self.scope + AML_USAGES.format(location=self.cfg.location)
        usages = {str(u["name"]["value"]).lower(): u for u in self._pages(url)}
        for (kind, family), cores in wanted.items():
            key = family.lower() if kind == "aml-dedicated" else "totallowprioritycores"
            item = usages.get(key)
            if item is None:
                self.report.skipped.append(f"AML quota: no usage entry '{key}' in {self.cfg.location}")
            elif int(item["limit"]) - int(item["currentValue"]) < cores:
                self.add(
                    self._quota_finding(
                        family if kind == "aml-dedicated" else "low-priority cores",
                        cores,
                        int(item["limit"]),
                        int(item["currentValue"]),
                        "Azure ML",
                    )
                )

    def _quota_finding(self, family: str, cores: int, limit: int, used: int, service: str) -> Finding:
        return Finding(
            "quota",
            f"{service} {family} in {self.cfg.location}",
            f"needs {cores} vCPUs, {limit - used} free (limit {limit}, used {used})",
            "request more quota (portal: Quotas, or `az quota create`), lower the node counts, or pick another size or region",
        )

    def names(self) -> None:
        names, location, group = self.cfg.names, self.cfg.location, self.cfg.names.resource_group
        storage = self.rest(
            "POST",
            STORAGE_NAME_CHECK,
            {"name": names.storage_account, "type": "Microsoft.Storage/storageAccounts"},
        )
        own = STORAGE_ACCOUNT.format(group=group, name=names.storage_account)
        if not storage.get("nameAvailable") and self.rest("GET", own) is None:
            self.add(self._name_taken("storage account", names.storage_account, storage.get("message")))
        registry = self.client("containerregistry").registries.check_name_availability(
            {"name": names.container_registry, "type": "Microsoft.ContainerRegistry/registries"}
        )
        if not registry.name_available and not self._exists(
            lambda: self.client("containerregistry").registries.get(group, names.container_registry)
        ):
            self.add(self._name_taken("container registry", names.container_registry, registry.message))
        self._key_vault(names.key_vault, location, group)
        self._deleted_workspaces(names.workspace, names.log_analytics, group)

    def _pages(self, url: str) -> list[Any]:
        """Every item of a paged ARM list (`value`, following `nextLink`)."""
        items, next_url = [], url
        while next_url:
            page = self.rest("GET", next_url.replace("https://management.azure.com", "")) or {}
            items += page.get("value", [])
            next_url = page.get("nextLink")
        return items

    def _exists(self, get: Callable[[], Any]) -> bool:
        """Whether the stack's own resource already holds the name (a re-run of `pulumi up`)."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            get()
            return True
        except ResourceNotFoundError:
            return False

    def _name_taken(self, what: str, name: str, message: str | None) -> Finding:
        return Finding(
            "names",
            f"{what} {name}",
            f"is taken elsewhere in Azure ({message or 'not available'}); the name is global",
            "choose another namespace (`pulumi config set namespace <other>`) or postfix",
        )

    def _key_vault(self, name: str, location: str, group: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        vaults = self.client("keyvault").vaults
        try:
            deleted = vaults.get_deleted(name, location)
        except ResourceNotFoundError:
            deleted = None
        if deleted is not None:
            props = deleted.properties
            purge = (
                "purge protection is on, so it cannot be purged; "
                if getattr(props, "purge_protection_enabled", False)
                else f"`az keyvault purge --name {name} --location {location}` frees it, or "
            )
            self.add(
                Finding(
                    "names",
                    f"Key Vault {name}",
                    f"is held by a soft-deleted vault until {getattr(props, 'scheduled_purge_date', None) or 'its purge date'}",
                    f"{purge}set a new postfix (`pulumi config set postfix <digits>`)",
                )
            )
            return
        check = vaults.check_name_availability({"name": name, "type": "Microsoft.KeyVault/vaults"})
        if not check.name_available and not self._exists(lambda: vaults.get(group, name)):
            self.add(self._name_taken("Key Vault", name, check.message))

    def _deleted_workspaces(self, workspace: str, log_analytics: str, group: str) -> None:
        ml = self.provider("Microsoft.MachineLearningServices")
        kinds = {str(t.resource_type).lower(): list(t.api_versions or []) for t in ml.resource_types or []}
        if "deletedworkspaces" in kinds and kinds["deletedworkspaces"]:
            version = sorted(kinds["deletedworkspaces"])[-1]
            url = f"{self.scope}/providers/Microsoft.MachineLearningServices/deletedWorkspaces?api-version={version}"
            for item in self._pages(url):
                if (
                    str(item.get("name", "")).lower() == workspace.lower()
                    and f"/resourcegroups/{group.lower()}/" in str(item.get("id", "")).lower()
                ):
                    self.add(
                        Finding(
                            "names",
                            f"workspace {workspace}",
                            f"is held by a soft-deleted workspace in {group} until its retention ends (14 days by default)",
                            "recover or permanently delete it (portal: Azure Machine Learning > Recently deleted), or set a new postfix",
                        )
                    )
        else:
            # The soft-deleted workspace list has no documented API; the provider lists none here.
            self.report.skipped.append(
                "soft-deleted workspaces: the provider lists no deletedWorkspaces type"
            )
        for item in self._pages(self.scope + LOG_ANALYTICS_DELETED):
            same_name = str(item.get("name", "")).lower() == log_analytics.lower()
            if same_name and f"/resourcegroups/{group.lower()}/" not in str(item.get("id", "")).lower():
                self.add(
                    Finding(
                        "names",
                        f"Log Analytics workspace {log_analytics}",
                        "is held by a deleted workspace in another resource group for 14 days",
                        "delete it for good (`az monitor log-analytics workspace delete --force`) or set a new postfix",
                    )
                )


def azure_context(
    stack_in: StackInput, credential: Any, subscription_id: str | None
) -> tuple[Azure | None, list[Finding]]:
    """The credential's token and the subscription, or findings saying how to provide them."""
    subscription = (
        subscription_id
        or stack_in.values.get("azure-native:subscriptionId")
        or os.environ.get("AZURE_SUBSCRIPTION_ID")
        or os.environ.get("ARM_SUBSCRIPTION_ID")
    )
    if not subscription:
        return None, [
            Finding(
                "azure",
                "subscription",
                "is not set: the stack has no azure-native:subscriptionId and AZURE_SUBSCRIPTION_ID is empty",
                f"`pulumi config set azure-native:subscriptionId <id> --stack {stack_in.stack}`, or --subscription",
            )
        ]
    if credential is None:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    from azure.core.exceptions import ClientAuthenticationError

    try:
        token = credential.get_token(ARM_SCOPE)
    except ClientAuthenticationError as error:
        first = str(error).splitlines()[0][:200]
        return None, [
            Finding(
                "azure",
                "credentials",
                f"none found ({first})",
                "`az login` (or workload identity: AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_FEDERATED_TOKEN_FILE); "
                "or run with --offline",
            )
        ]
    return Azure(credential, subscription, token_object_id(token.token)), []


def run_preflight(
    stack: str,
    *,
    root: Path = ROOT,
    offline: bool = False,
    credential: Any = None,
    subscription_id: str | None = None,
    which: Callable[[str], str | None] = shutil.which,
    run: Callable[..., Any] = subprocess.run,
    progress: Progress = _quiet,
) -> Report:
    """Every check for `stack`; raises PlanInputError when the stack file cannot be read at all."""
    report = Report(stack)
    progress(f"preflight {stack}: reading Pulumi.{stack}.yaml and validating its config ...")
    stack_in = stack_input(stack, root=root)
    findings, notes, cfg = config_findings(stack_in)
    report.findings += findings + secret_findings(root, stack, stack_in.project)
    report.notes += notes
    report.checked += ["stack file", "config", "secrets"]
    progress("checking the Pulumi CLI, the toolchain and the policy pack ...")
    report.findings += cli_findings(which, run) + policy_venv_findings(root)
    report.checked += ["pulumi cli", "toolchain", "policy pack"]
    if offline:
        report.skipped.append("Azure checks (--offline)")
        return report
    if cfg is None:
        report.skipped.append("Azure checks: fix the config first (names and sizes come from it)")
        return report
    progress("getting an Azure token ...")
    azure, problems = azure_context(stack_in, credential, subscription_id)
    report.findings += problems
    if azure is not None:
        ArmChecks(cfg, azure, report, progress).run()
    return report


def render(report: Report) -> str:
    """Findings with their fixes, then what was checked or skipped, then the verdict."""
    lines = [str(finding) for finding in report.findings]
    lines += [f"note: {note}" for note in report.notes]
    lines += [f"skipped: {reason}" for reason in report.skipped]
    verdict = "ready for `pulumi up`" if report.ready else f"{len(report.findings)} finding(s): not ready"
    lines.append(f"preflight {report.stack}: {verdict} (checked: {', '.join(report.checked)})")
    return "\n".join(lines)


def main(stacks: Iterable[str], offline: bool, subscription_id: str | None, **options: Any) -> int:
    """The CLI: 0 ready, 1 findings, 2 a stack that cannot be read. `options` go to run_preflight."""
    worst = 0
    for stack in stacks:
        try:
            report = run_preflight(
                stack,
                offline=offline,
                subscription_id=subscription_id,
                progress=lambda line: print(line, file=sys.stderr),
                **options,
            )
        except PlanInputError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(render(report))
        worst = max(worst, 0 if report.ready else 1)
    return worst
