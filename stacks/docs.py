"""Generated README blocks (config reference, profiles): `python -m stacks.docs README.md` rewrites them."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Callable, Mapping

from components.alerts import alert_cost_markdown
from stacks.check import facts_reference_markdown
from stacks.designs import design_diagram
from stacks.profiles import profile_table_markdown
from stacks.schema import config_reference_markdown

GENERATORS: Mapping[str, Callable[[], str]] = {
    "config": config_reference_markdown,
    "profiles": profile_table_markdown,
    "alert-costs": alert_cost_markdown,
    "facts": facts_reference_markdown,
    "design-customerVnet": lambda: design_diagram("customerVnet"),
    "design-managedVnet": lambda: design_diagram("managedVnet"),
}


def block_pattern(marker: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- {marker}:start -->\n)(.*?)(<!-- {marker}:end -->)", re.DOTALL)


def read_block(text: str, marker: str) -> str | None:
    """The content between a marker pair, or None when the README lacks the markers."""
    match = block_pattern(marker).search(text)
    return match.group(2).rstrip("\n") if match else None


def replace_block(text: str, marker: str, content: str) -> str:
    """`text` with the block between the marker pair replaced by `content`."""
    if read_block(text, marker) is None:
        raise ValueError(f"README has no <!-- {marker}:start --> / <!-- {marker}:end --> markers")
    return block_pattern(marker).sub(lambda m: f"{m.group(1)}{content}\n{m.group(3)}", text)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m stacks.docs README.md", file=sys.stderr)
        return 2
    path = Path(argv[0])
    text = path.read_text()
    for marker, generate in GENERATORS.items():
        text = replace_block(text, marker, generate())
    path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
