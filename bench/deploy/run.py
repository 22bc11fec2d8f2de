"""Release figures on the example shop (examples/shop), one run.

Copies the shop to a temporary folder (notifications/node_modules linked to
the repo's), starts it with `lsq up -d`, then on `catalog` (2 replicas):

1. blue-green: changes catalog's env, runs `lsq deploy catalog` under
   50 requests/s of GET /products through catalog's stable address;
   reports the time from `lsq deploy` to 100% traffic on the new version
   (the command's own wall time, and the runtime's `switched` timing) and the
   failed requests;
2. canary with a failing analysis: the next version gets a gateway fault
   (`abort`, status 500, 5% of requests, scoped to its replicas), so the
   analysis at 50% fails; reports the time from the failed verdict to 100%
   back on the old version, and the failed requests (the canary's own 500s
   are expected, anything else is not).

    .venv/bin/python bench/deploy/run.py
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "deploy"))

from load import Load

LSQ = str(Path(sys.executable).parent / "lsq")
RELEASE = """\
    env:
      RELEASE: "{n}"
    release:
      warm: 3s
      ready_timeout: 30s
      steps: [50, 100]
      step_time: 10s
      smoke:
        - path: /health
      analysis:
        min_requests: 50
"""


def lsq(app: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    env.pop("LSQ_POSTGRES_URL", None)
    done = subprocess.run([LSQ, *args], cwd=app, env=env, capture_output=True, text=True,
                          timeout=300)
    if check and done.returncode != 0:
        raise SystemExit(f"lsq {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done


def copy_shop(into: Path) -> Path:
    app = into / "shop"
    shop = REPO / "examples" / "shop"
    shutil.copytree(shop, app, symlinks=True,
                    ignore=shutil.ignore_patterns(".lsq", "__pycache__", "node_modules"))
    modules = shop / "notifications" / "node_modules"
    if modules.exists():
        (app / "notifications" / "node_modules").symlink_to(modules)
    return app


def set_release(app: Path, n: int) -> None:
    path = app / "lsq.yaml"
    text = re.sub(r"\n    env:\n      RELEASE: \"\d+\"\n    release:\n(?:      .*\n|        .*\n)*",
                  "\n", path.read_text())
    marker = "    command: [python3, -u, -m, catalog]\n"
    path.write_text(text.replace(marker, marker + RELEASE.format(n=n)))


def catalog(app: Path) -> dict:  # type: ignore[type-arg]
    status = json.loads(lsq(app, "ps", "--json").stdout)
    return next(s for s in status["services"] if s["name"] == "catalog")


def address(app: Path) -> tuple[str, int]:
    host, port = catalog(app)["address"].rsplit("//", 1)[1].split(":")
    return host, int(port)


def history(app: Path) -> dict:  # type: ignore[type-arg]
    return json.loads(lsq(app, "history", "catalog", "--json").stdout)[0]


def blue_green(app: Path) -> dict[str, object]:
    set_release(app, 2)
    load = Load(*address(app), rate=50, duration=30, slow_every=0, path="/products").start()
    time.sleep(2)
    began = time.monotonic()
    lsq(app, "deploy", "catalog", "--strategy", "blue-green")
    wall = time.monotonic() - began
    deadline = time.monotonic() + 60
    while history(app)["state"] != "succeeded" and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(2)
    load.stop()
    record = history(app)
    return {"deploy_to_100_wall_s": round(wall, 3),
            "deploy_to_100_runtime_s": record["timings"]["switched"],
            "old_stopped_s": record["timings"]["done"], "requests": len(load.outcomes),
            "failed": len(load.failed()), "state": record["state"]}


def failing_canary(app: Path) -> dict[str, object]:
    set_release(app, 3)
    load = Load(*address(app), rate=50, duration=40, slow_every=0, path="/products").start()
    time.sleep(2)
    deploy = subprocess.Popen([LSQ, "deploy", "catalog", "--strategy", "canary"], cwd=app,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    replicas: list[str] = []
    while len(replicas) < 2 and time.monotonic() < deadline:
        replicas = [i["id"] for i in catalog(app)["instances"]
                    if i["version"] != "v2" and i["state"] == "running"]
        time.sleep(0.1)
    for rid in replicas:
        lsq(app, "chaos", "add", "abort", "catalog", "--status", "500", "--percent", "5",
            "--replica", rid, "--for", "60s", check=False)
    out, _ = deploy.communicate(timeout=120)
    time.sleep(2)
    load.stop()
    record = history(app)
    failed = load.failed()
    return {"exit_code": deploy.returncode, "state": record["state"],
            "reason": record["reason"], "analysis_to_old_s": record["timings"].get("analysis_to_old"),
            "requests": len(load.outcomes), "failed": len(failed),
            "failed_not_500": sum(1 for o in failed if o.status != 500),
            "faults_on": replicas, "deploy_output": out.strip().splitlines()[-3:]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="Keep the temporary folder.")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="lsq-bench-deploy-"))
    app = copy_shop(tmp)
    try:
        lsq(app, "up", "-d", "--timeout", "120")
        results = {"blue_green": blue_green(app), "failing_canary": failing_canary(app)}
        print(json.dumps(results, indent=2))
    finally:
        lsq(app, "down", check=False)
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
