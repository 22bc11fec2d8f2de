"""A small real app for the chaos tests, run detached with `lsq up -d`.

`web` (two replicas, HTTP health check) answers `GET /...` with its instance
name, `GET /fail` with 500 and `GET /big` with 64 KiB; `caller` answers
`GET /call` by calling web through LSQ_WEB_URL and reporting what it got;
`solo` is one replica that restarts slowly. Teardown runs `lsq down` and
then kills by PID whatever the app started and is still alive.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
from polling import wait_for  # noqa: F401 (re-exported to the tests)

LSQ = str(Path(sys.executable).parent / "lsq")
PY = sys.executable

SERVER = r'''
import http.server, json, os, sys, urllib.request, urllib.error
NAME = os.environ.get("LSQ_INSTANCE", "?")

class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self, status, body):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/fail":
            return self.answer(500, {"instance": NAME, "error": "asked to fail"})
        if self.path == "/big":
            return self.answer(200, b"x" * 65536)
        if self.path == "/call":
            url = os.environ["LSQ_WEB_URL"] + "/hello"
            try:
                with urllib.request.urlopen(url, timeout=3) as resp:
                    return self.answer(200, {"web": resp.status})
            except urllib.error.HTTPError as exc:
                return self.answer(200, {"web": exc.code})
            except OSError as exc:
                return self.answer(200, {"web": 0, "error": str(exc)})
        self.answer(200, {"instance": NAME, "path": self.path})

    def log_message(self, *args):
        pass

http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
'''

MANIFEST = f"""
name: chaos-test
services:
  web:
    command: [{PY}, -u, server.py]
    replicas: 2
    health:
      http: /health
      interval: 0.2s
      timeout: 0.5s
      failure_threshold: 2
  caller:
    command: [{PY}, -u, server.py]
    depends_on:
      web: healthy
  solo:
    command: [{PY}, -u, server.py]
    health:
      http: /health
      interval: 0.2s
    restart:
      policy: on-failure
      backoff: 4s
"""


class App:
    """The running test app: `lsq` commands, `lsq ps`, addresses, events."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("LSQ_")}
        self.env["NO_COLOR"] = "1"
        self.procs: dict[int, psutil.Process] = {}

    def lsq(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run([LSQ, *args], cwd=self.root, env=self.env, capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def ps(self) -> dict[str, Any]:
        result = self.lsq("ps", "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)  # type: ignore[no-any-return]

    def service(self, name: str) -> dict[str, Any]:
        return next(s for s in self.ps()["services"] if s["name"] == name)

    def instance(self, iid: str) -> dict[str, Any]:
        service = iid.rsplit("-", 1)[0]
        return next(i for i in self.service(service)["instances"] if i["id"] == iid)

    def address(self, name: str) -> str:
        return str(self.service(name)["address"])

    def events(self, kind: str = "chaos") -> list[dict[str, Any]]:
        from lsq.control import ControlClient

        client = ControlClient(self.root / ".lsq")
        try:
            return [e for e in client.get("/v1/events") if e["kind"] == kind]  # type: ignore[union-attr]
        finally:
            client.close()

    def remember(self) -> None:
        pid = json.loads((self.root / ".lsq" / "runtime.json").read_text())["pid"]
        runtime = psutil.Process(pid)
        self.procs[pid] = runtime
        for child in runtime.children(recursive=True):
            self.procs.setdefault(child.pid, child)

    def cleanup(self) -> None:
        for proc in self.procs.values():
            try:
                proc.resume()  # a paused process would not see SIGTERM
            except psutil.Error:
                pass
        self.lsq("down", timeout=60)
        for proc in self.procs.values():
            try:
                proc.kill()
            except psutil.Error:
                pass


def start_app(root: Path) -> Iterator[App]:
    (root / "server.py").write_text(SERVER)
    (root / "lsq.yaml").write_text(textwrap.dedent(MANIFEST).lstrip())
    app = App(root)
    try:
        result = app.lsq("up", "-d", "--timeout", "40")
        assert result.returncode == 0, result.stdout + result.stderr
        app.remember()
        yield app
    finally:
        app.cleanup()


def status_of(url: str, **kwargs: Any) -> int:
    return httpx.get(url, timeout=5, **kwargs).status_code
