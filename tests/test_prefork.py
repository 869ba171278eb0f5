"""The warm-interpreter launcher: forked processes must behave like fresh `python` processes, and fail alike."""

from __future__ import annotations

import json
import os
import signal
import sys
import textwrap
import threading
import time
from pathlib import Path

import psutil
import pytest

from mlops.prefork import (
    BYTECODE_CACHE,
    ForkLauncher,
    LauncherError,
    ProcessSpec,
    SubprocessLauncher,
    bytecode_cache_environment,
    python_entry,
    stop,
)

PY = sys.executable


def running(pid: int) -> bool:
    """Alive and not a zombie (an orphan waits for init to reap it)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


PROBE = """
    import atexit, json, os, sys, threading, time

    def report():
        # Written from an atexit hook after a non-daemon thread finished: both must run before exit.
        with open("report.json", "w") as out:
            json.dump({
                "argv": sys.argv, "cwd": os.getcwd(), "env": dict(os.environ), "path0": sys.path[0],
                "repo_on_path": REPO in sys.path, "pid": os.getpid(), "pgid": os.getpgid(0),
                "sid": os.getsid(0), "pandas_loaded": "pandas" in sys.modules,
                "thread_finished": finished.is_set(), "sibling": sibling.VALUE, "stdin": sys.stdin.read(),
            }, out)

    finished = threading.Event()
    threading.Thread(target=lambda: (time.sleep(0.3), finished.set())).start()
    atexit.register(report)
    import sibling
    print("to stdout")
    print("to stderr", file=sys.stderr)
    code = sys.argv[1]
    if code == "message":
        sys.exit("stopped with a message")
    if code == "raise":
        raise RuntimeError("boom in the step")
    sys.exit(int(code))
"""


def write_probe(folder: Path, sibling_value: str = "one") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    repo = str(Path(__file__).resolve().parents[1])
    (folder / "probe.py").write_text(f"REPO = {repo!r}\n" + textwrap.dedent(PROBE))
    (folder / "sibling.py").write_text(f"VALUE = {sibling_value!r}\n")
    return folder / "probe.py"


def run_probe(launcher: object, folder: Path, code: str, **env: str) -> tuple[int | None, dict, str]:
    script = write_probe(folder)
    log = folder / "probe.log"
    spec = ProcessSpec((PY, str(script), code, "two words"), folder, {"PATH": os.environ["PATH"], **env}, log)
    process = launcher.start(spec)  # type: ignore[attr-defined]
    exit_code = process.wait(60)
    report = json.loads((folder / "report.json").read_text()) if (folder / "report.json").is_file() else {}
    return exit_code, report | {"started_pid": process.pid}, log.read_text()


LAUNCHERS = ["forked", "fresh"]


@pytest.fixture(params=LAUNCHERS)
def any_launcher(request: pytest.FixtureRequest, launcher: ForkLauncher) -> object:
    """The warm launcher and the plain one: every contract test runs against both."""
    return launcher if request.param == "forked" else SubprocessLauncher()


def test_a_process_gets_exactly_its_argv_cwd_environment_and_session(
    any_launcher: object, tmp_path: Path
) -> None:
    code, report, log = run_probe(any_launcher, tmp_path / "step", "0", STEP_SETTING="yes")

    assert code == 0
    assert report["argv"] == [str(tmp_path / "step" / "probe.py"), "0", "two words"]
    assert report["cwd"] == str(tmp_path / "step")
    assert report["env"]["STEP_SETTING"] == "yes" and "PYTEST_CURRENT_TEST" not in report["env"]
    assert report["path0"] == str(tmp_path / "step") and not report["repo_on_path"]
    assert report["pid"] == report["pgid"] == report["sid"] == report["started_pid"]
    assert report["thread_finished"] and report["sibling"] == "one" and report["stdin"] == ""
    assert "to stdout" in log and "to stderr" in log


@pytest.mark.parametrize(
    ("code", "exit_code", "logged"),
    [
        ("3", 3, ""),
        ("message", 1, "stopped with a message"),
        ("raise", 1, "RuntimeError: boom in the step"),
    ],
)
def test_exit_codes_and_messages_match_the_interpreters(
    any_launcher: object, tmp_path: Path, code: str, exit_code: int, logged: str
) -> None:
    found, report, log = run_probe(any_launcher, tmp_path / "step", code)

    assert found == exit_code and logged in log
    assert report["thread_finished"], "atexit hooks and threads finish before a failing process exits"


def test_forked_processes_start_warm_and_fresh_ones_cold(launcher: ForkLauncher, tmp_path: Path) -> None:
    _, forked, _ = run_probe(launcher, tmp_path / "forked", "0")
    _, fresh, _ = run_probe(SubprocessLauncher(), tmp_path / "fresh", "0")

    assert forked["pandas_loaded"] and not fresh["pandas_loaded"]


def test_a_step_always_runs_its_own_sibling_modules(launcher: ForkLauncher, tmp_path: Path) -> None:
    # The fork server never imports a step's modules: changed code is what the next fork runs.
    for value in ("one", "two"):
        folder = tmp_path / value
        script = write_probe(folder, sibling_value=value)
        process = launcher.start(ProcessSpec((PY, str(script), "0"), folder, {}, folder / "log"))
        assert process.wait(60) == 0
        assert json.loads((folder / "report.json").read_text())["sibling"] == value


def test_modules_run_with_dash_m_like_the_interpreter(launcher: ForkLauncher, tmp_path: Path) -> None:
    (tmp_path / "toy_module.py").write_text("import sys\nprint('args', sys.argv[1:])\nsys.exit(4)\n")
    spec = ProcessSpec((PY, "-m", "toy_module", "a", "b"), tmp_path, {}, tmp_path / "log")

    assert launcher.start(spec).wait(60) == 4
    assert "args ['a', 'b']" in (tmp_path / "log").read_text()


@pytest.mark.parametrize(
    ("argv", "entry"),
    [
        ((PY, "step.py", "--x"), ("script", "step.py")),
        ((PY, "-m", "mlops.serving", "batch-driver"), ("module", "mlops.serving")),
        ((PY, "-u", "step.py"), None),
        ((PY, "-m"), None),
        (("bash", "run.sh"), None),
        (("/other/python", "step.py"), None),
        ((PY,), None),
    ],
)
def test_python_entry(argv: tuple[str, ...], entry: tuple[str, str] | None) -> None:
    assert python_entry(argv, PY) == entry


def test_other_programs_run_as_plain_subprocesses(launcher: ForkLauncher, tmp_path: Path) -> None:
    spec = ProcessSpec(
        ("bash", "-c", "echo from bash; exit 7"), tmp_path, {"PATH": os.environ["PATH"]}, tmp_path / "l"
    )

    assert not launcher.forks(spec.argv)
    assert launcher.start(spec).wait(60) == 7
    assert "from bash" in (tmp_path / "l").read_text()


def test_a_killed_process_reports_the_signal_and_takes_its_children(
    launcher: ForkLauncher, tmp_path: Path
) -> None:
    script = tmp_path / "parent.py"
    script.write_text(
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "open('child.pid', 'w').write(str(child.pid))\n"
        "time.sleep(60)\n"
    )
    process = launcher.start(ProcessSpec((PY, str(script)), tmp_path, {}, tmp_path / "log"))
    deadline = time.monotonic() + 30
    while not (tmp_path / "child.pid").is_file() and time.monotonic() < deadline:
        time.sleep(0.05)
    child = int((tmp_path / "child.pid").read_text())

    assert process.wait(0.2) is None
    assert stop(process, grace_s=5) == -signal.SIGTERM
    assert not running(child), "the step's own child dies with its session"


def test_processes_run_concurrently_and_report_their_own_exit(launcher: ForkLauncher, tmp_path: Path) -> None:
    script = tmp_path / "sleepy.py"
    script.write_text("import sys, time\ntime.sleep(float(sys.argv[1]))\nsys.exit(int(sys.argv[2]))\n")
    started = time.monotonic()
    processes = [
        launcher.start(ProcessSpec((PY, str(script), "1", str(code)), tmp_path, {}, tmp_path / f"{code}.log"))
        for code in (5, 6, 7)
    ]
    results: dict[int, int | None] = {}
    waiters = [
        threading.Thread(target=lambda p=process, c=code: results.__setitem__(c, p.wait(60)))
        for process, code in zip(processes, (5, 6, 7))
    ]
    for waiter in waiters:
        waiter.start()
    for waiter in waiters:
        waiter.join()

    assert results == {5: 5, 6: 6, 7: 7}
    assert time.monotonic() - started < 2.9, "three 1 s processes run side by side"
    assert all(process.cpu_seconds is not None for process in processes)


def double(value: int) -> dict[str, int]:
    """A module-level function for ForkLauncher.call."""
    return {"doubled": value * 2, "pid": os.getpid()}


def explode(message: str) -> None:
    """A call that fails."""
    raise ValueError(message)


def test_call_runs_a_function_in_a_forked_process(launcher: ForkLauncher) -> None:
    answer = launcher.call(double, 21)

    assert answer["doubled"] == 42 and answer["pid"] != os.getpid()
    with pytest.raises(LauncherError, match="ValueError: registry unreachable"):
        launcher.call(explode, "registry unreachable")


def test_a_dead_fork_server_is_an_error_naming_its_log(tmp_path: Path) -> None:
    own = ForkLauncher(preload=(), background=(), log=tmp_path / "server.log").warm()
    script = tmp_path / "ok.py"
    script.write_text("pass\n")
    try:
        assert own.start(ProcessSpec((PY, str(script)), tmp_path, {}, tmp_path / "log")).wait(30) == 0
        server = own._server
        assert server is not None
        server.kill()
        server.wait()
        with pytest.raises(LauncherError, match="the fork server stopped"):
            own.start(ProcessSpec((PY, str(script)), tmp_path, {}, tmp_path / "log"))
    finally:
        own.close()


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"PATH": "/bin"}, {"PATH": "/bin"}),
        ({"PYTHONDONTWRITEBYTECODE": "1"}, {"PYTHONPYCACHEPREFIX": str(BYTECODE_CACHE)}),
        ({"PYTHONDONTWRITEBYTECODE": "", "X": "1"}, {"PYTHONDONTWRITEBYTECODE": "", "X": "1"}),
        (
            {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": "/mine"},
            {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": "/mine"},
        ),
    ],
    ids=["writes as usual", "cache instead of recompiling", "empty means unset", "user's own cache kept"],
)
def test_bytecode_cache_environment(env: dict[str, str], expected: dict[str, str]) -> None:
    assert bytecode_cache_environment(env) == expected
