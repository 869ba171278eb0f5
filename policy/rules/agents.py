"""Agent VM rules: no public IP, SSH keys only, no secret in the custom data it keeps on disk."""

from __future__ import annotations

from . import types as t
from .core import M, Rule, StackRule, Subject, rule
from .secrets import decode_custom_data, secret_findings
from .values import SECRET_MASK, as_list, get

CUSTOM_DATA_SOURCE = (
    'the Compute API\'s OSProfile.customData text, "Do not pass any secrets or passwords in customData", as '
    "pulumi_azure_native/compute/_inputs.py (OSProfileArgs.custom_data) carries it"
)


def _nic_public_ip(subject: Subject) -> str | None:
    public = [
        c.get("name") for c in as_list(subject.props.get("ipConfigurations")) if c.get("publicIPAddress")
    ]
    return f"IP configurations {public} attach a public IP" if public else None


def _ssh_key_only(subject: Subject) -> str | None:
    if subject.props.get("osProfile") == SECRET_MASK:
        # A secret in osProfile masks all of it in an offline plan; vm-custom-data-no-secrets reports that.
        return None
    password_off = get(subject.props, "osProfile.linuxConfiguration.disablePasswordAuthentication") is True
    keys = as_list(get(subject.props, "osProfile.linuxConfiguration.ssh.publicKeys"))
    if password_off and keys and not get(subject.props, "osProfile.adminPassword"):
        return None
    return (
        f"password login is possible or no SSH key is set (disablePasswordAuthentication={password_off}, "
        f"{len(keys)} key(s))"
    )


def _custom_data_no_secrets(subject: Subject) -> str | None:
    profile = subject.props.get("osProfile")
    if profile == SECRET_MASK or get(subject.props, "osProfile.customData") == SECRET_MASK:
        return (
            "custom data (or the OS profile holding it) is a Pulumi secret, so it carries secret material that "
            "stays on the VM's disk, and reviewers and policy cannot read the OS profile"
        )
    custom_data = get(subject.props, "osProfile.customData")
    if not isinstance(custom_data, str) or not custom_data:
        return None
    found = secret_findings(decode_custom_data(custom_data))
    return f"custom data holds secret-looking material: {'; '.join(found)}" if found else None


RULES: tuple[Rule, ...] = (
    rule(
        "nic-no-public-ip",
        t.NIC,
        M,
        "Agent VM network interfaces have no public IP.",
        "remove public_ip_address from the IP configurations; reach agents through Azure DevOps only",
        _nic_public_ip,
    ),
    rule(
        "vm-ssh-key-only",
        t.VM,
        M,
        "Linux VMs accept SSH keys only.",
        "set os_profile.linux_configuration.disable_password_authentication=True with an SSH public key "
        "and no admin_password",
        _ssh_key_only,
    ),
    rule(
        "vm-custom-data-no-secrets",
        t.VM,
        M,
        "VM custom data carries no secret: it stays on the VM's disk.",
        "keep the PAT in Key Vault (a Pulumi-managed keyvault.Secret) and let cloud-init read it at boot with the "
        "VM's managed identity through IMDS; custom data then needs no Pulumi secret",
        _custom_data_no_secrets,
        facts=(15,),
        source=CUSTOM_DATA_SOURCE,
    ),
)

STACK_RULES: tuple[StackRule, ...] = ()
