"""The guard: ends every service's process group if the runtime dies.

The runtime starts one guard per app and keeps a pipe to its stdin. It writes
`+PGID` when a group is started and `-PGID` when it is gone. If the runtime is
killed (even with SIGKILL) the pipe closes; the guard then sends SIGTERM to
every group it still knows, waits up to `GRACE` seconds, and SIGKILLs what is
left: the whole group, not only the direct child, so what a shell line or a
wrapper script started beneath it ends too. It is the services' only
parent-death mechanism; the runtime replaces a guard that dies.

A start has a moment between its process existing and the runtime telling
the guard (a warm start makes many at once, while the runtime loads). So,
given `--app-dir DIR`, the guard also ends, after the runtime died, every
process whose environment says `LSQ_APP_DIR=DIR` and `LSQ_INSTANCE` (a service
of this app), while it holds the app's lock (`DIR/.lsq/lock`): if another
runtime holds it, those are that runtime's services, and none are swept.

Run as `python -I -S .../_guard.py --runtime PID [--app-dir DIR]`. It uses only the
standard library so that it starts fast and stays small.
"""

from __future__ import annotations

import fcntl
import os
import signal
import sys
import time

GRACE = 3.0
SWEEPING = "sweeping"  # in .lsq/: this guard's pid while it ends a dead runtime's services
SECOND_LOOK = 0.5  # seconds after the first sweep, at the least, for a second one
LOCK_WAIT = 1.0  # seconds the lock is asked for (see _lock)


def _alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _end_all(groups: set[int], app_dir: str | None = None) -> None:
    for pgid in groups:
        try:
            os.killpg(pgid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
    began = time.monotonic()
    deadline = began + GRACE
    while time.monotonic() < deadline and any(_alive(g) for g in groups):
        time.sleep(0.05)
    if app_dir is not None:
        # A start the dead runtime had under way may have exec'd only after the
        # first look (until then its environment was the runtime's): look again.
        time.sleep(max(0.0, began + SECOND_LOOK - time.monotonic()))
        groups = groups | _swept(app_dir)
    for pgid in groups:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _swept(app_dir: str) -> set[int]:
    """Groups of this app's services that nobody told us of (see above)."""
    mark = b"\0LSQ_APP_DIR=" + os.fsencode(app_dir) + b"\0"
    found: set[int] = set()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as file:
                environ = b"\0" + file.read()
            if mark in environ and b"\0LSQ_INSTANCE=" in environ:
                found.add(os.getpgid(int(name)))
        except OSError:  # gone, or not ours to read
            continue
    found.discard(os.getpgid(0))
    return found


def _wait_gone(runtime: int) -> None:
    """Our pipe may close a moment before the dying runtime's other
    descriptors, its lock among them: the kernel gives us a new parent only
    once they are all closed."""
    deadline = time.monotonic() + 1.0
    while os.getppid() == runtime and time.monotonic() < deadline:
        time.sleep(0.002)


def _lock(app_dir: str) -> int | None:
    """The app's lock, if no runtime holds it; None otherwise.

    A start the dead runtime had under way holds a copy of the lock from its
    fork until it closes the descriptors it was not given, a moment later
    (more on a loaded machine); a new runtime of the app holds it for good.
    So it is asked for again for up to LOCK_WAIT seconds."""
    try:
        fd = os.open(os.path.join(app_dir, ".lsq", "lock"), os.O_RDWR)
    except OSError:
        return None
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except OSError:
            if time.monotonic() >= deadline:
                os.close(fd)
                return None
            time.sleep(0.01)


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    args = sys.argv[1:]
    options = dict(zip(args[::2], args[1::2]))
    app_dir = options.get("--app-dir")
    # Given, not read: a runtime killed while this interpreter started is
    # no longer our parent by the time we could ask.
    runtime = int(options.get("--runtime", "0"))
    groups: set[int] = set()
    for line in sys.stdin.buffer:
        text = line.strip().decode("ascii", "replace")
        if text[:1] == "+" and text[1:].isdigit():
            groups.add(int(text[1:]))
        elif text[:1] == "-" and text[1:].isdigit():
            groups.discard(int(text[1:]))
        elif text == "exit":
            return
    # The runtime died. Held while sweeping and ending, the lock keeps a new
    # runtime of this app from starting services that the sweep would take.
    _wait_gone(runtime)
    lock = _lock(app_dir) if app_dir else None
    if lock is None:
        _end_all(groups)
        return
    # Said in a file too: a runtime that died before it wrote runtime.json
    # leaves nothing else that tells this from a runtime starting up.
    sweeping = os.path.join(app_dir, ".lsq", SWEEPING)  # type: ignore[arg-type]
    try:
        with open(sweeping, "w") as file:
            file.write(str(os.getpid()))
    except OSError:
        pass
    groups |= _swept(app_dir)  # type: ignore[arg-type]
    _end_all(groups, app_dir)
    try:
        os.unlink(sweeping)  # before the lock goes with this process
    except OSError:
        pass


if __name__ == "__main__":
    main()
