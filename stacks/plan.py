"""Offline plan: run the real program under mocks with a stack file's config and describe what it declares."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from stacks.model import SECRET_MASK
from stacks.schema import KEYS_BY_NAME
from stacks.stackfile import StackFileError, config_string, load_yaml, namespaced, read_stack_file

ROOT = Path(__file__).resolve().parent.parent
PLAN_VERSION = 1


class PlanInputError(Exception):
    """The stack file or an override is unusable; the message says which and how to fix it."""


@dataclass(frozen=True)
class StackInput:
    """Config for one offline run: plaintext values, and which keys are secrets."""

    project: str
    stack: str
    values: Mapping[str, str]
    secret_keys: frozenset[str]
    notes: tuple[str, ...] = ()
    """What the stack file says differently from what it means (see stacks.stackfile), one line each."""


STAND_IN_PREFIX = "stand-in-for-"
"""Offline plans cannot decrypt `secure:` values (that needs the CLI); they run with these stand-ins."""


def project_name(root: Path = ROOT) -> str:
    """The project name from Pulumi.yaml (pulumi.Config reads keys under it)."""
    return str(yaml.safe_load((root / "Pulumi.yaml").read_text())["name"])


def project_defaults(root: Path = ROOT) -> dict[str, str]:
    """The Pulumi.yaml defaults the CLI sets for keys a stack leaves out (pkg/workspace/config.go)."""
    document = load_yaml((root / "Pulumi.yaml").read_text()) or {}
    project = str(document["name"])
    return {
        namespaced(str(key), project): config_string(spec["default"])
        for key, spec in (document.get("config") or {}).items()
        if isinstance(spec, dict) and spec.get("default") is not None
    }


def stack_input(stack: str, overrides: Sequence[str] = (), root: Path = ROOT) -> StackInput:
    """Read Pulumi.<stack>.yaml as the CLI does, plus KEY=VALUE overrides; `secure:` values get stand-ins."""
    project = project_name(root)
    path = root / f"Pulumi.{stack}.yaml"
    if not path.exists():
        raise PlanInputError(
            f"no stack file {path.name}; create it with `pulumi stack init {stack}` or pick "
            f"one of: {', '.join(sorted(p.name[7:-5] for p in root.glob('Pulumi.*.yaml')))}"
        )
    try:
        stack_file = read_stack_file(path, project)
    except StackFileError as error:
        raise PlanInputError(str(error)) from None
    values = {**project_defaults(root), **stack_file.values}
    # The ciphertext needs the CLI to decrypt; a stand-in exercises the same code path, masked.
    values.update({key: f"{STAND_IN_PREFIX}{key}" for key in stack_file.secure})
    secrets = set(stack_file.secure)
    for override in overrides:
        key, sep, value = override.partition("=")
        if not sep or ":" not in key:
            raise PlanInputError(
                f"--config '{override}' must look like {project}:<key>=<value>, the way "
                "`pulumi config set` spells the key"
            )
        # `pulumi config set KEY VALUE` stores the text as given: no YAML typing applies.
        values[key] = value
        name = key.split(":", 1)[1]
        if key.startswith(f"{project}:") and name in KEYS_BY_NAME and KEYS_BY_NAME[name].secret:
            secrets.add(key)
    overridden = {override.partition("=")[0] for override in overrides}
    notes = [f"{path.name} {note}" for note in stack_file.notes if note.key not in overridden]
    notes += [
        f"{path.name}: {key} holds the shipped placeholder ciphertext, which only an offline plan accepts "
        f"(with a stand-in); set it: `pulumi config set --secret {key.split(':', 1)[1]} <value> --stack {stack}`"
        for key, ciphertext in stack_file.secure.items()
        if key not in overridden and is_placeholder_ciphertext(ciphertext)
    ]
    return StackInput(project, stack, values, frozenset(secrets), tuple(notes))


def is_placeholder_ciphertext(ciphertext: str) -> bool:
    """Whether a `secure:` value is a shipped placeholder rather than anything a secrets provider wrote."""
    return "Placeholder" in ciphertext or "ReplaceWith" in ciphertext


def run_plan(stack_in: StackInput) -> dict[str, Any]:
    """Run the program under mocks; return the plan document (secrets masked)."""
    from stacks.mockrun import run_program
    from stacks.program import program

    recording = run_program(
        program,
        project=stack_in.project,
        stack=stack_in.stack,
        config=stack_in.values,
        secret_keys=stack_in.secret_keys,
    )
    duplicates = recording.duplicate_urns()
    if duplicates:
        raise PlanInputError(f"the program registers duplicate URNs: {duplicates}")
    return {
        "version": PLAN_VERSION,
        "project": stack_in.project,
        "stack": stack_in.stack,
        "config": {
            key: SECRET_MASK if key in stack_in.secret_keys else value
            for key, value in sorted(stack_in.values.items())
        },
        "resources": [
            {
                "urn": resource.urn,
                "type": resource.type,
                "name": resource.name,
                "parent": resource.parent,
                "custom": resource.custom,
                "protect": resource.protect,
                "retainOnDelete": resource.retain_on_delete,
                "provider": resource.provider,
                "inputs": resource.inputs,
                "dependencies": list(resource.dependencies),
                "propertyDependencies": {
                    key: list(urns) for key, urns in resource.property_dependencies.items()
                },
            }
            for resource in recording.resources
        ],
        "outputs": recording.outputs,
    }


def render_tree(plan: Mapping[str, Any]) -> str:
    """The resource tree as text: type and logical name, indented under the parent."""
    resources = plan["resources"]
    children: dict[str | None, list[Mapping[str, Any]]] = {}
    for resource in resources:
        children.setdefault(resource["parent"], []).append(resource)
    lines = [
        f"{plan['project']} / {plan['stack']}: {len(resources)} resources "
        f"({sum(r['custom'] for r in resources)} Azure/DevOps resources, "
        f"{sum(not r['custom'] for r in resources)} components)"
    ]

    def walk(parent: str | None, prefix: str) -> None:
        items = children.get(parent, [])
        for index, resource in enumerate(items):
            last = index == len(items) - 1
            flags = " [protected]" if resource["protect"] else ""
            lines.append(f"{prefix}{'└─ ' if last else '├─ '}{resource['type']}  {resource['name']}{flags}")
            walk(resource["urn"], prefix + ("   " if last else "│  "))

    walk(None, "")
    return "\n".join(lines)


def write_plan(plan: Mapping[str, Any], path: Path) -> None:
    """Write the plan JSON (stable key order, so plans diff cleanly)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(plan, indent=2, sort_keys=True) + "\n")
