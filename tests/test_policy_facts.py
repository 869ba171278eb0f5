"""AZURE-FACTS accounting: every fact is either enforced by rules or named as one no plan can break."""

from __future__ import annotations

from policy import rules as r
from policy.rules.facts import verdict


def test_every_fact_is_enforced_or_explained() -> None:
    assert set(r.FACTS) == set(range(1, 34))
    assert set(r.PLAN_BREAKABLE_FACTS) | set(r.NOT_PLAN_BREAKABLE) == set(r.FACTS)
    assert not set(r.PLAN_BREAKABLE_FACTS) & set(r.NOT_PLAN_BREAKABLE)
    assert all(reason.strip() for reason in r.NOT_PLAN_BREAKABLE.values())


def test_the_runtime_facts_are_the_ones_no_plan_holds() -> None:
    assert sorted(r.NOT_PLAN_BREAKABLE) == [6, 16, 17, 18, 19, 20, 21, 22, 29, 30, 33]


def test_a_verdict_counts_each_broken_fact_once_and_names_its_rules() -> None:
    found = verdict([1, 2, 3], [("a", (1,)), ("b", (1, 3)), ("a", (1,)), ("c", ())])
    assert found.obeyed == 1 and found.broken == {1: ("a", "b"), 3: ("b",)}
    assert found.summary() == "AZURE-FACTS: 1/3 obeyed; broken: 1 (a, b); 3 (b)"
    assert verdict([1, 2], []).summary() == "AZURE-FACTS: 2/2 obeyed"


def test_findings_of_rules_without_facts_break_no_fact() -> None:
    findings = r.evaluate(r.STORAGE, {"enableHttpsTrafficOnly": False}, protect=True)
    assert findings and r.facts_verdict(findings).broken == {}
