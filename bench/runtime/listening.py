#!/usr/bin/env python3
"""When the 50 services start listening, against when each launcher says all are up.

Usage: .venv/bin/python bench/runtime/listening.py [--rounds 3] [--services 50]

Each service is the start-up benchmark's trivial HTTP server, but it writes the
time (CLOCK_MONOTONIC, the same clock in every process) just before it starts
serving. Each round runs a first `lsq up -d` and the bare asyncio launcher in
turn and prints, from the launch: when the first, median and last service
listened, when the launcher was done (`lsq up -d` returned; the bare launcher
saw every port answer), and the lag between the last one listening and done.

A small lag with a late last listener says the time goes to the CPU the
services get (they share the cores with the launcher), not to noticing that
they are up.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

MARKED = c.SERVICE_SOURCE.replace(
    'http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()',
    'server = http.server.HTTPServer(("127.0.0.1", port), Handler)\n'
    "import time\n"
    "with open(os.path.join(os.environ['MARK_DIR'], str(port)), 'w') as f:\n"
    "    f.write(repr(time.monotonic()))\n"
    "server.serve_forever()",
)
assert MARKED != c.SERVICE_SOURCE


def _marks(folder: Path, since: float) -> list[float]:
    return sorted(float(p.read_text()) - since for p in folder.iterdir())


def lsq_round(count: int) -> tuple[float, list[float]]:
    folder = c.workdir()
    marks = folder / "marks"
    marks.mkdir()
    c.lsq_manifest(folder, c.write_service(folder), count)
    env = dict(os.environ, MARK_DIR=str(marks))
    t0 = time.monotonic()
    subprocess.run([str(c.LSQ), "up", "-d"], cwd=folder, env=env, check=True,
                   capture_output=True, timeout=c.START_TIMEOUT)
    done = time.monotonic() - t0
    listened = _marks(marks, t0)
    c.lsq_down(folder)
    c.cleanup(folder)
    return done, listened


def bare_round(count: int) -> tuple[float, list[float]]:
    marks = Path(c.workdir())
    os.environ["MARK_DIR"] = str(marks)  # the bare launcher passes its environment on
    t0 = time.monotonic()
    run = c.start_bare(count)
    listened = _marks(marks, t0)
    c.stop_and_clean(run)
    c.cleanup(marks)
    return run.extra["seconds"], listened


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--services", type=int, default=50)
    args = parser.parse_args()
    c.SERVICE_SOURCE = MARKED  # what write_service writes, for both launchers
    c.print_machine()
    c.compile_lsq()
    lags: dict[str, list[float]] = {"lsq-first": [], "bare": []}
    print("seconds from the launch: services listening first / median / last; done; lag")
    for i in range(args.rounds):
        for name, run in (("lsq-first", lsq_round), ("bare", bare_round)):
            done, listened = run(args.services)
            assert len(listened) == args.services, f"{name}: {len(listened)} marks"
            lag = done - listened[-1]
            lags[name].append(lag)
            print(f"round {i + 1} {name:9} {listened[0]:.3f} / {statistics.median(listened):.3f}"
                  f" / {listened[-1]:.3f}; done {done:.3f}; lag {lag * 1000:.0f} ms")
    for name, values in lags.items():
        print(f"{name}: lag between the last service listening and done, "
              f"median {statistics.median(values) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
