"""What a running runtime leaves in `.lsq/`, readable without importing the runtime."""

from __future__ import annotations

import fcntl
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lsq.runtime._guard import GRACE, SWEEPING

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
    """The live runtime's info, or None if none runs (a stale file is ignored).

    A runtime that died (SIGKILL, a crash) leaves its guard ending what it
    started, holding the lock meanwhile: a `runtime.json` whose pid is gone
    says so, and `.lsq/sweeping` (the guard's pid) for a runtime that died
    before it wrote one. That is waited out, and then nothing runs."""
    try:
        data = json.loads((state_dir / "runtime.json").read_text())
        info = RuntimeInfo(**{k: data[k] for k in ("pid", "port", "started", "app", "manifest")})
    except (OSError, ValueError, TypeError, KeyError):
        info = None
    if info is None and not _sweeping(state_dir):
        return None
    if not _lock_held(state_dir):
        return None
    if info is None or not _alive(info.pid):
        wait_for_guard(state_dir)
        return None
    return info


def _sweeping(state_dir: Path) -> bool:
    try:
        return _alive(int((state_dir / SWEEPING).read_text()))
    except (OSError, ValueError):
        return False


def wait_for_guard(state_dir: Path) -> None:
    """Wait until the guard of a runtime that died lets go of the app's lock
    (`lsq.runtime._guard`: it holds it while it ends the runtime's
    processes), so that a new runtime can take it."""
    deadline = time.monotonic() + GRACE + 1.0
    while _lock_held(state_dir) and time.monotonic() < deadline:
        time.sleep(0.02)


def _alive(pid: int) -> bool:
    """Running: not gone, and not a zombie its new parent has yet to collect
    (which can take seconds; it holds nothing, the lock included)."""
    return process_state(pid) not in (None, "Z", "X")


def process_state(pid: int) -> str | None:
    """The state letter of /proc/PID/stat (R, S, T for stopped, Z for a
    zombie...), or None if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0].decode()
    except (OSError, IndexError):
        return None


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


