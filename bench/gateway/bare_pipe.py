#!/usr/bin/env python3
"""Floors for the gateway benchmark: a uvloop byte pipe with no features.

Each client connection gets its own upstream connection and bytes are copied
both ways, so it does the same four system calls per request as the gateway
and nothing else. With `--parse`, an httptools parser (no callbacks, so the
parse stays in C) also checks each side's bytes: the "bare uvloop +
httptools proxy with no features" of issue 3, which `run.py` measures as
`bare`. Usage: bare_pipe.py [--parse] BACKEND_PORT LISTEN_PORT
(prints "ready" once listening; stop it with SIGTERM).
"""

from __future__ import annotations

import asyncio
import sys

import httptools
import uvloop


class _NoCallbacks:
    pass


_QUIET = _NoCallbacks()


class Upstream(asyncio.Protocol):
    def __init__(self, client: Client) -> None:
        self.client = client
        self.parser = httptools.HttpResponseParser(_QUIET) if client.parse else None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.parser is not None:
            self.parser.feed_data(data)
        self.client.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.client.transport.close()


class Client(asyncio.Protocol):
    def __init__(self, backend: int, parse: bool) -> None:
        self.backend = backend
        self.parse = parse
        self.parser = httptools.HttpRequestParser(_QUIET) if parse else None
        self.upstream: Upstream | None = None
        self.early: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        _, self.upstream = await loop.create_connection(
            lambda: Upstream(self), "127.0.0.1", self.backend
        )
        for data in self.early:
            self.upstream.transport.write(data)

    def data_received(self, data: bytes) -> None:
        if self.parser is not None:
            self.parser.feed_data(data)
        if self.upstream is None:
            self.early.append(data)
        else:
            self.upstream.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.upstream is not None:
            self.upstream.transport.close()


async def main(backend: int, port: int, parse: bool) -> None:
    loop = asyncio.get_running_loop()
    await loop.create_server(
        lambda: Client(backend, parse), "127.0.0.1", port, backlog=4096
    )
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    args = sys.argv[1:]
    parse = args[:1] == ["--parse"]
    if parse:
        args = args[1:]
    uvloop.run(main(int(args[0]), int(args[1]), parse))
