#!/usr/bin/env python3
"""Benchmark the dashboard on a big, chatty app.

Usage: .venv/bin/python bench/dashboard/run.py [--services 100] [--rate 1000]
       [--minutes 1] [--cpu-seconds 20]

Starts an app of N trivial services with `lsq up -d` in a tmp folder; together
they print RATE log lines a second (each service RATE/N). Then measures:

1. the time of a log search over the runtime's ring once it holds 50,000
   lines (a needle that matches nothing, so the whole ring is scanned; the
   endpoint's own timing and the HTTP round trip);
2. the page's JS heap and DOM size after MINUTES minutes on the Logs view
   (the busiest view: every line reaches it) in headless chromium;
3. the runtime's CPU, as % of one core, over CPU_SECONDS: no page vs one idle
   page on the Services view, both with the services quiet (no log lines)
   and with them logging at RATE.

Needs /usr/bin/chromium and the playwright package. Everything runs on
127.0.0.1; the app is stopped (and its processes killed by PID) at the end.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

LSQ = str(Path(sys.executable).parent / "lsq")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless=new",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

SERVICE = """\
import os, sys, time
quiet = os.path.join(os.path.dirname(os.path.abspath(__file__)), "quiet")
period = float(sys.argv[1])
n = 0
nxt = time.monotonic()
while True:
    nxt += period
    if not os.path.exists(quiet):
        n += 1
        print(f"INFO request {n} handled path=/items/{n % 97} user={n % 13} took={n % 7}ms", flush=True)
    time.sleep(max(0.0, nxt - time.monotonic()))
"""


def write_app(root: Path, services: int, rate: float) -> None:
    period = services / rate
    lines = ["name: dashbench", "services:"]
    for i in range(services):
        lines += [
            f"  s{i:03d}:",
            f"    command: [{sys.executable}, -S, -u, svc.py, '{period}']",
            "    restart: always",
        ]
    (root / "lsq.yaml").write_text("\n".join(lines) + "\n")
    (root / "svc.py").write_text(SERVICE)


class Api:
    def __init__(self, root: Path) -> None:
        info = json.loads((root / ".lsq" / "runtime.json").read_text())
        self.pid = int(info["pid"])
        self.port = int(info["port"])
        self.token = (root / ".lsq" / "token").read_text().strip()

    def get(self, path: str) -> Any:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(
                "GET",
                path,
                headers={
                    "Host": f"127.0.0.1:{self.port}",
                    "Authorization": f"Bearer {self.token}",
                },
            )
            return json.loads(conn.getresponse().read())
        finally:
            conn.close()


def cpu_percent(pid: int, seconds: float) -> float:
    proc = psutil.Process(pid)
    before = proc.cpu_times()
    time.sleep(seconds)
    after = proc.cpu_times()
    used = (after.user - before.user) + (after.system - before.system)
    return round(100 * used / seconds, 2)


def measure_search(api: Api, target: int, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while api.get("/ui/logs?q=warm&limit=1")["searched"] < target:
        if time.monotonic() > deadline:
            break
        time.sleep(1)
    rounds = []
    for _ in range(7):
        began = time.perf_counter()
        data = api.get("/ui/logs?q=no-such-needle-xyz&limit=500")
        rounds.append((data["ms"], (time.perf_counter() - began) * 1000))
    hit = api.get("/ui/logs?q=path%3D/items/42&limit=500")
    return {
        "lines_in_ring": data["searched"],
        "search_ms_median": round(statistics.median(r[0] for r in rounds), 1),
        "round_trip_ms_median": round(statistics.median(r[1] for r in rounds), 1),
        "hit_search_ms": hit["ms"],
        "hits_returned": len(hit["lines"]),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    results: dict[str, Any] = {"services": args.services, "rate": args.rate}
    with tempfile.TemporaryDirectory(prefix="lsq-dashbench-") as tmp:
        root = Path(tmp)
        write_app(root, args.services, args.rate)
        (root / "quiet").touch()
        began = time.monotonic()
        up = subprocess.run(
            [LSQ, "up", "-d", "--timeout", "300"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=400,
            check=False,
        )
        if up.returncode != 0:
            sys.exit(f"lsq up failed:\n{up.stdout}\n{up.stderr}")
        results["up_seconds"] = round(time.monotonic() - began, 1)
        api = Api(root)
        pids = {api.pid} | {
            int(i["pid"])
            for s in api.get("/ui/status")["services"]
            for i in s["instances"]
            if i["pid"]
        }
        url = subprocess.run(
            [LSQ, "dashboard"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        try:
            with sync_playwright() as play:
                browser = play.chromium.launch(
                    executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
                )
                results["cpu"] = measure_cpu(api, browser, url, root, args.cpu_seconds)
                results["search"] = measure_search(api, 50_000, timeout=180)
                results["page"] = measure_page(browser, url, args.minutes)
                browser.close()
        finally:
            subprocess.run(
                [LSQ, "down"], cwd=root, capture_output=True, timeout=120, check=False
            )
            for pid in pids:
                try:
                    psutil.Process(pid).kill()
                except psutil.NoSuchProcess:
                    pass
    return results


def measure_cpu(
    api: Api, browser: Any, url: str, root: Path, seconds: float
) -> dict[str, float]:
    out: dict[str, float] = {}
    time.sleep(3)  # let start-up work settle
    for label in ("quiet", "logging"):
        if label == "logging":
            (root / "quiet").unlink()
            time.sleep(3)
        out[f"{label}_no_page"] = cpu_percent(api.pid, seconds)
        page = browser.new_page()
        page.goto(url)
        page.wait_for_selector("tr.instance")
        time.sleep(2)
        out[f"{label}_one_idle_page"] = cpu_percent(api.pid, seconds)
        page.close()
        time.sleep(1)
    return out


def measure_page(browser: Any, url: str, minutes: float) -> dict[str, Any]:
    page = browser.new_page()
    cdp = page.context.new_cdp_session(page)
    page.goto(url)
    page.wait_for_selector("tr.instance")
    page.click('#tabs button[data-view="logs"]')
    samples = []
    end = time.monotonic() + minutes * 60
    while time.monotonic() < end:
        time.sleep(min(15, max(0.0, end - time.monotonic())))
        cdp.send("HeapProfiler.collectGarbage")
        heap = cdp.send("Runtime.getHeapUsage")
        rows = page.evaluate("document.querySelectorAll('.logline').length")
        samples.append(
            {
                "t_s": round(minutes * 60 - (end - time.monotonic())),
                "heap_mib": round(heap["usedSize"] / 2**20, 1),
                "log_rows": rows,
            }
        )
    page.close()
    return {"minutes": minutes, "samples": samples}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument(
        "--rate", type=float, default=1000.0, help="log lines a second, all services"
    )
    parser.add_argument(
        "--minutes", type=float, default=1.0, help="how long the page runs"
    )
    parser.add_argument("--cpu-seconds", type=float, default=20.0)
    print(json.dumps(run(parser.parse_args()), indent=2))


if __name__ == "__main__":
    main()
