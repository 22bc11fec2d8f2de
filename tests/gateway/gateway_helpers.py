"""Helpers for gateway tests: a small asyncio HTTP backend, a raw client,
and a gateway started in-test from a routing table."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from lsq.gateway import Gateway
from lsq.manifest._schema import Gateway as Settings


def async_test(timeout: float = 30.0) -> Callable[..., Callable[..., None]]:
    """Run an async test function in a fresh event loop with a time limit."""

    def wrap(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
        async def guarded(*args: Any, **kwargs: Any) -> None:
            try:
                await asyncio.wait_for(fn(*args, **kwargs), timeout)
            finally:
                while _LIVE:
                    await _LIVE.pop().stop()
                await asyncio.sleep(0.05)  # let closed transports finish closing

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> None:
            asyncio.run(guarded(*args, **kwargs))

        return run

    return wrap


@dataclass
class Seen:
    """What a backend received for one request."""

    method: str
    path: str
    headers: dict[str, str]
    raw_headers: list[tuple[str, str]]
    length: int = 0
    sha256: str = ""
    conn: int = 0


_LIVE: list[Backend] = []

Handler = Callable[[Seen, asyncio.StreamWriter], Awaitable[None]]


async def echo(seen: Seen, writer: asyncio.StreamWriter) -> None:
    body = json.dumps(
        {
            "method": seen.method,
            "path": seen.path,
            "headers": seen.headers,
            "length": seen.length,
            "sha256": seen.sha256,
            "conn": seen.conn,
        }
    ).encode()
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )


@dataclass
class Backend:
    """An HTTP/1.1 server on 127.0.0.1:0 with keep-alive, CL and chunked bodies."""

    handler: Handler = echo
    idle_close: float | None = None  # close idle keep-alive connections after this
    seen: list[Seen] = field(default_factory=list)
    connections: int = 0
    writers: list[asyncio.StreamWriter] = field(default_factory=list)
    server: asyncio.Server | None = None
    port: int = 0

    async def start(self) -> Backend:
        _LIVE.append(self)
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        assert self.server is not None
        if self in _LIVE:
            _LIVE.remove(self)
        self.server.close()
        for writer in self.writers:
            writer.transport.abort()

    def entry(self, id: str) -> dict[str, Any]:
        return {"id": id, "host": "127.0.0.1", "port": self.port}

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.connections += 1
        self.writers.append(writer)
        conn = self.connections
        with contextlib.suppress(
            ConnectionError, asyncio.IncompleteReadError, asyncio.TimeoutError
        ):
            while True:
                wait = self.idle_close
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), wait)
                seen = _parse_head(head, conn)
                await _read_body(reader, seen)
                self.seen.append(seen)
                await self.handler(seen, writer)
                await writer.drain()
        writer.close()


def _parse_head(head: bytes, conn: int) -> Seen:
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    raw = [tuple(x.strip() for x in line.split(":", 1)) for line in lines[1:] if line]
    headers = {k.lower(): v for k, v in raw}
    return Seen(method, path, headers, raw, conn=conn)  # type: ignore[arg-type]


async def _read_body(reader: asyncio.StreamReader, seen: Seen) -> None:
    digest = hashlib.sha256()
    if seen.headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            data = await reader.readexactly(size + 2)
            digest.update(data[:-2])
            seen.length += size
    else:
        left = int(seen.headers.get("content-length", "0"))
        while left:
            data = await reader.read(min(left, 1 << 16))
            if not data:
                raise asyncio.IncompleteReadError(b"", left)
            digest.update(data)
            left -= len(data)
            seen.length += len(data)
    seen.sha256 = digest.hexdigest()


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def read_response(
    reader: asyncio.StreamReader, *, head_only: bool = False
) -> Response:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {
        k.lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:] if l)
    }
    if head_only or status in (101, 204, 304) or 100 <= status < 200:
        return Response(status, headers, b"")
    if headers.get("transfer-encoding") == "chunked":
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            body += (await reader.readexactly(size + 2))[:-2]
    elif "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    else:
        body = await reader.read()
    return Response(status, headers, body)


class Client:
    """One keep-alive connection sending raw requests."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int, *, source: str | None = None) -> Client:
        local = (source, 0) if source else None
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, local_addr=local
        )
        return cls(reader, writer)

    async def request(
        self,
        method: str = "GET",
        path: str = "/",
        *,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
    ) -> Response:
        hdrs = {"Host": "localhost"} | (headers or {})
        if body:
            hdrs["Content-Length"] = str(len(body))
        head = f"{method} {path} HTTP/1.1\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in hdrs.items()
        )
        self.writer.write(head.encode() + b"\r\n" + body)
        return await read_response(self.reader, head_only=method == "HEAD")

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


async def get(port: int, path: str = "/", **kw: Any) -> Response:
    client = await Client.connect(port)
    try:
        return await client.request("GET", path, **kw)
    finally:
        await client.close()


def table(
    services: dict[str, dict[str, Any]], ingress: int | None = None
) -> dict[str, Any]:
    full = {
        name: {"port": 0, "backends": [], "external": None, "routes": []} | entry
        for name, entry in services.items()
    }
    return {"ingress_port": ingress, "services": full}


@contextlib.asynccontextmanager
async def running_gateway(
    tbl: dict[str, Any], **settings: Any
) -> AsyncIterator[Gateway]:
    log_dir = settings.pop("log_dir", None)
    gw = Gateway(Settings(**settings), log_dir=log_dir)
    gw.update(tbl)
    await gw.start()
    try:
        yield gw
    finally:
        await gw.stop()


def serving(backend: Backend, **settings: Any) -> contextlib.AbstractAsyncContextManager[Gateway]:
    """A running gateway whose one service, `api`, has `backend` as its one
    replica (`api-0`)."""
    return running_gateway(table({"api": {"backends": [backend.entry("api-0")]}}), **settings)
