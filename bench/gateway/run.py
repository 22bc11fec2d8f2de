#!/usr/bin/env python3
"""Benchmark the LSQ gateway against nginx as a reverse proxy.

Needs wrk and nginx on PATH (`apt-get install -y wrk nginx`); installs nothing.
Usage: .venv/bin/python bench/gateway/run.py [--duration 10] [--rounds 3]
       [--cases c32,c1,c32+10h] [--candidates lsq,lsq-nopol] [--write-readme]

Four candidates answer the same tiny backend (nginx returning "ok"):
direct, through the LSQ gateway (1 worker), through nginx (1 worker,
upstream keepalive) and through `bare_pipe.py --parse` (`bare`: uvloop
and httptools with no features, the floor of the gateway's own stack).
`lsq-source` is a second LSQ gateway running the Python source of its hot
path instead of the compiled build (LSQ_GATEWAY_BUILD=source). wrk, the
proxy and the backend are pinned with taskset.
Candidates are interleaved and repeated; the spread across rounds is printed
so that noise from other load on the machine shows. `lsq-nopol` is the same
gateway process with its policy machinery switched off between runs; the
policy table compares it with `lsq` by req/s and by the proxy's CPU time per
request (the steadier figure while the proxy's core is the bottleneck).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "bench" / "README.md"
WRK_CPU, PROXY_CPU, BACKEND_CPU = "0", "1", "0"
EXTRA_HEADERS = [f"X-Bench-{i}: value-{i}-abcdefghijklmnop" for i in range(10)]

BACKEND_CONF = """
daemon off; master_process off; worker_processes 1;
error_log {prefix}/backend-error.log warn; pid {prefix}/backend.pid;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  server {{ listen 127.0.0.1:{port} backlog=4096; keepalive_requests 1000000;
           location / {{ return 200 "ok"; }} }}
}}
"""

PROXY_CONF = """
daemon off; master_process off; worker_processes 1;
error_log {prefix}/proxy-error.log warn; pid {prefix}/proxy.pid;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  upstream app {{ server 127.0.0.1:{backend}; keepalive 64; }}
  server {{ listen 127.0.0.1:{port} backlog=4096; keepalive_requests 1000000;
           location / {{ proxy_pass http://app; proxy_http_version 1.1;
                        proxy_set_header Connection "";
                        proxy_set_header Host $host;
                        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
                        proxy_buffering off; }} }}
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def start_nginx(
    conf: str, prefix: Path, name: str, cpu: str
) -> subprocess.Popen[bytes]:
    path = prefix / f"{name}.conf"
    path.write_text(conf)
    return subprocess.Popen(
        ["taskset", "-c", cpu, "nginx", "-p", str(prefix), "-c", str(path)]
    )


def start_gateway(
    backend: int, port: int, build: str = "compiled"
) -> tuple[subprocess.Popen[bytes], int]:
    """The gateway in a child Python (parent) whose worker we pin and measure.

    The same gateway serves `lsq` and `lsq-nopol`: `set_policies` switches
    its policy machinery between their runs. Two separate gateway processes
    measured here differed by up to 7% with identical settings (an A/A
    test), more than the effect this comparison looks for."""
    env = dict(os.environ)
    if build == "source":
        env["LSQ_GATEWAY_BUILD"] = "source"
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve-gateway", str(backend), str(port)],
        stdout=subprocess.PIPE,
        stdin=subprocess.PIPE,
        env=env,
    )
    line = proc.stdout.readline()  # type: ignore[union-attr]
    worker = int(json.loads(line)["worker_pid"])
    subprocess.run(
        ["taskset", "-p", "-c", PROXY_CPU, str(worker)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return proc, worker


def serve_gateway(backend: int, port: int) -> None:
    from lsq.gateway import Gateway
    from lsq.manifest._schema import Gateway as Settings

    async def main() -> None:
        gw = Gateway(Settings())
        gw.update(
            {
                "ingress_port": None,
                "services": {
                    "app": {
                        "port": port,
                        "backends": [
                            {"id": "app-0", "host": "127.0.0.1", "port": backend}
                        ],
                    }
                },
            }
        )
        await gw.start()
        pid = gw.worker_pids[0]
        print(json.dumps({"worker_pid": pid}), flush=True)
        loop = asyncio.get_running_loop()
        # "on" / "off" lines switch the policy machinery; EOF ends the run.
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            await gw.set_policies(line.strip() == "on")
            print("ok", flush=True)
        stats = await gw.stats()
        print(
            json.dumps(stats["services"].get("app", {}).get("requests")),
            file=sys.stderr,
        )
        await gw.stop()

    asyncio.run(main())


def cpu_ticks(pid: int | None) -> int:
    if pid is None:
        return 0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def wrk(port: int, conns: int, duration: int, headers: list[str]) -> dict[str, float]:
    cmd = [
        "taskset",
        "-c",
        WRK_CPU,
        "wrk",
        "-t1",
        f"-c{conns}",
        f"-d{duration}s",
        "--latency",
    ]
    for header in headers:
        cmd += ["-H", header]
    out = subprocess.run(
        cmd + [f"http://127.0.0.1:{port}/"], capture_output=True, text=True, check=True
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": rps,
        "total": total,
        "p50": _latency(out, "50%"),
        "p99": _latency(out, "99%"),
        "non2xx": int(errors.group(1)) if errors else 0,
    }


def _latency(out: str, label: str) -> float:
    match = re.search(rf"{label}\s+([\d.]+)(us|ms|s)\b", out)
    value, unit = float(match.group(1)), match.group(2)  # type: ignore[union-attr]
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run(args: argparse.Namespace) -> dict[str, dict[str, list[dict[str, float]]]]:
    prefix = Path(tempfile.mkdtemp(prefix="lsq-bench-"))
    (prefix / "logs").mkdir()
    ports = {
        "backend": free_port(),
        "nginx": free_port(),
        "lsq": free_port(),
        "bare": free_port(),
        "lsq-source": free_port(),
    }
    children: list[subprocess.Popen[bytes]] = []
    try:
        children.append(
            start_nginx(
                BACKEND_CONF.format(prefix=prefix, port=ports["backend"]),
                prefix,
                "backend",
                BACKEND_CPU,
            )
        )
        nginx = start_nginx(
            PROXY_CONF.format(
                prefix=prefix, port=ports["nginx"], backend=ports["backend"]
            ),
            prefix,
            "proxy",
            PROXY_CPU,
        )
        children.append(nginx)
        gateway, worker = start_gateway(ports["backend"], ports["lsq"])
        children.append(gateway)
        bare = subprocess.Popen(
            [
                "taskset", "-c", PROXY_CPU, sys.executable,
                str(Path(__file__).with_name("bare_pipe.py")), "--parse",
                str(ports["backend"]), str(ports["bare"]),
            ],
            stdout=subprocess.DEVNULL,
        )
        children.append(bare)
        source, source_worker = start_gateway(
            ports["backend"], ports["lsq-source"], "source"
        )
        children.append(source)
        for port in ports.values():
            wait_port(port)
        pids = {
            "direct": None,
            "lsq": worker,
            "lsq-nopol": worker,
            "nginx": nginx.pid,
            "bare": bare.pid,
            "lsq-source": source_worker,
        }
        targets = {
            "direct": ports["backend"],
            "lsq": ports["lsq"],
            "lsq-nopol": ports["lsq"],  # the same gateway, policies off
            "nginx": ports["nginx"],
            "bare": ports["bare"],  # uvloop + httptools, no features: the floor
            # the same gateway running its Python source, not the compiled build
            "lsq-source": ports["lsq-source"],
        }
        if args.candidates:
            wanted = args.candidates.split(",")
            targets = {t: port for t, port in targets.items() if t in wanted}
        cases = {"c32": (32, []), "c1": (1, []), "c32+10h": (32, EXTRA_HEADERS)}
        if args.cases:
            cases = {c: cases[c] for c in args.cases.split(",")}
        results: dict[str, dict[str, list[dict[str, float]]]] = {
            c: {t: [] for t in targets} for c in cases
        }
        def policies(target: str) -> None:
            if target in ("lsq", "lsq-nopol"):
                gateway.stdin.write(b"off\n" if target == "lsq-nopol" else b"on\n")  # type: ignore[union-attr]
                gateway.stdin.flush()  # type: ignore[union-attr]
                gateway.stdout.readline()  # type: ignore[union-attr]

        for conns, headers in cases.values():  # warm-up, not counted
            for target, port in targets.items():
                policies(target)
                wrk(port, conns, 1, headers)
        for rnd in range(args.rounds):
            for case, (conns, headers) in cases.items():
                order = list(targets) if rnd % 2 == 0 else list(reversed(targets))
                for target in order:
                    policies(target)
                    before = cpu_ticks(pids[target])
                    result = wrk(targets[target], conns, args.duration, headers)
                    used = cpu_ticks(pids[target]) - before
                    tick = os.sysconf("SC_CLK_TCK")
                    result["cpu_us_per_req"] = (
                        used / tick * 1e6 / max(result["total"], 1)
                    )
                    results[case][target].append(result)
                    print(
                        f"round {rnd + 1} {case:8} {target:6} {result['rps']:>10.0f} req/s "
                        f"p50 {result['p50']:.3f} ms p99 {result['p99']:.3f} ms "
                        f"cpu {result['cpu_us_per_req']:.1f} us/req",
                        flush=True,
                    )
        return results
    finally:
        for child in children:
            if child.stdin is not None:
                child.stdin.close()
        for child in reversed(children):
            if child.stdin is None:
                child.terminate()
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        shutil.rmtree(prefix, ignore_errors=True)


def summarize(results: dict[str, dict[str, list[dict[str, float]]]]) -> str:
    lines = [
        (
            "| case | candidate | req/s (median) | spread | p50 ms | p99 ms | "
            "proxy CPU µs/req | req/s vs nginx | p99 vs nginx |"
        ),
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for case, by_target in results.items():
        if "nginx" not in by_target:
            continue
        ref = by_target["nginx"]
        ref_rps = statistics.median(r["rps"] for r in ref)
        ref_p99 = statistics.median(r["p99"] for r in ref)
        for target, runs in by_target.items():
            rps = [r["rps"] for r in runs]
            med = statistics.median(rps)
            spread = (max(rps) - min(rps)) / med * 100 if med else 0.0
            p50 = statistics.median(r["p50"] for r in runs)
            p99 = statistics.median(r["p99"] for r in runs)
            cpu = statistics.median(r["cpu_us_per_req"] for r in runs)
            cpu_text = "-" if target == "direct" else f"{cpu:.1f}"
            lines.append(
                f"| {case} | {target} | {med:.0f} | ±{spread / 2:.0f}% | {p50:.3f} | "
                f"{p99:.3f} | {cpu_text} | {med / ref_rps:.2f}x | {p99 / ref_p99:.2f}x |"
            )
    lines += [
        "",
        "Policy machinery on (default policy, no fault) vs off, same build:",
        "",
        "| case | lsq req/s | lsq-nopol req/s | req/s ratio (median of per-round ratios) "
        "| CPU µs/req on / off | CPU ratio off/on |",
        "|---|---|---|---|---|---|",
    ]
    for case, by_target in results.items():
        if "lsq" not in by_target or "lsq-nopol" not in by_target:
            continue
        on, off = by_target["lsq"], by_target["lsq-nopol"]
        ratios = [a["rps"] / b["rps"] for a, b in zip(on, off, strict=True)]
        cpu_on = statistics.median(r["cpu_us_per_req"] for r in on)
        cpu_off = statistics.median(r["cpu_us_per_req"] for r in off)
        lines.append(
            f"| {case} | {statistics.median(r['rps'] for r in on):.0f} | "
            f"{statistics.median(r['rps'] for r in off):.0f} | "
            f"{statistics.median(ratios):.2f}x (min {min(ratios):.2f}, max {max(ratios):.2f}) | "
            f"{cpu_on:.1f} / {cpu_off:.1f} | {cpu_off / cpu_on:.2f}x |"
        )
    return "\n".join(lines)


def write_readme(table: str, args: argparse.Namespace) -> None:
    section = (
        "## gateway\n\n"
        f"`bench/gateway/run.py --duration {args.duration} --rounds {args.rounds}` on this "
        f"machine ({os.cpu_count()} cores), {time.strftime('%Y-%m-%d')}. wrk on CPU {WRK_CPU}, "
        f'proxy on CPU {PROXY_CPU}, backend (nginx returning "ok") on CPU {BACKEND_CPU}. '
        "Medians over the rounds; spread is half the min-max range.\n\n" + table + "\n"
    )
    text = README.read_text() if README.exists() else "# Benchmarks\n\n"
    pattern = re.compile(r"## gateway\n.*?(?=\n## |\Z)", re.DOTALL)
    text = (
        pattern.sub(section, text)
        if pattern.search(text)
        else text.rstrip() + "\n\n" + section
    )
    README.write_text(text)


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--serve-gateway":
        serve_gateway(int(sys.argv[2]), int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cases", default="", help="e.g. c32,c1 (default: all)")
    parser.add_argument(
        "--candidates",
        default="",
        help="e.g. lsq,lsq-nopol for the policy comparison alone (default: all)",
    )
    parser.add_argument(
        "--write-readme",
        action="store_true",
        help="put the summary into bench/README.md's gateway section",
    )
    args = parser.parse_args()
    for tool in ("wrk", "nginx", "taskset"):
        if shutil.which(tool) is None:
            raise SystemExit(
                f"{tool} not found; install it: apt-get install -y wrk nginx"
            )
    table = summarize(run(args))
    print(table)
    if args.write_readme:
        write_readme(table, args)


if __name__ == "__main__":
    main()
