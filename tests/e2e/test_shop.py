"""The example shop under the real `lsq` CLI: up, order, crash, order again, down."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parents[2]
SHOP = REPO / "examples" / "shop"
LSQ = str(Path(sys.executable).parent / "lsq")


def lsq(app: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    env.pop("LSQ_POSTGRES_URL", None)
    return subprocess.run(
        [LSQ, *args], cwd=app, env=env, capture_output=True, text=True, timeout=timeout
    )


def status(app: Path) -> dict[str, dict[str, object]]:
    result = lsq(app, "ps", "--json")
    assert result.returncode == 0, result.stderr
    return {s["name"]: s for s in json.loads(result.stdout)["services"]}


def call(method: str, url: str, body: object | None = None) -> tuple[int, object]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Path]:
    app = tmp_path / "shop"
    shutil.copytree(SHOP, app, symlinks=True, ignore=shutil.ignore_patterns(".lsq", "__pycache__"))
    yield app
    lsq(app, "down")


def wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_shop_survives_a_crash_and_leaves_nothing_behind(shop: Path) -> None:
    up = lsq(shop, "up", "-d", "--timeout", "90")
    assert up.returncode == 0, up.stdout + up.stderr
    services = status(shop)
    assert {n: s["state"] for n, s in services.items()} == {
        "catalog": "running",
        "notifications": "running",
        "payments": "external",
        "payments-sandbox": "running",
        "orders": "running",
    }
    orders = services["orders"]["address"]
    catalog = services["catalog"]["address"]
    pids = [i["pid"] for s in services.values() for i in s["instances"]]  # type: ignore[union-attr]
    ports = [i["port"] for s in services.values() for i in s["instances"]]  # type: ignore[union-attr]
    ports += [int(str(s["address"]).rsplit(":", 1)[1]) for s in services.values()]
    assert all(str(s["address"]).startswith("http://127.0.0.1:") for s in services.values())

    code, first = call("POST", f"{orders}/orders", {"product_id": 1, "qty": 1, "email": "a@shop.example"})
    assert code == 201, first
    _, product = call("GET", f"{catalog}/products/1")

    victim = services["orders"]["instances"][0]["pid"]  # type: ignore[index]
    os.kill(int(victim), signal.SIGKILL)

    def restarted() -> bool:
        inst = status(shop)["orders"]["instances"][0]  # type: ignore[index]
        return inst["restarts"] >= 1 and inst["healthy"] and inst["pid"] != victim

    wait_for(restarted, 30, "orders to be restarted and healthy")
    code, second = call("POST", f"{orders}/orders", {"product_id": 1, "qty": 1, "email": "b@shop.example"})
    assert code == 201, second
    _, after = call("GET", f"{catalog}/products/1")
    assert after["stock"] == product["stock"] - 1  # type: ignore[index]
    pids.append(status(shop)["orders"]["instances"][0]["pid"])  # type: ignore[index]

    down = lsq(shop, "down")
    assert down.returncode == 0, down.stderr
    alive = [p for p in pids if p and psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]
    assert alive == []
    assert [p for p in ports if not port_free(p)] == []
    assert lsq(shop, "ps").returncode != 0
