"""Read Pulumi.<stack>.yaml the way the Pulumi CLI does: scalars typed by Go's yaml.v3, values as strings.

The CLI (pulumi/pulumi `sdk/go/common/workspace/loaders.go`, `LoadProjectStackBytes`) decodes the stack
file with gopkg.in/yaml.v3 into untyped values, encodes it again and decodes that into `config.Map`;
each value reaches the program as the string `object.MarshalString` makes of it
(`sdk/go/common/resource/config/object.go`): text as is, booleans and numbers as JSON, lists and maps
as compact JSON, a missing value as "". yaml.v3 types plain scalars by its own resolver (`resolve.go`),
not by PyYAML's YAML 1.1 rules: `yes` and `on` stay text, `001` is the octal integer 1, `1.0` is a number
that comes out as "1", an unquoted date is a timestamp. This module ports those rules, so an offline plan
sees the values a real `pulumi up` would, and it reports each scalar whose value differs from its text,
so that the shipped files can be quoted to mean one thing.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Mapping

import yaml

PLAIN_TAG = "!plain"
MERGE_TAG = "tag:yaml.org,2002:merge"


class StackFileError(ValueError):
    """A stack file the Pulumi CLI refuses to load; the message names the line and the fix."""


@dataclass(frozen=True)
class GoTime:
    """A yaml.v3 timestamp, kept as the text Go's `time.Time.String()` gives the program."""

    text: str


@dataclass(frozen=True)
class TypingNote:
    """A plain scalar whose value differs from its text: the program receives `received`."""

    key: str
    line: int
    written: str
    received: str
    kind: str

    def __str__(self) -> str:
        return (
            f"line {self.line}: {self.key}: `{self.written}` is read by the Pulumi CLI as {self.kind} and "
            f"reaches the program as '{self.received}'; quote it (\"{self.written}\") if you meant the text"
        )


@dataclass(frozen=True)
class StackFile:
    """One stack file's config: plaintext values, secure (ciphertext) values, and typing notes."""

    path: Path
    values: Mapping[str, str]
    secure: Mapping[str, str]
    notes: tuple[TypingNote, ...] = ()
    settings: Mapping[str, Any] = field(default_factory=dict)
    """Top-level keys other than `config` (secretsprovider, encryptionsalt, environment ...)."""


# --- yaml.v3's resolver for plain scalars (resolve.go, `resolve`), ported ---

_RESOLVE_MAP: dict[str, Any] = {
    **dict.fromkeys(("true", "True", "TRUE"), True),
    **dict.fromkeys(("false", "False", "FALSE"), False),
    **dict.fromkeys(("", "~", "null", "Null", "NULL"), None),
    **dict.fromkeys((".nan", ".NaN", ".NAN"), math.nan),
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), math.inf),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), -math.inf),
}
_YAML_STYLE_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_DOT_FLOAT = re.compile(r"^\.[0-9]+([eE][-+]?[0-9]+)?$")
_INT64 = (-(2**63), 2**63 - 1)
_UINT64 = (0, 2**64 - 1)
_TIMESTAMP = re.compile(
    r"^(\d{4})-(\d{1,2})-(\d{1,2})"
    r"(?:[Tt](\d{1,2}):(\d{1,2}):(\d{1,2})(\.\d+)?(Z|[+-]\d{2}:\d{2})"
    r"| (\d{1,2}):(\d{1,2}):(\d{1,2})(\.\d+)?)?$"
)


def _go_parse_int(text: str, signed: bool) -> int | None:
    """Go's strconv.ParseInt(text, 0, 64), or ParseUint when not `signed`: the prefix picks the base."""
    sign, digits = 1, text
    if digits[:1] in ("+", "-"):
        if not signed:
            return None
        sign, digits = (-1 if digits[0] == "-" else 1), digits[1:]
    base = 10
    if len(digits) > 1 and digits[0] == "0":
        prefixed = {"x": 16, "b": 2, "o": 8}.get(digits[1].lower())
        base, digits = (prefixed, digits[2:]) if prefixed else (8, digits[1:])
    allowed = "0123456789abcdef"[:base]
    if not digits or any(char not in allowed for char in digits.lower()):
        return None
    value = sign * int(digits, base)
    low, high = _INT64 if signed else _UINT64
    return value if low <= value <= high else None


def _timestamp(text: str) -> GoTime | None:
    """yaml.v3's parseTimestamp formats, as Go's time.Time.String() prints the result."""
    match = _TIMESTAMP.match(text)
    if not match:
        return None
    clock = match.group(4, 5, 6) if match.group(4) else match.group(9, 10, 11)
    try:
        moment = dt.datetime(
            *(int(part) for part in match.group(1, 2, 3)), *(int(part) for part in clock if part)
        )
    except ValueError:
        return None
    fraction = (match.group(7) or match.group(12) or "").rstrip("0").rstrip(".")
    shown = moment.strftime("%Y-%m-%d %H:%M:%S") + fraction
    zone = match.group(8) or "Z"
    if zone in ("Z", "+00:00", "-00:00"):
        return GoTime(f"{shown} +0000 UTC")
    # Go fabricates a nameless zone for an offset the local zone does not use (the CI runner's is UTC).
    offset = zone.replace(":", "")
    return GoTime(f"{shown} {offset} {offset}")


def resolve_plain(text: str) -> Any:
    """The value yaml.v3 gives an untagged plain scalar: bool, int, float, None, GoTime or str."""
    if text in _RESOLVE_MAP:
        return _RESOLVE_MAP[text]
    hint = text[:1]
    if hint == "." and _DOT_FLOAT.match(text):
        return float(text)
    if hint.isdigit() or hint in ("+", "-"):
        stamp = _timestamp(text)
        if stamp is not None:
            return stamp
        plain = text.replace("_", "")
        for signed in (True, False):
            number = _go_parse_int(plain, signed)
            if number is not None:
                return number
        if _YAML_STYLE_FLOAT.match(plain) and not math.isinf(float(plain)):
            return float(plain)  # an overflowing float is an error for Go: the text stays a string
    return text


# --- what the program receives: object.MarshalString after the CLI's decode, encode, decode ---


def go_json_float(value: float) -> str:
    """The text a float gets from the CLI: Go's shortest digits, fixed notation unless tiny or huge.

    Whole numbers print as integers (the CLI's second decode reads `2.0`, re-encoded as `2`, as the
    integer 2); encoding/json switches to an exponent below 1e-6 and from 1e21, as `1e+21`, `1.5e-7`.
    """
    if math.isnan(value) or math.isinf(value):
        raise StackFileError(f"{value} cannot reach the program (Go's JSON has no NaN or infinity)")
    number = Decimal(repr(value))
    if value != 0 and (abs(value) < 1e-6 or abs(value) >= 1e21):
        sign, digits, exponent = number.as_tuple()
        shown = "".join(map(str, digits)).rstrip("0") or "0"
        power = int(exponent) + len(digits) - 1
        mantissa = shown[0] + (f".{shown[1:]}" if len(shown) > 1 else "")
        suffix = f"e-{-power}" if power < 0 else f"e+{power:02d}"
        return ("-" if sign else "") + mantissa + suffix
    if number == number.to_integral_value():
        return str(int(number))
    return format(number.normalize(), "f")


_JSON_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_HTML_ESCAPED = {"<", ">", "&", "\u2028", "\u2029"}


def _go_json_string(text: str) -> str:
    out = []
    for char in text:
        if char in _JSON_ESCAPES:
            out.append(_JSON_ESCAPES[char])
        elif ord(char) < 0x20 or char in _HTML_ESCAPED:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def go_json(value: Any) -> str:
    """Go's json.Marshal of a decoded config value: compact, sorted keys, HTML characters escaped."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_json_float(value)
    if isinstance(value, GoTime):
        return _go_json_string(value.text)
    if isinstance(value, str):
        return _go_json_string(value)
    if isinstance(value, list):
        return "[" + ",".join(go_json(item) for item in value) + "]"
    return "{" + ",".join(f"{_go_json_string(str(k))}:{go_json(value[k])}" for k in sorted(value)) + "}"


def config_string(value: Any) -> str:
    """The string a config value reaches the program as (`object.MarshalString`)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, GoTime):
        return value.text
    return go_json(value)


# --- loading ---


class _Loader(yaml.SafeLoader):
    """PyYAML's parser with yaml.v3's typing: plain scalars are tagged PLAIN_TAG and resolved as Go does."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == MERGE_TAG:
                continue
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise StackFileError(
                    f"line {key_node.start_mark.line + 1}: key {key!r} is already defined at line "
                    f"{seen[key]}; the Pulumi CLI refuses a file with a duplicate key: keep one"
                )
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


# YAML 1.1's implicit types are PyYAML's, not the CLI's: drop them all but the merge key.
_Loader.yaml_implicit_resolvers = {}
_Loader.add_implicit_resolver(MERGE_TAG, re.compile(r"^<<$"), ["<"])
_Loader.add_implicit_resolver(PLAIN_TAG, re.compile(r".*", re.DOTALL), None)
_Loader.add_constructor(PLAIN_TAG, lambda loader, node: resolve_plain(node.value))
_Loader.add_constructor(MERGE_TAG, lambda loader, node: node.value)


def load_yaml(text: str) -> Any:
    """Decode YAML as gopkg.in/yaml.v3 does (see resolve_plain), refusing duplicate keys like it."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.YAMLError as error:
        raise StackFileError(f"is not valid YAML: {error}") from None


_KINDS = {bool: "the boolean", int: "the integer", float: "a number", type(None): "an empty value"}


def _notes(config_node: yaml.MappingNode, project: str) -> list[TypingNote]:
    notes = []
    for key_node, value_node in config_node.value:
        key = namespaced(str(key_node.value), project)
        for path, node in _plain_scalars(value_node, key):
            value = resolve_plain(node.value)
            received = config_string(value) if path == key else go_json(value)
            if isinstance(value, str) or received == node.value:
                continue
            kind = "a timestamp" if isinstance(value, GoTime) else f"{_KINDS[type(value)]} {received}"
            if value is None:
                kind = "an empty value"
            notes.append(TypingNote(path, node.start_mark.line + 1, node.value, received, kind.rstrip()))
    return notes


def _plain_scalars(node: yaml.Node, path: str) -> list[tuple[str, yaml.ScalarNode]]:
    if isinstance(node, yaml.ScalarNode):
        return [(path, node)] if node.tag == PLAIN_TAG else []
    if isinstance(node, yaml.SequenceNode):
        return [found for i, item in enumerate(node.value) for found in _plain_scalars(item, f"{path}[{i}]")]
    if isinstance(node, yaml.MappingNode):
        return [found for key, item in node.value for found in _plain_scalars(item, f"{path}.{key.value}")]
    return []


def namespaced(key: str, project: str) -> str:
    """A stack-file key as the CLI stores it: keys without a namespace belong to the project."""
    return key if ":" in key else f"{project}:{key}"


def _is_secure(value: Any) -> bool:
    return isinstance(value, dict) and list(value) == ["secure"] and isinstance(value["secure"], str)


def read_stack_file(path: Path, project: str) -> StackFile:
    """The config of `path` as the Pulumi CLI hands it to the program (secure values kept as ciphertext)."""
    text = path.read_text(encoding="utf-8-sig")  # the CLI strips a UTF-8 byte-order mark too
    try:
        document = load_yaml(text)
        node = yaml.compose(text, Loader=_Loader)
    except StackFileError as error:
        raise StackFileError(f"{path.name} {error}") from None
    if document is None:
        return StackFile(path, {}, {})
    if not isinstance(document, dict):
        raise StackFileError(f"{path.name} must be a YAML mapping with a `config:` section")
    config = document.get("config") or {}
    if not isinstance(config, dict):
        raise StackFileError(f"{path.name}: `config:` must be a mapping of key: value")
    values: dict[str, str] = {}
    secure: dict[str, str] = {}
    for key, value in config.items():
        name = namespaced(str(key), project)
        if _is_secure(value):
            secure[name] = value["secure"]
            continue
        try:
            values[name] = config_string(value)
        except StackFileError as error:
            raise StackFileError(f"{path.name}: {name}: {error}; quote the value") from None
    config_node = next(
        (value for key, value in node.value if key.value == "config" and isinstance(value, yaml.MappingNode)),
        None,
    )
    notes = tuple(_notes(config_node, project)) if config_node is not None else ()
    settings = {key: value for key, value in document.items() if key != "config"}
    return StackFile(path, values, secure, notes, settings)
