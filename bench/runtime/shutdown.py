#!/usr/bin/env python3
"""Shut-down time: stop command until all 50 service processes are gone.

Usage: .venv/bin/python bench/runtime/shutdown.py [--rounds 5] [--services 50]

Each candidate starts the same 50 services (not timed), its service PIDs are
recorded, then the clock runs from the stop until every one of those PIDs has
exited (checked by PID and start time; a zombie counts as exited):
  lsq            `lsq down` (the CLI; also: when the CLI returned)
  circus-ctl     `circusctl quit`
  circus-term    SIGTERM to circusd
  honcho         SIGTERM to honcho
  supervisord    SIGTERM to supervisord
  bare           SIGTERM to each service from the asyncio launcher: the floor
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

STARTERS: dict[str, Callable[[int], c.Running]] = {
    "lsq": c.start_lsq,
    "circus-ctl": c.start_circus,
    "circus-term": lambda n: c.start_circus(n, stop_with="sigterm"),
    "honcho": c.start_honcho,
    "supervisord": c.start_supervisord,
    "bare": c.start_bare,
}


def timed_stop(run: c.Running) -> tuple[float, float]:
    """(seconds until the stop call returned, seconds until all are gone)."""
    procs = c.handles(run.pids)
    t0 = time.monotonic()
    run.stop()
    returned = time.monotonic() - t0
    c.wait_gone(procs)
    gone = time.monotonic() - t0
    c.reap(run)
    if run.folder is not None:
        c.cleanup(run.folder)
    return returned, gone


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--services", type=int, default=50)
    args = parser.parse_args()
    c.print_machine()
    c.ensure_peers()
    names = list(STARTERS)
    gone: dict[str, list[float]] = {n: [] for n in names}
    lsq_returned: list[float] = []
    for i in range(args.rounds):
        order = names[i % len(names) :] + names[: i % len(names)]
        row = []
        for name in order:
            run = STARTERS[name](args.services)
            if len(run.pids) != args.services:
                raise RuntimeError(f"{name}: {len(run.pids)} services found")
            returned, seconds = timed_stop(run)
            gone[name].append(seconds)
            if name == "lsq":
                lsq_returned.append(returned)
            row.append(f"{name} {seconds:.3f}s")
        print(f"round {i + 1}: " + "  ".join(row), flush=True)
    print("\nseconds from stop until all 50 service PIDs are gone, min / median / max:")
    for name in names:
        print(f"  {name:12s} {c.fmt3(gone[name], digits=3)}")
    print(f"  lsq down returned after {c.fmt3(lsq_returned, digits=3)}")
    print("\nratios of medians:")
    for peer in names[1:]:
        ratio = statistics.median(gone["lsq"]) / statistics.median(gone[peer])
        print(f"  lsq/{peer:12s} {ratio:.2f}")


if __name__ == "__main__":
    main()
