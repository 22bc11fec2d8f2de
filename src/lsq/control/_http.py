"""A small HTTP/1.1 server for the control API, on asyncio and httptools.

The control API is a dozen JSON routes and an event stream used by the CLI and
the dashboard. A web framework would add more start-up time and resident
memory to the runtime than the API itself is worth, and httptools is already
the gateway's parser, so this module is a thin request reader and router.
One request per connection (`Connection: close`), bodies up to `MAX_BODY`.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import httptools

MAX_BODY = 1 << 20
MAX_HEAD = 64 << 10


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    peer: str
    params: dict[str, str] = field(default_factory=dict)

    def json(self) -> object:
        return json.loads(self.body or b"{}")

    def arg(self, name: str, default: str = "") -> str:
        values = self.query.get(name)
        return values[0] if values else default


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    stream: AsyncIterator[bytes] | None = None

    @classmethod
    def json(cls, data: object, status: int = 200) -> Response:
        return cls(status, json.dumps(data, default=str).encode())

    @classmethod
    def error(cls, status: int, message: str) -> Response:
        return cls.json({"error": message}, status)


Handler = Callable[[Request], Awaitable[Response]]
_REASONS = {200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 302: "Found",
            400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            405: "Method Not Allowed", 409: "Conflict", 413: "Payload Too Large",
            421: "Misdirected Request", 500: "Internal Server Error", 503: "Service Unavailable"}


@dataclass(frozen=True)
class Route:
    method: str
    regex: re.Pattern[str]
    handler: Handler
    auth: str  # "token": token required; "self": the handler checks access itself


class Router:
    def __init__(self) -> None:
        self._added: list[tuple[str, str, Handler, str]] = []
        self._routes: list[Route] = []

    def add(self, method: str, pattern: str, handler: Handler, *, auth: str = "token") -> None:
        """`{name}` matches one path segment, `{name:path}` the rest of the path."""
        # Compiled at the first request, not here: the runtime mounts its
        # routes before the first service starts, and nobody asks until later.
        self._added.append((method, pattern, handler, auth))

    def _compile(self) -> None:
        for method, pattern, handler, auth in self._added:
            regex = re.sub(r"\{(\w+):path\}", r"(?P<\1>.+)", pattern)
            regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", regex)
            self._routes.append(Route(method, re.compile(f"^{regex}$"), handler, auth))
        self._added.clear()

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
        """(route, params, path_exists)."""
        if self._added:
            self._compile()
        exists = False
        for route in self._routes:
            found = route.regex.match(path)
            if found:
                exists = True
                if route.method == method:
                    return route, found.groupdict(), True
        return None, {}, exists


class _Reader:
    def __init__(self) -> None:
        self.url = b""
        self.headers: dict[str, str] = {}
        self.body = bytearray()
        self.done = False
        self.too_big = False

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self.body += body
        if len(self.body) > MAX_BODY:
            self.too_big = True

    def on_message_complete(self) -> None:
        self.done = True


async def _read_request(reader: asyncio.StreamReader, peer: str) -> Request | Response:
    state = _Reader()
    parser = httptools.HttpRequestParser(state)
    received = 0
    while not state.done:
        chunk = await reader.read(65536)
        if not chunk:
            return Response.error(400, "incomplete request")
        received += len(chunk)
        if received > MAX_HEAD + MAX_BODY or state.too_big:
            return Response.error(413, "request too large")
        try:
            parser.feed_data(chunk)
        except httptools.HttpParserError:
            return Response.error(400, "malformed request")
    url = urlsplit(state.url.decode("latin-1"))
    method = parser.get_method().decode()
    return Request(method, url.path, parse_qs(url.query), state.headers, bytes(state.body), peer)


def _head(resp: Response, length: int | None) -> bytes:
    lines = [f"HTTP/1.1 {resp.status} {_REASONS.get(resp.status, 'Status')}",
             f"Content-Type: {resp.content_type}", "Connection: close",
             "Cache-Control: no-store", "X-Content-Type-Options: nosniff"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    lines += [f"{k}: {v}" for k, v in resp.headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class HttpServer:
    """Serves `app(request)`; `app` does routing and auth."""

    def __init__(self, app: Handler) -> None:
        self._app = app
        self._server: asyncio.base_events.Server | None = None
        self._clients: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int, *, sock: socket.socket | None = None) -> int:
        """Listen on host:port, or on `sock`, bound and listening already."""
        # The listening socket is made here: given a host, the loop would
        # resolve even "127.0.0.1" on a thread pool (uvloop starts four
        # threads for it), which the runtime would then keep for its life.
        if sock is None:
            sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            if sock.getsockname()[1] == 0:
                sock.bind((host, port))
                sock.listen(100)
            sock.setblocking(False)
            self._server = await asyncio.start_server(
                self._serve, sock=sock, limit=MAX_HEAD
            )
        except BaseException:
            sock.close()
            raise
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._clients):
            task.cancel()
        await asyncio.gather(*self._clients, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients.add(task)
        peer = str(writer.get_extra_info("peername", ("", 0))[0])
        try:
            request = await asyncio.wait_for(_read_request(reader, peer), 10)
            resp = request if isinstance(request, Response) else await self._app(request)
            await self._write(writer, resp)
        except (asyncio.TimeoutError, ConnectionError):
            pass
        finally:
            self._clients.discard(task)
            writer.close()

    async def _write(self, writer: asyncio.StreamWriter, resp: Response) -> None:
        if resp.stream is None:
            writer.write(_head(resp, len(resp.body)) + resp.body)
            await writer.drain()
            return
        writer.write(_head(resp, None))
        async for chunk in resp.stream:
            writer.write(chunk)
            await writer.drain()
