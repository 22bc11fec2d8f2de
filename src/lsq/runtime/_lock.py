"""What a runtime holds before anything starts: the app lock, the guard
process, the subreaper flag. No event loop is needed for any of it, so that
`lsq up -d` starting from the manifest cache can take them first
(`lsq.runtime._warm`) and the runtime adopts them.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING

from lsq.errors import RuntimeAlreadyRunning

if TYPE_CHECKING:
    from lsq.runtime._spawn import ExitWatch

_LOCK_TRIES = 20


class AppLock:
    """An flock on `.lsq/lock`: the kernel drops it when the runtime dies,
    so a lock left by a dead runtime is never mistaken for a live one."""

    def __init__(self, state_dir: Path) -> None:
        self._path = state_dir / "lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        if self._fd is not None:  # taken already (by lsq.runtime._warm)
            return
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        # `lsq down` and `lsq ps` test the lock by taking it for an instant;
        # only a lock still held after a few tries is a live runtime's.
        for attempt in range(_LOCK_TRIES):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if attempt < _LOCK_TRIES - 1:
                    time.sleep(0.01)
        else:
            os.close(fd)
            raise RuntimeAlreadyRunning(
                f"a runtime is already running for this app ({self._path.parent}); "
                "use `lsq ps` to see it or `lsq down` to stop it"
            ) from None
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


_PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> None:
    """prctl(PR_SET_CHILD_SUBREAPER): orphaned descendants become our children."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return
    libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


class GuardProcess:
    """The guard child (see `lsq.runtime._guard`), fed over its stdin.

    `on_exit` is called if the guard ends while it is still wanted (killed
    by someone), so that the runtime can start another one.
    """

    def __init__(
        self, on_exit: Callable[[int], None] | None = None, *, app_dir: Path | None = None
    ) -> None:
        # Run as a plain file (-I -S: no site, no lsq package) so that the
        # guard costs a bare interpreter's memory, not the runtime's imports.
        # With the app's folder it also sweeps services it was not told of.
        extra = ["--runtime", str(os.getpid())]
        extra += ["--app-dir", str(app_dir)] if app_dir is not None else []
        self._proc = subprocess.Popen(
            [sys.executable, "-I", "-S", str(Path(__file__).with_name("_guard.py")), *extra],
            stdin=subprocess.PIPE,
            start_new_session=True,
            close_fds=True,
        )
        assert self._proc.stdin is not None
        self._pipe: IO[bytes] = self._proc.stdin
        self._lock = threading.Lock()  # spawning threads and the loop both send
        self._watch: ExitWatch | None = None
        if on_exit is not None:
            self.watch(on_exit)

    def watch(self, on_exit: Callable[[int], None]) -> None:
        """Call `on_exit` (on the running loop) if the guard ends while wanted;
        a guard started before the loop (lsq.runtime._warm) is watched from
        when the runtime takes it."""
        import asyncio

        from lsq.runtime._spawn import ExitWatch

        self._watch = ExitWatch(self._proc, asyncio.get_running_loop(), on_exit)

    @property
    def pid(self) -> int:
        return self._proc.pid

    def send(self, op: str, pgid: int) -> None:
        try:
            with self._lock:
                self._pipe.write(f"{op}{pgid}\n".encode())
                self._pipe.flush()
        except (BrokenPipeError, ValueError):
            pass

    def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
        try:
            self._pipe.write(b"exit\n")
            self._pipe.close()
        except (BrokenPipeError, ValueError):
            pass
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
