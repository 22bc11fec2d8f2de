"""A detached runtime (`lsq up -d`): forked from the CLI by `fork_runtime`, or
started as `python -m lsq.cli._daemon FILE [--override=F] [SERVICE...]`.

Its stdout and stderr go to `.lsq/runtime.log`; service output goes only to the
per-service log files, so the runtime log holds LSQ's own notes.

A forked runtime tells the waiting CLI how start-up goes over a pipe
(`StartupReport`): one JSON object per line, `{"event": ...}` for each state
change and `{"done": ...}` once, when start-up is ready, failed or caught in a
crash loop. The CLI waits on that pipe instead of polling the control API; if
the pipe closes without `done`, the runtime has exited.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsq.errors import LsqError

if TYPE_CHECKING:
    from lsq.manifest import AppConfig
    from lsq.runtime import Runtime

# Light on purpose: `lsq up -d` starting from the manifest cache forks the
# runtime from here before asyncio, click or the schema are imported.

CRASH_LOOP_RESTARTS = 3
"""`lsq up -d` stops waiting once an instance has crashed this many times."""

REPORTED_KINDS = ("state", "runtime", "killed")


def crash_loop(status: dict[str, object]) -> str | None:
    """Why start-up will not settle: an instance that keeps crashing."""
    # A service that crashes at every start would keep `up -d` waiting for
    # the whole start-up deadline; a few restarts in a row are answer enough.
    for svc in status["services"]:  # type: ignore[attr-defined]
        for inst in svc["instances"]:
            if inst["state"] == "backoff" and inst["restarts"] >= CRASH_LOOP_RESTARTS:
                return (
                    f"{inst['id']} keeps crashing "
                    f"({inst['restarts']} restarts; {inst['reason']})"
                )
    return None


class StartupReport:
    """Writes start-up progress to the CLI's pipe, never blocking the runtime.

    Lines that do not fit in the pipe wait in a buffer until the CLI reads;
    a CLI that went away (closed pipe) is simply no longer told.
    """

    def __init__(self, runtime: Runtime, fd: int) -> None:
        self._runtime = runtime
        self._fd: int | None = fd
        self._pending = bytearray()
        self._writing = False
        self._closing = False
        os.set_blocking(fd, False)
        self._unlisten = runtime.listen(self._on_event)

    def _on_event(self, event: dict[str, object]) -> None:
        kind = event.get("kind")
        if kind in REPORTED_KINDS:
            self._send({"event": event})
        runtime = self._runtime
        state = runtime.startup.get("state")
        if kind == "runtime" and state in ("ready", "failed"):
            self._finish(str(state), str(runtime.startup.get("reason", "")))
        elif kind == "state" and str(event["message"]).startswith("backoff"):
            reason = crash_loop(runtime.status())
            if reason:
                self._finish("crash-loop", reason)

    def _finish(self, outcome: str, reason: str) -> None:
        self._unlisten()
        self._send({
            "done": outcome,
            "reason": reason,
            "status": self._runtime.status(),
            "port": self._runtime.control_port,
        })
        self._close_when_sent()

    def _send(self, message: dict[str, object]) -> None:
        if self._fd is None:
            return
        self._pending += json.dumps(message).encode() + b"\n"
        self._flush()

    def _flush(self) -> None:
        assert self._fd is not None
        try:
            while self._pending:
                written = os.write(self._fd, self._pending)
                del self._pending[:written]
        except BlockingIOError:
            if not self._writing:
                self._writing = True
                _loop().add_writer(self._fd, self._flush)
            return
        except OSError:  # the CLI is gone (EPIPE): nobody to tell
            self._pending.clear()
            self._close()
            return
        if self._writing:
            self._writing = False
            _loop().remove_writer(self._fd)
        if self._closing:
            self._close()

    def _close_when_sent(self) -> None:
        self._closing = True
        if self._fd is not None and not self._pending:
            self._close()

    def _close(self) -> None:
        if self._fd is None:
            return
        if self._writing:
            _loop().remove_writer(self._fd)
            self._writing = False
        os.close(self._fd)
        self._fd = None


def run_loop(coro):  # type: ignore[no-untyped-def]
    import asyncio

    # Only the import may fall back: an ImportError raised while the
    # coroutine runs must surface, not start the spent coroutine again.
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def run_runtime(coro: Coroutine[Any, Any, int]) -> int:
    """Run a runtime's `serve`: its first gateway worker is forked before
    the event loop starts (see `prefork_worker`)."""
    from lsq.gateway._gateway import discard_preforked, prefork_worker
    from lsq.runtime import _warm

    # No fork while a spawning thread may be inside Popen (lsq.runtime._warm).
    if _warm.settle(timeout=2.0):
        prefork_worker()
    try:
        return int(run_loop(coro))
    finally:
        discard_preforked()


def _loop():  # type: ignore[no-untyped-def]
    import asyncio

    return asyncio.get_running_loop()


def start_detached(
    app: AppConfig | Callable[[], AppConfig], state: Path, services: list[str]
) -> tuple[int, int, int]:
    """Start a detached runtime that reports start-up on a pipe: hand `app`
    to the runtime `prestart` forked, or fork one now.

    Returns its pid, the pipe's read end and where this run's part of
    `runtime.log` begins."""
    state.mkdir(parents=True, exist_ok=True)
    try:
        log_start = (state / "runtime.log").stat().st_size
    except OSError:
        log_start = 0
    handed = _hand_over(app, services, state / "runtime.log")
    if handed is not None:
        return (*handed, log_start)
    read_fd, write_fd = os.pipe()
    try:
        pid = fork_runtime(app, services, state / "runtime.log", report_fd=write_fd)
    finally:
        os.close(write_fd)
    return pid, read_fd, log_start


# -- a runtime forked before the manifest is loaded ------------------------------------

PRELOAD = (
    "lsq.runtime._warm",  # what starts the plan's replicas, ready when it comes
    "ctypes",  # to become the services' subreaper, as the plan's replicas start
    "lsq.manifest._frozen",
    "lsq.manifest._config",
    "asyncio",
    "uvloop",
    "lsq.runtime",
    "lsq.runtime._runtime",
    "lsq.control",
    "lsq.control._server",
    "lsq.gateway._gateway",
    "lsq.dashboard",
    "lsq.chaos",
    "lsq.deploy",
)
"""What a runtime imports before its first service starts, beyond what the CLI
has loaded by the time it forks one: the early starts, the frozen app's
classes (to unpickle it: not pydantic, see `lsq.manifest._frozen`), the
event loop, the runtime, the control API, the gateway, and the dashboard,
fault and release APIs it serves. Not psutil (nothing needs it before the
services are up) nor the gateway worker's module (the worker imports it
after its fork, on the other core, and the runtime never needs it)."""


@dataclass
class Prestarted:
    """A runtime forked by `prestart`, waiting for its app."""

    pid: int
    handover_fd: int  # write end: the early-start plan, the pickled app, then EOF
    report_fd: int  # read end: the start-up report (`StartupReport`)
    planned: bool = False  # the plan's frame was sent (an empty one too)
    state: Path | None = None  # the app's `.lsq`, once a plan was offered


prestarted: Prestarted | None = None

PRESTART_NOTE = "lsq: this runtime loaded its modules while lsq.yaml was checked"


def prestart() -> None:
    """Fork the runtime of a first `lsq up -d` before this CLI loads the
    manifest, so that it imports the runtime's modules on another core
    meanwhile (about 60 ms that would otherwise come between the manifest
    check and the first service start).

    Until `start_detached` hands it the checked app, the child only imports:
    it takes no lock, writes no file and starts nothing. Its standard streams
    go to /dev/null, so that a caller waiting for this CLI's output is not
    kept waiting. It exits as soon as it sees the hand-over pipe close empty,
    which happens when this CLI exits without starting the app (a bad
    manifest, the app already running, Ctrl-C), and it checks for that
    between imports."""
    global prestarted
    handover_r, handover_w = os.pipe()
    report_r, report_w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()  # with the stop signals held (lsq.cli.main) until the child sets its own
    if pid:
        os.close(handover_r)
        os.close(report_w)
        prestarted = Prestarted(pid, handover_w, report_r)
        return
    code = 1
    try:
        # A session of its own, so that a Ctrl-C or hang-up meant for the
        # CLI never reaches it (the CLI's exit ends it); a stop signal sent
        # to it ends it at once, and the CLI forks another runtime. Nothing
        # is left pending for the runtime it becomes.
        os.setsid()
        import signal

        from lsq._signals import STOP_SIGNALS

        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        close_inherited(keep=(handover_r, report_w))
        early = _preload(handover_r)
        payload = _read_all(handover_r)
        if not payload:
            # No app came: the CLI gave up. What the plan started ends here
            # (or at the guard, should this process be killed first), and the
            # lock is free once this process is gone.
            from lsq.runtime import _warm

            _warm.give_up()
            code = 0
        else:
            import pickle

            app, services, log = pickle.loads(payload)
            code = _run_child(app, services, log, report_w, note=f"{PRESTART_NOTE}{early}",
                              prestarted=True)
    finally:  # never unwinds into the CLI's code
        os._exit(code)


def close_inherited(keep: tuple[int, ...] = ()) -> None:
    """Close every descriptor above 2 but `keep`: a detached runtime must
    not hold what its caller had open (`lsq up -d 3>&1 | cat` would wait
    for the runtime to end)."""
    low = 3
    for fd in sorted(k for k in keep if k >= low):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, os.sysconf("SC_OPEN_MAX"))


def _preload(handover_fd: int) -> str:
    """Import `PRELOAD`, starting the replicas of the plan that comes first
    on the hand-over pipe as soon as it is there, and stopping early once
    the app follows (or the CLI gave up). Returns a note on the early starts."""
    import importlib
    import select

    note: str | None = None
    waiting = select.poll()  # not select: the descriptor may be above 1023
    waiting.register(handover_fd, select.POLLIN)
    for name in PRELOAD:
        if waiting.poll(0):
            if note is not None:
                return note  # the app is coming
            note = _take_plan(handover_fd)
        try:
            importlib.import_module(name)
        except ImportError:  # the runtime reports it, if it needs the module
            continue
    return _take_plan(handover_fd) if note is None else note


def _take_plan(handover_fd: int) -> str:
    """Read the plan's frame (`offer_plan`) and start its replicas."""
    head = _read_exactly(handover_fd, 4)
    data = _read_exactly(handover_fd, int.from_bytes(head, "big")) if len(head) == 4 else b""
    if not data:
        return ""
    from lsq.runtime import _warm

    try:
        started = _warm.begin_first(json.loads(data))
    except Exception as exc:  # they start the usual way, a little later
        return f"; early starts failed: {exc!r}"
    return f"; {started} replicas started once it was checked"


def _read_exactly(fd: int, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def offer_plan(app: AppConfig) -> None:
    """Send the prestarted runtime the replicas it may start before it has
    the app (`lsq.runtime._env.first_plan`). Call once the app is checked
    and nothing else stands in the way of its start."""
    if prestarted is None or prestarted.planned:
        return
    from lsq.runtime._env import first_plan

    prestarted.state = app.root / ".lsq"
    try:
        _send_frame(json.dumps(first_plan(app)).encode())
    except OSError:  # it exited (EPIPE): `start_detached` forks another
        abandon_prestart()


def _send_frame(data: bytes) -> None:
    assert prestarted is not None
    prestarted.planned = True
    frame = len(data).to_bytes(4, "big") + data
    while frame:
        frame = frame[os.write(prestarted.handover_fd, frame):]


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


def _hand_over(
    app: AppConfig | Callable[[], AppConfig], services: list[str], log: Path
) -> tuple[int, int] | None:
    """Give `app` to the prestarted runtime: its pid and report pipe, or None
    when there is none (a start from the cache never prestarts) or it could
    not take the app, and the caller should fork one."""
    global prestarted
    if prestarted is None or callable(app):
        return None
    import pickle

    try:
        if not prestarted.planned:
            _send_frame(b"")  # no plan: nothing starts before the app
        # Frozen: the runtime reads it without importing pydantic.
        payload = pickle.dumps((app.frozen(), services, log), pickle.HIGHEST_PROTOCOL)
        with open(prestarted.handover_fd, "wb", closefd=True) as pipe:
            pipe.write(payload)
    except (OSError, TypeError, ValueError, pickle.PicklingError):
        abandon_prestart()  # it exited (EPIPE), or the app does not pickle
        return None
    ready, prestarted = prestarted, None
    return ready.pid, ready.report_fd


def abandon_prestart() -> None:
    """End the runtime `prestart` forked, if it was not handed an app, and
    wait for it: gone when this CLI exits, rather than when it next looks
    at its pipe."""
    global prestarted
    ready, prestarted = prestarted, None
    if ready is None:
        return
    import signal

    _close_quietly(ready.handover_fd)
    _close_quietly(ready.report_fd)
    if ready.state is not None:
        # It was sent a plan and may have started replicas: the pipe's end
        # tells it to end them, tell its guard all is well and let go of the
        # lock. If it died (or does not finish), its guard ends them, holding
        # the lock meanwhile. Either way the lock is free once this returns,
        # so that the next runtime (or `lsq up`) finds the app stopped.
        if not _exited_within(ready.pid, _GIVE_UP_WAIT):
            try:
                os.kill(ready.pid, signal.SIGKILL)
                os.waitpid(ready.pid, 0)
            except OSError:
                pass
        from lsq.runtime._info import wait_for_guard

        wait_for_guard(ready.state)
        return
    try:
        os.kill(ready.pid, signal.SIGTERM)  # its default action: it starts nothing
        os.waitpid(ready.pid, 0)
    except OSError:  # gone already
        pass


_GIVE_UP_WAIT = 5.0
"""Seconds a prestarted runtime gets to end its early starts when the CLI gives up."""


def _exited_within(pid: int, seconds: float) -> bool:
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return True
        if done:
            return True
        time.sleep(0.005)
    return False


def _close_quietly(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def fork_runtime(
    app: AppConfig | Callable[[], AppConfig],
    services: list[str],
    log: Path,
    *,
    report_fd: int | None = None,
) -> int:
    """Fork a detached runtime for `app`; returns its pid in the parent.

    The child starts a new session, sends its output to `log`, runs the
    runtime until it is stopped, and never returns into the caller's code.
    `app` may be a function that makes the app, called in the child (the
    manifest cache: the parent then never loads the schema). With
    `report_fd` (the write end of a pipe) the child reports start-up on it
    (see `StartupReport`); the parent should close its copy.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    import signal

    from lsq._signals import STOP_SIGNALS

    held = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)  # until the child's handlers
    pid = os.fork()
    if pid:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
        return pid
    code = 1
    try:
        code = _run_child(app, services, log, report_fd)
    finally:  # the child must never unwind into the CLI
        os._exit(code)


def _run_child(
    app: AppConfig | Callable[[], AppConfig],
    services: list[str],
    log: Path,
    report_fd: int | None,
    *,
    note: str = "",
    prestarted: bool = False,
) -> int:
    """A detached runtime's life, in a child forked with the stop signals
    held: a session of its own, output to `log` (`note` first), the runtime
    until stopped. A `prestarted` one has its session and closed what it
    inherited already (what it opened since, its early starts', stays)."""
    code = 1
    try:
        if not prestarted:
            os.setsid()
            close_inherited(keep=(report_fd,) if report_fd is not None else ())
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.chdir(log.parent.parent)  # the app's folder (log is in its .lsq/)
        # A stop signal before the runtime's loop takes them is noted, not
        # fatal (a Ctrl-C would otherwise raise inside whatever is loading),
        # and not blocked either, as services inherit the mask (a service
        # blind to SIGTERM waits out stop_timeout): `lsq up -d` from the
        # cache forks before the CLI lets go of them.
        from lsq._signals import hold_stop_signals

        hold_stop_signals()
        if note:
            print(note, flush=True)
        if callable(app):
            from lsq.runtime import _warm

            try:
                _warm.begin(log.parent)
            except Exception as exc:  # a start the usual way is still possible
                print(f"lsq: warm start skipped: {exc!r}", flush=True)
            early = len(_warm.early.starts) if _warm.early else 0
            print("lsq: lsq.yaml, its .env files and the variables they read are unchanged: "
                  f"starting from .lsq/manifest.cache ({early} replicas started early)",
                  flush=True)
            app = app()
        code = _serve(app, services, report_fd)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return code


def _serve(app: AppConfig, services: list[str], report_fd: int | None = None) -> int:
    from lsq.control import serve
    from lsq.runtime import Printer

    def report(runtime: Runtime) -> None:
        if report_fd is not None:
            StartupReport(runtime, report_fd)

    try:
        return run_runtime(serve(app, services=services or None,
                                  printer=Printer(sys.stdout, notes_only=True),
                                  on_start=report))
    except LsqError as exc:
        print(f"lsq: error: {exc}", flush=True)
        return exc.exit_code


def main() -> None:
    from lsq.control import serve
    from lsq.manifest import load
    from lsq.runtime import Printer

    path, *rest = sys.argv[1:]
    overrides = [Path(a.split("=", 1)[1]) for a in rest if a.startswith("--override=")]
    services = [a for a in rest if not a.startswith("--override=")]
    try:
        app = load(Path(path), overrides=overrides)
        code = run_runtime(serve(app, services=services or None,
                                  printer=Printer(sys.stdout, notes_only=True)))
    except LsqError as exc:
        print(f"lsq: error: {exc}", flush=True)
        sys.exit(exc.exit_code)
    sys.exit(code)


if __name__ == "__main__":
    main()
