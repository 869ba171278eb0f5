"""The local target end to end (`python -m mlops deploy --target local`), and the local backend's asset registry."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mlops.backends.base import BackendError, ConfigurationError, DataSpec, EnvironmentSpec
from mlops.backends.local import LocalBackend, register_content
from mlops.cli import main

ROOT = Path(__file__).resolve().parent.parent
E2E_ROWS = 3000
E2E_TIMEOUT_S = 900


@pytest.mark.parametrize(
    ("registry", "digest", "expected"),
    [
        ({}, "aaa", ("1", True)),
        ({"data": {"taxi": {"aaa": "1"}}}, "aaa", ("1", False)),
        ({"data": {"taxi": {"aaa": "1"}}}, "bbb", ("2", True)),
        ({"data": {"other": {"aaa": "1"}}}, "aaa", ("1", True)),
    ],
)
def test_register_content(registry: dict, digest: str, expected: tuple[str, bool]) -> None:
    assert register_content(registry, "data", "taxi", digest) == expected
    assert registry["data"]["taxi"][digest] == expected[0]


def test_environment_is_versioned_by_the_conda_file_content(tmp_path: Path) -> None:
    conda = tmp_path / "conda.yml"
    conda.write_text("dependencies: [python=3.11]\n")
    notes: list[str] = []
    backend = LocalBackend(tmp_path / "work", log=notes.append)
    spec = EnvironmentSpec("taxi-train-env", "image", conda)
    first, again = backend.ensure_environment(spec), backend.ensure_environment(spec)
    conda.write_text("dependencies: [python=3.11, pip]\n")
    changed = backend.ensure_environment(spec)
    assert (first.version, first.created) == ("1", True)
    assert (again.version, again.created) == ("1", False)
    assert (changed.version, changed.created) == ("2", True)
    assert any("no conda solve" in note for note in notes)


def test_invalid_training_data_is_a_configuration_error_naming_the_file(tmp_path: Path) -> None:
    data = tmp_path / "taxi.csv"
    data.write_text("cost,distance\n10,2\n")
    backend = LocalBackend(tmp_path / "work")
    with pytest.raises(ConfigurationError, match=r"taxi\.csv"):
        backend.ensure_data(DataSpec("taxi-data", data))
    assert not (tmp_path / "work" / "data").exists()


def test_local_endpoint_refuses_unknown_traffic_and_deleting_a_serving_deployment(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path / "work")
    assert backend.get_online_endpoint("ep") is None
    state = backend.ensure_online_endpoint("ep")
    assert (state.scoring_uri, dict(state.traffic), list(state.deployments)) == ("", {}, [])
    with pytest.raises(BackendError, match="must name existing deployments"):
        backend.set_traffic("ep", {"ghost": 100})
    endpoints = json.loads((tmp_path / "work" / "endpoints.json").read_text())
    endpoints["ep"] = {"traffic": {"blue": 100}, "deployments": {"blue": {"model_dir": "unused"}}}
    (tmp_path / "work" / "endpoints.json").write_text(json.dumps(endpoints))
    with pytest.raises(BackendError, match="takes 100 % of ep's traffic"):
        backend.delete_deployment("ep", "blue")
    # Not kept up and not started by this backend: the endpoint reports no URI rather than a dead one.
    assert backend.get_online_endpoint("ep") == backend.ensure_online_endpoint("ep")
    assert backend.ensure_online_endpoint("ep").scoring_uri == ""


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--target", "local", "--stack", "dev"], "--stack: only for --target azure"),
        (["--target", "azure", "--serve", "--rows", "500"], "--rows, --serve: only for --target local"),
        (["--target", "local", "--rows", "10"], "--rows 10: give at least 100 rows"),
        (
            ["--target", "local", "--data", "/nonexistent/taxi.csv"],
            "--data /nonexistent/taxi.csv: no such file",
        ),
    ],
)
def test_cli_usage_errors_exit_2_with_the_fix(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["deploy", *argv, *(["--workdir", str(tmp_path)] if "local" in argv else [])]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["deploy", "--target", "local", "--deadline-minutes", "0"],
        ["deploy", "--target", "local", "--traffic-steps", "50,10"],
        ["deploy", "--target", "gcp"],
    ],
)
def test_cli_rejects_malformed_flags(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2


def _deploy(workdir: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "mlops", "deploy", "--target", "local"]
    return subprocess.run(
        [*command, "--workdir", str(workdir), "--rows", str(E2E_ROWS)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=E2E_TIMEOUT_S,
    )


def _server_pids(workdir: Path) -> list[int]:
    endpoints = json.loads((workdir / "endpoints.json").read_text())
    return [
        record["pid"]
        for endpoint in endpoints.values()
        for record in endpoint["deployments"].values()
        if "pid" in record
    ]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.e2e
def test_local_deploy_end_to_end_and_rerun_changes_nothing(tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    first = _deploy(workdir)
    assert first.returncode == 0, first.stderr[-3000:]
    summary = first.stdout
    assert re.search(r"^metrics: r2=[-\d.e]+ rmse=[\d.e+-]+ mae=[\d.e+-]+$", summary, re.MULTILINE), summary
    assert "model: taxi-fare-model version 1 (registered in this run: yes)" in summary
    assert re.search(r"^gate: deploy_flag=1; .+", summary, re.MULTILINE)
    assert re.search(r"^scoring URI: http://127\.0\.0\.1:\d+/score$", summary, re.MULTILINE)
    assert re.search(r"^batch: Completed, 100 rows -> .+predictions\.csv$", summary, re.MULTILINE)
    assert re.search(r"^timings: .*training \d+\.\ds.*smoke \d+\.\ds", summary, re.MULTILINE)
    assert re.search(r"^\[\s*\d+\.\ds\] training: finished \(\d+\.\ds\)$", first.stderr, re.MULTILINE)
    pids = _server_pids(workdir)
    assert pids and not any(_alive(pid) for pid in pids)

    second = _deploy(workdir)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "model: taxi-fare-model version 1 (registered in this run: no)" in second.stdout
    assert re.search(r"^gate: deploy_flag=0; nothing registered", second.stdout, re.MULTILINE)
    assert "(unchanged)" in second.stdout
    assert not any(_alive(pid) for pid in _server_pids(workdir))
