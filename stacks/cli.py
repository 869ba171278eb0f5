"""Command line of the offline stack tooling: plan (and the review commands built on it)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

EXIT_OK = 0
EXIT_CONFIG = 2


def _plan(args: argparse.Namespace) -> int:
    import pulumi

    from stacks.config import ConfigError
    from stacks.plan import PlanInputError, render_tree, run_plan, stack_input, write_plan

    try:
        plan = run_plan(stack_input(args.stack, args.config))
    except (PlanInputError, ConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_CONFIG
    except pulumi.RunError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_CONFIG
    if not args.quiet:
        print(render_tree(plan))
    if args.json:
        write_plan(plan, Path(args.json))
        print(f"plan written to {args.json}", file=sys.stderr)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m stacks",
        description="Offline tooling for the Pulumi program: runs it under the SDK's mock runtime, "
        "with no Pulumi CLI, no Azure credentials and no network.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    plan = commands.add_parser("plan", help="print the resource tree of a stack and write its plan JSON")
    plan.add_argument("--stack", required=True, help="stack name; config comes from Pulumi.<stack>.yaml")
    plan.add_argument("--config", action="append", default=[], metavar="KEY=VALUE",
                      help="override a config value, key spelled as `pulumi config set` does "
                      "(e.g. aml-platform:namespace=ml); repeatable")
    plan.add_argument("--json", metavar="FILE", help="write the plan (inputs, dependencies, outputs) as JSON")
    plan.add_argument("--quiet", action="store_true", help="do not print the resource tree")
    plan.set_defaults(handler=_plan)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args))
