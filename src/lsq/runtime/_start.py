"""Starting a service process on a spawning thread, and ending a start that
nobody took: the part of `lsq.runtime._spawn` that needs no event loop.

`lsq up -d` starting from the manifest cache uses it before asyncio is even
imported (`lsq.runtime._warm`); `spawn` uses it for every start.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lsq.manifest._interpolate import is_instance_variable


def argv_for(command: str | Sequence[str], env: Mapping[str, str]) -> list[str]:
    """A string runs through /bin/sh -c (which expands `$PORT` itself); a
    list runs as it is, with the instance's variables from `env` put in
    (`expand_instance_vars`)."""
    if isinstance(command, str):
        return ["/bin/sh", "-c", command]
    return expand_instance_vars(list(command), env)


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
