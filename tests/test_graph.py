"""Mermaid component graph: edges from resource dependencies, README block rewriting, README kept current."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from stacks.graph import (
    END_MARKER,
    START_MARKER,
    component_edges,
    embedded_graph,
    readme_block,
    render_mermaid,
    update_readme,
)

ROOT = Path(__file__).resolve().parent.parent


def _urn(type_: str, name: str) -> str:
    return f"urn:pulumi:prod::p::{type_}::{name}"


def _component(name: str, kind: str) -> dict[str, Any]:
    return {
        "urn": _urn(f"aml-platform:x:{kind}", name),
        "type": f"aml-platform:x:{kind}",
        "name": name,
        "parent": None,
        "custom": False,
        "dependencies": [],
    }


def _child(name: str, parent: dict[str, Any], *deps: dict[str, Any]) -> dict[str, Any]:
    return {
        "urn": _urn("azure-native:x:Thing", name),
        "type": "azure-native:x:Thing",
        "name": name,
        "parent": parent["urn"],
        "custom": True,
        "dependencies": [d["urn"] for d in deps],
    }


def _plan() -> dict[str, Any]:
    group, storage, workspace = (
        _component("rg", "ResourceGroup"),
        _component("st", "Storage"),
        _component("mlw", "Workspace"),
    )
    rg = _child("rg-group", group)
    account = _child("st-account", storage, rg)
    blob = _child("st-blob", storage, account, rg)  # same-component dependency: no edge
    ws = _child("mlw-workspace", workspace, account, rg)
    nested = _component("mlw-inner", "Inner")
    nested["parent"] = workspace["urn"]
    inner = _child("mlw-inner-thing", nested, ws)
    return {"resources": [group, storage, workspace, rg, account, blob, ws, nested, inner]}


def test_edges_run_from_dependency_component_to_dependent_component() -> None:
    names = {r["urn"]: r["name"] for r in _plan()["resources"]}
    edges = {(names[a], names[b]) for a, b in component_edges(_plan())}
    assert edges == {("rg", "st"), ("rg", "mlw"), ("st", "mlw"), ("mlw", "mlw-inner")}


def test_mermaid_lists_sorted_components_then_sorted_edges() -> None:
    plan = _plan()
    mermaid = render_mermaid(plan)
    plan["resources"].reverse()
    assert render_mermaid(plan) == mermaid, "registration order must not change the diagram"
    lines = mermaid.splitlines()
    assert lines[0] == "flowchart LR"
    assert '    st["st<br/><i>Storage</i>"]' in lines
    assert "    mlw_inner[" in mermaid  # hyphens are not valid in Mermaid ids
    edges = [line for line in lines if "-->" in line]
    assert edges == sorted(edges) and "    rg --> st" in edges


def test_update_readme_rewrites_only_the_marked_block(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\n{START_MARKER}\nold\n{END_MARKER}\n\nafter\n")
    assert update_readme(readme, "flowchart LR\n    a --> b\n") is True
    text = readme.read_text()
    assert text.startswith("# Title\n\n") and text.endswith("\n\nafter\n")
    assert embedded_graph(text) == readme_block("flowchart LR\n    a --> b\n")
    assert update_readme(readme, "flowchart LR\n    a --> b\n") is False


def test_update_readme_without_markers_says_what_to_add(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# Title\n")
    with pytest.raises(ValueError, match="graph:start"):
        update_readme(readme, "flowchart LR\n")


@pytest.mark.skipif(not (ROOT / "README.md").exists(), reason="README.md is not written yet")
def test_readme_embeds_the_current_prod_graph(tmp_path: Path) -> None:
    plan = tmp_path / "prod.json"
    subprocess.run(
        [sys.executable, "-m", "stacks", "plan", "--stack", "prod", "--quiet", "--json", str(plan)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=300,
    )
    expected = readme_block(render_mermaid(json.loads(plan.read_text())))
    assert (
        embedded_graph((ROOT / "README.md").read_text()) == expected
    ), "README graph is stale: run `python -m stacks graph --stack prod --readme README.md`"
