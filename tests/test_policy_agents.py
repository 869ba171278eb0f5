"""Agent VM rules on both sides (AZURE-FACTS 15), and what counts as secret material in custom data."""

from __future__ import annotations

import base64

import pytest

from policy import rules as r
from policy.rules.secrets import decode_custom_data, secret_findings
from tests._policy_cases import (
    CLOUD_INIT,
    DELETE,
    ENVIRONMENTS,
    assert_resource_case,
    breaking,
    resource_findings,
)

PAT = "abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrst"  # 52 characters of base32, the classic PAT form
LEAKING_CLOUD_INIT = f"#cloud-config\nruncmd:\n  - AZP_TOKEN={PAT} ./config.sh --auth pat\n"


def _custom_data(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


RESOURCE_CASES = [
    (
        "nic-no-public-ip",
        r.NIC,
        breaking(ipConfigurations=[{"name": "primary", "publicIPAddress": {"id": "pip"}}]),
    ),
    ("vm-ssh-key-only", r.VM, breaking(osProfile__linuxConfiguration__disablePasswordAuthentication=False)),
    ("vm-ssh-key-only", r.VM, breaking(osProfile__adminPassword="hunter2hunter2")),
    ("vm-ssh-key-only", r.VM, breaking(osProfile__linuxConfiguration__ssh__publicKeys=[])),
    ("vm-custom-data-no-secrets", r.VM, breaking(osProfile__customData=_custom_data(LEAKING_CLOUD_INIT))),
    ("vm-custom-data-no-secrets", r.VM, breaking(osProfile__customData="[secret]")),
    ("vm-custom-data-no-secrets", r.VM, breaking(osProfile="[secret]")),
]
STACK_CASES: list = []


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize(
    ("rule", "resource_type", "breaks"), RESOURCE_CASES, ids=[c[0] for c in RESOURCE_CASES]
)
def test_a_broken_agent_setting_is_reported_by_its_rule(
    rule: str, resource_type: str, breaks, env: str
) -> None:
    assert_resource_case(rule, resource_type, breaks, env)


def test_a_leaking_custom_data_is_named_without_echoing_the_secret() -> None:
    findings = resource_findings(
        r.VM, breaking(osProfile__customData=_custom_data(LEAKING_CLOUD_INIT)), "prod"
    )
    assert findings and PAT not in findings[0].message and "AZP_TOKEN" in findings[0].message


def test_custom_data_that_reads_the_pat_from_key_vault_at_boot_passes() -> None:
    assert secret_findings(CLOUD_INIT) == []
    assert resource_findings(r.VM, breaking(osProfile__customData=DELETE), "prod") == []


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("AZP_TOKEN=abcdefgh12345", ["line 1: AZP_TOKEN is set to a literal value"]),
        ("token: s3cr3tvalue", ["line 1: token is set to a literal value"]),
        ('password="correct horse"', ["line 1: password is set to a literal value"]),
        ("devopsPat=abcdefgh12345", ["line 1: devopsPat is set to a literal value"]),
        ("AZP_TOKEN=short", []),
        ('AZP_TOKEN="$(cat /run/secrets/pat)"', []),
        ("AZP_TOKEN=${PAT}", []),
        ("token_file=/run/azp/token", []),
        ("PATH=/usr/local/bin:/usr/bin:/bin", []),
        ("compatibility=strictmode", []),
        ("password={{ vault_password }}", []),
        ("-----BEGIN OPENSSH PRIVATE KEY-----", ["line 1: a private key"]),
        (PAT, ["line 1: a token shaped like an Azure DevOps PAT"]),
        (PAT[:51], []),
        (
            "DefaultEndpointsProtocol=https;AccountName=st;AccountKey=" + "A" * 44,
            ["line 1: AccountKey is set to a literal value", "line 1: a storage key or SAS signature"],
        ),
        (
            "https://st.blob.core.windows.net/c?sv=2022&sig=" + "b" * 30,
            ["line 1: a storage key or SAS signature"],
        ),
        ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIReplaceWithYourTeamsAgentPublicKey", []),
    ],
)
def test_secret_looking_material(text: str, found: list[str]) -> None:
    assert secret_findings(text) == found


def test_custom_data_is_decoded_from_base64_or_read_as_it_is() -> None:
    assert decode_custom_data(_custom_data("hello")) == "hello"
    assert decode_custom_data("not base64!") == "not base64!"
