"""Self-hosted Azure DevOps agent VM: Ubuntu LTS, SSH key only, no public IP, PAT read from Key Vault at boot."""

from __future__ import annotations

import base64
import shlex
from dataclasses import dataclass

import pulumi
import pulumi_azure_native.compute as compute
import pulumi_azure_native.keyvault as keyvault
import pulumi_azure_native.network as network

from components.common import BuiltInRole, CommonArgs, RoleGrant, assign_role, child_opts, user_identity

AGENT_VERSION = "4.270.0"
AGENT_USER = "azagent"
AGENT_HOME = "/opt/azp"
INSTALL_SCRIPT = f"{AGENT_HOME}/install-agents.sh"
UBUNTU_LTS_IMAGE = compute.ImageReferenceArgs(
    publisher="Canonical", offer="ubuntu-24_04-lts", sku="server", version="latest"
)
PAT_SECRET_NAME = "devops-agent-pat"
# Learn, "How to use managed identities for Azure resources on an Azure VM to acquire an access token":
# the instance metadata endpoint (link-local, never proxied), its API version, and the resource id of Key
# Vault tokens; Key Vault REST "Get Secret" takes api-version 7.4.
IMDS_TOKEN_URL = "http://169.254.169.254/metadata/identity/oauth2/token"
IMDS_API_VERSION = "2018-02-01"
KEY_VAULT_RESOURCE = "https://vault.azure.net"
KEY_VAULT_API_VERSION = "7.4"


@dataclass(frozen=True)
class AgentInstall:
    """What cloud-init needs to register agents into a pool; no secret, only where to read one."""

    org_url: str
    """Azure DevOps organization URL, e.g. https://dev.azure.com/contoso."""
    pool_name: str
    """Agent pool the agents join."""
    agent_count: int
    """Agents to install side by side (each its own service)."""
    pat_secret_uri: str
    """Key Vault secret holding the PAT, e.g. https://kv-x.vault.azure.net/secrets/devops-agent-pat."""
    identity_client_id: str
    """Client id of the VM's user-assigned identity, which may read that secret."""
    agent_version: str = AGENT_VERSION
    """Azure Pipelines agent release."""


@dataclass(frozen=True)
class PatReader:
    """How the boot script reads the PAT: where from, and how long it keeps trying."""

    secret_uri: str
    """Key Vault secret (latest version) with the PAT."""
    identity_client_id: str
    """User-assigned identity whose token IMDS issues."""
    token_url: str = IMDS_TOKEN_URL
    """Instance metadata token endpoint (a loopback fake in tests)."""
    attempts: int = 30
    """Reads before giving up: a new role assignment and the private DNS record can take minutes."""
    delay_seconds: int = 30
    """Pause between reads."""


def agent_names(vm_name: str, agent_count: int) -> list[str]:
    """Names the agents register under: the VM name and a 1-based index."""
    if agent_count < 1:
        raise ValueError(f"agent_vm.agent_count must be at least 1, got {agent_count}")
    return [f"{vm_name}-{index}" for index in range(1, agent_count + 1)]


def pat_reader_script(reader: PatReader) -> str:
    """Bash that sets AZP_TOKEN from Key Vault with the VM identity's IMDS token, retrying, never on disk."""
    if reader.attempts < 1 or reader.delay_seconds < 0:
        raise ValueError(f"PAT reads need at least 1 attempt and a delay >= 0, got {reader}")
    return f"""read_pat() {{
  local token
  token=$(curl -fsS --noproxy '*' -H Metadata:true --get {shlex.quote(reader.token_url)} \\
    --data-urlencode api-version={IMDS_API_VERSION} --data-urlencode resource={KEY_VAULT_RESOURCE} \\
    --data-urlencode client_id={shlex.quote(reader.identity_client_id)} | jq -er .access_token) || return 1
  curl -fsS -H "Authorization: Bearer $token" {shlex.quote(reader.secret_uri + "?api-version=" + KEY_VAULT_API_VERSION)} \\
    | jq -er .value
}}
AZP_TOKEN=""
for attempt in $(seq 1 {reader.attempts}); do
  if AZP_TOKEN=$(read_pat) && [ -n "$AZP_TOKEN" ]; then break; fi
  AZP_TOKEN=""
  echo "agent PAT not readable from Key Vault yet (attempt $attempt of {reader.attempts})" >&2
  [ "$attempt" -lt {reader.attempts} ] && sleep {reader.delay_seconds}
done
if [ -z "$AZP_TOKEN" ]; then
  echo "could not read the agent PAT from {reader.secret_uri}: check the VM identity's Key Vault Secrets User role" >&2
  exit 1
fi
"""


def render_cloud_init(vm_name: str, install: AgentInstall) -> str:
    """The cloud-config that reads the PAT from Key Vault at boot and registers the agents with it.

    The custom data names only where the PAT lives: Azure keeps custom data on the VM's disk and its API
    says never to put secrets there (AZURE-FACTS 15). The token stays in the script's memory.
    """
    names = agent_names(vm_name, install.agent_count)
    tarball = f"vsts-agent-linux-x64-{install.agent_version}.tar.gz"
    url = f"https://download.agent.dev.azure.com/agent/{install.agent_version}/{tarball}"
    agent_steps = "\n".join(
        f"install_agent {index} {shlex.quote(agent)}" for index, agent in enumerate(names, start=1)
    )
    reader = pat_reader_script(PatReader(install.pat_secret_uri, install.identity_client_id))
    script = f"""#!/usr/bin/env bash
set -euo pipefail
AZP_URL={shlex.quote(install.org_url)}
AZP_POOL={shlex.quote(install.pool_name)}
# What the pipelines' jobs run on these agents: `make venv` (GNU make, Python 3.11 as pyproject.toml
# requires; Ubuntu 24.04 ships 3.12, so from the deadsnakes PPA) and AzureCLI@2 (the az CLI, installed
# as Microsoft's "Install the Azure CLI on Linux" page gives it for Ubuntu).
add-apt-repository -y ppa:deadsnakes/ppa
apt-get update -q && apt-get install -y -q python3.11 python3.11-venv
curl -fsSL https://aka.ms/InstallAzureCLIDeb | bash
{reader}curl -fsSL -o {AGENT_HOME}/agent.tar.gz {shlex.quote(url)}
install_agent() {{
  local dir={AGENT_HOME}/agent-$1
  mkdir -p "$dir" && tar -xzf {AGENT_HOME}/agent.tar.gz -C "$dir" && chown -R {AGENT_USER}: "$dir"
  sudo -u {AGENT_USER} "$dir/config.sh" --unattended --acceptTeeEula --replace --url "$AZP_URL" \\
    --auth pat --token "$AZP_TOKEN" --pool "$AZP_POOL" --agent "$2" --work _work
  (cd "$dir" && ./svc.sh install {AGENT_USER} && ./svc.sh start)
}}
{agent_steps}
unset AZP_TOKEN
"""
    indented = "\n".join(f"      {line}" if line else "" for line in script.splitlines())
    return f"""#cloud-config
package_update: true
packages: [curl, git, jq, unzip, make, ca-certificates, software-properties-common]
users:
  - default
  # A normal user with a home (a system user gets none): jobs keep the uv and pip caches and ~/.azure there.
  - name: {AGENT_USER}
    homedir: /home/{AGENT_USER}
    shell: /bin/bash
write_files:
  - path: {INSTALL_SCRIPT}
    owner: root:root
    permissions: "0700"
    content: |
{indented}
runcmd:
  - [bash, {INSTALL_SCRIPT}]
"""


@dataclass(frozen=True)
class AgentVmArgs:
    """Inputs of an AgentVm."""

    common: CommonArgs
    """Location, resource group, tags, protect."""
    vm_name: str
    """Azure name of the VM (also its host name and the agents' name prefix)."""
    identity_name: str
    """Azure name of the VM's user-assigned identity."""
    subnet_id: pulumi.Input[str]
    """Agents subnet the NIC joins (no public IP)."""
    vm_size: str
    """VM size, e.g. Standard_D2s_v5."""
    admin_username: str
    """Linux admin user (SSH key only)."""
    ssh_public_key: str
    """OpenSSH public key of the admin user."""
    org_url: str
    """Azure DevOps organization URL the agents register with."""
    pool_name: pulumi.Input[str]
    """Agent pool (pass the pool's output so the VM waits for the pool)."""
    agent_count: int
    """Agents to install side by side."""
    pat: pulumi.Input[str]
    """Azure DevOps PAT that registers the agents (a Pulumi secret): stored in Key Vault, read at boot."""
    vault_name: pulumi.Input[str]
    """Key Vault (RBAC mode) the PAT is kept in; the agents subnet reaches it (private endpoint in prod)."""
    subscription_id: pulumi.Input[str]
    """Subscription of the role definition granted on the secret."""


class AgentVm(pulumi.ComponentResource):
    """An Ubuntu LTS VM that runs N Azure Pipelines agents of one pool, registered with a Key Vault-held PAT."""

    vm_name: pulumi.Output[str]
    """Azure name of the VM."""
    vm_id: pulumi.Output[str]
    """Azure resource id of the VM."""
    identity_principal_id: pulumi.Output[str]
    """Object id of the VM's user-assigned identity (grant it what pipelines need)."""
    pat_secret_id: pulumi.Output[str]
    """Resource id of the Key Vault secret holding the PAT (rotate the PAT by updating devopsPat)."""

    def __init__(self, name: str, args: AgentVmArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("aml-platform:devops:AgentVm", name, None, opts)
        common = args.common
        identity = user_identity(f"{name}-identity", args.identity_name, common, self)
        secret = keyvault.Secret(
            f"{name}-pat-secret",
            secret_name=PAT_SECRET_NAME,
            vault_name=args.vault_name,
            resource_group_name=common.resource_group_name,
            properties=keyvault.SecretPropertiesArgs(
                value=pulumi.Output.secret(args.pat),
                content_type="Azure DevOps PAT: registers the pool's agents",
            ),
            tags=common.tags_with(),
            opts=child_opts(self),
        )
        # Scoped to this one secret, not the vault: the VM reads its PAT and nothing else.
        reader = assign_role(
            f"{name}-pat-reader-role",
            RoleGrant(
                role=BuiltInRole.KEY_VAULT_SECRETS_USER,
                scope=secret.id,
                scope_key=f"{args.vm_name}/{PAT_SECRET_NAME}",
                principal_id=identity.principal_id,
                principal_key=args.identity_name,
            ),
            args.subscription_id,
            self,
        )
        nic = network.NetworkInterface(
            f"{name}-nic",
            network_interface_name=f"nic-{args.vm_name}",
            resource_group_name=common.resource_group_name,
            location=common.location,
            ip_configurations=[
                network.NetworkInterfaceIPConfigurationArgs(
                    name="primary",
                    primary=True,
                    private_ip_allocation_method="Dynamic",
                    subnet=network.SubnetArgs(id=args.subnet_id),
                )
            ],
            tags=common.tags_with(),
            opts=child_opts(self),
        )
        custom_data = pulumi.Output.all(
            args.pool_name, secret.properties.secret_uri, identity.client_id
        ).apply(lambda values: _encoded_cloud_init(args, *values))
        vm = compute.VirtualMachine(
            f"{name}-vm",
            vm_name=args.vm_name,
            resource_group_name=common.resource_group_name,
            location=common.location,
            hardware_profile=compute.HardwareProfileArgs(vm_size=args.vm_size),
            identity=compute.VirtualMachineIdentityArgs(
                type=compute.ResourceIdentityType.USER_ASSIGNED, user_assigned_identities=[identity.id]
            ),
            os_profile=compute.OSProfileArgs(
                computer_name=args.vm_name,
                admin_username=args.admin_username,
                custom_data=custom_data,
                linux_configuration=compute.LinuxConfigurationArgs(
                    disable_password_authentication=True,
                    ssh=compute.SshConfigurationArgs(
                        public_keys=[
                            compute.SshPublicKeyArgs(
                                path=f"/home/{args.admin_username}/.ssh/authorized_keys",
                                key_data=args.ssh_public_key,
                            )
                        ]
                    ),
                ),
            ),
            storage_profile=compute.StorageProfileArgs(
                image_reference=UBUNTU_LTS_IMAGE,
                os_disk=compute.OSDiskArgs(
                    create_option="FromImage",
                    delete_option="Delete",
                    managed_disk=compute.ManagedDiskParametersArgs(storage_account_type="StandardSSD_LRS"),
                ),
            ),
            network_profile=compute.NetworkProfileArgs(
                network_interfaces=[compute.NetworkInterfaceReferenceArgs(id=nic.id, primary=True)]
            ),
            security_profile=compute.SecurityProfileArgs(
                security_type="TrustedLaunch",
                uefi_settings=compute.UefiSettingsArgs(secure_boot_enabled=True, v_tpm_enabled=True),
            ),
            tags=common.tags_with(),
            # Boot only once the VM may read its PAT, so the first read usually succeeds.
            opts=child_opts(self, depends_on=[reader]),
        )
        self.vm_name = vm.name
        self.vm_id = vm.id
        self.identity_principal_id = identity.principal_id
        self.pat_secret_id = secret.id
        self.register_outputs(
            {
                "vm_name": self.vm_name,
                "vm_id": self.vm_id,
                "identity_principal_id": self.identity_principal_id,
                "pat_secret_id": self.pat_secret_id,
            }
        )


def _encoded_cloud_init(args: AgentVmArgs, pool_name: str, secret_uri: str, client_id: str) -> str:
    """Base64 of the cloud-config (the encoding Azure expects for custom data)."""
    install = AgentInstall(args.org_url, pool_name, args.agent_count, secret_uri, client_id)
    return base64.b64encode(render_cloud_init(args.vm_name, install).encode()).decode()
