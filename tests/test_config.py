"""Config validation: valid stacks parse; each bad value is refused naming its key, before any resource."""

from __future__ import annotations

import pulumi
import pytest

from stacks.config import ConfigError, example_config, example_values, parse_config, secret_keys_of
from stacks.mockrun import Recording, run_program
from stacks.naming import derive_names, max_namespace_length, name_problems
from stacks.program import program

P = "aml-platform"


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


def test_neutral_defaults_mean_profile() -> None:
    cfg = example_config("prod", computeMaxNodes="0", logRetentionDays="0", publicNetworkAccess="")
    assert cfg.compute.max_nodes == 4 and cfg.log_retention_days == 90 and cfg.public_network_access is False


def test_switches_leave_parts_out() -> None:
    cfg = example_config("dev", enableAks="false", enableDevops="false", enableAgentVm="false")
    assert cfg.aks is None and cfg.devops is None and cfg.agent_vm is None


def test_secrets_never_show_in_repr() -> None:
    cfg = example_config("dev", devopsPat="very-secret-token")
    assert "very-secret-token" not in repr(cfg)
    assert cfg.devops is not None and cfg.devops.pat.reveal() == "very-secret-token"


BAD_CONFIGS = [
    # (overrides, environment, key that must be named, words in the message)
    ({"namespace": None}, "dev", "namespace", "required"),
    ({"namespace": "Taxi"}, "dev", "namespace", "lowercase"),
    ({"namespace": "ta-xi"}, "dev", "namespace", "no hyphens"),
    ({"namespace": "1taxi"}, "dev", "namespace", "starting with a letter"),
    ({"namespace": "a"}, "dev", "namespace", "2-"),
    ({"namespace": "averyverylongname"}, "prod", "namespace", "at most 13"),
    ({"postfix": "01a"}, "dev", "postfix", "digits"),
    ({"postfix": "1234567"}, "dev", "postfix", "1-6 digits"),
    ({"location": "West Europe"}, "dev", "location", "Azure region"),
    ({"location": "moon1"}, "dev", "location", "Azure region"),
    ({"environment": "staging"}, "dev", "environment", "dev, prod"),
    ({"computeMinNodes": "5", "computeMaxNodes": "2"}, "dev", "computeMinNodes", "must not exceed"),
    ({"computeMaxNodes": "two"}, "dev", "computeMaxNodes", "whole number"),
    ({"computeMaxNodes": "-1"}, "dev", "computeMaxNodes", "from 1 to"),
    ({"computeIdleSeconds": "10"}, "dev", "computeIdleSeconds", "from 60"),
    ({"computeVmSize": "DS3"}, "dev", "computeVmSize", "VM size"),
    ({"computePriority": "Spot"}, "dev", "computePriority", "Dedicated, LowPriority"),
    ({"vnetAddressSpace": "10.10.0.0/33"}, "dev", "vnetAddressSpace", "CIDR"),
    ({"trainingSubnet": "10.10.1.5/24"}, "dev", "trainingSubnet", "host bits"),
    ({"agentsSubnet": "192.168.0.0/24"}, "dev", "agentsSubnet", "inside vnetAddressSpace"),
    ({"agentsSubnet": "10.10.1.128/25"}, "dev", "agentsSubnet", "overlaps"),
    ({"aksServiceCidr": "10.10.128.0/17"}, "dev", "aksServiceCidr", "overlaps vnetAddressSpace"),
    ({"aksDnsServiceIp": "10.200.0.10"}, "dev", "aksDnsServiceIp", "inside aksServiceCidr"),
    ({"aksNodeCount": "0x"}, "dev", "aksNodeCount", "whole number"),
    ({"aksNodeVmSize": "big"}, "dev", "aksNodeVmSize", "VM size"),
    ({"enableAks": "yes"}, "dev", "enableAks", "true or false"),
    ({"publicNetworkAccess": "true"}, "prod", "publicNetworkAccess", "must not allow public"),
    ({"logRetentionDays": "7"}, "dev", "logRetentionDays", "from 30 to 730"),
    ({"enableDevops": "false"}, "dev", "enableAgentVm", "needs enableDevops"),
    ({"agentSshPublicKey": None}, "dev", "agentSshPublicKey", "OpenSSH public key"),
    ({"agentSshPublicKey": "not-a-key"}, "dev", "agentSshPublicKey", "OpenSSH public key"),
    ({"agentAdminUsername": "root"}, "dev", "agentAdminUsername", "not root"),
    ({"agentCount": "11"}, "dev", "agentCount", "from 1 to 10"),
    ({"devopsPat": None}, "dev", "devopsPat", "required with enableDevops"),
    ({"devopsOrgUrl": "https://contoso.visualstudio.com"}, "dev", "devopsOrgUrl", "dev.azure.com"),
    ({"serviceConnectionAuth": "Password"}, "dev", "serviceConnectionAuth", "WorkloadIdentityFederation"),
    ({"serviceConnectionAuth": "ServicePrincipal"}, "dev", "servicePrincipalClientId", "GUID"),
    (
        {
            "serviceConnectionAuth": "ServicePrincipal",
            "servicePrincipalClientId": "0" * 8 + "-0000-0000-0000-" + "0" * 12,
        },
        "dev",
        "servicePrincipalSecret",
        "required",
    ),
    ({"prodApprovers": "alice"}, "prod", "prodApprovers", "GUIDs"),
    ({"prodApprovers": '["alice@contoso.com"]'}, "prod", "prodApprovers", "GUIDs"),
    ({"owner": "a/b"}, "dev", "owner", "tag value"),
    ({"namspace": "typo"}, "dev", "namspace", "not a known config key"),
]


@pytest.mark.parametrize(
    ("overrides", "environment", "key", "words"),
    BAD_CONFIGS,
    ids=[f"{case[2]}-{index}" for index, case in enumerate(BAD_CONFIGS)],
)
def test_bad_config_is_refused_naming_the_key(
    overrides: dict, environment: str, key: str, words: str
) -> None:
    values = example_values(**overrides)
    with pytest.raises(ConfigError) as error:
        parse_config(values, stack=environment, secret_keys=secret_keys_of(values))
    named = [problem for problem in error.value.problems if problem.key == f"{P}:{key}"]
    assert named, f"no problem names {key}: {error.value}"
    assert any(words in problem.message or words in str(problem) for problem in named), str(error.value)
    assert f"{P}:{key}" in str(error.value)


@pytest.mark.parametrize(("overrides", "environment", "key", "words"), BAD_CONFIGS[::4])
def test_bad_config_registers_nothing(overrides: dict, environment: str, key: str, words: str) -> None:
    values = example_values(**overrides)
    recording = Recording(project=P, stack=environment)
    with pytest.raises(pulumi.RunError) as error:
        run_program(
            program, stack=environment, config=values, secret_keys=secret_keys_of(values), into=recording
        )
    assert f"{P}:{key}" in str(error.value)
    assert recording.resources == []


def test_all_problems_reported_in_one_pass() -> None:
    values = example_values(namespace="Bad!", computeVmSize="x", agentCount="0", location="nowhere")
    with pytest.raises(ConfigError) as error:
        parse_config(values, stack="prod", secret_keys=secret_keys_of(values))
    keys = {problem.key for problem in error.value.problems}
    assert {f"{P}:namespace", f"{P}:computeVmSize", f"{P}:agentCount", f"{P}:location"} <= keys


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
