"""Fixtures for the dashboard tests: a running demo app and a headless browser.

The app (`demo_app`) is started once per module with the real `lsq up -d` in
a tmp folder; teardown runs `lsq down` and then kills, by PID, whatever the
test saw that is still alive. The browser is Debian's chromium driven by
Playwright; tests that need it are skipped when either is missing.
"""

from __future__ import annotations

import os

import http.client
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest
from polling import wait_for  # noqa: F401 (re-exported to the tests)

sys.path.insert(0, str(Path(__file__).resolve().parent))

import demo_app

LSQ = str(Path(sys.executable).parent / "lsq")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless=new",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@dataclass
class Running:
    root: Path
    port: int
    token: str
    seen: set[int] = field(default_factory=set)

    def lsq(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [LSQ, *args],
            cwd=self.root,
            capture_output=True,
            check=False,
            text=True,
            timeout=timeout,
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        auth: bool = True,
    ) -> tuple[int, dict[str, str], bytes]:
        """One request to the control API; Host is 127.0.0.1:PORT unless given."""
        sent = {"Host": f"127.0.0.1:{self.port}"}
        if auth:
            sent["Authorization"] = f"Bearer {self.token}"
        sent.update(headers or {})
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=sent)
            resp = conn.getresponse()
            return (
                resp.status,
                {k.lower(): v for k, v in resp.getheaders()},
                resp.read(),
            )
        finally:
            conn.close()

    def get(self, path: str) -> Any:
        status, _, body = self.request("GET", path)
        assert status == 200, (path, status, body)
        return json.loads(body)

    def status(self) -> dict[str, Any]:
        data = self.get("/ui/status")
        for svc in data["services"]:
            self.seen.update(i["pid"] for i in svc["instances"] if i["pid"])
        return data

    def service(self, name: str) -> dict[str, Any]:
        return next(s for s in self.status()["services"] if s["name"] == name)

    def address(self, name: str) -> str:
        return str(self.service(name)["address"])

    def url(self) -> str:
        return self.lsq("dashboard").stdout.strip()


def start_demo(root: Path) -> Running:
    root.mkdir(parents=True, exist_ok=True)
    (root / "lsq.yaml").write_text(demo_app.MANIFEST.format(py=sys.executable))
    (root / "service.py").write_text(demo_app.SERVICE)
    up = subprocess.run(
        [LSQ, "up", "-d", "--timeout", "60"],
        cwd=root,
        capture_output=True,
        check=False,
        text=True,
        timeout=90,
    )
    assert up.returncode == 0, up.stdout + up.stderr
    info = json.loads((root / ".lsq" / "runtime.json").read_text())
    app = Running(
        root, int(info["port"]), (root / ".lsq" / "token").read_text().strip()
    )
    app.seen.add(int(info["pid"]))
    status = app.status()
    # Services that were not given OTEL_EXPORTER_OTLP_ENDPOINT read the
    # endpoint from this file (see demo_app).
    (root / "otlp.txt").write_text(str(status["otlp_endpoint"]))
    return app


def stop_demo(app: Running) -> None:
    app.lsq("down", timeout=60)
    procs = []
    for pid in app.seen:
        try:
            procs.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            continue
    for proc in procs:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    app = start_demo(tmp_path_factory.mktemp("demo"))
    try:
        yield app
    finally:
        stop_demo(app)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # On CI (CI=true) a missing browser is a failure, never a silent skip.
    if os.environ.get("CI"):
        import playwright.sync_api as sync_api

        assert Path(CHROMIUM).exists(), f"{CHROMIUM} not installed (apt-get install chromium)"
    else:
        sync_api = pytest.importorskip("playwright.sync_api")
        if not Path(CHROMIUM).exists():
            pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as play:
        chromium = play.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def otlp_json(service: str, spans: list[dict[str, Any]]) -> bytes:
    """An OTLP/JSON export request from `service` carrying `spans`."""
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]}
    body = {"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": spans}]}]}
    return json.dumps(body).encode()


def otlp_span(
    trace: str, span: str, parent: str, start_ns: int, end_ns: int, **extra: Any
) -> dict[str, Any]:
    """One server span in OTLP/JSON, named `GET /x`; `extra` adds fields."""
    return {
        "traceId": trace,
        "spanId": span,
        "parentSpanId": parent,
        "name": "GET /x",
        "kind": 2,
        "startTimeUnixNano": str(start_ns),
        "endTimeUnixNano": str(end_ns),
        **extra,
    }
