"""Command line of the stack tooling: plan, the review commands built on it, and preflight."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_CONFIG = 2


def _plan(args: argparse.Namespace) -> int:
    import pulumi

    from stacks.config import ConfigError
    from stacks.plan import PlanInputError, render_tree, run_plan, stack_input, write_plan

    stacks = list(dict.fromkeys(args.stack))
    if len(stacks) > 1 and args.json and "{stack}" not in args.json:
        print(
            "error: with several --stack, --json needs a {stack} placeholder, e.g. .work/plan-{stack}.json",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    for stack in stacks:  # one process for several stacks: the provider SDK imports are paid once
        try:
            stack_in = stack_input(stack, args.config)
            for note in stack_in.notes:
                print(f"warning: {note}", file=sys.stderr)
            plan = run_plan(stack_in)
        except (PlanInputError, ConfigError, pulumi.RunError) as error:
            print(f"error: {error}", file=sys.stderr)
            return EXIT_CONFIG
        if not args.quiet:
            print(render_tree(plan))
        if args.json:
            target = args.json.replace("{stack}", stack)
            write_plan(plan, Path(target))
            print(f"plan written to {target}", file=sys.stderr)
    return EXIT_OK


def _load_or_plan(stack: str | None, plan_file: str | None, overrides: Sequence[str]) -> dict:
    """The plan of `--plan FILE`, or a fresh offline plan of `--stack`."""
    if plan_file:
        from stacks.diff import load_plan

        return load_plan(Path(plan_file))
    from stacks.plan import run_plan, stack_input

    return run_plan(stack_input(str(stack), overrides))


def _write_markdown(path: str | None, text: str) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text)
        print(f"markdown written to {path}", file=sys.stderr)


def _review_errors() -> tuple[type[Exception], ...]:
    import pulumi

    from stacks.config import ConfigError
    from stacks.diff import DiffInputError
    from stacks.plan import PlanInputError

    return DiffInputError, PlanInputError, ConfigError, pulumi.RunError, ValueError


def _diff(args: argparse.Namespace) -> int:
    from stacks.diff import (
        diff_plans,
        diff_stacks_against_ref,
        load_plan,
        render_markdown,
        render_summary,
        render_text,
    )

    stacks = list(dict.fromkeys(args.stack or []))
    patterns = [args.markdown, args.head_plan, args.save_head] if len(stacks) > 1 else []
    if any(pattern and "{stack}" not in pattern for pattern in patterns):
        print(
            "error: with several --stack, --markdown, --head-plan and --save-head need a {stack} placeholder",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    try:
        if args.base_ref:
            diffs = diff_stacks_against_ref(stacks, args.base_ref, Path.cwd(), args.head_plan, args.save_head)
        else:
            diffs = {
                "": diff_plans(load_plan(Path(args.base)), load_plan(Path(args.head)), args.base, args.head)
            }
    except _review_errors() as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_CONFIG
    for stack, diff in diffs.items():
        print(render_text(diff))
        _write_markdown(
            args.markdown.replace("{stack}", stack) if args.markdown else None, render_markdown(diff)
        )
    if len(diffs) > 1:
        print(f"summary:\n{render_summary(diffs)}")
    return EXIT_FINDINGS if any(diff.has_changes for diff in diffs.values()) else EXIT_OK


def _check(args: argparse.Namespace) -> int:
    from stacks.check import check_plan, mandatory, render_markdown, render_text

    try:
        plan = _load_or_plan(args.stack, args.plan, args.config)
    except _review_errors() as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_CONFIG
    findings = check_plan(plan)
    print(render_text(plan, findings))
    _write_markdown(args.markdown, render_markdown(plan, findings))
    return EXIT_FINDINGS if mandatory(findings) else EXIT_OK


def _graph(args: argparse.Namespace) -> int:
    from stacks.graph import render_mermaid, update_readme

    try:
        mermaid = render_mermaid(_load_or_plan(args.stack, args.plan, []))
        changed = update_readme(Path(args.readme), mermaid) if args.readme else False
    except _review_errors() as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_CONFIG
    if args.readme:
        print(f"{args.readme}: graph {'updated' if changed else 'already current'}", file=sys.stderr)
    else:
        print(mermaid, end="")
    return EXIT_OK


def _preflight(args: argparse.Namespace) -> int:
    from stacks.preflight import main as preflight

    return preflight(list(dict.fromkeys(args.stack)), args.offline, args.subscription)


def _add_preflight_command(commands: argparse._SubParsersAction) -> None:
    preflight = commands.add_parser(
        "preflight",
        help="what can be known before `pulumi up`: stack file, config, placeholders, CLI, policy pack; with "
        "Azure credentials, read-only ARM checks; exit 0 = ready, 1 = findings, 2 = usage",
    )
    preflight.add_argument("--stack", required=True, action="append", help="stack to check; repeatable")
    preflight.add_argument(
        "--offline", action="store_true", help="skip the Azure checks (no credentials needed)"
    )
    preflight.add_argument(
        "--subscription",
        metavar="ID",
        help="subscription to check (default: azure-native:subscriptionId, then " "AZURE_SUBSCRIPTION_ID)",
    )
    preflight.set_defaults(handler=_preflight)


def _add_review_commands(commands: argparse._SubParsersAction) -> None:
    diff = commands.add_parser(
        "diff",
        help="typed diff of two plans, or of a stack at a git ref vs the "
        "working tree; exit 0 = no changes, 1 = changes, 2 = error",
    )
    diff.add_argument("base", nargs="?", help="base plan JSON (from `plan --json`)")
    diff.add_argument("head", nargs="?", help="head plan JSON")
    diff.add_argument(
        "--stack",
        action="append",
        help="with --base-ref: a stack to plan at both revisions; repeatable (one process per side)",
    )
    diff.add_argument("--base-ref", help="git ref to compare the working tree with (e.g. origin/main)")
    diff.add_argument(
        "--head-plan",
        metavar="FILE",
        help="with --base-ref: the working tree's plan JSON, "
        "already written by `plan --json` (saves planning it again)",
    )
    diff.add_argument(
        "--save-head",
        metavar="FILE",
        help="with --base-ref: keep the working tree's plans there (a {stack} pattern), e.g. for check",
    )
    diff.add_argument("--markdown", metavar="FILE", help="also write the diff as a PR-comment markdown file")
    diff.set_defaults(handler=_diff)
    check = commands.add_parser(
        "check", help="apply the policy pack's rules to a plan; exit 1 on a " "mandatory violation"
    )
    source = check.add_mutually_exclusive_group(required=True)
    source.add_argument("--stack", help="plan this stack offline, then check it")
    source.add_argument("--plan", metavar="FILE", help="check an existing plan JSON")
    check.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override for --stack, as for `plan`",
    )
    check.add_argument("--markdown", metavar="FILE", help="also write the verdict as PR-comment markdown")
    check.set_defaults(handler=_check)
    graph = commands.add_parser("graph", help="Mermaid diagram of the components and their dependencies")
    graph_source = graph.add_mutually_exclusive_group(required=True)
    graph_source.add_argument("--stack", help="plan this stack offline, then draw it")
    graph_source.add_argument("--plan", metavar="FILE", help="draw an existing plan JSON")
    graph.add_argument(
        "--readme",
        metavar="FILE",
        help="rewrite the block between <!-- graph:start --> and "
        "<!-- graph:end --> in FILE instead of printing",
    )
    graph.set_defaults(handler=_graph)


def _validate(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.command != "diff":
        return
    if args.base_ref and not args.stack:
        parser.error("diff --base-ref needs --stack (the stack to plan at both revisions)")
    if not args.base_ref and not (args.base and args.head):
        parser.error("diff needs BASE.json HEAD.json, or --stack STACK --base-ref REF")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m stacks",
        description="Offline tooling for the Pulumi program: runs it under the SDK's mock runtime, "
        "with no Pulumi CLI, no Azure credentials and no network.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    plan = commands.add_parser("plan", help="print the resource tree of a stack and write its plan JSON")
    plan.add_argument(
        "--stack",
        required=True,
        action="append",
        help="stack name; config comes from Pulumi.<stack>.yaml; repeatable",
    )
    plan.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, key spelled as `pulumi config set` does "
        "(e.g. aml-platform:namespace=ml); repeatable",
    )
    plan.add_argument(
        "--json",
        metavar="FILE",
        help="write the plan (inputs, dependencies, outputs) as JSON; "
        "with several stacks, a path containing {stack}",
    )
    plan.add_argument("--quiet", action="store_true", help="do not print the resource tree")
    plan.set_defaults(handler=_plan)
    _add_review_commands(commands)
    _add_preflight_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _validate(parser, args)
    return int(args.handler(args))
