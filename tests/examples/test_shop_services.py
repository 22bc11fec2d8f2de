"""The shop example's services, each started directly as LSQ would start it.

No `lsq` here: every service runs as a subprocess with the environment the
runtime gives it (PORT, LSQ_SERVICE, LSQ_INSTANCE, LSQ_<DEP>_URL and
DATABASE_URL), so these tests pin the contract the example relies on.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

SHOP = Path(__file__).resolve().parents[2] / "examples" / "shop"
PYTHON = [sys.executable, "-u", "-m"]
COMMANDS = {
    "catalog": [*PYTHON, "catalog"],
    "payments-sandbox": [*PYTHON, "payments_sandbox"],
    "notifications": ["node", "server.js"],
    "orders": [*PYTHON, "orders"],
}
USES_SQLITE = {"catalog", "notifications", "orders"}
DEPENDS_ON = {
    "orders": {
        "catalog": "catalog",
        "payments": "payments-sandbox",
        "notifications": "notifications",
    }
}
START_TIMEOUT = 15.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def call(
    method: str, url: str, body: object = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    host_port = url.removeprefix("http://").split("/", 1)[0]
    path = url[len("http://" + host_port) :] or "/"
    conn = http.client.HTTPConnection(host_port, timeout=10)
    try:
        payload = None if body is None else json.dumps(body)
        conn.request(method, path, body=payload, headers=headers or {})
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


@dataclass
class Running:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines()]


class Shop:
    """Starts the shop's services and stops exactly the processes it started."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.running: dict[str, Running] = {}
        self.starts = 0

    def database_url(self, name: str) -> str:
        folder = self.root / "data" / name
        folder.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{folder / (name + '.db')}"

    def env(self, name: str, port: int) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LSQ_")}
        env.pop("DATABASE_URL", None)
        env.update(PORT=str(port), LSQ_SERVICE=name, LSQ_INSTANCE=f"{name}-0")
        if name in USES_SQLITE:
            env["DATABASE_URL"] = self.database_url(name)
        for dep, target in DEPENDS_ON.get(name, {}).items():
            env[f"LSQ_{dep.upper()}_URL"] = self.running[target].url
        return env

    def start(self, name: str, **extra_env: str) -> Running:
        port = free_port()
        env = {**self.env(name, port), **extra_env}
        self.starts += 1
        log = self.root / f"{name}.{self.starts}.log"
        cwd = SHOP / "notifications" if name == "notifications" else SHOP
        with log.open("wb") as out:
            proc = subprocess.Popen(
                COMMANDS[name], cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        running = Running(name, proc, port, log)
        self.running[name] = running
        wait_until_healthy(running)
        return running

    def start_all(self, **orders_env: str) -> None:
        for name in ("catalog", "payments-sandbox", "notifications"):
            self.start(name)
        self.start("orders", **orders_env)

    def stop(self, name: str) -> int:
        running = self.running.pop(name)
        running.proc.send_signal(signal.SIGTERM)
        try:
            return running.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            running.proc.kill()
            running.proc.wait()
            raise AssertionError(f"{name} ignored SIGTERM for 10 s") from None

    def stop_all(self) -> None:
        for name in list(self.running):
            self.stop(name)

    def __getitem__(self, name: str) -> str:
        return self.running[name].url


def wait_until_healthy(running: Running) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if running.proc.poll() is not None:
            raise AssertionError(
                f"{running.name} exited with {running.proc.returncode}:\n"
                + running.log.read_text()
            )
        try:
            if call("GET", running.url + "/health")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{running.name} not healthy after {START_TIMEOUT} s")


@pytest.fixture(scope="session")
def node_ready() -> None:
    if shutil.which("node") is None:
        pytest.fail("node is not on PATH; the notifications service needs Node.js 18+")
    if not (SHOP / "notifications" / "node_modules" / "sql.js").is_dir():
        # The same one-time step the shop's lsq.yaml runs on first start.
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"],
            cwd=SHOP / "notifications",
            check=True,
            capture_output=True,
            timeout=120,
        )


@pytest.fixture
def shop(tmp_path: Path, node_ready: None) -> Iterator[Shop]:
    shop = Shop(tmp_path)
    try:
        yield shop
    finally:
        for running in shop.running.values():
            running.proc.kill()
            running.proc.wait()


@pytest.fixture
def full_shop(shop: Shop) -> Shop:
    shop.start_all()
    return shop


def stock(shop: Shop, product_id: int) -> int:
    status, product = call("GET", f"{shop['catalog']}/products/{product_id}")
    assert status == 200
    return int(product["stock"])


def order(shop: Shop, product_id: int, qty: int) -> tuple[int, Any]:
    body = {"product_id": product_id, "qty": qty, "email": "ann@shop.example"}
    return call("POST", f"{shop['orders']}/orders", body)


def test_an_order_takes_stock_charges_once_and_notifies(full_shop: Shop) -> None:
    before = stock(full_shop, 1)

    status, placed = order(full_shop, 1, 3)

    assert status == 201, placed
    assert placed["status"] == "paid" and placed["notified"] is True
    assert placed["amount_cents"] == 3 * 1200
    assert stock(full_shop, 1) == before - 3
    assert call("GET", f"{full_shop['orders']}/orders/{placed['id']}") == (
        200,
        {k: v for k, v in placed.items() if k != "notified"},
    )
    _, charges = call("GET", f"{full_shop['payments-sandbox']}/charges")
    assert [(c["ref"], c["amount_cents"]) for c in charges] == [(placed["id"], 3600)]
    _, notes = call("GET", f"{full_shop['notifications']}/notifications")
    assert [(n["order_id"], n["email"]) for n in notes] == [
        (placed["id"], "ann@shop.example")
    ]


def test_a_declined_payment_is_402_and_gives_the_stock_back(full_shop: Shop) -> None:
    before = stock(full_shop, 3)

    # 12 keyboards cost 1,068.00: over the sandbox's 1,000.00 card limit.
    status, body = order(full_shop, 3, 12)

    assert status == 402
    assert "declined" in body["error"] and body["stock_released"] is True
    assert stock(full_shop, 3) == before
    assert call("GET", f"{full_shop['orders']}/orders") == (200, [])
    assert call("GET", f"{full_shop['notifications']}/notifications") == (200, [])


def test_too_little_stock_is_409_and_charges_nothing(full_shop: Shop) -> None:
    status, body = order(full_shop, 4, 6)

    assert status == 409
    assert "not enough stock" in body["error"]
    assert stock(full_shop, 4) == 5
    assert call("GET", f"{full_shop['payments-sandbox']}/charges") == (200, [])


def test_an_unknown_product_is_404(full_shop: Shop) -> None:
    status, body = order(full_shop, 999, 1)
    assert status == 404
    assert "999" in body["error"]


def test_a_bad_order_is_422_naming_every_problem(full_shop: Shop) -> None:
    body = {"product_id": "one", "qty": 0, "email": "nobody"}
    status, answer = call("POST", f"{full_shop['orders']}/orders", body)

    assert status == 422
    for field in ("product_id", "qty", "email"):
        assert field in answer["error"]


def test_orders_succeed_when_notifications_is_down(full_shop: Shop) -> None:
    full_shop.stop("notifications")

    status, placed = order(full_shop, 2, 1)

    assert status == 201 and placed["notified"] is False
    warnings = [
        line
        for line in full_shop.running["orders"].log_lines()
        if line["level"] == "warning" and line.get("order_id") == placed["id"]
    ]
    assert [line["msg"] for line in warnings] == ["notification not sent"]


def test_orders_is_503_and_keeps_stock_when_payments_is_down(full_shop: Shop) -> None:
    full_shop.stop("payments-sandbox")

    status, body = order(full_shop, 1, 2)

    assert status == 503 and "payments" in body["error"]
    assert stock(full_shop, 1) == 40


def test_every_store_survives_a_restart(full_shop: Shop) -> None:
    _, placed = order(full_shop, 2, 4)
    full_shop.stop_all()

    full_shop.start_all()

    # The catalog's seeding is idempotent: it neither resets nor duplicates.
    _, products = call("GET", f"{full_shop['catalog']}/products")
    assert [(p["id"], p["stock"]) for p in products] == [
        (1, 40),
        (2, 6),
        (3, 25),
        (4, 5),
    ]
    assert call("GET", f"{full_shop['orders']}/orders/{placed['id']}")[0] == 200
    _, notes = call("GET", f"{full_shop['notifications']}/notifications")
    assert [n["order_id"] for n in notes] == [placed["id"]]


def test_concurrent_reservations_never_oversell(shop: Shop) -> None:
    catalog = shop.start("catalog")
    statuses: list[int] = []

    def reserve() -> None:
        statuses.append(
            call("POST", f"{catalog.url}/products/4/reserve", {"qty": 1})[0]
        )

    threads = [threading.Thread(target=reserve) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)

    assert sorted(statuses) == [200] * 5 + [409] * 7
    assert stock(shop, 4) == 0


def test_the_sandbox_charges_a_repeated_ref_only_once(shop: Shop) -> None:
    sandbox = shop.start("payments-sandbox")
    charge = {"amount_cents": 500, "ref": "ord_same"}

    first = call("POST", f"{sandbox.url}/charges", charge)
    again = call("POST", f"{sandbox.url}/charges", charge)
    forced = call(
        "POST",
        f"{sandbox.url}/charges",
        {"amount_cents": 1, "ref": "x"},
        {"Sandbox-Decline": "1"},
    )

    assert first[0] == 201 and again[0] == 200 and first[1] == again[1]
    assert forced[0] == 402 and forced[1]["status"] == "declined"


def test_health_is_503_when_the_catalog_database_is_gone(shop: Shop) -> None:
    catalog = shop.start("catalog")
    for path in (shop.root / "data" / "catalog").iterdir():
        path.unlink()

    status, body = call("GET", f"{catalog.url}/health")

    assert status == 503 and body["status"] == "unhealthy"

    def probes() -> list[tuple[object, object]]:
        lines = [line for line in catalog.log_lines() if line.get("path") == "/health"]
        return [(line["status"], line["level"]) for line in lines]

    # The log line may land just after the response under load.
    deadline = time.monotonic() + 5
    while not probes() and time.monotonic() < deadline:
        time.sleep(0.05)
    # Passing probes (start-up) are not logged; the failing one is.
    assert probes() == [(503, "error")]


def test_each_service_logs_json_per_request_and_exits_0_on_sigterm(
    full_shop: Shop,
) -> None:
    order(full_shop, 1, 1)
    services = dict(full_shop.running)

    for name in list(services):
        assert full_shop.stop(name) == 0, services[name].log.read_text()

    fields = {"ts", "level", "service", "instance", "method", "path", "status", "ms"}
    for name, running in services.items():
        lines = running.log_lines()
        requests = [line for line in lines if line["msg"] == "request"]
        assert requests and all(fields <= line.keys() for line in requests), name
        assert {line["service"] for line in lines} == {name}
        assert {line["instance"] for line in lines} == {f"{name}-0"}
        assert lines[-1]["msg"] == "stopped"


@pytest.mark.parametrize("name", ["catalog", "notifications"])
def test_a_repeated_sigterm_still_stops_once_and_cleanly(shop: Shop, name: str) -> None:
    running = shop.start(name)

    running.proc.send_signal(signal.SIGTERM)
    running.proc.send_signal(signal.SIGTERM)

    assert running.proc.wait(timeout=10) == 0
    shop.running.pop(name)
    messages = [line["msg"] for line in running.log_lines()]
    assert messages[-2:] == ["stopping", "stopped"]
    assert messages.count("stopping") == 1


def test_orders_without_its_addresses_exits_with_a_fix(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LSQ_")}
    env["PORT"] = str(free_port())
    result = subprocess.run(
        COMMANDS["orders"], cwd=SHOP, env=env, capture_output=True, timeout=20
    )
    assert result.returncode == 2
    assert b"LSQ_CATALOG_URL is not set" in result.stdout


@pytest.fixture
def postgres_url() -> Iterator[str]:
    psycopg = pytest.importorskip("psycopg")
    user = os.environ.get("PGUSER") or "postgres"
    name = "lsq_shop_test_" + uuid.uuid4().hex[:10]
    admin = f"postgresql://{user}@127.0.0.1:5432/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield f"postgresql://{user}@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.mark.postgres
def test_orders_keeps_its_orders_in_postgres(shop: Shop, postgres_url: str) -> None:
    import psycopg

    shop.start_all(DATABASE_URL=postgres_url)
    _, placed = order(shop, 1, 2)
    assert shop.stop("orders") == 0

    shop.start("orders", DATABASE_URL=postgres_url)

    assert call("GET", f"{shop['orders']}/orders") == (
        200,
        [{k: v for k, v in placed.items() if k != "notified"}],
    )
    with psycopg.connect(postgres_url) as conn:
        rows = conn.execute("SELECT id, qty, status FROM orders").fetchall()
    assert rows == [(placed["id"], 2, "paid")]
    assert not (shop.root / "data" / "orders" / "orders.db").exists()


@pytest.mark.parametrize(
    ("environ", "orders_data", "payments_url"),
    [
        ({}, "sqlite", "http://127.0.0.1:9471"),
        ({"LSQ_POSTGRES_URL": "postgresql://127.0.0.1/postgres"}, "postgres", "http://127.0.0.1:9471"),
        ({"PAYMENTS_URL": "https://pay.test"}, "sqlite", "https://pay.test"),
    ],
)
def test_the_manifest_wires_the_services_as_these_tests_do(
    environ: dict[str, str], orders_data: str, payments_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lsq.manifest import env_name, load
    from lsq.runtime._data import kind

    config = load(SHOP / "lsq.yaml", environ=environ)
    monkeypatch.delenv("LSQ_POSTGRES_URL", raising=False)
    for key, value in environ.items():
        monkeypatch.setenv(key, value)

    services = config.services
    assert set(services) == {*COMMANDS, "payments"}
    assert services["orders"].data == "sql"
    assert kind(services["orders"].data) == orders_data
    assert services["payments"].external == payments_url
    assert {name for name, s in services.items() if s.data == "sqlite"} <= USES_SQLITE
    assert dict(services["orders"].depends_on) == {
        "catalog": "healthy",
        "notifications": "healthy",
        "payments": "started",
    }
    assert {env_name(dep) for dep in services["orders"].depends_on} == {
        f"LSQ_{dep.upper()}_URL" for dep in DEPENDS_ON["orders"]
    }
    assert all(
        s.health and s.health.http == "/health"
        for s in services.values()
        if s.external is None
    )


class _Recorder:
    """A stand-in catalog that answers 409 to every call and keeps the heads."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        seen: list[dict[str, str]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                seen.append({k.lower(): v for k, v in self.headers.items()})
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                payload = b'{"error": "out of stock"}'
                self.send_response(409)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.seen = seen
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_orders_passes_the_trace_context_and_the_deadline_on(shop: Shop) -> None:
    # Without this, every hop of an order would be a trace of its own in the
    # dashboard, and a caller's deadline would end at the first service.
    recorder = _Recorder()
    try:
        for name in ("catalog", "payments-sandbox", "notifications"):
            shop.start(name)
        shop.start("orders", LSQ_CATALOG_URL=recorder.url)  # the recorder stands in
        parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        deadline = f"{time.time() + 30:.3f}"
        body = {"product_id": 1, "qty": 1, "email": "ann@shop.example"}

        status, _ = call("POST", f"{shop['orders']}/orders", body,
                         {"traceparent": parent, "tracestate": "lsq=1", "X-LSQ-Deadline": deadline})
        assert status == 409
        status, _ = call("POST", f"{shop['orders']}/orders", body)  # no context: none sent
        assert status == 409
        status, answer = call("POST", f"{shop['orders']}/orders", body,
                              {"X-LSQ-Deadline": f"{time.time() - 1:.3f}"})
    finally:
        recorder.close()

    assert len(recorder.seen) == 2, "a passed deadline must not reach the catalog"
    first, second = recorder.seen
    assert first["traceparent"] == parent and first["tracestate"] == "lsq=1"
    assert first["x-lsq-deadline"] == deadline
    assert not {"traceparent", "tracestate", "x-lsq-deadline"} & set(second)
    assert status == 504 and "catalog" in answer["error"]
