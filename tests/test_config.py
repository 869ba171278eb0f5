"""Config validation: valid stacks parse; each bad value is refused naming its key, before any resource."""

from __future__ import annotations

import inspect
import re

import pulumi
import pytest

from stacks import addresses, program
from stacks.config import (
    AZURE_NATIVE_KEYS,
    PROFILE_FIELDS,
    ConfigCheck,
    ConfigError,
    check_config,
    example_config,
    example_values,
    parse_config,
    secret_keys_of,
)
from stacks.mockrun import Recording, run_program
from stacks.naming import derive_names, max_namespace_length, name_problems
from stacks.program import program as platform_program
from stacks.profiles import Profile
from stacks.schema import KEYS, KEYS_BY_NAME, PROFILE

P = "aml-platform"
GUID = "0f8fad5b-d9cb-469f-a165-70867728950e"
PRIVATE_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    "-----END OPENSSH PRIVATE KEY-----"
)
PAT = "abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrst"  # the shape of an Azure DevOps PAT
ENCRYPTED_KEY = (
    "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHzBJBgkqhkiG9w0BBQ0w\n-----END ENCRYPTED PRIVATE KEY-----\n"
)


def _problems(values: dict[str, str], stack: str, deploying: bool = False) -> list:
    return list(
        check_config(values, stack=stack, secret_keys=secret_keys_of(values), deploying=deploying).problems
    )


def test_dev_profile_defaults() -> None:
    cfg = example_config("dev")
    assert cfg.environment == "dev"
    assert cfg.public_network_access is True
    assert cfg.protect_stateful is False
    assert cfg.compute.priority == "LowPriority" and cfg.compute.min_nodes == 0
    # dev defaults to the customer VNet, whose compute and AKS need private endpoints (tests/test_designs.py).
    assert cfg.network.private_endpoints is True
    assert cfg.tags == {"environment": "dev", "project": P, "owner": "ml-platform", "managed-by": "pulumi"}


def test_prod_profile_is_hardened() -> None:
    cfg = example_config("prod")
    assert cfg.public_network_access is False
    assert cfg.protect_stateful is True
    assert cfg.network.private_endpoints is True
    assert cfg.aks is not None and cfg.aks.private_cluster is True
    assert cfg.workspace_isolation_mode == "Disabled"  # customer VNet design: our VNet isolates compute
    assert cfg.compute.priority == "Dedicated" and cfg.compute.ssh_enabled is False
    assert cfg.devops is not None and cfg.devops.prod_approvers == ("4f9c2b1e-7d3a-4e8b-9c5f-1a2b3c4d5e6f",)


def test_unset_keys_take_the_profile_and_zero_is_a_value() -> None:
    cfg = example_config("prod")
    assert cfg.compute.max_nodes == 4 and cfg.log_retention_days == 90 and cfg.aks is not None
    assert cfg.aks.node_count == 3
    # Pulumi.yaml no longer declares these keys, so an explicit 0 reaches the program as 0, not as "unset".
    with pytest.raises(ConfigError, match="computeMaxNodes"):
        example_config("prod", computeMaxNodes="0")


def test_switches_leave_parts_out() -> None:
    cfg = example_config("dev", enableAks="false", enableDevops="false", enableAgentVm="false")
    assert cfg.aks is None and cfg.devops is None and cfg.agent_vm is None


def test_secrets_never_show_in_repr() -> None:
    cfg = example_config("dev", devopsPat="very-secret-token")
    assert "very-secret-token" not in repr(cfg)
    assert cfg.devops is not None and cfg.devops.pat.reveal() == "very-secret-token"


# Each row: (overrides, stack, key that must be named, words in its message, deploying).
# Overrides use key names; a value of None removes the key; "+key" adds a key outside the example.
BAD_CONFIGS = [
    # required and identity
    ({"namespace": None}, "dev", "namespace", "is required", False),
    ({"namespace": "Taxi"}, "dev", "namespace", "lowercase", False),
    ({"namespace": "ta-xi"}, "dev", "namespace", "no hyphens", False),
    ({"namespace": "1taxi"}, "dev", "namespace", "starting with a letter", False),
    ({"namespace": "a"}, "dev", "namespace", "2 or more", False),
    ({"namespace": "averyverylongname"}, "prod", "namespace", "at most 13", False),
    ({"postfix": "01a"}, "dev", "postfix", "1-6 digits", False),
    ({"postfix": "1234567"}, "dev", "postfix", "1-6 digits", False),
    ({"location": "West Europe"}, "dev", "location", "did you mean westeurope", False),
    ({"location": "moon1"}, "dev", "location", "Azure region", False),
    ({"owner": "a/b"}, "dev", "owner", "tag value", False),
    # the profile a stack runs
    ({"environment": "dev"}, "prod", "environment", "keeps the prod profile", False),
    ({"environment": "staging"}, "dev", "environment", "one of dev, prod", False),
    ({}, "staging", "environment", "is required", False),
    ({"publicNetworkAccess": "true"}, "prod", "publicNetworkAccess", "must not allow public", False),
    ({"publicNetworkAccess": "yes"}, "dev", "publicNetworkAccess", "true or false", False),
    # counts and sizes within Azure's limits
    ({"computeMaxNodes": "0"}, "prod", "computeMaxNodes", "from 1 to 1000", False),
    ({"aksNodeCount": "0"}, "prod", "aksNodeCount", "from 1 to 100", False),
    ({"computeMinNodes": "5", "computeMaxNodes": "2"}, "dev", "computeMinNodes", "must not exceed", False),
    ({"computeMaxNodes": "two"}, "dev", "computeMaxNodes", "whole number", False),
    ({"computeMaxNodes": " 2"}, "dev", "computeMaxNodes", "whole number", False),
    ({"computeMaxNodes": "2.5"}, "dev", "computeMaxNodes", "whole number", False),
    ({"computeIdleSeconds": "10"}, "dev", "computeIdleSeconds", "from 60", False),
    ({"logRetentionDays": "7"}, "dev", "logRetentionDays", "from 30 to 730", False),
    ({"agentCount": "11"}, "dev", "agentCount", "from 1 to 10", False),
    ({"computeVmSize": "DS3"}, "dev", "computeVmSize", "VM size", False),
    ({"aksNodeVmSize": "big"}, "dev", "aksNodeVmSize", "VM size", False),
    ({"computePriority": "Spot"}, "dev", "computePriority", "Dedicated, LowPriority", False),
    ({"computePriority": "dedicated"}, "dev", "computePriority", "did you mean Dedicated", False),
    ({"enableAks": "True"}, "dev", "enableAks", "true or false", False),
    # CIDRs: prefix lengths, Azure's smallest subnet, reserved ranges and addresses, capacity
    ({"trainingSubnet": "10.10.1.0"}, "dev", "trainingSubnet", "no prefix length", False),
    ({"vnetAddressSpace": "10.10.0.0"}, "dev", "vnetAddressSpace", "no prefix length", False),
    ({"trainingSubnet": "10.10.1.0/30"}, "dev", "trainingSubnet", "smallest subnet is a /29", False),
    ({"agentsSubnet": "10.10.2.7/32"}, "dev", "agentsSubnet", "smallest subnet is a /29", False),
    ({"vnetAddressSpace": "10.10.0.0/33"}, "dev", "vnetAddressSpace", "IPv4 CIDR", False),
    ({"trainingSubnet": "10.10.1.5/24"}, "dev", "trainingSubnet", "host bits", False),
    ({"trainingSubnet": "fd00::/64"}, "dev", "trainingSubnet", "IPv4", False),
    ({"agentsSubnet": "192.168.0.0/24"}, "dev", "agentsSubnet", "inside vnetAddressSpace", False),
    ({"agentsSubnet": "10.10.1.128/25"}, "dev", "agentsSubnet", "overlaps", False),
    (
        {"trainingSubnet": "10.10.1.0/29", "computeMaxNodes": "4"},
        "dev",
        "trainingSubnet",
        "leaves 3 addresses after Azure's 5 reserved",
        False,
    ),
    ({"aksSubnet": "10.10.16.0/25", "aksNodeCount": "4"}, "dev", "aksSubnet", "need 155", False),
    (
        {"vnetAddressSpace": "169.254.0.0/16", "trainingSubnet": "169.254.1.0/24"},
        "dev",
        "vnetAddressSpace",
        "Azure reserves",
        False,
    ),
    (
        {"vnetAddressSpace": "172.31.0.0/16", "trainingSubnet": "172.31.1.0/24"},
        "dev",
        "vnetAddressSpace",
        "AKS reserves",
        False,
    ),
    ({"aksServiceCidr": "10.10.128.0/17"}, "dev", "aksServiceCidr", "overlaps vnetAddressSpace", False),
    (
        {"aksServiceCidr": "172.30.0.0/16", "aksDnsServiceIp": "172.30.0.10"},
        "dev",
        "aksServiceCidr",
        "AKS reserves",
        False,
    ),
    (
        {"aksServiceCidr": "10.96.0.0/11", "aksDnsServiceIp": "10.96.0.10"},
        "dev",
        "aksServiceCidr",
        "/12",
        False,
    ),
    ({"aksDnsServiceIp": "10.200.0.10"}, "dev", "aksDnsServiceIp", "inside aksServiceCidr", False),
    ({"aksDnsServiceIp": "10.100.0.1"}, "dev", "aksDnsServiceIp", "kubernetes.default", False),
    ({"aksDnsServiceIp": "10.100.0.0"}, "dev", "aksDnsServiceIp", "network or broadcast", False),
    ({"aksDnsServiceIp": "10.100.255.255"}, "dev", "aksDnsServiceIp", "network or broadcast", False),
    ({"aksDnsServiceIp": "10.100.0.10/32"}, "dev", "aksDnsServiceIp", "without a prefix length", False),
    # keys: misspelt names and namespaces, did you mean
    ({"+namspace": "typo"}, "dev", "namspace", "did you mean aml-platform:namespace", False),
    ({"+devopsPAT": "x"}, "dev", "devopsPAT", "did you mean aml-platform:devopsPat", False),
    ({"+frobnicate": "1"}, "dev", "frobnicate", "pulumi config rm", False),
    # lists: empty, wrong form
    ({"prodApprovers": "[]"}, "prod", "prodApprovers", "is an empty list", False),
    ({"prodApprovers": None}, "prod", "prodApprovers", "is required on prod", False),
    ({"prodApprovers": "alice"}, "prod", "prodApprovers", "is not a list", False),
    ({"prodApprovers": '["alice@contoso.com"]'}, "prod", "prodApprovers", "not GUIDs", False),
    ({"prodApprovers": '{"id": "x"}'}, "prod", "prodApprovers", "is not a list", False),
    ({"prodApprovers": f'["{GUID}", "{GUID.upper()}"]'}, "prod", "prodApprovers", "same GUID twice", False),
    # Azure DevOps and the agent VM
    ({"enableDevops": "false"}, "dev", "enableAgentVm", "needs enableDevops", False),
    ({"devopsPat": None}, "dev", "devopsPat", "is required with enableDevops", False),
    ({"devopsOrgUrl": None}, "dev", "devopsOrgUrl", "is required with enableDevops", False),
    ({"devopsOrgUrl": "https://contoso.visualstudio.com"}, "dev", "devopsOrgUrl", "dev.azure.com", False),
    ({"devopsProject": "a/b"}, "dev", "devopsProject", "1-64 characters", False),
    (
        {"serviceConnectionAuth": "Password"},
        "dev",
        "serviceConnectionAuth",
        "WorkloadIdentityFederation",
        False,
    ),
    ({"serviceConnectionAuth": "ServicePrincipal"}, "dev", "servicePrincipalClientId", "is required", False),
    (
        {"serviceConnectionAuth": "ServicePrincipal", "servicePrincipalClientId": "app-one"},
        "dev",
        "servicePrincipalClientId",
        "a GUID",
        False,
    ),
    (
        {"serviceConnectionAuth": "ServicePrincipal", "servicePrincipalClientId": GUID},
        "dev",
        "servicePrincipalSecret",
        "is required",
        False,
    ),
    ({"agentSshPublicKey": None}, "dev", "agentSshPublicKey", "is required with enableAgentVm", False),
    ({"agentSshPublicKey": "not-a-key"}, "dev", "agentSshPublicKey", "OpenSSH public key", False),
    ({"agentSshPublicKey": PRIVATE_KEY}, "dev", "agentSshPublicKey", "PRIVATE key", False),
    ({"agentAdminUsername": "root"}, "dev", "agentAdminUsername", "not be root", False),
    ({"agentAdminUsername": "Admin User"}, "dev", "agentAdminUsername", "lowercase Linux user", False),
    # isolation designs and the inference router's TLS and load balancer
    ({"isolationDesign": "managedVnet"}, "dev", "isolationDesign", "AZURE-FACTS 1", False),
    ({"isolationDesign": "managedvnet"}, "dev", "isolationDesign", "did you mean managedVnet", False),
    ({"storageSharedKeyAccess": "maybe"}, "dev", "storageSharedKeyAccess", "true or false", False),
    ({"inferenceSslCertPem": None}, "dev", "inferenceSslCertPem", "together", False),
    ({"inferenceSslKeyPem": None}, "prod", "inferenceSslKeyPem", "AZURE-FACTS 13", False),
    ({"inferenceSslCname": "scoring"}, "prod", "inferenceSslCname", "at least two labels", False),
    (
        {"inferenceSslCertPem": PRIVATE_KEY},
        "prod",
        "inferenceSslCertPem",
        "belongs in inferenceSslKeyPem",
        False,
    ),
    ({"inferenceSslKeyPem": ENCRYPTED_KEY}, "prod", "inferenceSslKeyPem", "passphrase-protected", False),
    ({"inferenceSslCname": "other.contoso.com"}, "prod", "inferenceSslCertPem", "does not name", False),
    (
        {"inferenceLoadBalancerIp": "10.10.32.4"},
        "prod",
        "inferenceLoadBalancerIp",
        "outside aksSubnet",
        False,
    ),
    ({"inferenceLoadBalancerIp": "10.10.16.2"}, "prod", "inferenceLoadBalancerIp", "Azure reserves", False),
    ({"inferenceLoadBalancerIp": "10.10.16.9/32"}, "prod", "inferenceLoadBalancerIp", "IPv4 address", False),
    # identities
    (
        {"githubRepository": "https://github.com/o/r"},
        "dev",
        "githubRepository",
        "<owner>/<repository>",
        False,
    ),
    ({"githubRepository": "-o/r"}, "dev", "githubRepository", "<owner>/<repository>", False),
    # monitoring: receivers, thresholds, Prometheus and Grafana
    ({"alertEmails": "[]"}, "prod", "enableAlerts", "alerts need a receiver", False),
    ({"alertEmails": '["oncall@"]'}, "prod", "alertEmails", "must be a list of email addresses", False),
    ({"alertEmails": "oncall@team.io"}, "prod", "alertEmails", "is not a list", False),
    ({"alertWebhookUrl": "http://hooks.team.io/x"}, "prod", "alertWebhookUrl", "https:// URL", False),
    ({"alertSeverity": "7"}, "prod", "alertSeverity", "from 0 to 4", False),
    ({"alertErrorRatePercent": "0"}, "prod", "alertErrorRatePercent", "from 1 to 100", False),
    ({"alertNoTrafficMinutes": "2"}, "prod", "alertNoTrafficMinutes", "from 5 to 1440", False),
    ({"alertNodeMemoryPercent": "85%"}, "prod", "alertNodeMemoryPercent", "whole number", False),
    ({"driftThreshold": "1e-1"}, "prod", "driftThreshold", "a number above 0", False),
    (
        {"enablePrometheusGrafana": "true", "enableAks": "false"},
        "dev",
        "enablePrometheusGrafana",
        "needs enableAks",
        False,
    ),
    (
        {"enablePrometheusGrafana": "true", "namespace": "taxifaresnyc"},
        "prod",
        "enablePrometheusGrafana",
        "Azure allows 2-23",
        False,
    ),
    ({"grafanaAdminObjectIds": '["bob@team.io"]'}, "dev", "grafanaAdminObjectIds", "Entra object ids", False),
    ({"enableAlerts": "on"}, "dev", "enableAlerts", "true or false", False),
    # placeholders: warned about offline, refused for a real deployment with what to put instead
    ({}, "dev", "devopsOrgUrl", "your organization's URL", True),
    ({}, "prod", "prodApprovers", "origin id of your approving group", True),
    ({}, "dev", "agentSshPublicKey", "cat ~/.ssh/id_ed25519.pub", True),
    ({"owner": "CHANGEME"}, "dev", "owner", "placeholder", True),
    ({}, "prod", "alertEmails", "set who the alerts reach", True),
    ({"alertEmails": '["ops@team.io", "a@mail.example"]'}, "prod", "alertEmails", "a@mail.example", True),
    ({}, "prod", "inferenceSslCname", "the host name your certificate names", True),
    ({"githubRepository": "contoso/aml-platform"}, "dev", "githubRepository", "sample owner", True),
]
REFUSED = [row for row in BAD_CONFIGS if row[3]]


def _values(overrides: dict) -> dict[str, str]:
    plain = {key: value for key, value in overrides.items() if not key.startswith("+")}
    values = example_values(**plain)
    values.update({f"{P}:{key[1:]}": value for key, value in overrides.items() if key.startswith("+")})
    return values


def test_the_table_holds_at_least_40_refusals() -> None:
    assert len(REFUSED) >= 40


@pytest.mark.parametrize(
    ("overrides", "stack", "key", "words", "deploying"),
    REFUSED,
    ids=[f"{row[2]}-{index}" for index, row in enumerate(REFUSED)],
)
def test_bad_config_is_refused_naming_the_key(
    overrides: dict, stack: str, key: str, words: str, deploying: bool
) -> None:
    values = _values(overrides)
    problems = _problems(values, stack, deploying)
    named = [problem for problem in problems if problem.key == f"{P}:{key}"]
    assert named, f"no problem names {key}: {problems}"
    assert any(words in str(problem) for problem in named), named
    given = values.get(f"{P}:{key}")
    for problem in named:
        # "is required" only for keys that are missing (not for an unset key whose default applies); the
        # value given is named (masked where secret).
        assert ("is required" in problem.message) == (given is None and not problem.default), problem
        if given is not None and not KEYS_BY_NAME.get(key, KEYS[0]).secret and len(given) <= 40:
            assert problem.value == given, problem


def test_placeholders_only_warn_offline() -> None:
    values = example_values(owner="team-CHANGEME")
    offline = check_config(values, stack="prod", secret_keys=secret_keys_of(values))
    assert offline.config is not None and not offline.problems
    warned = {warning.key for warning in offline.warnings}
    assert {f"{P}:owner", f"{P}:devopsOrgUrl", f"{P}:prodApprovers", f"{P}:agentSshPublicKey"} <= warned
    assert all("a real `pulumi up` refuses it" in str(w) for w in offline.warnings if "placeholder" in str(w))


def test_a_real_run_refuses_placeholders_before_any_resource(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(program, "is_deployment", lambda: True)
    values = example_values()
    recording = Recording(project=P, stack="prod")
    with pytest.raises(pulumi.RunError, match="devopsOrgUrl.*sample organization"):
        run_program(
            platform_program, stack="prod", config=values, secret_keys=secret_keys_of(values), into=recording
        )
    assert recording.resources == []


def test_mock_runs_are_not_deployments() -> None:
    seen: list[bool] = []

    def probe() -> dict:
        seen.append(program.is_deployment())
        return {}

    run_program(probe)
    assert seen == [False]


@pytest.mark.parametrize(
    ("overrides", "stack", "key", "words", "deploying"), REFUSED[::6], ids=[row[2] for row in REFUSED[::6]]
)
def test_bad_config_registers_nothing(
    overrides: dict, stack: str, key: str, words: str, deploying: bool
) -> None:
    if deploying:
        pytest.skip("placeholders are refused only in a real run (see the test above)")
    values = _values(overrides)
    recording = Recording(project=P, stack=stack)
    with pytest.raises(pulumi.RunError) as error:
        run_program(
            platform_program, stack=stack, config=values, secret_keys=secret_keys_of(values), into=recording
        )
    assert f"{P}:{key}" in str(error.value)
    assert recording.resources == []


def test_empty_prod_approvers_is_a_config_error_not_a_traceback_after_80_resources() -> None:
    values = example_values(prodApprovers="[]")
    recording = Recording(project=P, stack="prod")
    with pytest.raises(pulumi.RunError, match="prodApprovers.*empty list"):
        run_program(
            platform_program, stack="prod", config=values, secret_keys=secret_keys_of(values), into=recording
        )
    assert recording.resources == []


# One bad value per schema key: a new key without a row here fails test_every_key_has_a_bad_value.
BAD_VALUE_OF_KEY = {
    "namespace": "Bad!",
    "postfix": "x1",
    "environment": "qa",
    "environmentOverride": "maybe",
    "location": "atlantis",
    "owner": "a&b",
    "publicNetworkAccess": "on",
    "logRetentionDays": "1",
    "computeVmSize": "large",
    "computeMinNodes": "-1",
    "computeMaxNodes": "0",
    "computeIdleSeconds": "5",
    "computePriority": "Spot",
    "vnetAddressSpace": "10.10.0.0",
    "trainingSubnet": "10.10.1.0/31",
    "agentsSubnet": "10.10.2.1/24",
    "privateEndpointsSubnet": "10.11.3.0/24",
    "aksSubnet": "10.10.16.0",
    "aksServiceCidr": "10.100.0.0",
    "aksDnsServiceIp": "10.100.0.1",
    "enableAks": "yes",
    "aksNodeVmSize": "D4",
    "aksNodeCount": "0",
    "enableDevops": "1",
    "devopsOrgUrl": "dev.azure.com/x",
    "devopsProject": "a|b",
    "devopsPat": "",
    "serviceConnectionAuth": "Basic",
    "servicePrincipalClientId": "not-a-guid",
    "servicePrincipalSecret": "",
    "prodApprovers": "[]",
    "enableAgentVm": "on",
    "agentVmSize": "B2s",
    "agentCount": "0",
    "agentAdminUsername": "root",
    "agentSshPublicKey": PRIVATE_KEY,
    "postDeployHook": "no",
    "enableAlerts": "enabled",
    "alertEmails": '["not-an-email"]',
    "alertWebhookUrl": "http://hooks.team.io/alert",
    "alertSeverity": "5",
    "alertErrorRatePercent": "101",
    "alertP99LatencyMs": "1.5",
    "alertNoTrafficMinutes": "1441",
    "alertNodeCpuPercent": "0",
    "alertNodeMemoryPercent": "200",
    "driftThreshold": "0",
    "enablePrometheusGrafana": "True",
    "grafanaAdminObjectIds": '["not-a-guid"]',
    "isolationDesign": "hubSpoke",
    "storageSharedKeyAccess": "off",
    "inferenceSslCname": "*.contoso.com",
    "inferenceSslCertPem": "not a pem",
    "inferenceSslKeyPem": "not a key",
    "inferenceLoadBalancerIp": "10.10.16.300",
    "githubRepository": "just-a-name",
    "enableModelRegistry": "yes",
    "modelRegistryWriters": '["not-a-guid"]',
    "modelRegistryRegions": '["North Europe"]',
    "modelRegistryReaders": '["not-a-guid"]',
}


def test_every_key_has_a_bad_value() -> None:
    assert set(BAD_VALUE_OF_KEY) == set(KEYS_BY_NAME)


@pytest.mark.parametrize("key", [key.name for key in KEYS])
def test_every_key_is_checked_before_any_resource(key: str) -> None:
    values = example_values(**{key: BAD_VALUE_OF_KEY[key]})
    if key.startswith("servicePrincipal"):
        values[f"{P}:serviceConnectionAuth"] = "ServicePrincipal"
    recording = Recording(project=P, stack="prod")
    with pytest.raises(pulumi.RunError) as error:
        run_program(
            platform_program, stack="prod", config=values, secret_keys=secret_keys_of(values), into=recording
        )
    assert f"{P}:{key} (" in str(error.value)
    assert recording.resources == []


def test_all_problems_reported_in_one_pass() -> None:
    values = example_values(namespace="Bad!", computeVmSize="x", agentCount="0", location="nowhere")
    values[f"{P}:namspace"] = "typo"
    with pytest.raises(ConfigError) as error:
        parse_config(values, stack="prod", secret_keys=secret_keys_of(values))
    keys = {problem.key for problem in error.value.problems}
    assert {
        f"{P}:namespace",
        f"{P}:computeVmSize",
        f"{P}:agentCount",
        f"{P}:location",
        f"{P}:namspace",
    } <= keys


def test_a_private_key_is_refused_without_being_echoed() -> None:
    values = example_values(agentSshPublicKey=PRIVATE_KEY, owner=PRIVATE_KEY.replace("\n", ""))
    with pytest.raises(ConfigError) as error:
        parse_config(values, stack="dev", secret_keys=secret_keys_of(values))
    text = str(error.value)
    assert "agentSshPublicKey" in text and "PRIVATE key" in text
    assert "b3BlbnNzaC1rZXktdjE" not in text and "BEGIN OPENSSH" not in text


def test_a_token_pasted_into_a_plain_key_is_masked() -> None:
    values = example_values(devopsOrgUrl=PAT)
    with pytest.raises(ConfigError) as error:
        parse_config(values, stack="dev", secret_keys=secret_keys_of(values))
    assert f"{P}:devopsOrgUrl ('[a token, not shown]')" in str(error.value) and PAT not in str(error.value)


def test_plaintext_secret_is_refused() -> None:
    values = example_values()
    with pytest.raises(ConfigError, match="devopsPat.*plaintext"):
        parse_config(values, stack="dev", secret_keys=frozenset())


def test_mistyped_secret_key_does_not_show_its_value() -> None:
    values = example_values(devopsPAT="hunter2-token")
    with pytest.raises(ConfigError) as error:
        parse_config(values, stack="dev", secret_keys=secret_keys_of(values) | {f"{P}:devopsPAT"})
    assert f"{P}:devopsPAT" in str(error.value) and "hunter2-token" not in str(error.value)


def test_secret_value_never_in_error_message() -> None:
    values = example_values(devopsPat="hunter2-token")
    with pytest.raises(ConfigError) as error:
        parse_config(values, stack="dev", secret_keys=frozenset())
    assert "hunter2-token" not in str(error.value)


@pytest.mark.parametrize(
    ("key", "words"),
    [
        ("aml-plaform:namespace", "did you mean aml-platform:namespace"),
        ("azure-nativ:location", "did you mean azure-native:location"),
        ("azure-native:locaton", "did you mean azure-native:location"),
    ],
)
def test_misspelt_namespaces_and_provider_keys(key: str, words: str) -> None:
    values = {**example_values(), key: "westeurope"}
    problems = [str(p) for p in _problems(values, "dev") if p.key == key]
    assert problems and words in problems[0] and "pulumi config rm" in problems[0]


def test_keys_that_have_no_effect_are_warned_about() -> None:
    values = {
        **example_values(enableAks="false", aksNodeCount="3", environmentOverride="true"),
        "azuredevops:orgServiceUrl": "https://dev.azure.com/x",
    }
    check = check_config(values, stack="dev", secret_keys=secret_keys_of(values))
    warned = {warning.key: str(warning) for warning in check.warnings}
    assert "while enableAks is false" in warned[f"{P}:aksNodeCount"]
    assert "pulumi config rm aksNodeCount" in warned[f"{P}:aksNodeCount"]
    assert "only prod gets an approval check" in warned[f"{P}:prodApprovers"]
    assert "has no effect" in warned[f"{P}:environmentOverride"]
    assert "devopsOrgUrl" in warned["azuredevops:orgServiceUrl"]
    assert check.config is not None


def test_keys_of_switches_that_are_off_are_warned_about() -> None:
    values = example_values(
        alertSeverity="2",
        grafanaAdminObjectIds=f'["{GUID}"]',
        enableAks="false",
        inferenceLoadBalancerIp="10.10.16.9",
        isolationDesign="managedVnet",
        aksSubnet="10.10.32.0/20",
    )
    check = check_config(values, stack="dev", secret_keys=secret_keys_of(values))
    assert check.config is not None, check.problems
    warned = {warning.key: str(warning) for warning in check.warnings}
    # dev's profile leaves alerts off: its alert keys have no effect until enableAlerts=true.
    assert "while enableAlerts is false" in warned[f"{P}:alertEmails"]
    assert "while enableAlerts is false" in warned[f"{P}:alertSeverity"]
    assert "while enablePrometheusGrafana is false" in warned[f"{P}:grafanaAdminObjectIds"]
    for key in ("inferenceSslCname", "inferenceSslCertPem", "inferenceSslKeyPem", "inferenceLoadBalancerIp"):
        assert "while enableAks is false" in warned[f"{P}:{key}"], key
    assert "while isolationDesign is managedVnet" in warned[f"{P}:aksSubnet"]
    on = check_config(values | {f"{P}:enableAlerts": "true"}, stack="dev", secret_keys=secret_keys_of(values))
    assert f"{P}:alertSeverity" not in {warning.key for warning in on.warnings}


def test_every_profile_default_names_its_profile_field() -> None:
    assert {key.name for key in KEYS if key.default is PROFILE} == set(PROFILE_FIELDS)
    assert set(PROFILE_FIELDS.values()) <= set(Profile.__dataclass_fields__)
    # An unset key whose profile default breaks a rule is shown with that default, never as "unset".
    values = example_values(alertEmails=None)
    [problem] = check_config(values, stack="prod", secret_keys=secret_keys_of(values)).problems
    assert str(problem).startswith(f"{P}:enableAlerts (default 'true'): alerts need a receiver")


def test_offline_stand_ins_skip_only_the_form_of_a_secret() -> None:
    values = example_values(inferenceSslCertPem=None, inferenceSslKeyPem=None)
    values |= {
        f"{P}:{key}": f"stand-in-for-{P}:{key}" for key in ("inferenceSslCertPem", "inferenceSslKeyPem")
    }
    assert _problems(values, "prod") == []
    values[f"{P}:inferenceSslCname"] = f"stand-in-for-{P}:inferenceSslCname"  # not a secret: its form applies
    assert [problem.key for problem in _problems(values, "prod")] == [f"{P}:inferenceSslCname"]


def _config(stack: str, **overrides: str) -> ConfigCheck:
    values = example_values(**overrides)
    return check_config(values, stack=stack, secret_keys=secret_keys_of(values))


def test_a_stack_named_prod_may_run_dev_only_when_the_override_says_so() -> None:
    check = _config("prod", environment="dev", environmentOverride="true")
    assert check.config is not None and check.config.environment == "dev"
    assert check.config.protect_stateful is False
    assert any("nothing protected" in str(w) for w in check.warnings)
    rehearsal = _config("dev", environment="prod", environmentOverride="true").config
    assert rehearsal is not None and rehearsal.protect_stateful is True


def test_a_stack_with_another_name_picks_its_profile() -> None:
    check = _config("staging", environment="prod")
    assert check.config is not None and check.config.environment == "prod"


def test_provider_keys_match_the_azure_native_sdk() -> None:
    from pulumi_azure_native.config import vars as provider_config

    source = inspect.getsource(provider_config)
    assert AZURE_NATIVE_KEYS == set(re.findall(r"__config__\.get(?:_bool|_int)?\('(\w+)'\)", source))


def test_address_constants_match_microsofts_pages() -> None:
    # virtual-networks-faq.md: "Azure reserves the first four and the last IP address for a total of 5 IP
    # addresses within each subnet"; "The smallest supported IPv4 subnet is /29".
    assert addresses.AZURE_RESERVED_PER_SUBNET == 5
    assert addresses.SMALLEST_SUBNET_PREFIX == 29
    # virtual-networks-faq.md, "You can't add the following address ranges".
    assert {str(n) for n in addresses.VNET_FORBIDDEN} == {
        "224.0.0.0/4",
        "255.255.255.255/32",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "168.63.129.16/32",
    }
    # AKS configure-azure-cni.md: "AKS clusters may not use 169.254.0.0/16, 172.30.0.0/16, 172.31.0.0/16,
    # or 192.0.2.0/24 for the Kubernetes service address range, pod address range, or cluster virtual
    # network address range."
    assert {str(n) for n in addresses.AKS_FORBIDDEN} == {
        "169.254.0.0/16",
        "172.30.0.0/16",
        "172.31.0.0/16",
        "192.0.2.0/24",
    }
    # azure-cni-overlay.md: the service address range "must be smaller than /12".
    assert addresses.AKS_SERVICE_CIDR_LONGEST_FORBIDDEN == 12
    # configure-azure-cni.md: 30 pods per node by default; a /24 supports at most 8 nodes of 30 pods
    # ("That same basic /24 subnet range can only support a maximum of 8 nodes in the cluster").
    assert addresses.AZURE_CNI_DEFAULT_MAX_PODS == 30
    assert 8 * 31 <= 256 - 5 < 9 * 31


def test_aks_subnet_capacity_counts_the_upgrade_surge_node() -> None:
    assert addresses.aks_subnet_addresses_needed(3) == (3 + 1) + (3 + 1) * 30
    assert addresses.usable_addresses(addresses.ipaddress.IPv4Network("10.0.0.0/29")) == 3


@pytest.mark.parametrize(
    ("namespace", "postfix", "environment", "storage", "vault"),
    [
        ("taxi", "001", "dev", "sttaxi001dev", "kv-taxi-001dev"),
        ("mlopsv2", "0001", "prod", "stmlopsv20001prod", "kv-mlopsv2-0001prod"),
        ("ab", "9", "dev", "stab9dev", "kv-ab-9dev"),
    ],
)
def test_derived_names(namespace: str, postfix: str, environment: str, storage: str, vault: str) -> None:
    names = derive_names(namespace, postfix, environment)
    assert names.storage_account == storage
    assert names.key_vault == vault
    assert names.workspace == f"mlw-{namespace}-{postfix}{environment}"
    assert name_problems(names) == []


@pytest.mark.parametrize(
    ("postfix", "environment", "limit"), [("001", "dev", 14), ("001", "prod", 13), ("000001", "prod", 10)]
)
def test_namespace_limit_follows_the_tightest_name(postfix: str, environment: str, limit: int) -> None:
    assert max_namespace_length(postfix, environment) == limit
    assert name_problems(derive_names("a" * limit, postfix, environment)) == []
    assert any("Key Vault" in p for p in name_problems(derive_names("a" * (limit + 1), postfix, environment)))
