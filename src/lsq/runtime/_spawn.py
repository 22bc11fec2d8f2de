"""Start a service process in a process group of its own, and end that group.

Each replica gets a new session (and so a new process group), so that a
signal reaches the whole tree a shell line or a wrapper script starts, and so
that the terminal's Ctrl-C reaches only `lsq`, which then stops services in
order. If the runtime dies, even by SIGKILL, the guard process
(`lsq.runtime._guard`) ends every group it was told about.

Processes are started with `subprocess.Popen` and no `preexec_fn`, so that
CPython takes its vfork path: the cost of a start does not grow with the
runtime's memory. `Popen` runs on a few threads (`_spawner`), so the event
loop never waits for an `exec`. The event loop then reads the output pipes
and learns of the exit through a pidfd (Linux 5.3+), or a waiting thread
where there is none.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from lsq.manifest._interpolate import is_instance_variable
from lsq.runtime._lines import LineReader


def argv_for(command: str | Sequence[str]) -> list[str]:
    """A string runs through /bin/sh -c; a list runs as it is."""
    if isinstance(command, str):
        return ["/bin/sh", "-c", command]
    return list(command)


_VARIABLE = re.compile(
    r"\$\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}"
    r"|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
)


def expand_instance_vars(argv: list[str], env: Mapping[str, str]) -> list[str]:
    """Put the instance's PORT (and the other variables LSQ sets per instance)
    into an argv command: `${PORT}`, `$PORT` and `${PORT:-default}`.

    Only for argv lists: a string command runs through /bin/sh, which expands
    them itself. Other names are left as written (the loader has already
    expanded `${VAR}` from the caller's environment).
    """

    def replace(match: re.Match[str]) -> str:
        name = match.group("braced") or match.group("bare")
        if not is_instance_variable(name):
            return match.group(0)
        value = env.get(name, "")
        if not value and match.group("default") is not None:
            return match.group("default")
        return value

    return [_VARIABLE.sub(replace, arg) for arg in argv]


StreamSink = Callable[[str, str, bool], None]
"""Called with (stream name, text, partial) for every line."""

_READ_SIZE = 64 * 1024
_GROUP_POLL = 0.01  # seconds between looks at a group that is being ended


class ExitWatch:
    """Calls `on_exit(returncode)` on the loop once `proc` has ended, and reaps it.

    A pidfd in the event loop where the kernel has them; elsewhere a thread
    blocked in waitpid.
    """

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        loop: asyncio.AbstractEventLoop,
        on_exit: Callable[[int], None],
    ) -> None:
        self._proc = proc
        self._loop = loop
        self._on_exit: Callable[[int], None] | None = on_exit
        self._pidfd = -1
        try:
            self._pidfd = os.pidfd_open(proc.pid)
        except (AttributeError, OSError):
            threading.Thread(
                target=self._wait_in_thread, name=f"wait {proc.pid}", daemon=True
            ).start()
            return
        loop.add_reader(self._pidfd, self._reap)

    def _wait_in_thread(self) -> None:
        self._proc.wait()
        try:
            self._loop.call_soon_threadsafe(self._reap)
        except RuntimeError:  # the loop is closed: nobody waits any more
            pass

    def _reap(self) -> None:
        code = self._proc.poll()
        if code is None:  # a pidfd turns readable only once the process ended
            return
        on_exit = self._on_exit
        self.cancel()
        if on_exit is not None:
            on_exit(code)

    def cancel(self) -> None:
        """Stop watching; the process is still reaped by whoever waits for it."""
        self._on_exit = None
        if self._pidfd >= 0:
            self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = -1


class Child:
    """A running service process: its output lines and its exit."""

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        pipes: dict[str, int],
        *,
        loop: asyncio.AbstractEventLoop,
        sink: StreamSink,
    ) -> None:
        self._proc = proc
        self._loop = loop
        self.pid = proc.pid
        self.exited: asyncio.Future[int] = loop.create_future()
        self._readers: dict[int, LineReader] = {}
        for name, fd in pipes.items():
            self._readers[fd] = LineReader(
                lambda text, partial, name=name: sink(name, text, partial), loop=loop
            )
            os.set_blocking(fd, False)
            loop.add_reader(fd, self._readable, fd)
        self._exit = ExitWatch(proc, loop, self._ended)

    def _readable(self, fd: int) -> None:
        try:
            data = os.read(fd, _READ_SIZE)
        except BlockingIOError:
            return
        except OSError as exc:
            self._close_pipe(fd, exc)
            return
        if data:
            self._readers[fd].data_received(data)
        else:
            self._close_pipe(fd, None)

    def _close_pipe(self, fd: int, exc: Exception | None) -> None:
        reader = self._readers.pop(fd, None)
        if reader is None:
            return
        self._loop.remove_reader(fd)
        os.close(fd)
        reader.connection_lost(exc)

    def _ended(self, code: int) -> None:
        if not self.exited.done():
            self.exited.set_result(code)

    async def wait_output_closed(self, timeout: float) -> None:
        """Wait for both pipes to close (a grandchild may hold them open)."""
        closed = [r.closed for r in self._readers.values()]
        if closed:
            await asyncio.wait(closed, timeout=timeout)
        for fd in list(self._readers):
            self._close_pipe(fd, None)


async def spawn(
    command: str | Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    sink: StreamSink,
    guard: Callable[[str, int], object] = lambda op, pgid: None,
) -> Child:
    """Start `command` with stdout and stderr read line by line, in a new session.

    Raises FileNotFoundError or PermissionError when an argv command cannot be
    executed; a shell command that does not exist exits with 127 instead.
    `guard("+", pgid)` is called on the starting thread as soon as the
    process exists, before this returns (the guard must hear of the group at
    once), so it must be thread-safe. A start whose caller is cancelled
    meanwhile, or that is still going on at `stop_spawning()`, is ended on
    whichever thread learns of it last (its group killed and reaped, then
    `guard("-", pgid)`), so that nothing runs unowned, whether or not an
    event loop is still running.
    """
    loop = asyncio.get_running_loop()
    argv = argv_for(command)
    if not isinstance(command, str):
        argv = expand_instance_vars(argv, env)
    start = _Start(argv, cwd, dict(env), guard)
    job = loop.run_in_executor(_spawner(), start.run)
    try:
        proc, out_r, err_r = await asyncio.shield(job)
    except asyncio.CancelledError:
        start.abandon()
        raise
    except _Abandoned:
        raise asyncio.CancelledError from None  # stop_spawning() came first
    if not start.take():
        raise asyncio.CancelledError  # stop_spawning() came first and ended it
    return Child(proc, {"stdout": out_r, "stderr": err_r}, loop=loop, sink=sink)


class _Start:
    """One process start, handed from its thread to the loop, or ended.

    The thread starts the process; the caller then `take`s it. If the caller
    gave up first (`abandon`), whichever of the two comes second ends the
    process, under a lock, so exactly one of them does.
    """

    _live: set[_Start] = set()
    _live_lock = threading.Lock()

    def __init__(
        self,
        argv: list[str],
        cwd: Path,
        env: dict[str, str],
        guard: Callable[[str, int], object],
    ) -> None:
        self.argv, self.cwd, self.env, self.guard = argv, cwd, env, guard
        self.lock = threading.Lock()
        self.abandoned = False
        self.taken = False
        self.made: tuple[subprocess.Popen[bytes], int, int] | None = None
        with _Start._live_lock:
            _Start._live.add(self)

    def run(self) -> tuple[subprocess.Popen[bytes], int, int]:
        try:
            with self.lock:
                if self.abandoned:  # given up before it began: start nothing
                    raise _Abandoned
            made = self._popen()
        except BaseException:
            self._settled()
            raise
        with self.lock:
            self.made = made
            end = self.abandoned
        if end:
            self._end(made)
        return made

    def _settled(self) -> None:
        # Taken, ended or failed: nothing of it is left to end at shut-down.
        with _Start._live_lock:
            _Start._live.discard(self)

    def _popen(self) -> tuple[subprocess.Popen[bytes], int, int]:
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            proc = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out_w,
                stderr=err_w,
                start_new_session=True,
                close_fds=True,
            )
        except BaseException:
            for fd in (out_r, err_r):
                os.close(fd)
            raise
        finally:
            os.close(out_w)
            os.close(err_w)
        self.guard("+", proc.pid)
        return proc, out_r, err_r

    def take(self) -> bool:
        """The caller takes the process; False if it was ended meanwhile."""
        with self.lock:
            if self.abandoned:
                return False
            self.taken = True
        self._settled()
        return True

    def abandon(self) -> None:
        """The caller gives up: end the process if it exists and is not taken."""
        with self.lock:
            if self.abandoned or self.taken:
                return
            self.abandoned = True
            made = self.made
        if made is not None:
            self._end(made)

    def _end(self, made: tuple[subprocess.Popen[bytes], int, int]) -> None:
        proc, out_r, err_r = made
        os.close(out_r)
        os.close(err_r)
        signal_group(proc.pid, signal.SIGKILL)
        proc.wait()
        self.guard("-", proc.pid)
        self._settled()


class _Abandoned(Exception):
    """A start given up before its thread began it."""


_SPAWNER: ThreadPoolExecutor | None = None


def _spawner() -> ThreadPoolExecutor:
    """The threads that start processes.

    CPython's vfork holds the calling thread until the child has exec'd. With
    50 services starting on 2 cores that took 10-100 ms a start, during which
    an event loop calling `Popen` itself could neither start the next one nor
    probe health; on these threads the starts overlap and the loop goes on.
    """
    global _SPAWNER
    if _SPAWNER is None:
        _SPAWNER = ThreadPoolExecutor(8, thread_name_prefix="lsq-spawn")
    return _SPAWNER


def stop_spawning() -> None:
    """End every start nobody has taken yet and wait for the threads.

    Called when the runtime shuts down, after its services are stopped: a
    start still queued or on its way then would otherwise outlive it.
    """
    global _SPAWNER
    with _Start._live_lock:
        pending = list(_Start._live)
    for start in pending:
        start.abandon()
    if _SPAWNER is not None:
        _SPAWNER.shutdown(wait=True, cancel_futures=True)
        _SPAWNER = None
    with _Start._live_lock:
        _Start._live.clear()  # those left were cancelled before their thread began


def signal_group(pgid: int, sig: int) -> bool:
    """Send `sig` to a process group; False if the group is already gone."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    return True


async def group_gone(pgid: int, timeout: float) -> bool:
    """Wait up to `timeout` seconds for the group to empty (its zombies
    reaped); True once it is. Nothing signals that, so it is polled."""
    deadline = time.monotonic() + timeout
    while group_alive(pgid):
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(_GROUP_POLL)
    return True


def group_alive(pgid: int) -> bool:
    """Does any live process remain in the group?

    The runtime is a child subreaper, so members whose parent exited are
    reparented to it and, once they exit, stay zombies until it reaps them;
    a zombie would keep the group "alive". Those are reaped here. The
    group's leader is never reaped here: the event loop owns its exit status.
    """
    if not signal_group(pgid, 0):
        return False
    _reap_orphans(pgid)
    return signal_group(pgid, 0)


def _reap_orphans(pgid: int) -> None:
    import psutil

    try:
        children = psutil.Process().children()
    except psutil.Error:
        return
    for child in children:
        if child.pid == pgid:
            continue
        try:
            if child.status() == psutil.STATUS_ZOMBIE and os.getpgid(child.pid) == pgid:
                os.waitpid(child.pid, os.WNOHANG)
        except (psutil.Error, OSError):
            continue


def signal_number(name: str) -> int:
    return int(getattr(signal, name))
