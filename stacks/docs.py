"""Generated docs: README blocks (config reference, profiles) and Pulumi.yaml's config section.

`python -m stacks.docs README.md` rewrites them from the code.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Callable, Mapping

import yaml

from components.alerts import alert_cost_markdown
from stacks.check import facts_reference_markdown
from stacks.designs import design_diagram
from stacks.naming import max_namespace_length
from stacks.profiles import profile_table_markdown
from stacks.schema import PROJECT, config_reference_markdown, pulumi_yaml_config

SHIPPED_STACKS = ("dev", "prod")


def namespace_limits_markdown() -> str:
    """The longest namespace every derived Azure name accepts, by postfix length and environment."""
    rows = ["| postfix | dev | prod |", "| --- | --- | --- |"]
    for digits in range(1, 7):
        postfix = "0" * digits
        rows.append(
            f"| {digits} digit{'s' if digits > 1 else ''} (`{'0' * (digits - 1)}1`) | "
            + " | ".join(str(max_namespace_length(postfix, env)) for env in SHIPPED_STACKS)
            + " |"
        )
    return "\n".join(rows)


def must_change_markdown() -> str:
    """The shipped stack files' values a real `pulumi up` refuses, each with its command."""
    from stacks.config import check_config, secret_command
    from stacks.plan import is_placeholder_ciphertext, stack_input
    from stacks.stackfile import read_stack_file

    rows = ["| stack | key | why | command |", "| --- | --- | --- | --- |"]
    for stack in SHIPPED_STACKS:
        stack_in = stack_input(stack)
        secure = read_stack_file(
            Path(__file__).resolve().parent.parent / f"Pulumi.{stack}.yaml", PROJECT
        ).secure
        for key, ciphertext in secure.items():
            if is_placeholder_ciphertext(ciphertext):
                name = key.split(":", 1)[1]
                command = secret_command(name, stack).replace("|", "\\|")
                rows.append(f"| {stack} | `{name}` | placeholder ciphertext | `{command}` |")
        check = check_config(
            stack_in.values,
            stack=stack,
            secret_keys=stack_in.secret_keys,
            project=stack_in.project,
            deploying=True,
        )
        for problem in check.problems:
            why, _, _ = problem.message.partition(";")
            command = re.findall(r"`([^`]+)`", problem.message)
            shown = f"`{command[-1]}`".replace("|", "\\|") if command else ""
            rows.append(f"| {stack} | `{problem.key.split(':', 1)[1]}` | {why.replace('|', '/')} | {shown} |")
    return "\n".join(rows)


def providers_markdown() -> str:
    """The `az provider register` lines for everything the shipped prod stack declares."""
    from stacks.config import check_config
    from stacks.plan import stack_input
    from stacks.preflight import required_namespaces

    stack_in = stack_input("prod")
    cfg = check_config(stack_in.values, stack="prod", secret_keys=stack_in.secret_keys).config
    assert cfg is not None, "the shipped prod stack must parse offline"
    lines = [f"az provider register --namespace {namespace}" for namespace in required_namespaces(cfg)]
    return "```sh\n" + "\n".join(lines) + "\n```"


GENERATORS: Mapping[str, Callable[[], str]] = {
    "config": config_reference_markdown,
    "profiles": profile_table_markdown,
    "namespace-limits": namespace_limits_markdown,
    "must-change": must_change_markdown,
    "providers": providers_markdown,
    "alert-costs": alert_cost_markdown,
    "facts": facts_reference_markdown,
    "design-customerVnet": lambda: design_diagram("customerVnet"),
    "design-managedVnet": lambda: design_diagram("managedVnet"),
}


def block_pattern(marker: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- {marker}:start -->\n)(.*?)(<!-- {marker}:end -->)", re.DOTALL)


def read_block(text: str, marker: str) -> str | None:
    """The content between a marker pair, or None when the README lacks the markers."""
    match = block_pattern(marker).search(text)
    return match.group(2).rstrip("\n") if match else None


def replace_block(text: str, marker: str, content: str) -> str:
    """`text` with the block between the marker pair replaced by `content`."""
    if read_block(text, marker) is None:
        raise ValueError(f"README has no <!-- {marker}:start --> / <!-- {marker}:end --> markers")
    return block_pattern(marker).sub(lambda m: f"{m.group(1)}{content}\n{m.group(3)}", text)


PROJECT_CONFIG_NOTE = (
    "# Keys whose default comes from the environment profile, and optional keys without a default, are not\n"
    "# declared here: the CLI fills every declared key with its default, so they could not be told from an\n"
    "# explicit value (stacks/schema.py, declared_in_project). The README's config reference lists all keys.\n"
)


def project_file_text(text: str) -> str:
    """Pulumi.yaml with its `config:` section regenerated from stacks/schema.py (the rest kept)."""
    head = text.split("\n# Keys whose default", 1)[0].split("\nconfig:\n", 1)[0].rstrip("\n")
    body = yaml.safe_dump({"config": pulumi_yaml_config()}, sort_keys=False, width=110, allow_unicode=True)
    return f"{head}\n{PROJECT_CONFIG_NOTE}{body}"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(
            "usage: python -m stacks.docs README.md   (also rewrites Pulumi.yaml's config section)",
            file=sys.stderr,
        )
        return 2
    path = Path(argv[0])
    text = path.read_text()
    for marker, generate in GENERATORS.items():
        text = replace_block(text, marker, generate())
    path.write_text(text)
    project_file = path.parent / "Pulumi.yaml"
    project_file.write_text(project_file_text(project_file.read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
