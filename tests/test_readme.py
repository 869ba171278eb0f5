"""The README's generated blocks match the code they document, and the commands it names exist."""

from __future__ import annotations

import re

import pytest

from stacks.docs import GENERATORS, read_block, replace_block
from stacks.plan import ROOT

README = (ROOT / "README.md").read_text()


@pytest.mark.parametrize("marker", sorted(GENERATORS))
def test_generated_block_is_current(marker: str) -> None:
    assert (
        read_block(README, marker) == GENERATORS[marker]()
    ), f"README block '{marker}' is stale: run `python -m stacks.docs README.md`"


def test_replace_block_round_trip() -> None:
    text = "a\n<!-- x:start -->\nold\n<!-- x:end -->\nb\n"
    assert read_block(replace_block(text, "x", "new"), "x") == "new"
    with pytest.raises(ValueError, match="markers"):
        replace_block("no markers", "x", "new")


def test_make_targets_named_in_readme_exist() -> None:
    makefile = (ROOT / "Makefile").read_text()
    for target in set(re.findall(r"make ([a-z]+)", README)):
        assert re.search(rf"^{target}:", makefile, re.MULTILINE), f"README names `make {target}`"
