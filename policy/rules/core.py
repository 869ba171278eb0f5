"""The rule engine: resource and stack rules, their levels per environment, findings, CrossGuard adapters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Literal, Mapping, NamedTuple, Protocol, Sequence

from .graph import PlannedResource, Stack
from .values import get, plain

Enforcement = Literal["mandatory", "advisory"]
Environment = Literal["dev", "prod"]
M: Enforcement = "mandatory"
A: Enforcement = "advisory"


@dataclass(frozen=True)
class Subject:
    """What a resource rule looks at: one resource's type, inputs (camelCase), protect flag and environment."""

    resource_type: str
    props: Mapping[str, Any]
    protect: bool = False
    environment: Environment = "prod"


Check = Callable[[Subject], "str | None"]


class Violation(NamedTuple):
    """One problem a stack rule finds, and the resource it is about (None for the stack as a whole)."""

    resource: PlannedResource | None
    problem: str


StackCheck = Callable[[Stack], Iterable[Violation]]


class Report(Protocol):
    """CrossGuard's ReportViolation callback."""

    def __call__(self, message: str, urn: str | None = None) -> None: ...


@dataclass(frozen=True)
class _Level:
    """How strictly a rule applies: dev may relax network isolation only."""

    enforcement: Enforcement
    network_isolation: bool

    def at(self, environment: Environment) -> Enforcement:
        return "advisory" if self.network_isolation and environment == "dev" else self.enforcement

    def levels(self) -> tuple[Enforcement, ...]:
        relaxed = self.network_isolation and self.enforcement != "advisory"
        return (self.enforcement, "advisory") if relaxed else (self.enforcement,)

    def policy_name(self, name: str, level: Enforcement) -> str:
        return name if level == self.enforcement else f"{name}-{level}"


def _describe(summary: str, facts: tuple[int, ...], source: str) -> str:
    facts_text = f" Enforces AZURE-FACTS {', '.join(map(str, facts))}." if facts else ""
    return f"{summary}{facts_text}" + (f" Source: {source}." if source else "")


class _RuleLevels:
    """What a resource rule and a stack rule share: description, and enforcement per environment."""

    name: str
    summary: str
    enforcement: Enforcement
    network_isolation: bool
    facts: tuple[int, ...]
    source: str

    @property
    def description(self) -> str:
        return _describe(self.summary, self.facts, self.source)

    @property
    def _level(self) -> _Level:
        return _Level(self.enforcement, self.network_isolation)

    def level(self, environment: Environment) -> Enforcement:
        """Enforcement in `environment`: network isolation rules are only advisory in dev."""
        return self._level.at(environment)

    def levels(self) -> tuple[Enforcement, ...]:
        """The distinct enforcement levels this rule takes across environments (prod's first)."""
        return self._level.levels()

    def policy_name(self, level: Enforcement) -> str:
        """CrossGuard policy name of this rule at `level`: the rule name, suffixed when relaxed for dev."""
        return self._level.policy_name(self.name, level)


@dataclass(frozen=True)
class Rule(_RuleLevels):
    """One requirement on one resource: where it applies, how strictly, what is wrong and how to fix it."""

    name: str
    summary: str
    resource_types: tuple[str, ...]
    enforcement: Enforcement
    remediation: str
    check: Check
    network_isolation: bool = False
    """Dev may relax network isolation: such a rule is advisory there, whatever its enforcement in prod."""
    facts: tuple[int, ...] = ()
    """The AZURE-FACTS numbers this rule enforces (a plan breaking the rule breaks those facts)."""
    source: str = ""
    """Where Azure says so: article file and section, or repository and path."""

    def applies_to(self, resource_type: str) -> bool:
        return resource_type in self.resource_types

    def violation(self, subject: Subject) -> str | None:
        """The violation message for `subject` (problem and remediation), or None when it complies."""
        if not self.applies_to(subject.resource_type):
            return None
        problem = self.check(subject)
        return None if problem is None else f"{problem}. Fix: {self.remediation}"

    def validator(self, level: Enforcement) -> Callable[[Any, Report], None]:
        """A CrossGuard validate(args, report) for the resources whose environment puts the rule at `level`.

        One CrossGuard policy has one enforcement level, so a rule relaxed in dev becomes two policies:
        the mandatory one sees prod resources, the advisory one dev resources.
        """

        def validate(args: Any, report: Report) -> None:
            props = plain(args.props)
            subject = Subject(
                args.resource_type,
                props,
                bool(getattr(args.opts, "protect", False)),
                environment_of(props, stack_of_urn(str(getattr(args, "urn", "")))),
            )
            message = self.violation(subject) if self.level(subject.environment) == level else None
            if message is not None:
                report(message)

        return validate


@dataclass(frozen=True)
class StackRule(_RuleLevels):
    """A requirement that spans resources (CrossGuard StackValidationPolicy): checked on the whole stack."""

    name: str
    summary: str
    enforcement: Enforcement
    remediation: str
    check: StackCheck
    network_isolation: bool = False
    facts: tuple[int, ...] = ()
    source: str = ""

    def violations(self, stack: Stack) -> list[Violation]:
        """Every problem in the stack, each message ending with the remediation."""
        return [
            Violation(found.resource, f"{found.problem}. Fix: {self.remediation}")
            for found in self.check(stack)
        ]

    def validator(self, level: Enforcement) -> Callable[[Any, Report], None]:
        """A CrossGuard stack validate(args, report) for stacks whose environment puts the rule at `level`."""

        def validate(args: Any, report: Report) -> None:
            resources = [_from_crossguard(resource) for resource in args.resources]
            environment = stack_environment(resources)
            if self.level(environment) == level:
                for found in self.violations(Stack(resources)):
                    report(found.problem, found.resource.urn if found.resource else None)

        return validate


def _from_crossguard(resource: Any) -> PlannedResource:
    """A CrossGuard PolicyResource as the rules read resources."""
    return PlannedResource(
        resource.resource_type,
        resource.name,
        plain(resource.props),
        str(resource.urn),
        {
            prop: tuple(dep.urn for dep in deps)
            for prop, deps in (resource.property_dependencies or {}).items()
        },
        tuple(dep.urn for dep in resource.dependencies or ()),
    )


def stack_of_urn(urn: str) -> str:
    """The stack name inside a URN (urn:pulumi:<stack>::<project>::...), or "" for anything else."""
    parts = urn.split(":", 3)
    return parts[2] if len(parts) > 3 and parts[0] == "urn" else ""


def environment_of(props: Mapping[str, Any], fallback: str) -> Environment:
    """The resource's `environment` tag, else `fallback`; anything but dev is held to the prod baseline."""
    tags = props.get("tags") if "tags" in props else None
    tagged = tags.get("environment") if isinstance(tags, Mapping) else None
    return "dev" if (tagged or fallback) == "dev" else "prod"


def stack_environment(resources: Sequence[PlannedResource]) -> Environment:
    """A stack's environment as its resources' rules see it: their one `environment` tag, else the stack
    name from the URNs (so a stack named `dev-alice` with environment=dev is judged as dev), else prod."""
    tags = {get(r.props, "tags.environment") for r in resources if "tags" in r.props} - {None}
    stacks = {stack_of_urn(str(r.urn)) for r in resources} - {""}
    fallback = stacks.pop() if len(stacks) == 1 else "prod"
    return environment_of({"tags": {"environment": tags.pop()}} if len(tags) == 1 else {}, fallback)


def require(path: str, expected: Any, what: str) -> Check:
    def check(subject: Subject) -> str | None:
        actual = get(subject.props, path)
        return None if actual == expected else f"{what}: `{path}` is {actual!r}, must be {expected!r}"

    return check


def forbid(path: str, forbidden: Any, what: str) -> Check:
    def check(subject: Subject) -> str | None:
        actual = get(subject.props, path)
        return f"{what}: `{path}` is {actual!r}" if actual == forbidden else None

    return check


def present(path: str, what: str) -> Check:
    def check(subject: Subject) -> str | None:
        return None if get(subject.props, path) not in (None, "", [], {}) else f"{what}: `{path}` is not set"

    return check


def rule(
    name: str,
    types: str | tuple[str, ...],
    enforcement: Enforcement,
    summary: str,
    remediation: str,
    check: Check,
    *,
    network_isolation: bool = False,
    facts: tuple[int, ...] = (),
    source: str = "",
) -> Rule:
    """A resource rule (types may be one token or several)."""
    resource_types = (types,) if isinstance(types, str) else types
    return Rule(
        name, summary, resource_types, enforcement, remediation, check, network_isolation, facts, source
    )


@dataclass(frozen=True)
class Finding:
    """A rule a plan breaks, with the enforcement that applies in its environment."""

    rule: str
    level: Enforcement
    message: str
    facts: tuple[int, ...] = ()
    resource: str = ""
    """The logical name of the resource at fault ("" for a finding about the stack as a whole)."""
    resource_type: str = ""


def evaluate(
    rules: Sequence[Rule],
    resource_type: str,
    props: Mapping[str, Any],
    *,
    protect: bool = False,
    stack_environment: str = "prod",
) -> list[Finding]:
    """Every rule a resource breaks; its environment is its `environment` tag, else `stack_environment`."""
    env = environment_of(props, stack_environment)
    subject = Subject(resource_type, props, protect, env)
    findings = []
    for each in rules:
        message = each.violation(subject)
        if message is not None:
            findings.append(Finding(each.name, each.level(env), message, each.facts))
    return findings


def evaluate_stack(
    rules: Sequence[StackRule], resources: Sequence[PlannedResource], stack_environment: str = "prod"
) -> list[Finding]:
    """Every stack rule the resources break, at the stack environment's level, naming the resource at fault."""
    env = environment_of({}, stack_environment)
    stack = Stack(resources)
    return [
        Finding(
            each.name,
            each.level(env),
            found.problem,
            each.facts,
            found.resource.name if found.resource else "",
            found.resource.type if found.resource else "",
        )
        for each in rules
        for found in each.violations(stack)
    ]
