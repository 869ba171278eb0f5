"""The CrossGuard pack: `pulumi preview --policy-pack policy` applies every rule of policy.rules."""

import sys
from pathlib import Path

from pulumi_policy import EnforcementLevel, PolicyPack, ResourceValidationPolicy, StackValidationPolicy

# The Pulumi CLI runs this file as a script from the pack folder: make `rules` importable as a sibling.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from rules import RULES, STACK_RULES  # noqa: E402

LEVELS = {"mandatory": EnforcementLevel.MANDATORY, "advisory": EnforcementLevel.ADVISORY}

PolicyPack(
    name="aml-platform-baseline",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[
        ResourceValidationPolicy(
            name=rule.policy_name(level),
            description=f"{rule.description} Remediation: {rule.remediation}",
            validate=rule.validator(level),
            enforcement_level=LEVELS[level],
            remediation_steps=rule.remediation,
        )
        for rule in RULES
        for level in rule.levels()
    ]
    + [
        StackValidationPolicy(
            name=rule.policy_name(level),
            description=f"{rule.description} Remediation: {rule.remediation}",
            validate=rule.validator(level),
            enforcement_level=LEVELS[level],
            remediation_steps=rule.remediation,
        )
        for rule in STACK_RULES
        for level in rule.levels()
    ],
)
