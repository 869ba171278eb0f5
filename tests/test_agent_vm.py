"""The agent VM keeps no secret: its PAT is a Key Vault secret that the boot script reads through IMDS.

The PAT reader runs for real in bash against loopback fakes of the instance metadata service and Key Vault.
"""

from __future__ import annotations

import base64
import json
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator
from urllib.parse import parse_qs, urlparse

import pulumi
import pytest
import yaml

from components.agent_vm import (
    AgentInstall,
    AgentVm,
    AgentVmArgs,
    PatReader,
    agent_names,
    pat_reader_script,
    render_cloud_init,
)
from components.common import CommonArgs
from policy.rules import evaluate
from stacks import mockrun
from stacks.mockrun import SECRET_MASK
from tests.test_identities import Run, run

# Learn, "How to use managed identities for Azure resources on an Azure VM to acquire an access token".
IMDS_API_VERSION = "2018-02-01"
KEY_VAULT_RESOURCE = "https://vault.azure.net"
# Key Vault REST API reference, "Get Secret": GET {vaultBaseUrl}/secrets/{secret-name}?api-version=7.4.
KEY_VAULT_API_VERSION = "7.4"
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"  # built-in roles page

CLIENT_ID = "5a0c7b1e-2d3f-4e5a-8b9c-0d1e2f3a4b5c"
SECRET_URI = "https://kv-test.vault.azure.net/secrets/devops-agent-pat"
INSTALL = AgentInstall(
    org_url="https://dev.azure.com/contoso",
    pool_name="pool-test",
    agent_count=3,
    pat_secret_uri=SECRET_URI,
    identity_client_id=CLIENT_ID,
)
PAT = "pat-from-key-vault"


@pytest.mark.parametrize(("count", "names"), [(1, ["vm-1"]), (3, ["vm-1", "vm-2", "vm-3"])])
def test_agent_names(count: int, names: list[str]) -> None:
    assert agent_names("vm", count) == names


def test_agent_names_rejects_zero_agents() -> None:
    with pytest.raises(ValueError, match="agent_count.*got 0"):
        agent_names("vm", 0)


def script_of(cloud_init: str) -> str:
    return yaml.safe_load(cloud_init)["write_files"][0]["content"]


def test_cloud_init_registers_every_agent_with_a_pat_it_reads_at_boot() -> None:
    rendered = render_cloud_init("vm-agent", INSTALL)
    document = yaml.safe_load(rendered)
    assert rendered.startswith("#cloud-config\n") and "jq" in document["packages"]
    script = document["write_files"][0]
    assert script["permissions"] == "0700" and script["owner"] == "root:root"
    assert document["runcmd"] == [["bash", script["path"]]]
    content = script["content"]
    for name in agent_names("vm-agent", 3):
        assert f"install_agent {name.rsplit('-', 1)[1]} {name}\n" in content
    assert "AZP_POOL=pool-test\n" in content and "AZP_URL=https://dev.azure.com/contoso\n" in content
    assert '--auth pat --token "$AZP_TOKEN"' in content
    assert f"{SECRET_URI}?api-version={KEY_VAULT_API_VERSION}" in content and CLIENT_ID in content
    # A normal user with a home: cloud-init gives a `system: true` user none, and the jobs' uv/pip caches
    # and ~/.azure live there.
    assert document["users"][1] == {"name": "azagent", "homedir": "/home/azagent", "shell": "/bin/bash"}


def test_the_agents_have_what_the_pipeline_jobs_run() -> None:
    document = yaml.safe_load(render_cloud_init("vm-agent", INSTALL))
    content = document["write_files"][0]["content"]
    assert {"make", "git", "curl"} <= set(document["packages"])  # `make venv`, checkout
    # pyproject.toml pins Python 3.11 (Ubuntu 24.04 ships 3.12); AzureCLI@2 needs the az CLI on the agent.
    assert "apt-get install -y -q python3.11 python3.11-venv" in content
    assert "curl -fsSL https://aka.ms/InstallAzureCLIDeb | bash" in content
    # Installed before the agents register, so no job ever lands on an agent without them.
    assert content.index("InstallAzureCLIDeb") < content.index("install_agent 1")


def test_the_boot_script_is_valid_bash() -> None:
    checked = subprocess.run(
        ["bash", "-n"], input=script_of(render_cloud_init("vm-agent", INSTALL)), text=True
    )
    assert checked.returncode == 0


# ---- the PAT reader against loopback IMDS and Key Vault ----------------------------------------------


class FakeAzure:
    """IMDS and Key Vault on one loopback port; Key Vault refuses the first `refusals` reads (RBAC lag)."""

    def __init__(self, refusals: int) -> None:
        self.refusals = refusals
        self.requests: list[tuple[str, dict[str, list[str]], dict[str, str]]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's method name
                url = urlparse(self.path)
                query = parse_qs(url.query)
                fake.requests.append((url.path, query, dict(self.headers)))
                status, body = fake.answer(url.path, query, self.headers)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(json.dumps(body).encode())

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_port}"

    def answer(self, path: str, query: dict[str, list[str]], headers: Any) -> tuple[int, dict]:
        if path == "/metadata/identity/oauth2/token":
            expected = {
                "api-version": [IMDS_API_VERSION],
                "resource": [KEY_VAULT_RESOURCE],
                "client_id": [CLIENT_ID],
            }
            if headers.get("Metadata") != "true" or query != expected:
                return 400, {"error": "invalid_request"}
            return 200, {"access_token": "vm-token", "token_type": "Bearer"}
        if path == "/secrets/devops-agent-pat" and query == {"api-version": [KEY_VAULT_API_VERSION]}:
            if headers.get("Authorization") != "Bearer vm-token":
                return 401, {"error": {"code": "Unauthorized"}}
            if self.refusals > 0:
                self.refusals -= 1
                return 403, {"error": {"code": "Forbidden"}}
            return 200, {"value": PAT, "id": f"{self.base}/secrets/devops-agent-pat/1"}
        return 404, {}

    def __enter__(self) -> FakeAzure:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def read_pat(fake: FakeAzure, attempts: int = 3) -> subprocess.CompletedProcess[str]:
    reader = PatReader(
        secret_uri=f"{fake.base}/secrets/devops-agent-pat",
        identity_client_id=CLIENT_ID,
        token_url=f"{fake.base}/metadata/identity/oauth2/token",
        attempts=attempts,
        delay_seconds=0,
    )
    script = f"set -euo pipefail\n{pat_reader_script(reader)}printf '%s' \"$AZP_TOKEN\"\n"
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)


@pytest.fixture
def azure_lagging_twice() -> Iterator[FakeAzure]:
    with FakeAzure(refusals=2) as fake:
        yield fake


def test_the_pat_is_read_with_the_vm_identity_and_retried_while_its_role_propagates(
    azure_lagging_twice: FakeAzure,
) -> None:
    result = read_pat(azure_lagging_twice, attempts=3)
    assert result.returncode == 0, result.stderr
    assert result.stdout == PAT
    assert result.stderr.count("not readable from Key Vault yet") == 2
    vault_reads = [r for r in azure_lagging_twice.requests if r[0].startswith("/secrets/")]
    assert len(vault_reads) == 3 and PAT not in result.stderr


def test_the_boot_script_stops_with_the_fix_when_the_pat_stays_unreadable() -> None:
    with FakeAzure(refusals=10) as fake:
        result = read_pat(fake, attempts=2)
    assert result.returncode == 1 and result.stdout == ""
    assert "Key Vault Secrets User" in result.stderr and "attempt 2 of 2" in result.stderr


@pytest.mark.parametrize(("attempts", "delay"), [(0, 0), (1, -1)])
def test_pat_reader_needs_an_attempt_and_a_delay(attempts: int, delay: int) -> None:
    with pytest.raises(ValueError, match="at least 1 attempt"):
        pat_reader_script(PatReader(SECRET_URI, CLIENT_ID, attempts=attempts, delay_seconds=delay))


# ---- the component under the mocks ------------------------------------------------------------------

SUBNET_ID = (
    f"/subscriptions/{mockrun.SUBSCRIPTION_ID}/resourceGroups/rg-test/providers/Microsoft.Network"
    "/virtualNetworks/vnet-test/subnets/snet-agents"
)


def agent_vm() -> Run:
    args = AgentVmArgs(
        CommonArgs("westeurope", "rg-test", {"environment": "test"}),
        vm_name="vm-agent",
        identity_name="id-agent",
        subnet_id=SUBNET_ID,
        vm_size="Standard_B2s",
        admin_username="azureuser",
        ssh_public_key="ssh-ed25519 AAAA test",
        org_url=INSTALL.org_url,
        pool_name=INSTALL.pool_name,
        agent_count=INSTALL.agent_count,
        pat=pulumi.Output.secret(PAT),
        vault_name="kv-test",
        subscription_id=mockrun.SUBSCRIPTION_ID,
    )
    return run(lambda: AgentVm("agent", args))


@pytest.fixture(scope="module")
def vm_run() -> Run:
    return agent_vm()


def test_the_pat_lives_in_key_vault_as_a_secret(vm_run: Run) -> None:
    secret = vm_run.recording.one("azure-native:keyvault:Secret")
    assert secret.inputs["vaultName"] == "kv-test" and secret.inputs["secretName"] == "devops-agent-pat"
    assert secret.inputs["properties"]["value"] == SECRET_MASK
    assert secret.secret_paths == ("properties.value",)
    assert secret.inputs["properties"]["contentType"]  # visible to reviewers: only the value is masked


def test_only_the_vm_identity_may_read_that_one_secret(vm_run: Run) -> None:
    (grant,) = vm_run.recording.of_type("azure-native:authorization:RoleAssignment")
    assert grant.inputs["roleDefinitionId"].rsplit("/", 1)[-1] == KEY_VAULT_SECRETS_USER
    assert grant.inputs["scope"] == vm_run.state["agent-pat-secret"]["id"]
    assert grant.inputs["principalId"] == vm_run.principal_of("agent-identity")
    assert grant.urn in vm_run.recording.one("azure-native:compute:VirtualMachine").dependencies


def test_custom_data_carries_no_secret_and_the_whole_os_profile_is_visible(vm_run: Run) -> None:
    vm = vm_run.recording.one("azure-native:compute:VirtualMachine")
    assert vm.secret_paths == ()
    os_profile = vm.inputs["osProfile"]
    cloud_init = base64.b64decode(os_profile["customData"]).decode()
    secret_uri = vm_run.state["agent-pat-secret"]["properties"]["secretUri"]
    client_id = vm_run.state["agent-identity"]["clientId"]
    install = AgentInstall(INSTALL.org_url, INSTALL.pool_name, INSTALL.agent_count, secret_uri, client_id)
    assert cloud_init == render_cloud_init("vm-agent", install)
    assert PAT not in cloud_init and PAT not in repr([r.inputs for r in vm_run.recording.resources])
    linux = os_profile["linuxConfiguration"]
    assert linux["disablePasswordAuthentication"] is True and "adminPassword" not in os_profile
    assert linux["ssh"]["publicKeys"] == [
        {"path": "/home/azureuser/.ssh/authorized_keys", "keyData": "ssh-ed25519 AAAA test"}
    ]
    assert vm.inputs["identity"]["type"] == "UserAssigned"
    assert (
        "publicIPAddress"
        not in vm_run.recording.one("azure-native:network:NetworkInterface").inputs["ipConfigurations"][0]
    )


def test_policy_now_sees_the_os_profile_and_refuses_password_login(vm_run: Run) -> None:
    vm = vm_run.recording.one("azure-native:compute:VirtualMachine")
    props = json.loads(json.dumps(vm.inputs))
    props["tags"] = {"environment": "dev", "project": "p", "owner": "o"}
    assert [f.rule for f in evaluate(vm.type, props) if f.rule == "vm-ssh-key-only"] == []
    props["osProfile"]["linuxConfiguration"]["disablePasswordAuthentication"] = False
    assert [f.rule for f in evaluate(vm.type, props) if f.rule == "vm-ssh-key-only"] == ["vm-ssh-key-only"]
