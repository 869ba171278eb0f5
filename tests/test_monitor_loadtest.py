"""`python -m mlops loadtest` and `monitor` as real subprocesses, against the local inference server."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops.data import generate_trips
from mlops.loadtest import Budget, LoadResult, LoadTestError, check_bounds, check_uri, is_loopback
from mlops.serving import InferenceServer
from tests._ml_model import make_tiny_model

REPO = Path(__file__).resolve().parents[1]
SCORE_SCRIPT = REPO / "mlops" / "azureml" / "deploy" / "online" / "score.py"
SUMMARY = re.compile(r"loadtest: (\d+) requests in [\d.]+ s with (\d+) users: [\d.]+ req/s, .* (\d+) errors")


def mlops(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlops", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[InferenceServer, Path]]:
    """The AML inference server with score.py and a tiny model on loopback, collecting into a folder."""
    scratch = tmp_path_factory.mktemp("loadtest")
    model_dir = make_tiny_model(scratch).parent
    collected = scratch / "collection"
    with InferenceServer(
        SCORE_SCRIPT, model_dir, scratch / "server.log", env={"MLOPS_COLLECT_DIR": str(collected)}
    ) as running:
        yield running, collected


def collected_requests(folder: Path) -> int:
    """The server's own count: one model_inputs record per request score.py answered with predictions."""
    return sum(
        1 for file in (folder / "model_inputs").rglob("*.jsonl") for line in file.open() if line.strip()
    )


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.3.2.1", True), ("::1", True), ("localhost", True), ("10.0.0.4", False)],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize(
    ("uri", "insecure", "expected"),
    [
        ("http://127.0.0.1:5001/score", False, ("http://127.0.0.1:5001", "/score")),
        ("https://ep.westeurope.inference.ml.azure.com/score", False,
         ("https://ep.westeurope.inference.ml.azure.com", "/score")),
        ("http://10.10.16.50/api/v1/endpoint/ep/score?x=1", True,
         ("http://10.10.16.50", "/api/v1/endpoint/ep/score?x=1")),
    ],
)  # fmt: skip
def test_check_uri_splits_accepted_uris(uri: str, insecure: bool, expected: tuple[str, str]) -> None:
    assert check_uri(uri, insecure=insecure) == expected


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("http://10.10.16.50/score", "plain HTTP is only for the local endpoint"),
        ("ftp://127.0.0.1/score", "give a scoring URI"),
        ("127.0.0.1:5001/score", "give a scoring URI"),
    ],
)
def test_check_uri_refuses_plain_http_off_loopback_and_non_http(uri: str, message: str) -> None:
    with pytest.raises(LoadTestError, match=message):
        check_uri(uri)


@pytest.mark.parametrize(
    ("users", "seconds", "requests", "message"),
    [
        (0, 10, 10, "--users 0"),
        (65, 10, 10, "--users 65"),
        (4, 601, 10, "--seconds 601"),
        (4, 5, 0, "--max-req"),
    ],
)
def test_runs_are_bounded(users: int, seconds: float, requests: int, message: str) -> None:
    with pytest.raises(LoadTestError, match=message):
        check_bounds(users, seconds, requests)


@pytest.mark.parametrize(
    ("p99", "failures", "budget", "missed"),
    [
        (40.0, 0, Budget(p99_ms=50), []),
        (60.0, 0, Budget(p99_ms=50), ["p99 60 ms is over the budget of 50 ms"]),
        (10.0, 3, Budget(max_errors=2), ["3 failed requests exceed the budget of 2"]),
        (10.0, 3, Budget(max_errors=None), []),
    ],
)
def test_budgets(p99: float, failures: int, budget: Budget, missed: list[str]) -> None:
    result = LoadResult(100, failures, 1.0, 5.0, 9.0, p99, 2, Path("x"), Path("x.html"))
    assert result.missed(budget) == missed


def test_usage_errors_exit_2_before_any_request() -> None:
    done = mlops("loadtest", "--uri", "http://10.1.2.3/score", "--seconds", "2")
    assert done.returncode == 2, done.stderr
    assert "plain HTTP is only for the local endpoint" in done.stderr
    done = mlops("loadtest", "--uri", "http://127.0.0.1:1/score", "--users", "500")
    assert done.returncode == 2 and "--users 500: give 1-64" in done.stderr


def test_load_test_counts_match_the_servers_own_count(
    server: tuple[InferenceServer, Path], tmp_path: Path
) -> None:
    running, collected = server
    before = collected_requests(collected)
    traffic = tmp_path / "traffic.csv"
    generate_trips(400, seed=5).to_csv(traffic, index=False)
    done = mlops(
        "loadtest", "--uri", running.scoring_uri, "--users", "2", "--seconds", "4",
        "--data", str(traffic), "--out", str(tmp_path / "report"),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    summary = SUMMARY.search(done.stdout)
    assert summary is not None, done.stdout
    requests, users, errors = (int(group) for group in summary.groups())
    # Any positive count proves the point (exact agreement below); throughput depends on the machine's load.
    assert users == 2 and errors == 0 and requests > 0
    assert collected_requests(collected) - before == requests
    with (tmp_path / "report" / "loadtest_stats.csv").open() as handle:
        aggregated = next(row for row in csv.DictReader(handle) if row["Name"] == "Aggregated")
    assert int(aggregated["Request Count"]) == requests
    assert "<html" in (tmp_path / "report" / "loadtest.html").read_text()[:2000].lower()


def test_a_missed_budget_exits_non_zero(server: tuple[InferenceServer, Path], tmp_path: Path) -> None:
    running, _ = server
    bad = tmp_path / "bad.json"
    bad.write_text('{"input_data": [[1, 2, 3]]}')
    done = mlops(
        "loadtest", "--uri", running.scoring_uri, "--users", "1", "--seconds", "2", "--max-requests", "20",
        "--payload", str(bad), "--out", str(tmp_path / "report"),
    )  # fmt: skip
    assert done.returncode == 8, done.stdout + done.stderr
    assert "budget missed: 20 failed requests exceed the budget of 0" in done.stderr


def test_monitor_exit_code_is_the_alert(tmp_path: Path) -> None:
    reference, unshifted = tmp_path / "train.csv", tmp_path / "scored.csv"
    generate_trips(3000, seed=1).to_csv(reference, index=False)
    trips = generate_trips(2000, seed=2)
    trips.to_csv(unshifted, index=False)
    ok = mlops("monitor", "--target", "local", "--reference", str(reference), "--production", str(unshifted),
               "--out", str(tmp_path / "ok"))  # fmt: skip
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "no drift" in ok.stdout and str(tmp_path / "ok" / "report.md") in ok.stdout
    trips.assign(distance=trips["distance"] * 2).to_csv(tmp_path / "shifted.csv", index=False)
    alert = mlops("monitor", "--target", "local", "--reference", str(reference), "--production",
                  str(tmp_path / "shifted.csv"), "--out", str(tmp_path / "alert"))  # fmt: skip
    assert alert.returncode == 7, alert.stdout + alert.stderr
    assert "ALERT: distance drifted" in alert.stdout
    missing = mlops("monitor", "--target", "local", "--workdir", str(tmp_path / "empty"))
    assert missing.returncode == 2 and "has no registered taxi-data" in missing.stderr
