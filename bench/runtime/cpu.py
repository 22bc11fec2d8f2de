#!/usr/bin/env python3
"""Where the CPU of one start of 50 services goes: each LSQ process, the
services, and the bare launcher for comparison.

Usage: .venv/bin/python bench/runtime/cpu.py [--rounds 5] [--services 50] [--repeat]

Each round is a first `lsq up -d` in a new app folder (with `--repeat`, a
start in the same folder again, from the manifest cache), then the bare
asyncio launcher. Right after `lsq up -d` returns, it reads the CPU time of
the runtime, its gateway worker, its guard and every service
(`_common.cpu_seconds`: all threads, to the nanosecond), and the CLI's from `getrusage`
(the CLI is the only child this script waits for). For the bare launcher it
takes the launcher's own `getrusage` (it runs in this process) and the
services' schedstat.

With both cores busy until the last service listens, each millisecond of
CPU a launcher spends is a millisecond the services do not get: the sums
here explain most of the start-up benchmark's ratios.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c


def cpu_ms(pid: int) -> float:
    return c.cpu_seconds(pid) * 1000


def _own_cpu(who: int) -> float:
    used = resource.getrusage(who)
    return (used.ru_utime + used.ru_stime) * 1000


def lsq_round(count: int, repeat: bool) -> dict[str, float]:
    if repeat:
        folder = c.repeat_folder(count)
    else:
        folder = c.workdir()
        c.lsq_manifest(folder, c.write_service(folder), count)
    before = _own_cpu(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    subprocess.run([str(c.LSQ), "up", "-d"], cwd=folder, check=True, capture_output=True)
    found = {"seconds": time.monotonic() - t0, "cli": _own_cpu(resource.RUSAGE_CHILDREN) - before}
    runtime = c.lsq_runtime_pid(folder)
    parts = c.lsq_parts(runtime)
    found["runtime"] = cpu_ms(runtime)
    found["gateway worker"] = sum(cpu_ms(p) for n, p in parts.items() if "gateway" in n)
    found["guard"] = cpu_ms(parts["lsq guard"]) if "lsq guard" in parts else 0.0
    found["services"] = sum(cpu_ms(pid) for pid, _ in c.lsq_instances(folder))
    c.lsq_down(folder)
    if not repeat:
        c.cleanup(folder)
    return found


def bare_round(count: int) -> dict[str, float]:
    before = _own_cpu(resource.RUSAGE_SELF)
    run = c.start_bare(count)
    launcher = _own_cpu(resource.RUSAGE_SELF) - before
    found = {"seconds": run.extra["seconds"], "launcher": launcher,
             "services": sum(cpu_ms(pid) for pid in run.pids)}
    c.stop_and_clean(run)
    return found


def show(title: str, rounds: list[dict[str, float]]) -> None:
    print(f"\n{title}, ms of CPU (seconds for seconds), min / median / max:")
    for key in rounds[0]:
        values = [r[key] for r in rounds]
        digits = 2 if key == "seconds" else 0
        print(f"  {key:15s} {c.fmt3(values, '', digits)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--services", type=int, default=50)
    parser.add_argument("--repeat", action="store_true", help="starts from the manifest cache")
    args = parser.parse_args()
    c.print_machine()
    c.compile_lsq()
    ours, bare = [], []
    for _ in range(args.rounds):
        ours.append(lsq_round(args.services, args.repeat))
        bare.append(bare_round(args.services))
    show("lsq up -d" + (" (repeat start)" if args.repeat else " (first start)"), ours)
    lsq_total = statistics.median(
        [r["cli"] + r["runtime"] + r["gateway worker"] + r["guard"] for r in ours])
    print(f"  all of LSQ      {lsq_total:.0f} (median of the per-round sums)")
    show("bare launcher", bare)


if __name__ == "__main__":
    main()
