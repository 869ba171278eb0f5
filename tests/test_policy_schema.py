"""Rules read, and fixtures hold, only input names the real provider SDKs define (camelCase, nested right).

A rule that reads `enableNodePublicIp` where ARM says `enableNodePublicIP` never fires; these tests catch that by
recording every key each rule asks for while the family cases run, and resolving it in the SDK's Args types.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, Iterator

import pytest

from policy import rules as r
from policy.rules.graph import PlannedResource
from tests._azure_schema import paths_of, unknown_paths
from tests._policy_cases import EXTRA, MATRIX, build, compliant, stack_findings
from tests.test_policy_engine import FAMILY_TESTS


class Recording(Mapping):
    """A planned value that records the dotted path of every key read from it, present or not."""

    def __init__(self, data: Mapping[str, Any], path: str, reads: set[str]) -> None:
        self._data, self._path, self._reads = data, path, reads

    def _at(self, key: str) -> str:
        return f"{self._path}.{key}" if self._path else key

    def __getitem__(self, key: str) -> Any:
        self._reads.add(self._at(key))
        return _record(self._data[key], self._at(key), self._reads)

    def get(self, key: str, default: Any = None) -> Any:
        self._reads.add(self._at(key))
        return _record(self._data[key], self._at(key), self._reads) if key in self._data else default

    def __contains__(self, key: object) -> bool:
        return key in self._data  # asking whether a key is there is not reading it

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


class RecordingList(list):
    """A planned list whose items record reads under the list's own path."""


def _record(value: Any, path: str, reads: set[str]) -> Any:
    if isinstance(value, Mapping):
        return Recording(value, path, reads)
    if isinstance(value, list):
        return RecordingList(_record(item, path, reads) for item in value)
    return value


def _family_cases() -> Iterator[tuple[str, Any]]:
    for family in FAMILY_TESTS:
        module = importlib.import_module(f"tests.test_policy_{family}")
        for case in module.RESOURCE_CASES:
            yield "resource", case
        for case in module.STACK_CASES:
            yield "stack", case


def _reads_of_resource_cases(reads: dict[str, set[str]]) -> None:
    for kind, case in _family_cases():
        if kind != "resource":
            continue
        _, resource_type, breaks = case
        props = compliant()[resource_type]
        breaks(props)
        sink = reads.setdefault(resource_type, set())
        r.evaluate(resource_type, Recording(props, "", sink), protect=True)


def _recorded(resources: list[PlannedResource], reads: dict[str, set[str]]) -> list[PlannedResource]:
    return [
        PlannedResource(
            res.type,
            res.name,
            Recording(res.props, "", reads.setdefault(res.type, set())),
            res.urn,
            res.property_dependencies,
            res.dependencies,
        )
        for res in resources
    ]


def _reads_of_stack_cases(reads: dict[str, set[str]]) -> None:
    for design, env in MATRIX:
        stack_findings(_recorded(build(design, env), reads), env)
    for kind, case in _family_cases():
        if kind == "stack":
            change = case[-1]
            design = case[1] if len(case) == 3 else "customerVnet"
            for env in ("dev", "prod"):
                try:
                    resources = change(build(design, env))
                except (AssertionError, KeyError, StopIteration):
                    continue  # an edit that only fits the other environment's stack
                stack_findings(_recorded(resources, reads), env)


def test_every_input_a_rule_reads_is_an_input_of_the_real_resource_type() -> None:
    reads: dict[str, set[str]] = {}
    _reads_of_resource_cases(reads)
    _reads_of_stack_cases(reads)
    assert sum(len(paths) for paths in reads.values()) > 100  # the recording saw the rules at work
    unknown = {kind: unknown_paths(kind, paths) for kind, paths in reads.items()}
    assert {kind: paths for kind, paths in unknown.items() if paths} == {}


def test_the_recording_catches_a_misspelt_input() -> None:
    # ARM spells it enableNodePublicIP on AKS pools (and enableNodePublicIp on AmlCompute): the old typo.
    assert unknown_paths(r.AKS, {"agentPoolProfiles.enableNodePublicIp"}) == [
        "agentPoolProfiles.enableNodePublicIp"
    ]
    assert unknown_paths(r.ML_COMPUTE, {"properties.properties.enableNodePublicIp"}) == []


@pytest.mark.parametrize(("design", "env"), MATRIX)
def test_fixture_stacks_use_only_real_inputs(design, env: str) -> None:
    bad = {res.type: unknown_paths(res.type, paths_of(res.props)) for res in build(design, env)}
    assert {kind: paths for kind, paths in bad.items() if paths} == {}


def test_extra_fixtures_use_only_real_inputs() -> None:
    bad = {kind: unknown_paths(kind, paths_of(props)) for kind, props in EXTRA.items()}
    assert {kind: paths for kind, paths in bad.items() if paths} == {}


def test_every_type_token_names_a_real_resource_class() -> None:
    from tests._azure_schema import resource_inputs

    tokens = [value for name, value in vars(r.types).items() if name.isupper()]
    assert len(tokens) > 30 and all(resource_inputs(token) for token in tokens)
