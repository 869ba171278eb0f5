"""The camelCase input schema of the real provider SDKs, to hold policy fixtures and rule reads to real names.

Read from the SDK's source text (the `@pulumi.getter(name=...)` of every Args class) rather than by importing
it: importing the big `_inputs` modules costs seconds each on a machine that writes no bytecode.
"""

from __future__ import annotations

import importlib.util
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

FREE = "free-form map"
"""A Mapping[str, ...] input (tags, extension settings, outbound rules by name): any key is valid below it."""

_CLASS = re.compile(r"^class (\w+)\b", re.MULTILINE)
_GETTER = re.compile(
    r'@pulumi\.getter(?:\(name="(?P<name>\w+)"\))?\s*\n\s*def (?P<py>\w+)\(self\) -> (?P<hint>.+):\n'
)
_ARGS_NAME = re.compile(r"\b(\w+Args)\b")


def _package_dir(type_token: str) -> tuple[Path, str]:
    package, module, kind = type_token.split(":")
    if package == "azure-native":
        root = Path(importlib.util.find_spec("pulumi_azure_native").origin).parent  # type: ignore[union-attr, arg-type]
        return root / module, kind
    if package == "azuredevops":
        return Path(importlib.util.find_spec("pulumi_azuredevops").origin).parent, kind  # type: ignore[union-attr, arg-type]
    raise ValueError(f"no SDK for {type_token}")


@lru_cache(maxsize=None)
def _classes(path: Path) -> dict[str, dict[str, tuple[str, ...]]]:
    """Class name -> {camelCase input -> nested Args class names (or FREE)} of one SDK source file."""
    text = path.read_text()
    starts = [(match.start(), match.group(1)) for match in _CLASS.finditer(text)]
    classes: dict[str, dict[str, tuple[str, ...]]] = {}
    for (start, name), (end, _) in zip(starts, [*starts[1:], (len(text), "")]):
        inputs: dict[str, tuple[str, ...]] = {}
        for getter in _GETTER.finditer(text, start, end):
            hint = getter["hint"]
            nested = (FREE,) if "Mapping[str" in hint else tuple(dict.fromkeys(_ARGS_NAME.findall(hint)))
            inputs[getter["name"] or getter["py"]] = nested
        classes[name] = inputs
    return classes


@lru_cache(maxsize=None)
def resource_inputs(type_token: str) -> Mapping[str, tuple[str, ...]]:
    """The resource's own Args class: `<Kind>Args`, or `<Kind>InitArgs` where a nested type of the package
    already has the first name (network's SubnetArgs is the inline subnet)."""
    directory, kind = _package_dir(type_token)
    for path in sorted(directory.glob("*.py")):
        if path.name.startswith("_") or path.name in ("outputs.py",):
            continue
        found = _classes(path)
        for name in (f"{kind}InitArgs", f"{kind}Args"):
            if name in found and f"class {kind}(pulumi.CustomResource)" in path.read_text():
                return found[name]
    raise LookupError(f"no Args class of {type_token} under {directory}")


def _nested_inputs(type_token: str, class_name: str) -> Mapping[str, tuple[str, ...]]:
    directory, _ = _package_dir(type_token)
    return _classes(directory / "_inputs.py").get(class_name, {})


def unknown_paths(type_token: str, paths: set[str]) -> list[str]:
    """The dotted paths (list items flattened) that are not inputs of the resource type."""
    return sorted(
        path for path in paths if not _valid(type_token, resource_inputs(type_token), path.split("."))
    )


def _valid(type_token: str, names: Mapping[str, tuple[str, ...]], keys: list[str]) -> bool:
    if keys[0] not in names:
        return False
    below = names[keys[0]]
    if len(keys) == 1 or FREE in below:
        return True
    return any(_valid(type_token, _nested_inputs(type_token, nested), keys[1:]) for nested in below)


def paths_of(value: Any, prefix: str = "") -> set[str]:
    """Every dotted key path in a planned value (list items flattened into their list's path)."""
    paths: set[str] = set()
    if isinstance(value, Mapping):
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            paths.add(path)
            paths |= paths_of(item, path)
    elif isinstance(value, (list, tuple)):
        for item in value:
            paths |= paths_of(item, prefix)
    return paths
