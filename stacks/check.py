"""Offline policy check: apply the CrossGuard pack's rules (policy.rules) to every resource of a plan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from policy.rules import (
    PLAN_BREAKABLE_FACTS,
    Enforcement,
    FactsVerdict,
    Finding,
    PlannedResource,
    evaluate,
    evaluate_stack,
)
from policy.rules.facts import verdict


@dataclass(frozen=True)
class ResourceFinding:
    """One rule one planned resource (or the stack as a whole) breaks."""

    resource_type: str
    name: str
    rule: str
    level: Enforcement
    message: str
    facts: tuple[int, ...] = ()


def plan_environment(plan: Mapping[str, Any]) -> str:
    """The stack's environment: its `<project>:environment` config, else the stack name (dev/prod)."""
    configured = (plan.get("config") or {}).get(f"{plan.get('project', '')}:environment")
    return str(configured or plan.get("stack", "prod"))


def planned_resources(plan: Mapping[str, Any]) -> list[PlannedResource]:
    """The plan's custom resources as the stack rules read them (components hold no Azure state)."""
    resources = []
    for resource in plan.get("resources", []):
        if not resource.get("custom", True):
            continue
        # Plans written before property dependencies were recorded fall back to all dependencies.
        recorded = resource.get("propertyDependencies")
        resources.append(
            PlannedResource(
                resource["type"],
                resource["name"],
                resource.get("inputs") or {},
                resource.get("urn", ""),
                None if recorded is None else {prop: tuple(urns) for prop, urns in recorded.items()},
                tuple(resource.get("dependencies") or ()),
            )
        )
    return resources


def check_plan(plan: Mapping[str, Any]) -> list[ResourceFinding]:
    """Every violation in the plan, mandatory first."""
    environment = plan_environment(plan)
    protected = {r.get("urn"): bool(r.get("protect")) for r in plan.get("resources", [])}
    resources = planned_resources(plan)
    findings = [
        _resource_finding(resource.type, resource.name, finding)
        for resource in resources
        for finding in evaluate(
            resource.type,
            resource.props,
            protect=protected.get(resource.urn, False),
            stack_environment=environment,
        )
    ]
    findings += [
        _resource_finding(f.resource_type or "(stack)", f.resource or str(plan.get("stack")), f)
        for f in evaluate_stack(resources, environment)
    ]
    return sorted(findings, key=lambda f: (f.level != "mandatory", f.rule, f.name))


def _resource_finding(resource_type: str, name: str, finding: Finding) -> ResourceFinding:
    return ResourceFinding(resource_type, name, finding.rule, finding.level, finding.message, finding.facts)


def mandatory(findings: list[ResourceFinding]) -> list[ResourceFinding]:
    return [finding for finding in findings if finding.level == "mandatory"]


def plan_facts(findings: list[ResourceFinding]) -> FactsVerdict:
    """How many of the facts a plan can break this plan obeys, and which rules show the broken ones."""
    return verdict(PLAN_BREAKABLE_FACTS, [(finding.rule, finding.facts) for finding in findings])


def render_text(plan: Mapping[str, Any], findings: list[ResourceFinding]) -> str:
    """One line per finding, the AZURE-FACTS line, then a verdict line."""
    lines = [f"{f.level.upper():9} {f.rule}  {f.resource_type}  {f.name}: {f.message}" for f in findings]
    lines.append(plan_facts(findings).summary())
    lines.append(_verdict(plan, findings))
    return "\n".join(lines)


def _verdict(plan: Mapping[str, Any], findings: list[ResourceFinding]) -> str:
    blocking = len(mandatory(findings))
    status = "FAILED" if blocking else "passed"
    return (
        f"policy check {status} for stack {plan.get('stack')} ({plan_environment(plan)}): "
        f"{blocking} mandatory violation(s), {len(findings) - blocking} advisory finding(s), "
        f"{sum(bool(r.get('custom', True)) for r in plan.get('resources', []))} resources checked"
    )


def render_markdown(plan: Mapping[str, Any], findings: list[ResourceFinding]) -> str:
    """The verdict, the AZURE-FACTS line and a findings table, collapsed when only advisory findings remain."""
    icon = ":x:" if mandatory(findings) else ":white_check_mark:"
    lines = [
        f"#### Policy check `{plan.get('stack')}` {icon}",
        "",
        _verdict(plan, findings),
        "",
        plan_facts(findings).summary(),
    ]
    if findings:
        rows = ["| level | rule | resource | finding |", "|---|---|---|---|"]
        rows += [f"| {f.level} | `{f.rule}` | `{f.name}` | {f.message.replace('|', '/')} |" for f in findings]
        if mandatory(findings):
            lines += ["", *rows]
        else:
            lines += ["", "<details><summary>advisory findings</summary>", "", *rows, "", "</details>"]
    return "\n".join(lines) + "\n"


def facts_reference_markdown() -> str:
    """The README's table of AZURE-FACTS: the rules that hold a plan to each, or why no plan can break it."""
    from policy.rules import ALL_RULES, FACTS, NOT_PLAN_BREAKABLE

    rows = ["| fact | what Azure enforces | rules |", "|---|---|---|"]
    for number, title in FACTS.items():
        enforcing = [f"`{name}`" for name, rule in ALL_RULES.items() if number in rule.facts]
        rules = ", ".join(enforcing) if enforcing else f"none: {NOT_PLAN_BREAKABLE[number]}"
        rows.append(f"| {number} | {title} | {rules} |")
    return "\n".join(rows)
