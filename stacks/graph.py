"""Mermaid diagram of a plan's components and the dependencies between them (for the README and PRs)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

START_MARKER = "<!-- graph:start -->"
END_MARKER = "<!-- graph:end -->"


def _node_id(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def component_of(plan: Mapping[str, Any]) -> dict[str, str]:
    """Each resource URN mapped to the URN of its nearest enclosing component (a component maps to itself)."""
    by_urn = {resource["urn"]: resource for resource in plan.get("resources", [])}
    owners: dict[str, str] = {}
    for urn, resource in by_urn.items():
        current: Mapping[str, Any] | None = resource
        while current is not None and current.get("custom", True):
            current = by_urn.get(current.get("parent") or "")
        if current is not None:
            owners[urn] = current["urn"]
    return owners


def component_edges(plan: Mapping[str, Any]) -> set[tuple[str, str]]:
    """(dependency, dependent) component URN pairs: a resource in `dependent` needs one in `dependency`."""
    owners = component_of(plan)
    edges = set()
    for resource in plan.get("resources", []):
        dependent = owners.get(resource["urn"])
        for dependency_urn in resource.get("dependencies", []):
            dependency = owners.get(dependency_urn)
            if dependent and dependency and dependency != dependent:
                edges.add((dependency, dependent))
    return edges


def render_mermaid(plan: Mapping[str, Any]) -> str:
    """A `flowchart LR`: one node per component (name and type), an arrow from each dependency to its user."""
    # Sorted by name: registration order varies between runs (outputs resolve asynchronously).
    components = sorted(
        (r for r in plan.get("resources", []) if not r.get("custom", True)), key=lambda r: r["name"]
    )
    names = {component["urn"]: _node_id(component["name"]) for component in components}
    lines = ["flowchart LR"]
    for component in components:
        kind = component["type"].rsplit(":", 1)[-1]
        lines.append(f'    {names[component["urn"]]}["{component["name"]}<br/><i>{kind}</i>"]')
    for dependency, dependent in sorted(component_edges(plan), key=lambda e: (names[e[0]], names[e[1]])):
        lines.append(f"    {names[dependency]} --> {names[dependent]}")
    return "\n".join(lines) + "\n"


def readme_block(mermaid: str) -> str:
    """The README text between the graph markers: the diagram in a mermaid fence."""
    return f"{START_MARKER}\n```mermaid\n{mermaid}```\n{END_MARKER}"


def embedded_graph(readme: str) -> str | None:
    """The marked block of a README (markers included), or None when the markers are missing."""
    start, end = readme.find(START_MARKER), readme.find(END_MARKER)
    if start < 0 or end < start:
        return None
    return readme[start : end + len(END_MARKER)]


def update_readme(path: Path, mermaid: str) -> bool:
    """Rewrite the marked block of the README at `path`; True when the file changed."""
    text = path.read_text()
    current = embedded_graph(text)
    if current is None:
        raise ValueError(
            f"{path} has no `{START_MARKER}` ... `{END_MARKER}` block; add both markers on their "
            "own lines where the diagram belongs"
        )
    updated = text.replace(current, readme_block(mermaid), 1)
    if updated != text:
        path.write_text(updated)
    return updated != text
