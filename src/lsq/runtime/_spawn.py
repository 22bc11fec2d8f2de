"""Start a service process in a process group of its own, and end that group.

Each replica gets a new session (and so a new process group), so that a
signal reaches the whole tree a shell line or a wrapper script starts, and so
that the terminal's Ctrl-C reaches only `lsq`, which then stops services in
order. On Linux the direct child also gets a parent-death signal; the
grandchildren are covered by the guard process (`lsq.runtime._guard`).
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import re
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from lsq.manifest._interpolate import is_instance_variable
from lsq.runtime._lines import LineReader

_PR_SET_PDEATHSIG = 1


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return None


_LIBC = _libc()


def set_parent_death_signal(sig: int = signal.SIGKILL) -> None:
    """Ask the kernel to send `sig` to this process when its parent dies."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)


def _child_setup() -> None:
    # Runs in the child between fork and exec.
    set_parent_death_signal(signal.SIGTERM)


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


class Child(asyncio.SubprocessProtocol):
    """A running service process: its output lines and its exit."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sink: StreamSink) -> None:
        self._loop = loop
        self._readers = {
            1: LineReader(lambda text, partial: sink("stdout", text, partial), loop=loop),
            2: LineReader(lambda text, partial: sink("stderr", text, partial), loop=loop),
        }
        self.exited: asyncio.Future[int] = loop.create_future()
        self.transport: asyncio.SubprocessTransport | None = None

    @property
    def pid(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_pid())

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        self._readers[fd].data_received(data)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        self._readers[fd].connection_lost(exc)

    def process_exited(self) -> None:
        assert self.transport is not None
        code = self.transport.get_returncode()
        if not self.exited.done():
            self.exited.set_result(-1 if code is None else code)

    async def wait_output_closed(self, timeout: float) -> None:
        """Wait for both pipes to close (a grandchild may hold them open)."""
        closed = [r.closed for r in self._readers.values()]
        await asyncio.wait(closed, timeout=timeout)
        for reader in self._readers.values():
            reader.connection_lost(None)


StreamSink = Callable[[str, str, bool], None]
"""Called with (stream name, text, partial) for every line."""


async def spawn(
    command: str | Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    sink: StreamSink,
) -> Child:
    """Start `command` with stdout and stderr read line by line, in a new session.

    Raises FileNotFoundError or PermissionError when an argv command cannot be
    executed; a shell command that does not exist exits with 127 instead.
    """
    loop = asyncio.get_running_loop()
    argv = argv_for(command)
    if not isinstance(command, str):
        argv = expand_instance_vars(argv, env)
    _, child = await loop.subprocess_exec(
        lambda: Child(loop, sink),
        *argv,
        cwd=cwd,
        env=dict(env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
        preexec_fn=_child_setup,
    )
    return child


def signal_group(pgid: int, sig: int) -> bool:
    """Send `sig` to a process group; False if the group is already gone."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
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
