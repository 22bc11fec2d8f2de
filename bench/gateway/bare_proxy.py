#!/usr/bin/env python3
"""The floor for a proxy built on uvloop and httptools: no features at all.

One upstream keep-alive connection per client connection, opened with it.
Each side's bytes are checked by an httptools parser (no callbacks, so the
parse stays in C) and forwarded as they came: no routing, no header
rewriting, no balancing, no counters, no error handling beyond closing.
It is what the issue calls "a bare uvloop + httptools proxy with no
features"; `run.py` measures it as the `bare` candidate so that the LSQ
gateway's cost over what its stack itself costs shows on the same machine.

Usage: bare_proxy.py LISTEN_PORT BACKEND_PORT
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
        self.parser = httptools.HttpResponseParser(_QUIET)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)
        self.client.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.client.transport.close()


class Client(asyncio.Protocol):
    def __init__(self, backend: int) -> None:
        self.backend = backend
        self.parser = httptools.HttpRequestParser(_QUIET)
        self.upstream: Upstream | None = None
        self.held: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        _, upstream = await loop.create_connection(
            lambda: Upstream(self), "127.0.0.1", self.backend
        )
        self.upstream = upstream
        for data in self.held:
            upstream.transport.write(data)
        self.held = []

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)
        if self.upstream is None:
            self.held.append(data)
        else:
            self.upstream.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.upstream is not None:
            self.upstream.transport.close()


async def main(port: int, backend: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: Client(backend), "127.0.0.1", port, backlog=4096
    )
    await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1]), int(sys.argv[2])))
