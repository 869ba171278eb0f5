"""The Pulumi program: read and validate the stack config, build the platform, export its outputs."""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config
from pulumi.runtime import mocks, settings

from stacks.config import ConfigError, check_config
from stacks.model import StackConfig
from stacks.schema import KEYS


def config_values(project: str) -> tuple[dict[str, str], frozenset[str]]:
    """Every config value the engine handed us (all namespaces: typos are checked), and the secret ones."""
    known = {f"{project}:{key.name}" for key in KEYS}
    keys = set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env()) | known
    values = {key: str(value) for key in keys if (value := runtime_config.get_config(key)) is not None}
    declared_secret = set(runtime_config.get_config_secret_keys_env())
    secrets = frozenset(k for k in values if runtime_config.is_config_secret(k) or k in declared_secret)
    return values, secrets


def is_deployment() -> bool:
    """Whether a real engine runs the program (preview or up), not the SDK's mock runtime of offline plans."""
    return not isinstance(settings.get_monitor(), mocks.MockMonitor)


def load_stack_config() -> StackConfig:
    """The validated config of the current stack; every problem is reported before any resource exists.

    Placeholders from the shipped stack files are refused in a real preview or up and only warned about
    under mocks, so that `make demo` and the PR plans keep working from the shipped files.
    """
    project, stack = pulumi.get_project(), pulumi.get_stack()
    values, secrets = config_values(project)
    check = check_config(values, stack=stack, secret_keys=secrets, project=project, deploying=is_deployment())
    for warning in check.warnings:
        pulumi.log.warn(f"config: {warning}")
    if check.config is None:
        # RunError ends the program cleanly with just the message (no stack trace) in `pulumi up`.
        raise pulumi.RunError(str(ConfigError(list(check.problems), stack)))
    return check.config


def program() -> dict[str, Any]:
    """Declare the whole platform for the current stack and export its outputs."""
    cfg = load_stack_config()
    from stacks.platform import build_platform  # after validation: a config error declares nothing

    outputs = build_platform(cfg)
    for name, value in outputs.items():
        pulumi.export(name, value)
    return outputs
