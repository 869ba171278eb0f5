"""Shared test setup: a bytecode cache, hypothesis's example store under .work, and cross-module fixtures.

Fixtures here are session-scoped, so each pytest-xdist worker builds them once (in its own temp
folder, with its own ports) and every module that reads them shares them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis.database import DirectoryBasedExampleDatabase

from mlops.prefork import ForkLauncher, use_bytecode_cache

ROOT = Path(__file__).resolve().parents[1]

# Every test process and subprocess otherwise recompiles what it imports when PYTHONDONTWRITEBYTECODE
# is set: minutes over the suite. The cache lives in .work/pycache (see mlops.prefork).
use_bytecode_cache()
# One OpenMP thread per test process (and the processes tests start), set before scikit-learn loads
# OpenMP: pytest-xdist already runs a process per core, and OpenMP's spinning barriers on a busy
# machine made a 2-row boosted-trees predict take a second instead of milliseconds.
os.environ.setdefault("OMP_NUM_THREADS", "1")

settings.register_profile("project", database=DirectoryBasedExampleDatabase(ROOT / ".work" / "hypothesis"))
settings.load_profile("project")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """AZUREML_MODEL_DIR of a tiny registered model (.../azureml-models/taxi-fare-model/1)."""
    from tests._ml_model import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("registry")).parent


@pytest.fixture(scope="session")
def launcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ForkLauncher]:
    """One warm fork server per test process, for every test that runs steps, servers or batch drivers."""
    log = tmp_path_factory.mktemp("prefork") / "forkserver.log"
    with ForkLauncher(log=log) as warm:
        yield warm


@pytest.fixture(scope="session")
def shipped_plans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """The offline plans of both shipped stacks, as `python -m stacks plan --stack dev --stack prod --json`
    writes them: one CLI subprocess (it owns the mock runtime), shared by the tests that read them."""
    folder = tmp_path_factory.mktemp("shipped-plans")
    job = subprocess.run(
        [sys.executable, "-m", "stacks", "plan", "--stack", "dev", "--stack", "prod", "--quiet", "--json",
         str(folder / "plan-{stack}.json")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    assert job.returncode == 0, f"plan failed: {job.stderr}"
    return {stack: json.loads((folder / f"plan-{stack}.json").read_text()) for stack in ("dev", "prod")}
