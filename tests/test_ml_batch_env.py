"""The batch environment's pins resolve together against the package index (network: skipped when unreachable).

Batch deployments need azureml-core and azureml-dataset-runtime[fuse], whose 1.62 release needs numpy below
2.3.3 (how-to-use-batch-model-deployments.md; AZURE-FACTS 18): a pin set that cannot install would only fail
at image build time on Azure, an hour into a deploy.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA = ROOT / "mlops" / "azureml" / "deploy" / "batch" / "batch-conda.yml"
RESOLVE_TIMEOUT_S = 900
UNREACHABLE = re.compile(
    r"(?i)(failed to fetch|could not fetch|connection (refused|reset|error)|name or service not known|"
    r"temporary failure in name resolution|network is unreachable|timed out)"
)


def pip_pins() -> list[str]:
    conda = yaml.safe_load(CONDA.read_text())
    return next(dep["pip"] for dep in conda["dependencies"] if isinstance(dep, dict) and "pip" in dep)


def resolver() -> list[str] | None:
    """uv (from PATH or the Makefile's .work/uv) for speed, else pip's own dry run; None when neither exists."""
    uv = shutil.which("uv") or next(
        (str(p) for p in [ROOT / ".work" / "uv" / "bin" / "uv"] if p.exists()), None
    )
    if uv:
        return [uv, "pip", "compile", "--python-version", "3.11", "--python-platform", "x86_64-manylinux_2_28",
                "--no-header", "--quiet"]  # fmt: skip
    pip = shutil.which("pip3") or shutil.which("pip")
    if pip:
        return [pip, "install", "--dry-run", "--ignore-installed", "--quiet", "--report", "-", "-r"]
    return None


def test_the_batch_environment_resolves(tmp_path: Path) -> None:
    command = resolver()
    if command is None:
        pytest.skip("neither uv nor pip is on PATH to resolve the batch environment")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("\n".join(pip_pins()) + "\n")
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    try:
        done = subprocess.run(
            [*command, str(requirements)], capture_output=True, text=True, timeout=RESOLVE_TIMEOUT_S, env=env
        )
    except subprocess.TimeoutExpired:
        pytest.skip(
            f"resolving against the package index took over {RESOLVE_TIMEOUT_S}s (registry unreachable?)"
        )
    output = done.stdout + done.stderr
    if done.returncode != 0 and UNREACHABLE.search(output):
        pytest.skip(f"package index unreachable: {UNREACHABLE.search(output).group(0)}")  # type: ignore[union-attr]
    assert done.returncode == 0, f"the batch environment does not resolve:\n{output[-3000:]}"
    if "--report" in command:  # pip's installation report is JSON
        installs = json.loads(done.stdout)["install"]
        resolved = {item["metadata"]["name"].lower(): item["metadata"]["version"] for item in installs}
    else:
        resolved = {
            name.lower(): version for name, version in re.findall(r"([A-Za-z0-9_.-]+)==(\S+)", done.stdout)
        }
    for pin in pip_pins():
        name, version = pin.split("==")
        assert resolved.get(re.sub(r"\[.*\]", "", name).lower()) == version, f"{pin} not kept"
