"""Stack files read as the Pulumi CLI reads them: yaml.v3's typing, the CLI's strings, the shipped files."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from stacks.plan import ROOT, PlanInputError, project_defaults, stack_input
from stacks.schema import KEYS_BY_NAME, declared_in_project
from stacks.stackfile import StackFileError, config_string, read_stack_file, resolve_plain

P = "aml-platform"

# What the program receives for an unquoted scalar, following gopkg.in/yaml.v3's resolve.go and the
# CLI's double decode (pulumi/pulumi sdk/go/common/workspace/loaders.go) and object.MarshalString.
# Each expectation is worked out by hand from those sources, not from this module.
PLAIN_SCALARS = [
    ("001", "1"),  # a leading 0 is Go's octal prefix (strconv.ParseInt base 0): postfix 001 becomes "1"
    ("010", "8"),  # octal 10
    ("08", "8"),  # not octal; yaml.v3's float pattern then reads it as 8.0, printed as 8
    ("0x1F", "31"),
    ("0o17", "15"),
    ("0b101", "5"),
    ("1_000", "1000"),  # underscores are dropped before parsing
    ("+5", "5"),
    ("-0", "0"),
    ("1.0", "1"),  # a whole float is re-encoded as `1` and decoded again as the integer 1
    ("1.50", "1.5"),
    ("1e3", "1000"),
    ("1e21", "1e+21"),  # encoding/json switches to an exponent from 1e21
    ("1e-7", "1e-7"),
    (".5", "0.5"),
    ("yes", "yes"),  # YAML 1.1 booleans are text to yaml.v3 (PyYAML would say True)
    ("no", "no"),
    ("on", "on"),
    ("off", "off"),
    ("y", "y"),
    ("true", "true"),
    ("True", "true"),
    ("FALSE", "false"),
    ("tRUE", "tRUE"),
    ("~", ""),  # null: the CLI passes an empty string (and warns)
    ("null", ""),
    ("1:30", "1:30"),  # no sexagesimal numbers in yaml.v3 (PyYAML: 90)
    ("2026-01-01", "2026-01-01 00:00:00 +0000 UTC"),  # a timestamp, printed by Go's time.Time.String
    ("2026-01-01T10:00:00Z", "2026-01-01 10:00:00 +0000 UTC"),
    ("2026-13-01", "2026-13-01"),  # no such date: text
    ("1e400", "1e400"),  # Go's ParseFloat overflows: text
    ("18446744073709551615", "18446744073709551615"),  # uint64
    ("westeurope", "westeurope"),
    ("10.10.1.0/24", "10.10.1.0/24"),
]


@pytest.mark.parametrize(("written", "received"), PLAIN_SCALARS)
def test_plain_scalars_reach_the_program_as_the_cli_passes_them(
    tmp_path: Path, written: str, received: str
) -> None:
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(f"config:\n  {P}:key: {written}\n")
    assert read_stack_file(path, P).values[f"{P}:key"] == received
    assert config_string(resolve_plain(written)) == received


@pytest.mark.parametrize("written", ['"001"', "'yes'", '"1.0"', '"2026-01-01"', "!!str 001"])
def test_quoted_scalars_are_text(tmp_path: Path, written: str) -> None:
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(f"config:\n  {P}:key: {written}\n")
    stack = read_stack_file(path, P)
    assert stack.values[f"{P}:key"] == written.split(" ")[-1].strip("\"'")
    assert stack.notes == ()


def test_lists_and_maps_reach_the_program_as_compact_json(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(
        f"config:\n  {P}:list:\n    - 001\n    - yes\n    - 1.5\n    - ~\n  {P}:map: {{b: 1.0, a: '<x>'}}\n  empty:\n"
    )
    values = read_stack_file(path, P).values
    assert values[f"{P}:list"] == '[1,"yes",1.5,null]'
    assert values[f"{P}:map"] == '{"a":"\\u003cx\\u003e","b":1}'  # Go's json.Marshal escapes HTML characters
    assert values[f"{P}:empty"] == ""  # a key without a namespace belongs to the project


def test_values_that_mean_something_else_are_noted_with_their_line(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(f"config:\n  {P}:postfix: 001\n  {P}:owner: team\n  {P}:computeMaxNodes: 2.0\n")
    notes = read_stack_file(path, P).notes
    assert [(note.key, note.line, note.received) for note in notes] == [
        (f"{P}:postfix", 2, "1"),
        (f"{P}:computeMaxNodes", 4, "2"),
    ]
    assert 'quote it ("001")' in str(notes[0])


def test_secure_values_are_kept_as_ciphertext(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(f"config:\n  {P}:devopsPat:\n    secure: v1:abc\n")
    stack = read_stack_file(path, P)
    assert stack.secure == {f"{P}:devopsPat": "v1:abc"} and stack.values == {}


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (f"config:\n  {P}:a: 1\n  {P}:a: 2\n", "already defined at line 2"),
        (f"config:\n  {P}:a: .nan\n", "quote the value"),
        ("config: [a, b]\n", "must be a mapping"),
        ("config:\n  a: [1\n", "not valid YAML"),
    ],
)
def test_files_the_cli_refuses_are_refused(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(text)
    with pytest.raises(StackFileError, match=words):
        read_stack_file(path, P)


def test_offline_plans_apply_the_project_defaults_like_the_cli() -> None:
    defaults = project_defaults()
    assert defaults[f"{P}:postfix"] == "001" and defaults[f"{P}:enableAks"] == "true"
    assert f"{P}:computeMaxNodes" not in defaults  # profile-defaulted keys are not declared
    assert stack_input("dev").values[f"{P}:agentCount"] == "2"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_shipped_stack_files_mean_one_thing(stack: str) -> None:
    path = ROOT / f"Pulumi.{stack}.yaml"
    assert read_stack_file(path, P).notes == ()
    node = yaml.compose(path.read_text())
    config = next(value for key, value in node.value if key.value == "config")
    for key_node, value_node in config.value:
        name = key_node.value.split(":", 1)[1]
        if not isinstance(value_node, yaml.ScalarNode):
            continue
        declared = KEYS_BY_NAME[name].type if key_node.value.startswith(f"{P}:") else "string"
        # Text is quoted; booleans and numbers are plain, so each value has exactly one reading.
        assert (value_node.style in ('"', "'")) == (declared == "string"), key_node.value


def test_a_stack_file_the_cli_refuses_stops_the_plan(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
    (tmp_path / "Pulumi.dev.yaml").write_text(f"config:\n  {P}:namespace: a\n  {P}:namespace: b\n")
    with pytest.raises(PlanInputError, match="duplicate key"):
        stack_input("dev", root=tmp_path)


def test_shipped_placeholder_ciphertext_is_noted() -> None:
    notes = stack_input("prod").notes
    assert any("devopsPat holds the shipped placeholder ciphertext" in note for note in notes)
    overridden = [f"{P}:{key}=x" for key in ("devopsPat", "inferenceSslCertPem", "inferenceSslKeyPem")]
    assert not stack_input("prod", overridden).notes


def test_only_constant_defaults_are_declared_in_the_project_file() -> None:
    assert declared_in_project(KEYS_BY_NAME["namespace"])
    assert not declared_in_project(KEYS_BY_NAME["computeMaxNodes"])
    assert not declared_in_project(KEYS_BY_NAME["prodApprovers"])
    assert declared_in_project(KEYS_BY_NAME["agentCount"])
