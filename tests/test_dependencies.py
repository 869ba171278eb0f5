"""The dependency lists agree: pyproject pins, uv.lock, requirements.txt (plain pip) and the policy pack."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)(\s*;.*)?$")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_pins(text: str) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = PIN.match(line)
        assert match, f"requirements line is not an exact pin: {line!r}"
        pins[_norm(match.group(1))] = match.group(2)
    return pins


def _lock_pins() -> dict[str, str]:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    return {
        _norm(package["name"]): package["version"]
        for package in lock["package"]
        if not package.get("source", {}).get("virtual")
    }


def _pyproject() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _declared() -> list[str]:
    project = _pyproject()
    groups = project.get("dependency-groups", {})
    return list(project["project"]["dependencies"]) + [d for group in groups.values() for d in group]


def test_requirements_txt_pins_exactly_what_uv_lock_pins() -> None:
    lock = _lock_pins()
    pip = _requirement_pins((ROOT / "requirements.txt").read_text())
    missing = sorted(set(lock) - set(pip))
    extra = sorted(set(pip) - set(lock))
    differ = sorted(name for name in set(lock) & set(pip) if lock[name] != pip[name])
    assert not (missing or extra or differ), (
        f"requirements.txt and uv.lock disagree (run `make lock`): missing {missing}, extra {extra}, "
        f"other versions {differ}"
    )


def test_every_declared_dependency_is_an_exact_pin_and_locked() -> None:
    lock = _lock_pins()
    for requirement in _declared():
        match = PIN.match(requirement)
        assert match, f"pyproject.toml dependency {requirement!r} must be pinned with =="
        name, version = _norm(match.group(1)), match.group(2)
        assert lock.get(name) == version, f"{requirement} is not what uv.lock pins ({lock.get(name)})"


def test_policy_pack_pins_match_the_project() -> None:
    lock = _lock_pins()
    pack = _requirement_pins((ROOT / "policy" / "requirements.txt").read_text())
    assert pack, "policy/requirements.txt pins nothing"
    for name, version in pack.items():
        assert lock.get(name) == version, f"policy pack pins {name}=={version}, uv.lock {lock.get(name)}"


@pytest.mark.parametrize(
    ("text", "ok"),
    [("pandas==3.1.1", True), ("gunicorn==26.2.0 ; sys_platform != 'win32'", True), ("pandas>=3", False)],
)
def test_pin_pattern(text: str, ok: bool) -> None:
    assert bool(PIN.match(text)) is ok


def test_pulumi_uses_the_same_uv_environment() -> None:
    import yaml

    runtime = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["runtime"]
    assert runtime == {"name": "python", "options": {"toolchain": "uv", "virtualenv": ".venv"}}
    assert _pyproject()["tool"]["uv"]["package"] is False
