"""Reading planned property values: dotted paths, masked secrets, values unknown until the update runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

SECRET_MASK = "[secret]"
"""What the offline plan shows for a secret (stacks.model.SECRET_MASK keeps an equal copy, tested)."""
UNKNOWN = "[unknown]"
"""What a value computed during the update (an id, a principal) reads as, offline and in CrossGuard."""


def get(props: Any, path: str) -> Any:
    """The value at a dotted path of camelCase keys, or None where any step is missing."""
    value = props
    for key in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def known(value: Any) -> bool:
    """Whether the plan holds the value itself (not absent, masked or computed later)."""
    return value not in (None, UNKNOWN, SECRET_MASK)


def truthy(value: Any) -> bool:
    """A boolean setting as Azure reads it: extension settings are strings ("True", "true")."""
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def as_list(value: Any) -> list[Any]:
    """A planned list, or [] for anything else (absent, masked, unknown)."""
    return list(value) if isinstance(value, (list, tuple)) else []


def as_map(value: Any) -> Mapping[str, Any]:
    """A planned object, or {} for anything else (absent, masked, unknown)."""
    return value if isinstance(value, Mapping) else {}


def plain(value: Any) -> Any:
    """CrossGuard's props as plain data: its proxies raise on values unknown during preview; these read UNKNOWN.

    Rules then treat an unknown value like one they cannot see, instead of the whole policy being skipped.
    """
    target = _proxy_target(value)
    if isinstance(target, Mapping):
        return {key: plain(item) for key, item in target.items()}
    if isinstance(target, Sequence) and not isinstance(target, (str, bytes)):
        return [plain(item) for item in target]
    return UNKNOWN if isinstance(target, str) and target in _unknown_sentinels() else target


def _proxy_target(value: Any) -> Any:
    # pulumi_policy's proxies hand out their wrapped object under the key "__target".
    if isinstance(value, (dict, list, tuple, str, bytes)) or not isinstance(value, (Mapping, Sequence)):
        return value
    try:
        return value["__target"]  # type: ignore[index]
    except (KeyError, TypeError, IndexError):
        return value


def _unknown_sentinels() -> frozenset[str]:
    try:
        from pulumi_policy import proxy
    except ImportError:  # the offline check runs without the policy SDK
        return frozenset()
    return frozenset(value for name, value in vars(proxy).items() if name.startswith("UNKNOWN_"))
