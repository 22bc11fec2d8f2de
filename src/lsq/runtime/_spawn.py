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
import concurrent.futures
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from lsq.runtime._lines import LineReader
from lsq.runtime._start import (  # noqa: F401 (argv_for and the rest are used from here)
    _Abandoned,
    _Start,
    _spawner,
    argv_for,
    signal_group,
    stop_spawning,
)


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
    start = _Start(argv_for(command, env), cwd, dict(env), guard)
    return await adopt(start, loop.run_in_executor(_spawner(), start.run), sink=sink)


async def adopt(
    start: _Start,
    job: asyncio.Future[tuple[subprocess.Popen[bytes], int, int]]
    | concurrent.futures.Future[tuple[subprocess.Popen[bytes], int, int]],
    *,
    sink: StreamSink,
) -> Child:
    """Take the process `start` makes on a spawning thread (`job`), as
    `spawn` does; also for a start made before the loop ran (_warm)."""
    loop = asyncio.get_running_loop()
    job = asyncio.wrap_future(job, loop=loop)
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
