#!/usr/bin/env python3
"""Where `lsq up -d` spends its time with 50 trivial services.

Usage: .venv/bin/python bench/runtime/timeline.py [--rounds 3] [--services 50] [--repeat]

Each round is a first start (a new app folder), or with `--repeat` a start in
the same folder again (from the manifest cache and the warm-start plan).

Splits each `lsq up -d` into phases from the runtime's own status and events
(`/v1/status`, `/v1/events` on its control API) and the start times of the
processes (the boot clock of /proc/PID/stat, 10 ms resolution), and prints
each service's time from process start to LSQ marking it healthy.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

from lsq.control import ControlClient

PHASES = [
    "cli start -> daemon process start",
    "daemon start -> runtime object made",
    "runtime object -> gateway worker start",
    "runtime object -> first service start",
    "first -> last service process start",
    "last service start -> last healthy",
    "last healthy -> ready",
    "ready -> cli returned",
    "total (cli start -> returned)",
]
TICKS = os.sysconf("SC_CLK_TCK")


def boot_now() -> float:
    """Seconds since boot: the clock /proc/PID/stat start times use."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def started(pid: int) -> float:
    """The process's start time on the boot clock (10 ms resolution)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[19]) / TICKS


def lsq_round(count: int, repeat: bool) -> tuple[dict[str, float], list[float]]:
    if repeat:
        folder = c.repeat_folder(count)
    else:
        folder = c.workdir()
        script = c.write_service(folder)
        c.lsq_manifest(folder, script, count)
    wall_minus_boot = time.time() - boot_now()
    t0 = boot_now()
    subprocess.run(
        [str(c.LSQ), "up", "-d"], cwd=folder, check=True, capture_output=True
    )
    t_ret = boot_now()
    client = ControlClient(folder / ".lsq")
    status: Any = client.get("/v1/status")
    events: Any = client.get("/v1/events", since=0)
    runtime = int(status["pid"])
    daemon = started(runtime)
    kids = psutil.Process(runtime).children()
    gateway = min(
        started(k.pid) for k in kids
        if "lsq.gateway" in " ".join(k.cmdline()) or k.name() == "lsq-gateway"
    )
    spawned = {
        i["id"]: started(int(i["pid"]))
        for s in status["services"]
        for i in s["instances"]
    }
    healthy = {
        e["instance"]: float(e["ts"]) - wall_minus_boot
        for e in events
        if e["kind"] == "health" and e["message"] == "healthy"
    }
    ready = max(
        float(e["ts"]) - wall_minus_boot
        for e in events
        if "services are up" in e["message"]
    )
    c.lsq_down(folder)
    if not repeat:
        c.cleanup(folder)
    made = float(status["started"]) - wall_minus_boot
    first, last = min(spawned.values()), max(spawned.values())
    phases = dict(
        zip(
            PHASES,
            [
                daemon - t0,
                made - daemon,
                gateway - made,
                first - made,
                last - first,
                max(healthy.values()) - last,
                ready - max(healthy.values()),
                t_ret - ready,
                t_ret - t0,
            ],
        )
    )
    return phases, [healthy[i] - spawned[i] for i in spawned]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--services", type=int, default=50)
    parser.add_argument("--repeat", action="store_true",
                        help="start again in the same app folder (a repeat start)")
    args = parser.parse_args()
    c.print_machine()
    c.compile_lsq()
    phases: dict[str, list[float]] = {p: [] for p in PHASES}
    lsq_lags: list[float] = []
    for _ in range(args.rounds):
        got, lags = lsq_round(args.services, args.repeat)
        for name, value in got.items():
            phases[name].append(value)
        lsq_lags += lags
    print("lsq up -d phases, seconds, min / median / max over rounds:")
    for name, values in phases.items():
        print(f"  {name:34s} {c.fmt3(values, digits=3)}")
    print("\nper service, process start -> lsq saw it healthy, seconds:")
    print(f"  min / median / max                 {c.fmt3(lsq_lags, digits=3)}")


if __name__ == "__main__":
    main()
