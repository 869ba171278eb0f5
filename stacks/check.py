"""Offline policy check: apply the CrossGuard pack's rules (policy.rules) to every resource of a plan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from policy.rules import Enforcement, evaluate, evaluate_stack


@dataclass(frozen=True)
class ResourceFinding:
    """One rule one planned resource breaks."""

    resource_type: str
    name: str
    rule: str
    level: Enforcement
    message: str


def plan_environment(plan: Mapping[str, Any]) -> str:
    """The stack's environment: its `<project>:environment` config, else the stack name (dev/prod)."""
    configured = (plan.get("config") or {}).get(f"{plan.get('project', '')}:environment")
    return str(configured or plan.get("stack", "prod"))


def check_plan(plan: Mapping[str, Any]) -> list[ResourceFinding]:
    """Every violation in the plan, mandatory first; components are skipped (they hold no Azure state)."""
    environment = plan_environment(plan)
    custom = [resource for resource in plan.get("resources", []) if resource.get("custom", True)]
    findings = [
        ResourceFinding(resource["type"], resource["name"], finding.rule, finding.level, finding.message)
        for resource in custom
        for finding in evaluate(
            resource["type"],
            resource.get("inputs") or {},
            protect=bool(resource.get("protect")),
            stack_environment=environment,
        )
    ]
    stack_wide = evaluate_stack([(r["type"], r["name"], r.get("inputs") or {}) for r in custom], environment)
    findings += [
        ResourceFinding("(stack)", str(plan.get("stack")), f.rule, f.level, f.message) for f in stack_wide
    ]
    return sorted(findings, key=lambda f: (f.level != "mandatory", f.rule, f.name))


def mandatory(findings: list[ResourceFinding]) -> list[ResourceFinding]:
    return [finding for finding in findings if finding.level == "mandatory"]


def render_text(plan: Mapping[str, Any], findings: list[ResourceFinding]) -> str:
    """One line per finding, then a verdict line."""
    lines = [f"{f.level.upper():9} {f.rule}  {f.resource_type}  {f.name}: {f.message}" for f in findings]
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
    """The verdict and a findings table, collapsed when only advisory findings remain."""
    icon = ":x:" if mandatory(findings) else ":white_check_mark:"
    lines = [f"#### Policy check `{plan.get('stack')}` {icon}", "", _verdict(plan, findings)]
    if findings:
        rows = ["| level | rule | resource | finding |", "|---|---|---|---|"]
        rows += [f"| {f.level} | `{f.rule}` | `{f.name}` | {f.message.replace('|', '/')} |" for f in findings]
        if mandatory(findings):
            lines += ["", *rows]
        else:
            lines += ["", "<details><summary>advisory findings</summary>", "", *rows, "", "</details>"]
    return "\n".join(lines) + "\n"
