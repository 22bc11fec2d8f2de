"""Time from `lsq new` to the service answering /health/ready under `lsq up`.

For each built-in template: one cold run (empty pip and npm caches, so every
package is downloaded) and then RUNS warm runs, each in a fresh app. A run is
`lsq init`, `lsq new svc -t TEMPLATE`, `lsq up` in the foreground, polling
GET /health/ready at the port the runtime assigned (`.lsq/ports.json`) every
50 ms until it answers 200, then Ctrl-C (SIGINT) to `lsq up`. Prints one JSON object per template with the medians.

    .venv/bin/python bench/templates/bench_new_to_ready.py [--runs 5] [--no-cold]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

LSQ = str(Path(sys.executable).with_name("lsq"))


def _lsq(*args: str, cwd: Path, env: dict[str, str], timeout: float = 600) -> str:
    # Output goes to a file, not a pipe: `lsq up -d` leaves a runtime behind
    # that may hold inherited pipes open, and a pipe would wait for it.
    with tempfile.TemporaryFile("w+") as out:
        done = subprocess.run(
            [LSQ, *args],
            check=False,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
        )
        out.seek(0)
        text = out.read()
    if done.returncode != 0:
        raise SystemExit(f"lsq {' '.join(args)} failed:\n{text}")
    return text


def _ready_port(app: Path, proc: subprocess.Popen[bytes], deadline: float) -> int:
    """Wait until the runtime has assigned svc a port and it answers ready."""
    ports = app / ".lsq" / "ports.json"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"lsq up exited with {proc.returncode}")
        try:
            port = int(json.loads(ports.read_text())["svc"])
            url = f"http://127.0.0.1:{port}/health/ready"
            if httpx.get(url, timeout=2).status_code == 200:
                return port
        except (OSError, ValueError, KeyError, httpx.TransportError):
            pass
        time.sleep(0.05)
    raise SystemExit("svc did not answer /health/ready in time")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    # Ctrl-C is how a developer stops a foreground `lsq up`.
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def one_run(template: str, env: dict[str, str]) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="lsq-bench-tpl-") as tmp:
        app = Path(tmp) / "app"
        _lsq("init", str(app), cwd=Path(tmp), env=env)
        start = time.perf_counter()
        _lsq("new", "svc", "-t", template, cwd=app, env=env)
        generated = time.perf_counter()
        with open(Path(tmp) / "up.log", "wb") as log:
            proc = subprocess.Popen(
                [LSQ, "up"],
                cwd=app,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                _ready_port(app, proc, time.monotonic() + 120)
                ready = time.perf_counter()
            finally:
                _stop(proc)
    return {
        "new_s": generated - start,
        "up_s": ready - generated,
        "total_s": ready - start,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-cold", action="store_true")
    parser.add_argument("--templates", default="python,node")
    args = parser.parse_args()
    for template in args.templates.split(","):
        with tempfile.TemporaryDirectory(prefix="lsq-bench-cache-") as cache:
            env = {**os.environ, "LSQ_CACHE_DIR": str(Path(cache) / "lsq")}
            cold = None
            if not args.no_cold:
                cold_env = {
                    **env,
                    "PIP_CACHE_DIR": str(Path(cache) / "pip"),
                    "npm_config_cache": str(Path(cache) / "npm"),
                }
                cold = one_run(template, cold_env)
            runs = [one_run(template, env) for _ in range(args.runs)]
        result = {
            "template": template,
            "runs": args.runs,
            "cold": {k: round(v, 2) for k, v in cold.items()} if cold else None,
            **{
                f"median_{k}": round(statistics.median(r[k] for r in runs), 2)
                for k in ("new_s", "up_s", "total_s")
            },
            "max_total_s": round(max(r["total_s"] for r in runs), 2),
        }
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
