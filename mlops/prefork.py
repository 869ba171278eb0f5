"""Processes forked from a warm interpreter: pipeline steps, inference servers and batch drivers start in ms.

A fresh interpreter spends seconds importing pandas, scikit-learn and MLflow before a step does any
work (6-9 s per step on a 2-core machine without a bytecode cache). The local backend pays that once:
a fork server process imports the ML and serving stack, and every process is forked from it. Each
forked process is still a process of its own, as on Azure ML: its own session (a timeout kills its
children too), argv, working folder, environment and one log for stdout and stderr; only the
already-imported third-party modules are shared. A step's own modules (prep.py's siblings) are never
preloaded, so a step always runs the code in its snapshot.

Commands other than `python <script> ...` or `python -m <module> ...` with this interpreter run as
plain subprocesses under the same contract (SubprocessLauncher).

The fork server speaks JSON lines over a socket pair: {"id", "spec"} or {"id", "call"} in, {"id", "pid"}
and later {"pid", "exit"} out. It stops when the launcher closes the socket (or its process exits);
processes it forked live on in their own sessions until they exit or are signalled.
"""

from __future__ import annotations

import atexit
import gc
import importlib
import json
import os
import runpy
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, Protocol

REPO = Path(__file__).resolve().parents[1]
BYTECODE_CACHE = REPO / ".work" / "pycache"
"""Where the fork server keeps compiled bytecode when PYTHONDONTWRITEBYTECODE forbids __pycache__ dirs."""

PRELOAD: tuple[str, ...] = (
    "numpy",
    "pandas",
    "sklearn.model_selection",
    "threadpoolctl",
    "yaml",
    "mlflow",
    # Each step opens the sqlite tracking store: SQLAlchemy, alembic's schema check, GitPython for tags.
    "mlflow.store.tracking.sqlalchemy_store",
    "mlflow.store.model_registry.sqlalchemy_store",
    "alembic.command",
    "alembic.config",
    "alembic.runtime.migration",
    "alembic.script",
    "git",
)
"""Imported before the first fork: what the first step (prep) needs. Module names only, no side effects."""

BACKGROUND: tuple[str, ...] = (
    # The later steps, in the order they need them.
    "sklearn.ensemble",
    "sklearn.pipeline",
    "sklearn.preprocessing",
    "sklearn.metrics",
    "cloudpickle",
    "mlflow.models",
    "mlflow.sklearn",
    "mlflow.pyfunc",
    "matplotlib",
    "matplotlib.pyplot",
    # The AML inference server's dependencies; never its own modules, which read their config at import.
    "flask",
    "gunicorn.app.wsgiapp",
    "gunicorn.workers.gthread",
    "pydantic_settings",
    "opentelemetry.sdk.trace",
    "opentelemetry.sdk._logs",
    "azure.monitor.opentelemetry.exporter",
    "inference_schema.schema_util",
)
"""Imported while the first steps run (see serve): the training, evaluation and serving stacks."""

LOG_TAIL_LINES = 30
IDLE_S = 0.05
"""How long the fork server waits for a request before it imports the next background module."""


class LauncherError(RuntimeError):
    """The fork server could not start a process or a call failed; the message carries the log tail."""


@dataclass(frozen=True)
class ProcessSpec:
    """A process to start: argv, working folder, complete environment, and the log both streams append to."""

    argv: tuple[str, ...]
    cwd: Path
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    log: Path = Path(os.devnull)


class RunningProcess(Protocol):
    """A started process, leading a session of its own (its pid is the session's process group id)."""

    pid: int

    def wait(self, timeout: float | None = None) -> int | None:
        """The exit code (negative: killed by that signal), or None when still running after `timeout` s."""

    def signal(self, signum: int) -> None:
        """Send `signum` to the process and every process in its group; gone already is fine."""

    @property
    def cpu_seconds(self) -> float | None:
        """CPU seconds the process (and the descendants it reaped) used, once it exited; None if unknown."""


class Launcher(Protocol):
    """Starts processes described by ProcessSpec."""

    def start(self, spec: ProcessSpec) -> RunningProcess:
        """Start the process; it runs until it exits or is signalled."""


def signal_group(pid: int, signum: int) -> None:
    """Signal the process group `pid` leads; the process alone if it has not made its group yet."""
    try:
        os.killpg(pid, signum)
    except ProcessLookupError:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


def stop(process: RunningProcess, grace_s: float = 10.0) -> int | None:
    """SIGTERM the process's group, SIGKILL it after `grace_s`, and return the exit code."""
    process.signal(signal.SIGTERM)
    code = process.wait(grace_s)
    if code is None:
        process.signal(signal.SIGKILL)
        code = process.wait(grace_s)
    # Children orphaned by the leader still carry its group id: make sure none survive.
    signal_group(process.pid, signal.SIGKILL)
    return code


def log_tail(log: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of a log file, or a note that there is none."""
    try:
        with log.open(errors="replace") as handle:
            return "".join(deque(handle, maxlen=lines)).rstrip()
    except OSError:
        return f"(no log at {log})"


# ---- plain subprocesses --------------------------------------------------------------------------


class _Subprocess:
    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self._popen = popen
        self.pid = popen.pid

    def wait(self, timeout: float | None = None) -> int | None:
        try:
            return self._popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def signal(self, signum: int) -> None:
        signal_group(self.pid, signum)

    @property
    def cpu_seconds(self) -> float | None:
        return None  # Popen reaps without resource usage


class SubprocessLauncher:
    """Each process a fresh interpreter (or any other program): the reference behaviour, and the fallback."""

    def start(self, spec: ProcessSpec) -> RunningProcess:
        spec.log.parent.mkdir(parents=True, exist_ok=True)
        with spec.log.open("ab") as log:
            popen = subprocess.Popen(
                list(spec.argv),
                cwd=spec.cwd,
                env=dict(spec.env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return _Subprocess(popen)


# ---- the forked child ----------------------------------------------------------------------------


def python_entry(argv: Sequence[str], python: str = sys.executable) -> tuple[str, str] | None:
    """("script", path) or ("module", name) when argv runs `python` plainly; None otherwise."""
    if len(argv) < 2 or os.path.realpath(argv[0]) != os.path.realpath(python):
        return None
    if argv[1] == "-m":
        return ("module", argv[2]) if len(argv) > 2 else None
    if argv[1].startswith("-"):
        return None  # interpreter options (-u, -X ...) need an interpreter of their own
    return "script", argv[1]


def _fresh_sys_path(entry_dir: str, env: Mapping[str, str]) -> list[str]:
    # What `python <script>` starts with: the script's folder, PYTHONPATH, then the interpreter's own
    # paths (stdlib, site-packages and what .pth files add), never the fork server's extras.
    own = [path for path in sys.path if path and path.startswith((sys.prefix, sys.base_prefix))]
    extra = [path for path in env.get("PYTHONPATH", "").split(os.pathsep) if path]
    return [entry_dir, *extra, *own]


def _limit_threads(env: Mapping[str, str]) -> None:
    # OpenMP read OMP_NUM_THREADS when the fork server loaded it; apply the process's own value now.
    threads = env.get("OMP_NUM_THREADS", "")
    if threads.isdigit() and int(threads) > 0 and "threadpoolctl" in sys.modules:
        sys.modules["threadpoolctl"].threadpool_limits(int(threads))


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)  # sys.exit("message"), reported as the interpreter reports it
    return 1


def _become(argv: Sequence[str], cwd: str, env: Mapping[str, str], log: str) -> None:
    """Turn the fresh fork into the process described: session, streams, folder, environment."""
    os.setsid()
    for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sink = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(sink, 1)
    os.dup2(sink, 2)
    os.close(sink)
    stdin = os.open(os.devnull, os.O_RDONLY)
    os.dup2(stdin, 0)
    os.close(stdin)
    sys.stdout = open(1, "w", buffering=1, encoding="utf-8", errors="backslashreplace", closefd=False)
    sys.stderr = open(2, "w", buffering=1, encoding="utf-8", errors="backslashreplace", closefd=False)
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    sys.argv = list(argv)


def _run_entry(argv: Sequence[str], env: Mapping[str, str]) -> None:
    _limit_threads(env)
    kind, target = python_entry(argv) or ("", "")
    if kind == "module":
        sys.argv = [target, *argv[3:]]
        sys.path[:] = _fresh_sys_path(os.getcwd(), env)
        runpy.run_module(target, run_name="__main__", alter_sys=True)
    else:
        sys.argv = list(argv[1:])
        sys.path[:] = _fresh_sys_path(os.path.dirname(os.path.abspath(target)), env)
        runpy.run_path(target, run_name="__main__")


def _run_call(call: Mapping[str, Any]) -> None:
    module, _, name = call["function"].partition(":")
    function = getattr(importlib.import_module(module), name)
    result = function(*call["args"])
    scratch = call["result"] + ".partial"
    Path(scratch).write_text(json.dumps(result))
    os.replace(scratch, call["result"])


def _child(request: Mapping[str, Any]) -> None:
    """The child side of a fork: become the process, run its entry, exit as an interpreter would."""
    code = 1
    try:
        _become(request["argv"], request["cwd"], request["env"], request["log"])
        if "call" in request:
            _run_call(request["call"])
        else:
            _run_entry(request["argv"], request["env"])
        code = 0
    except SystemExit as exit_request:
        code = _exit_code(exit_request.code)
    except BaseException:
        traceback.print_exc()
    finally:
        # What interpreter shutdown does before it exits: join threads, run atexit hooks, flush.
        try:
            threading._shutdown()  # type: ignore[attr-defined]
            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


# ---- the fork server -----------------------------------------------------------------------------


def _send(channel: socket.socket, message: Mapping[str, Any]) -> None:
    channel.sendall(json.dumps(message).encode() + b"\n")


def _reap(channel: socket.socket) -> None:
    while True:
        try:
            pid, status, usage = os.wait3(os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        # CPU of the child and of every descendant it reaped: what the process cost, whatever the load.
        cpu = usage.ru_utime + usage.ru_stime
        _send(channel, {"pid": pid, "exit": os.waitstatus_to_exitcode(status), "cpu": cpu})


def _import(name: str) -> None:
    try:
        importlib.import_module(name)
    except Exception as error:  # a module that fails here costs only its import time later
        print(f"prefork: not preloaded {name}: {error}", file=sys.stderr)
    # Objects imported so far are shared by every child; keep the collector from touching (copying) them.
    gc.freeze()


def serve(channel_fd: int, preload: Sequence[str], background: Sequence[str] = ()) -> NoReturn:
    """The fork server's main loop: import `preload`, then fork one child per request until EOF.

    `background` modules are imported one by one while no request waits (a step runs on one core, the
    import on the other); a child forked before one of them is loaded imports it itself.
    """
    for name in preload:
        _import(name)
    pending = deque(background)
    channel = socket.socket(fileno=channel_fd)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the launcher's to handle
    buffer = b""
    _send(channel, {"ready": os.getpid()})
    while True:
        readable, _, _ = select.select([channel, wake_r], [], [], IDLE_S if pending else None)
        if not readable:
            _import(pending.popleft())
            continue
        if wake_r in readable:
            os.read(wake_r, 4096)
            # Reaped only here, before this round's forks: a pid's reply always precedes its exit.
            _reap(channel)
        if channel not in readable:
            continue
        data = channel.recv(1 << 20)
        if not data:
            # The launcher closed: exit at once. Tearing down the imported stack takes seconds and
            # frees nothing the kernel would not; the processes we forked live on in their sessions.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
        buffer += data
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            request = json.loads(line)
            pid = os.fork()
            if pid == 0:
                signal.set_wakeup_fd(-1)
                channel.close()
                os.close(wake_r)
                os.close(wake_w)
                _child(request)
            _send(channel, {"id": request["id"], "pid": pid})


class _Forked:
    def __init__(self, launcher: ForkLauncher, pid: int) -> None:
        self._launcher = launcher
        self.pid = pid

    def wait(self, timeout: float | None = None) -> int | None:
        return self._launcher._exit_code(self.pid, timeout)

    @property
    def cpu_seconds(self) -> float | None:
        """User + system CPU of the process and its reaped descendants, once it has exited."""
        return self._launcher._cpu.get(self.pid)

    def signal(self, signum: int) -> None:
        signal_group(self.pid, signum)


def bytecode_cache_environment(env: Mapping[str, str]) -> dict[str, str]:
    """`env` for an interpreter that caches bytecode under .work/pycache when PYTHONDONTWRITEBYTECODE is set.

    With PYTHONDONTWRITEBYTECODE and no bytecode shipped in the venv, every interpreter compiles the ML
    stack again (~8 s of CPU on this machine's cores). PYTHONPYCACHEPREFIX keeps the cache in the
    project's scratch folder, never beside the sources or in the venv; a cache folder the user chose
    is kept, and so is an environment that lets Python write __pycache__ as usual.
    """
    if not env.get("PYTHONDONTWRITEBYTECODE") or env.get("PYTHONPYCACHEPREFIX"):
        return dict(env)
    return {key: value for key, value in env.items() if key != "PYTHONDONTWRITEBYTECODE"} | {
        "PYTHONPYCACHEPREFIX": str(BYTECODE_CACHE)
    }


def use_bytecode_cache() -> None:
    """Apply bytecode_cache_environment to this process (from now on) and to the processes it starts."""
    wanted = bytecode_cache_environment(os.environ)
    if wanted == dict(os.environ):
        return
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ.update(wanted)
    sys.pycache_prefix = wanted["PYTHONPYCACHEPREFIX"]
    sys.dont_write_bytecode = False


class ForkLauncher:
    """Forks `python <script>` / `python -m <module>` commands from a server that imported `preload` once.

    warm() starts the server, whose imports then run in the background while the caller goes on; the
    first start() waits for them. close() stops the server (not the processes it started).
    """

    def __init__(
        self,
        preload: Sequence[str] = PRELOAD,
        background: Sequence[str] = BACKGROUND,
        python: str = sys.executable,
        log: Path = Path(os.devnull),
        ready_deadline_s: float = 600.0,
    ) -> None:
        self.preload, self.background = tuple(preload), tuple(background)
        self.python = python
        self.log = log
        self.ready_deadline_s = ready_deadline_s
        self._fallback = SubprocessLauncher()
        self._server: subprocess.Popen[bytes] | None = None
        self._channel: socket.socket | None = None
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._replies: dict[int, int] = {}
        self._exits: dict[int, int] = {}
        self._cpu: dict[int, float] = {}
        self._ready = False
        self._broken = ""
        self._next_id = 0

    def warm(self) -> ForkLauncher:
        """Start the fork server if it is not running; returns at once (its imports run in the background)."""
        with self._lock:
            if self._server is None:
                self._spawn()
        return self

    def _spawn(self) -> None:
        self._ready, self._broken = False, ""
        ours, theirs = socket.socketpair()
        self.log.parent.mkdir(parents=True, exist_ok=True)
        env = bytecode_cache_environment(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        preload, background = list(self.preload), list(self.background)
        code = f"from mlops.prefork import serve; serve({theirs.fileno()}, {preload!r}, {background!r})"
        with self.log.open("ab") as log:
            self._server = subprocess.Popen(
                [self.python, "-c", code],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=REPO,
                start_new_session=True,
            )
        theirs.close()
        self._channel = ours
        threading.Thread(target=self._read, name="prefork-reader", daemon=True).start()

    def _read(self) -> None:
        assert self._channel is not None
        buffer = b""
        while True:
            try:
                data = self._channel.recv(1 << 16)
            except OSError:
                data = b""
            if not data:
                with self._changed:
                    self._broken = self._broken or f"the fork server stopped; its log {self.log}:\n"
                    self._changed.notify_all()
                return
            buffer += data
            messages = []
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                messages.append(json.loads(line))
            with self._changed:
                for message in messages:
                    if "ready" in message:
                        self._ready = True
                    elif "id" in message:
                        self._replies[message["id"]] = message["pid"]
                    else:
                        self._exits[message["pid"]] = message["exit"]
                        self._cpu[message["pid"]] = message["cpu"]
                self._changed.notify_all()

    def _wait_for(self, ready: Callable[[], bool], deadline: float | None) -> bool:
        """Under the lock: wait until ready() or the deadline; LauncherError if the server died."""
        while not ready():
            if self._broken:
                raise LauncherError(self._broken + log_tail(self.log))
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            self._changed.wait(remaining)
        return True

    def _request(self, request: dict[str, Any]) -> int:
        self.warm()
        with self._changed:
            if not self._wait_for(lambda: self._ready, time.monotonic() + self.ready_deadline_s):
                raise LauncherError(
                    f"the fork server did not finish its imports within {self.ready_deadline_s:.0f} s; "
                    f"log {self.log}:\n{log_tail(self.log)}"
                )
            self._next_id += 1
            request["id"] = self._next_id
            assert self._channel is not None
            try:
                _send(self._channel, request)
            except OSError:
                raise LauncherError(
                    f"the fork server stopped; its log {self.log}:\n{log_tail(self.log)}"
                ) from None
            self._wait_for(lambda: request["id"] in self._replies, None)
            return self._replies.pop(request["id"])

    def _exit_code(self, pid: int, timeout: float | None) -> int | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            if not self._wait_for(lambda: pid in self._exits, deadline):
                return None
            return self._exits[pid]

    def forks(self, argv: Sequence[str]) -> bool:
        """Whether `argv` is forked (a plain run of the launcher's interpreter) rather than run afresh."""
        return python_entry(argv, self.python) is not None

    def start(self, spec: ProcessSpec) -> RunningProcess:
        if not self.forks(spec.argv):
            return self._fallback.start(spec)
        spec.log.parent.mkdir(parents=True, exist_ok=True)
        request = {"argv": list(spec.argv), "cwd": str(spec.cwd), "env": dict(spec.env), "log": str(spec.log)}
        return _Forked(self, self._request(request))

    def call(self, function: Callable[..., Any], *args: Any, log: Path | None = None) -> Any:
        """function(*args) in a process forked from the warm server; JSON in, JSON out.

        For short jobs that need the preloaded stack (MLflow registry reads) without importing it here.
        `function` must be a module-level function; LauncherError carries its traceback.
        """
        with tempfile.TemporaryDirectory(prefix="prefork-call-") as scratch:
            result, sink = Path(scratch) / "result.json", log or Path(scratch) / "call.log"
            name = f"{function.__module__}:{function.__qualname__}"
            request = {
                "argv": [self.python, "-c", name],
                "cwd": os.getcwd(),
                "env": dict(os.environ),
                "log": str(sink),
                "call": {"function": name, "args": list(args), "result": str(result)},
            }
            code = self._exit_code(self._request(request), None)
            if code != 0 or not result.is_file():
                raise LauncherError(f"{name}{tuple(args)!r} failed (exit {code}):\n{log_tail(sink)}")
            return json.loads(result.read_text())

    def close(self) -> None:
        """Stop the fork server; processes it started keep running until their owners stop them."""
        with self._lock:
            server, channel = self._server, self._channel
            self._server = self._channel = None
            self._broken = "the fork server was closed"
            self._ready = False
        if channel is not None:
            channel.close()
        if server is not None:
            # It holds nothing to flush, and may be deep in a background import: no need to wait for EOF.
            server.terminate()
            server.wait()

    def __enter__(self) -> ForkLauncher:
        return self.warm()

    def __exit__(self, *exc: object) -> None:
        self.close()
