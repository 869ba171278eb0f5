"""Preflight: offline findings from the stack files, and the read-only ARM checks against intercepted HTTP."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import responses
from azure.core.exceptions import ClientAuthenticationError

from stacks import preflight as pf
from stacks.cli import main as cli
from stacks.plan import ROOT
from tests._fake_preflight_arm import OBJECT_ID, SUBSCRIPTION, Arm, FakeCredential

P = "aml-platform"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH0yKQ4b5v8mN7pQ2rS9tU1vW3xY4zA6bC8dE0fG2hJ4 ops@team"
READY_PROD = f"""config:
  aml-platform:namespace: "mlteam"
  aml-platform:postfix: "007"
  aml-platform:location: "westeurope"
  aml-platform:computeMaxNodes: 4
  aml-platform:aksNodeCount: 3
  aml-platform:inferenceSslCname: "ml-scoring.mlteam.net"
  aml-platform:inferenceSslCertPem:
    secure: v1:c2FsdA==:Y2VydGlmaWNhdGU=
  aml-platform:inferenceSslKeyPem:
    secure: v1:c2FsdA==:a2V5
  aml-platform:alertEmails:
    - "ml-oncall@mlteam.net"
  aml-platform:enableDevops: true
  aml-platform:devopsOrgUrl: "https://dev.azure.com/mlteam-org"
  aml-platform:devopsPat:
    secure: v1:c2FsdA==:Y2lwaGVydGV4dA==
  aml-platform:prodApprovers:
    - "0f8fad5b-d9cb-469f-a165-70867728950e"
  aml-platform:enableAgentVm: true
  aml-platform:agentSshPublicKey: "{KEY}"
"""


def _tools(name: str) -> str | None:
    return {"pulumi": "/usr/local/bin/pulumi", "uv": "/usr/local/bin/uv"}.get(name)


def _pulumi_version(version: str = "v3.272.0") -> Any:
    def run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        assert args[1:] == ["version"]
        return subprocess.CompletedProcess(args, 0, stdout=f"{version}\n", stderr="")

    return run


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A project copy with a ready prod stack and a policy venv holding the pinned packages."""
    (tmp_path / "policy").mkdir()
    for name in (
        "Pulumi.yaml",
        "Pulumi.dev.yaml",
        "Pulumi.prod.yaml",
        "policy/PulumiPolicy.yaml",
        "policy/requirements.txt",
    ):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / "Pulumi.prod.yaml").write_text(READY_PROD)
    site = tmp_path / "policy" / "venv" / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    (tmp_path / "policy" / "venv" / "bin").mkdir()
    (tmp_path / "policy" / "venv" / "bin" / "python").write_text("")
    for line in (ROOT / "policy" / "requirements.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            (site / f"{name.replace('-', '_')}-{version}.dist-info").mkdir()
    return tmp_path


def _run(root: Path, arm: Arm | None = None, **options: Any) -> pf.Report:
    options = {
        "which": _tools,
        "run": _pulumi_version(),
        "credential": FakeCredential(),
        "subscription_id": SUBSCRIPTION,
        **options,
    }
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        (arm or Arm()).register(mock)
        return pf.run_preflight("prod", root=root, **options)


def _checks(report: pf.Report) -> list[tuple[str, str]]:
    return [(finding.check, finding.subject) for finding in report.findings]


def test_a_ready_stack_has_no_findings(root: Path) -> None:
    report = _run(root)
    assert report.ready, pf.render(report)
    assert "global names" in report.checked and "roles of the deploying identity" in report.checked
    assert "ready for `pulumi up`" in pf.render(report)


def test_the_shipped_stack_files_are_not_ready_offline_and_say_what_to_change() -> None:
    report = pf.run_preflight("prod", offline=True, which=lambda name: None)
    text = pf.render(report)
    subjects = {finding.subject for finding in report.findings}
    assert {f"{P}:devopsOrgUrl", f"{P}:prodApprovers", f"{P}:agentSshPublicKey", f"{P}:devopsPat"} <= subjects
    assert "pulumi config set --secret devopsPat <value> --stack prod" in text
    assert "https://www.pulumi.com/docs/install/" in text and "skipped: Azure checks (--offline)" in text


@pytest.mark.parametrize(
    ("which", "run", "words"),
    [
        (lambda name: None, _pulumi_version(), "is not on PATH"),
        (
            _tools,
            _pulumi_version("v3.150.2"),
            "is 3.150.2; this program's resource hooks need the engine of 3.182.0",
        ),
        (_tools, _pulumi_version("garbage"), "did not report its version"),
    ],
)
def test_the_pulumi_cli_must_be_there_and_new_enough(root: Path, which: Any, run: Any, words: str) -> None:
    report = pf.run_preflight("prod", root=root, offline=True, which=which, run=run)
    assert any(f.check == "pulumi cli" and words in f.problem for f in report.findings), pf.render(report)


def test_a_missing_or_stale_policy_venv_is_a_finding(root: Path) -> None:
    shutil.rmtree(root / "policy" / "venv" / "lib")
    report = pf.run_preflight("prod", root=root, offline=True, which=_tools, run=_pulumi_version())
    [finding] = report.findings
    assert finding.check == "policy pack" and "missing (wants" in finding.problem
    shutil.rmtree(root / "policy" / "venv")
    [finding] = pf.run_preflight(
        "prod", root=root, offline=True, which=_tools, run=_pulumi_version()
    ).findings
    assert "python3 -m venv policy/venv" in finding.fix


def _scenario(**changes: Any) -> Arm:
    arm = Arm()
    for name, value in changes.items():
        setattr(arm, name, value)
    return arm


@pytest.mark.parametrize(
    ("arm", "check", "words", "fix"),
    [
        (
            _scenario(unregistered={"Microsoft.KubernetesConfiguration"}),
            "providers",
            "NotRegistered",
            "az provider register --namespace Microsoft.KubernetesConfiguration",
        ),
        (
            _scenario(roles=["b24988ac-6180-42a0-ab88-20f7382dd24c"]),
            "roles",
            "holds Contributor",
            "--role Owner",
        ),
        (_scenario(roles=[]), "roles", "none of Owner", f"--assignee-object-id {OBJECT_ID}"),
        (
            _scenario(role_scope=f"/subscriptions/{SUBSCRIPTION}/resourceGroups/other"),
            "roles",
            "none of Owner",
            "--role Owner",
        ),
        (
            _scenario(restricted={"Standard_D4s_v5"}),
            "vm sizes",
            "NotAvailableForSubscription",
            "aka.ms/azureskunotavailable",
        ),
        (
            _scenario(
                skus={"Standard_D4s_v5": ("standardDSv5Family", 4), "Standard_B2s": ("standardBSFamily", 2)}
            ),
            "vm sizes",
            "is not offered in westeurope",
            "az vm list-skus",
        ),
        (
            _scenario(compute_usage={"cores": (0, 100), "standardDSv5Family": (90, 100)}),
            "quota",
            "needs 16 vCPUs, 10 free",
            "request more quota",
        ),
        (
            _scenario(compute_usage={"cores": (90, 100), "standardDSv5Family": (0, 100)}),
            "quota",
            "needs 18 vCPUs, 10 free",
            "request more quota",
        ),
        (
            _scenario(aml_usage={"standardDSv2Family": (0, 8)}),
            "quota",
            "needs 16 vCPUs, 8 free",
            "request more quota",
        ),
        (_scenario(taken={"stmlteam007prod"}), "names", "is taken elsewhere", "another namespace"),
        (_scenario(taken={"crmlteam007prod"}), "names", "is taken elsewhere", "another namespace"),
        (
            _scenario(deleted_vaults={"kv-mlteam-007prod": True}),
            "names",
            "soft-deleted vault",
            "cannot be purged",
        ),
        (
            _scenario(deleted_vaults={"kv-mlteam-007prod": False}),
            "names",
            "soft-deleted vault",
            "az keyvault purge --name kv-mlteam-007prod",
        ),
        (
            _scenario(
                deleted_workspaces=[
                    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-mlteam-007prod/providers/Microsoft.MachineLearningServices/workspaces/mlw-mlteam-007prod"
                ]
            ),
            "names",
            "soft-deleted workspace",
            "Recently deleted",
        ),
        (
            _scenario(
                deleted_log_analytics=[
                    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/old/providers/Microsoft.OperationalInsights/workspaces/log-mlteam-007prod"
                ]
            ),
            "names",
            "another resource group",
            "--force",
        ),
        (
            _scenario(status_overrides={"Microsoft.Compute/skus": 403}),
            "VM sizes and vCPU quota",
            "cannot be read (403",
            "Reader",
        ),
    ],
)
def test_arm_findings_name_the_fix(root: Path, arm: Arm, check: str, words: str, fix: str) -> None:
    report = _run(root, arm)
    matching = [f for f in report.findings if f.check == check]
    assert matching, pf.render(report)
    assert any(words in f.problem and fix in f.fix for f in matching), pf.render(report)


def test_quota_counts_the_nodes_of_every_vm(root: Path) -> None:
    # 3 AKS nodes + 1 surge node of 4 vCPUs each = 16 on the DSv5 family: exactly enough, one more is not.
    arm = _scenario(
        compute_usage={"cores": (0, 100), "standardDSv5Family": (84, 100), "standardBSFamily": (0, 100)}
    )
    assert not [f for f in _run(root, arm).findings if f.check == "quota"]
    arm.compute_usage["standardDSv5Family"] = (85, 100)
    assert [f.problem for f in _run(root, arm).findings if f.check == "quota"] == [
        "needs 16 vCPUs, 15 free (limit 100, used 85)"
    ]


def test_soft_deleted_workspaces_are_skipped_when_the_provider_lists_no_api(root: Path) -> None:
    report = _run(root, _scenario(lists_deleted_workspaces=False))
    assert report.ready and any("deletedWorkspaces" in reason for reason in report.skipped)


def test_names_the_stack_already_owns_are_fine(root: Path) -> None:
    arm = _scenario(taken={"stmlteam007prod"})
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(
            responses.GET,
            f"https://management.azure.com/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-mlteam-007prod/providers/Microsoft.Storage/storageAccounts/stmlteam007prod",
            json={
                "id": "x",
                "name": "stmlteam007prod",
                "location": "westeurope",
                "kind": "StorageV2",
                "sku": {"name": "Standard_ZRS"},
            },
        )
        arm.register(mock)
        report = pf.run_preflight(
            "prod",
            root=root,
            which=_tools,
            run=_pulumi_version(),
            credential=FakeCredential(),
            subscription_id=SUBSCRIPTION,
        )
    assert report.ready, pf.render(report)


def test_without_credentials_or_subscription_the_finding_says_how(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class NoCredential:
        def get_token(self, *scopes: str, **kwargs: Any) -> Any:
            raise ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token")

    report = _run(root, credential=NoCredential())
    assert _checks(report) == [("azure", "credentials")] and "az login" in report.findings[0].fix
    monkeypatch.delenv("AZURE_SUBSCRIPTION_ID", raising=False)
    monkeypatch.delenv("ARM_SUBSCRIPTION_ID", raising=False)
    report = _run(root, subscription_id=None)
    assert (
        _checks(report) == [("azure", "subscription")]
        and "azure-native:subscriptionId" in report.findings[0].fix
    )


def test_a_token_without_object_id_skips_the_role_check(root: Path) -> None:
    report = _run(root, credential=FakeCredential(object_id=None))
    assert report.ready and any("oid" in reason for reason in report.skipped)


def test_the_object_id_comes_from_the_token() -> None:
    token = FakeCredential().get_token(pf.ARM_SCOPE).token
    assert pf.token_object_id(token) == OBJECT_ID
    assert pf.token_object_id("not-a-jwt") is None


def test_exit_codes(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    options = {"root": root, "which": _tools, "run": _pulumi_version()}
    assert pf.main(["prod"], True, None, **options) == 0
    assert pf.main(["dev"], True, None, **options) == 1  # the shipped dev file: placeholders
    assert cli(["preflight", "--stack", "nosuchstack", "--offline"]) == 2
    assert "pulumi stack init nosuchstack" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        cli(["preflight"])
    assert usage.value.code == 2


def test_role_ids_match_microsofts_built_in_roles() -> None:
    # Learn role-based-access-control/built-in-roles.md (ids copied from the page).
    assert pf.OWNER == "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
    assert pf.CONTRIBUTOR == "b24988ac-6180-42a0-ab88-20f7382dd24c"
    assert pf.USER_ACCESS_ADMINISTRATOR == "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"
    assert pf.RBAC_ADMINISTRATOR == "f58310d9-a9f6-439a-9e8d-f62e7b41a168"


def _arm_namespace(resource_type: str) -> str:
    from stacks.arm_ids import ARM_PATHS

    path = ARM_PATHS[resource_type]
    found = re.search(r"/providers/(Microsoft\.\w+)/", path)
    return found.group(1) if found else "Microsoft.Resources"


@pytest.mark.parametrize(
    ("stack", "overrides"),
    [
        ("dev", ()),
        ("prod", ()),
        (
            "dev",
            (f"{P}:enablePrometheusGrafana=true", f"{P}:enableAlerts=true", f'{P}:alertEmails=["a@b.io"]'),
        ),
    ],
)
def test_the_provider_list_covers_every_resource_type_the_plans_declare(
    stack: str, overrides: tuple[str, ...]
) -> None:
    from stacks.config import check_config
    from stacks.plan import run_plan, stack_input

    stack_in = stack_input(stack, overrides)
    plan = run_plan(stack_in)
    types = {r["type"] for r in plan["resources"] if r["type"].startswith("azure-native:")}
    cfg = check_config(stack_in.values, stack=stack, secret_keys=stack_in.secret_keys).config
    assert cfg is not None
    # The ARM namespace of each type as stacks/arm_ids.py spells its REST path (Microsoft's reference).
    assert {_arm_namespace(resource_type) for resource_type in types} <= set(pf.required_namespaces(cfg))
    modules = {resource_type.split(":")[1] for resource_type in types}
    assert modules <= set(pf.MODULE_NAMESPACES)
