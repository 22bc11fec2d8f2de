#!/usr/bin/env python3
"""Supervisor overhead with 50 idle services: memory and idle CPU.

Usage: .venv/bin/python bench/runtime/overhead.py [--windows 3] [--window 30]

Starts the same 50 trivial services under `lsq up -d` and under circusd, both
at once, then lets them idle. Over each window (default 3 x 30 s) it reads
the CPU time of every supervisor process (`_common.cpu_seconds`) and, after each
window, its memory (RSS, USS, PSS from psutil's memory_full_info). For LSQ the
runtime (PID in .lsq/runtime.json), its guard and its gateway worker(s) are
listed apart and summed. Figures are min / median / max over the windows.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

MB = 1024 * 1024


def memory(pid: int) -> tuple[float, float, float]:
    info = psutil.Process(pid).memory_full_info()
    return info.rss / MB, info.uss / MB, info.pss / MB


def measure(
    parts: dict[str, int], windows: int, window: float
) -> dict[str, dict[str, list[float]]]:
    seen: dict[str, dict[str, list[float]]] = {
        name: {"cpu": [], "rss": [], "uss": [], "pss": []} for name in parts
    }
    for i in range(windows):
        before = {n: c.cpu_seconds(p) for n, p in parts.items()}
        t0 = time.monotonic()
        time.sleep(window)
        elapsed = time.monotonic() - t0
        for name, pid in parts.items():
            share = (c.cpu_seconds(pid) - before[name]) / elapsed * 100
            rss, uss, pss = memory(pid)
            for key, value in zip(("cpu", "rss", "uss", "pss"), (share, rss, uss, pss)):
                seen[name][key].append(value)
        print(f"window {i + 1}/{windows} done", flush=True)
    return seen


def add_sum(seen: dict[str, dict[str, list[float]]], prefix: str, label: str) -> None:
    names = [n for n in seen if n.startswith(prefix)]
    count = len(seen[names[0]]["cpu"])
    seen[label] = {
        key: [sum(seen[n][key][i] for n in names) for i in range(count)]
        for key in ("cpu", "rss", "uss", "pss")
    }


def report(seen: dict[str, dict[str, list[float]]]) -> None:
    print("\nper process, min / median / max over the windows:")
    print(
        f"  {'process':16s} {'RSS MB':>20s} {'USS MB':>20s} {'PSS MB':>20s} "
        f"{'idle CPU % of a core':>22s}"
    )
    for name, vals in seen.items():
        cols = [c.fmt3(vals[k], "", 1) for k in ("rss", "uss", "pss")]
        cpu = c.fmt3(vals["cpu"], "", 2)
        print(f"  {name:16s} {cols[0]:>20s} {cols[1]:>20s} {cols[2]:>20s} {cpu:>22s}")
    rt = seen["lsq runtime"]
    print(
        "\ntargets: lsq runtime RSS <= 40 MB: median "
        f"{statistics.median(rt['rss']):.1f} MB; idle CPU < 1%: median "
        f"{statistics.median(rt['cpu']):.2f}%"
    )
    print("references from the issue: circusd 31 MB, pm2 66 MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=3)
    parser.add_argument("--window", type=float, default=30.0)
    parser.add_argument("--services", type=int, default=50)
    args = parser.parse_args()
    c.print_machine()
    c.ensure_peers()
    lsq = c.start_lsq(args.services)
    circus = c.start_circus(args.services)
    try:
        parts = c.lsq_parts(lsq.manager_pids[0])
        parts["circusd"] = circus.manager_pids[0]
        time.sleep(3)  # let both settle after start-up
        seen = measure(parts, args.windows, args.window)
    finally:
        c.stop_and_clean(lsq)
        c.stop_and_clean(circus)
    add_sum(seen, "lsq", "lsq total")
    report(seen)


if __name__ == "__main__":
    main()
