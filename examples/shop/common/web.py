"""A tiny JSON-over-HTTP toolkit for the shop's Python services.

Standard library only, so a service starts in a blink and needs no install.
Each service lists its routes, a health check and a clean-up step; `serve`
does the rest: listen on 127.0.0.1:$PORT, log one JSON line per request
(except passing health probes, which would drown the rest), and stop
cleanly on SIGTERM.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

JSON = dict[str, Any]
SERVICE = os.environ.get("LSQ_SERVICE", "unknown")
INSTANCE = os.environ.get("LSQ_INSTANCE", f"{SERVICE}-0")
_print_lock = threading.Lock()


class HTTPError(Exception):
    """Raised by a handler to answer with an error status and message."""

    def __init__(self, status: int, message: str, /, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body: JSON = {"error": message, **extra}


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    params: tuple[str, ...]
    headers: dict[str, str]
    raw_body: bytes

    def json(self) -> JSON:
        try:
            body = json.loads(self.raw_body or b"{}")
        except ValueError as exc:
            raise HTTPError(400, f"body is not valid JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise HTTPError(400, "body must be a JSON object")
        return body


Handler = Callable[[Request], tuple[int, Any]]


@dataclass
class App:
    """Routes plus the hooks `serve` needs."""

    health: Callable[[], None]
    on_stop: Callable[[], None] = lambda: None
    routes: list[tuple[str, re.Pattern[str], Handler]] = field(default_factory=list)

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.routes.append((method, re.compile(f"^{pattern}$"), handler))
            return handler

        return register

    def dispatch(self, request: Request) -> tuple[int, Any]:
        if request.method == "GET" and request.path == "/health":
            return self._health()
        allowed = False
        for method, pattern, handler in self.routes:
            match = pattern.match(request.path)
            if match and method == request.method:
                return handler(dataclasses.replace(request, params=match.groups()))
            allowed = allowed or bool(match)
        if allowed:
            return 405, {"error": f"{request.method} is not allowed on {request.path}"}
        return 404, {"error": f"no route for {request.path}"}

    def _health(self) -> tuple[int, Any]:
        try:
            self.health()
        except Exception as exc:  # any failure of the store means unhealthy
            return 503, {"status": "unhealthy", "error": str(exc)}
        return 200, {"status": "ok", "instance": INSTANCE}


def utc_now() -> str:
    """The time now in UTC, ISO 8601 to the millisecond: 2026-01-31T12:00:00.000Z."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def log(level: str, msg: str, **fields: Any) -> None:
    """Write one JSON log line to stdout, flushed at once."""
    line = {"ts": utc_now(), "level": level, "service": SERVICE, "instance": INSTANCE}
    line.update(msg=msg, **fields)
    with _print_lock:
        print(json.dumps(line), flush=True)


# Calls go straight to the addresses LSQ hands out, never through an
# HTTP(S)_PROXY from the environment, which may not know 127.0.0.1.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

# The request being handled on this thread: the headers its outgoing calls
# carry on, so that a trace stays one trace across services and a chain of
# calls shares the caller's deadline (see docs/gateway.md).
PROPAGATED = ("traceparent", "tracestate", "x-lsq-deadline")
_incoming = threading.local()


def call_json(
    method: str, url: str, body: JSON | None = None, *, timeout: float = 5.0
) -> tuple[int, JSON]:
    """Send JSON, return (status, decoded body). Raises OSError if unreachable.

    Called while handling a request, it passes that request's trace context
    and deadline on, and waits no longer than the deadline allows.
    """
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    headers: dict[str, str] = getattr(_incoming, "headers", {})
    for name in PROPAGATED:
        if name in headers:
            request.add_header(name, headers[name])
    left = _deadline_left(headers.get("x-lsq-deadline"))
    if left is not None:
        if left <= 0:
            raise TimeoutError("the caller's deadline has passed")
        timeout = min(timeout, left)
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return response.status, _decode(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, _decode(exc.read())


def _deadline_left(value: str | None) -> float | None:
    """Seconds until an `X-LSQ-Deadline` (epoch seconds); None without one."""
    try:
        return float(value) - time.time() if value else None
    except ValueError:
        return None


def _decode(raw: bytes) -> JSON:
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        return {"raw": raw.decode(errors="replace")}
    return body if isinstance(body, dict) else {"data": body}


def required_env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        log("error", f"{name} is not set; run this service with `lsq up`")
        sys.exit(2)
    return value


def sqlite_path(database_url: str) -> str:
    """`sqlite:////abs/file.db` -> `/abs/file.db`."""
    prefix = "sqlite:///"
    if not database_url.startswith(prefix):
        raise ValueError(f"expected a sqlite:/// URL, found {database_url!r}")
    return database_url[len(prefix) :]


def serve(app: App) -> None:
    """Serve until SIGTERM or SIGINT, then close the app's resources and exit 0."""
    port = int(required_env("PORT"))
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler_class(app))
    # Let in-flight requests finish before server_close() returns.
    server.daemon_threads = False
    server.block_on_close = True

    stopping = threading.Event()

    def stop(signum: int, _frame: object) -> None:
        if stopping.is_set():
            return  # the signal may reach us twice: directly and via the group
        stopping.set()
        log("info", "stopping", signal=signal.Signals(signum).name)
        # shutdown() waits for serve_forever(), which runs in this very
        # thread, so it has to be called from another one.
        threading.Thread(target=server.shutdown).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log("info", "listening", port=port)
    server.serve_forever(poll_interval=0.2)
    server.server_close()
    app.on_stop()
    log("info", "stopped")


def _handler_class(app: App) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            started = time.monotonic()
            status, body = self._respond()
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            if self.path == "/health" and status == 200:
                return  # LSQ probes every second; only failed probes are news
            ms = round((time.monotonic() - started) * 1000, 2)
            level = "error" if status >= 500 else "info"
            log(
                level,
                "request",
                method=self.command,
                path=self.path,
                status=status,
                ms=ms,
            )

        def _respond(self) -> tuple[int, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            request = Request(
                method=self.command,
                path=self.path.split("?", 1)[0],
                params=(),
                headers={k.lower(): v for k, v in self.headers.items()},
                raw_body=self.rfile.read(length) if length else b"",
            )
            _incoming.headers = {n: request.headers[n] for n in PROPAGATED if n in request.headers}
            try:
                return app.dispatch(request)
            except HTTPError as exc:
                return exc.status, exc.body
            except Exception as exc:
                log("error", "unhandled error", error=repr(exc), path=self.path)
                return 500, {"error": "internal error"}
            finally:
                _incoming.headers = {}

        do_GET = do_POST = do_PUT = do_DELETE = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass  # every request is logged as JSON by _handle instead

    return _Handler
