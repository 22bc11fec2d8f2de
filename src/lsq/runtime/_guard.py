"""The guard: ends every service's process group if the runtime dies.

The runtime starts one guard per app and keeps a pipe to its stdin. It writes
`+PGID` when a group is started and `-PGID` when it is gone. If the runtime is
killed (even with SIGKILL) the pipe closes; the guard then sends SIGTERM to
every group it still knows, waits up to `GRACE` seconds, and SIGKILLs what is
left: the whole group, not only the direct child, so what a shell line or a
wrapper script started beneath it ends too. It is the services' only
parent-death mechanism; the runtime replaces a guard that dies.

Run as `python -m lsq.runtime._guard`. It uses only the standard library so
that it starts fast and stays small.
"""

from __future__ import annotations

import os
import signal
import sys
import time

GRACE = 3.0


def _alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _end_all(groups: set[int]) -> None:
    for pgid in groups:
        try:
            os.killpg(pgid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + GRACE
    while time.monotonic() < deadline and any(_alive(g) for g in groups):
        time.sleep(0.05)
    for pgid in groups:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    groups: set[int] = set()
    for line in sys.stdin.buffer:
        text = line.strip().decode("ascii", "replace")
        if text[:1] == "+" and text[1:].isdigit():
            groups.add(int(text[1:]))
        elif text[:1] == "-" and text[1:].isdigit():
            groups.discard(int(text[1:]))
        elif text == "exit":
            return
    _end_all(groups)


if __name__ == "__main__":
    main()
