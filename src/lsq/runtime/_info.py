"""What a running runtime leaves in `.lsq/`, readable without importing the runtime."""

from __future__ import annotations

import fcntl
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lsq.manifest import AppConfig


@dataclass(frozen=True)
class RuntimeInfo:
    pid: int
    port: int
    started: float
    app: str
    manifest: str


def state_dir_for(app: AppConfig) -> Path:
    return app.root / ".lsq"


def read_runtime_info(state_dir: Path) -> RuntimeInfo | None:
    """The live runtime's info, or None if none runs (a stale file is ignored)."""
    _wait_for_sweep(state_dir)
    try:
        data = json.loads((state_dir / "runtime.json").read_text())
        info = RuntimeInfo(**{k: data[k] for k in ("pid", "port", "started", "app", "manifest")})
    except (OSError, ValueError, TypeError, KeyError):
        return None
    if not _lock_held(state_dir):
        return None
    if not _alive(info.pid):
        # It died (SIGKILL, a crash): its guard holds the lock while it ends
        # what the runtime started. Once it lets go, nothing runs.
        wait_for_guard(state_dir)
        return None
    return info


def _wait_for_sweep(state_dir: Path) -> None:
    """A dead runtime's guard ending its services says so in `.lsq/sweeping`
    (its pid): wait until it is done."""
    try:
        from lsq.runtime._guard import SWEEPING

        pid = int((state_dir / SWEEPING).read_text())
    except (OSError, ValueError):
        return
    if _alive(pid) and _lock_held(state_dir):
        wait_for_guard(state_dir)


def wait_for_guard(state_dir: Path) -> None:
    """Wait until the guard of a runtime that died lets go of the app's lock
    (`lsq.runtime._guard`: it holds it while it ends the runtime's
    processes), so that a new runtime can take it."""
    from lsq.runtime._guard import GRACE

    try:
        fd = os.open(state_dir / "lock", os.O_RDWR)
    except OSError:
        return
    try:
        deadline = time.monotonic() + GRACE + 1.0
        while time.monotonic() < deadline:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                time.sleep(0.02)
    finally:
        os.close(fd)  # lets go of it too


def _alive(pid: int) -> bool:
    """Running: not gone, and not a zombie its new parent has yet to collect
    (which can take seconds; it holds nothing, the lock included)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)  # no /proc: ask the kernel
        except ProcessLookupError:
            return False
        except PermissionError:  # someone else's process
            return True
        return True
    return state not in (b"Z", b"X")


def starting_runtime_info(state_dir: Path, timeout: float) -> RuntimeInfo | None:
    """Like `read_runtime_info`, but a runtime that holds the app's lock and
    has not yet written its info (it is starting) is waited for, up to
    `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        info = read_runtime_info(state_dir)
        if info is not None or not _lock_held(state_dir) or time.monotonic() > deadline:
            return info
        time.sleep(0.05)


def _lock_held(state_dir: Path) -> bool:
    try:
        fd = os.open(state_dir / "lock", os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


