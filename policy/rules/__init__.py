"""The platform's rules, one module per resource family, as one rule set for CrossGuard and `stacks check`.

Imported as `policy.rules` by the offline check and as `rules` by the pack (the Pulumi CLI runs
policy/__main__.py as a script from the pack folder), so every module here imports its siblings relatively.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from . import (
    agents,
    aks,
    common,
    devops,
    identity,
    key_vault,
    monitoring,
    network,
    registry,
    storage,
    workspace,
)
from .core import (
    Enforcement,
    Environment,
    Finding,
    Report,
    Rule,
    StackRule,
    Subject,
    Violation,
    environment_of,
    stack_environment,
    stack_of_urn,
)
from .core import evaluate as _evaluate
from .core import evaluate_stack as _evaluate_stack
from .facts import FACTS, NOT_PLAN_BREAKABLE, FactsVerdict, verdict
from .graph import PlannedResource, Stack
from .types import *  # noqa: F403 - the type tokens, as rules.STORAGE etc.
from .values import SECRET_MASK, get

FAMILIES = (
    storage,
    key_vault,
    registry,
    monitoring,
    workspace,
    network,
    aks,
    agents,
    identity,
    devops,
    common,
)

RULES: tuple[Rule, ...] = tuple(each for family in FAMILIES for each in family.RULES)
STACK_RULES: tuple[StackRule, ...] = tuple(each for family in FAMILIES for each in family.STACK_RULES)
RULES_BY_NAME: dict[str, Rule] = {each.name: each for each in RULES}
STACK_RULES_BY_NAME: dict[str, StackRule] = {each.name: each for each in STACK_RULES}
ALL_RULES: dict[str, Rule | StackRule] = {**RULES_BY_NAME, **STACK_RULES_BY_NAME}

PLAN_BREAKABLE_FACTS: tuple[int, ...] = tuple(
    sorted({fact for each in ALL_RULES.values() for fact in each.facts})
)
"""The AZURE-FACTS numbers some rule enforces: the facts a plan can break."""


def evaluate(
    resource_type: str, props: Mapping[str, Any], *, protect: bool = False, stack_environment: str = "prod"
) -> list[Finding]:
    """Every resource rule a resource breaks; its environment is its `environment` tag, else the stack's."""
    return _evaluate(RULES, resource_type, props, protect=protect, stack_environment=stack_environment)


def evaluate_stack(resources: Sequence[PlannedResource], stack_environment: str = "prod") -> list[Finding]:
    """Every stack rule the planned resources break, at the stack environment's level."""
    return _evaluate_stack(STACK_RULES, resources, stack_environment)


def facts_verdict(findings: Sequence[Finding]) -> FactsVerdict:
    """Which plan-breakable facts the findings break (any finding of a rule enforcing a fact breaks it)."""
    return verdict(PLAN_BREAKABLE_FACTS, [(finding.rule, finding.facts) for finding in findings])


__all__ = [
    "ALL_RULES",
    "FACTS",
    "NOT_PLAN_BREAKABLE",
    "PLAN_BREAKABLE_FACTS",
    "RULES",
    "RULES_BY_NAME",
    "SECRET_MASK",
    "STACK_RULES",
    "STACK_RULES_BY_NAME",
    "Enforcement",
    "Environment",
    "FactsVerdict",
    "Finding",
    "PlannedResource",
    "Report",
    "Rule",
    "Stack",
    "StackRule",
    "Subject",
    "Violation",
    "environment_of",
    "evaluate",
    "evaluate_stack",
    "facts_verdict",
    "get",
    "stack_environment",
    "stack_of_urn",
]
