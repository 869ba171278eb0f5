"""Self-hosted Azure DevOps agent VM: Ubuntu LTS, SSH key only, no public IP, N agents via cloud-init."""

from __future__ import annotations

import base64
import shlex
from dataclasses import dataclass

import pulumi
import pulumi_azure_native.compute as compute
import pulumi_azure_native.network as network

from components.common import CommonArgs, child_opts, user_identity

AGENT_VERSION = "4.270.0"
AGENT_USER = "azagent"
AGENT_HOME = "/opt/azp"
INSTALL_SCRIPT = f"{AGENT_HOME}/install-agents.sh"
UBUNTU_LTS_IMAGE = compute.ImageReferenceArgs(
    publisher="Canonical", offer="ubuntu-24_04-lts", sku="server", version="latest"
)


@dataclass(frozen=True)
class AgentInstall:
    """What cloud-init needs to register agents into a pool."""

    org_url: str
    """Azure DevOps organization URL, e.g. https://dev.azure.com/contoso."""
    pool_name: str
    """Agent pool the agents join."""
    agent_count: int
    """Agents to install side by side (each its own service)."""
    agent_version: str = AGENT_VERSION
    """Azure Pipelines agent release."""


def agent_names(vm_name: str, agent_count: int) -> list[str]:
    """Names the agents register under: the VM name and a 1-based index."""
    if agent_count < 1:
        raise ValueError(f"agent_vm.agent_count must be at least 1, got {agent_count}")
    return [f"{vm_name}-{index}" for index in range(1, agent_count + 1)]


def render_cloud_init(vm_name: str, install: AgentInstall, pat: str) -> str:
    """The cloud-config that installs and registers the agents.

    The PAT sits in a root-only script that cloud-init runs once and then shreds, but also stays in the
    root-only copies of the VM's custom data (waagent, cloud-init): use a short-lived, pool-scoped PAT. The
    caller must pass the result to Azure as a Pulumi secret.
    """
    names = agent_names(vm_name, install.agent_count)
    tarball = f"vsts-agent-linux-x64-{install.agent_version}.tar.gz"
    url = f"https://download.agent.dev.azure.com/agent/{install.agent_version}/{tarball}"
    agent_steps = "\n".join(
        f"install_agent {index} {shlex.quote(agent)}" for index, agent in enumerate(names, start=1)
    )
    script = f"""#!/usr/bin/env bash
set -euo pipefail
AZP_URL={shlex.quote(install.org_url)}
AZP_POOL={shlex.quote(install.pool_name)}
AZP_TOKEN={shlex.quote(pat)}
curl -fsSL -o {AGENT_HOME}/agent.tar.gz {shlex.quote(url)}
install_agent() {{
  local dir={AGENT_HOME}/agent-$1
  mkdir -p "$dir" && tar -xzf {AGENT_HOME}/agent.tar.gz -C "$dir" && chown -R {AGENT_USER}: "$dir"
  sudo -u {AGENT_USER} "$dir/config.sh" --unattended --acceptTeeEula --replace --url "$AZP_URL" \\
    --auth pat --token "$AZP_TOKEN" --pool "$AZP_POOL" --agent "$2" --work _work
  (cd "$dir" && ./svc.sh install {AGENT_USER} && ./svc.sh start)
}}
{agent_steps}
"""
    indented = "\n".join(f"      {line}" if line else "" for line in script.splitlines())
    return f"""#cloud-config
package_update: true
packages: [curl, git, jq, unzip, python3, python3-venv, python3-pip]
users:
  - default
  - name: {AGENT_USER}
    system: true
    shell: /bin/bash
write_files:
  - path: {INSTALL_SCRIPT}
    owner: root:root
    permissions: "0700"
    content: |
{indented}
runcmd:
  - [bash, {INSTALL_SCRIPT}]
  - [shred, -u, {INSTALL_SCRIPT}]
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
    """Azure DevOps PAT that registers the agents (a Pulumi secret)."""


class AgentVm(pulumi.ComponentResource):
    """An Ubuntu LTS VM that runs N Azure Pipelines agents of one pool."""

    vm_name: pulumi.Output[str]
    """Azure name of the VM."""
    vm_id: pulumi.Output[str]
    """Azure resource id of the VM."""
    identity_principal_id: pulumi.Output[str]
    """Object id of the VM's user-assigned identity (grant it what pipelines need)."""

    def __init__(self, name: str, args: AgentVmArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("aml-platform:devops:AgentVm", name, None, opts)
        common = args.common
        identity = user_identity(f"{name}-identity", args.identity_name, common, self)
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
        custom_data = pulumi.Output.secret(pulumi.Output.all(args.pat, args.pool_name)).apply(
            lambda values: _encoded_cloud_init(args, pat=values[0], pool_name=values[1])
        )
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
            opts=child_opts(self),
        )
        self.vm_name = vm.name
        self.vm_id = vm.id
        self.identity_principal_id = identity.principal_id
        self.register_outputs(
            {
                "vm_name": self.vm_name,
                "vm_id": self.vm_id,
                "identity_principal_id": self.identity_principal_id,
            }
        )


def _encoded_cloud_init(args: AgentVmArgs, *, pat: str, pool_name: str) -> str:
    """Base64 of the cloud-config (the encoding Azure expects for custom data)."""
    install = AgentInstall(args.org_url, pool_name, args.agent_count)
    return base64.b64encode(render_cloud_init(args.vm_name, install, pat).encode()).decode()
