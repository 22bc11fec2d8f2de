#!/usr/bin/env python3
"""The gateway's Python work per request, without sockets.

Feeds one client connection and one pooled upstream connection (stand-in
transports that drop what is written) a request and its response, N times,
through the real protocol objects, and prints the best µs per request of 5
passes. Nothing here is the kernel's or the event loop's share.

For a count that does not depend on the machine's load, run it under
valgrind and take the difference of two runs (the first only pays start-up):

    for n in 3000 1; do N=$n valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        .venv/bin/python bench/gateway/hot_path.py 2>&1 | grep Collected; done
    # instructions per request = (first - second) / (5 * 3000)

Environment: N (requests per pass, default 100000), H (extra request headers,
default 0), LSQ_GATEWAY_POLICIES=off (the policy machinery off).
Under valgrind a request takes over a millisecond, so the per-millisecond
X-LSQ-Deadline line is made anew for each one; at real speed it is reused.
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
from collections import deque

import uvloop

from lsq.gateway._proxy import ClientConn, Upstream
from lsq.gateway._table import RoutingTable
from lsq.gateway._worker import Context


class _Transport:
    """Takes writes and drops them; enough of a transport for the fast path.

    The two methods the fast path calls per request are C callables, as
    uvloop's are, so that no interpreted frame of this stand-in is counted:
    `write` appends to a deque that keeps nothing, `is_closing` is `bool()`.
    """

    def __init__(self) -> None:
        self.write = deque(maxlen=0).append
        self.is_closing = bool

    def set_write_buffer_limits(self, high: int) -> None:
        pass

    def get_extra_info(self, name: str) -> tuple[str, int]:
        return ("127.0.0.1", 5555)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        raise SystemExit("the gateway closed a connection: not the fast path")

    abort = close


HEADERS = int(os.environ.get("H", "0"))
REQUEST = (
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1:18082\r\n"
    + b"".join(b"X-Bench-%d: value-%d-abcdefghijklmnop\r\n" % (i, i) for i in range(HEADERS))
    + b"\r\n"
)
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Fri, 04 Dec 2026 18:45:20 GMT\r\n"
    b"Content-Type: text/plain\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok"
)


async def main() -> None:
    loop = asyncio.get_running_loop()
    ctx = Context(loop, {"header_timeout": 10, "idle_timeout": 60, "trusted_proxies": []})
    table = {
        "ingress_port": None,
        "services": {
            "app": {"port": 0, "backends": [{"id": "app-0", "host": "127.0.0.1", "port": 1}]}
        },
    }
    await ctx.apply(RoutingTable.from_json(table))
    service = ctx.services["app"]
    backend = service.backends[0]
    upstream = Upstream(ctx, backend)
    upstream.connection_made(_Transport())  # type: ignore[arg-type]
    upstream.release()
    client = ClientConn(ctx, "app")
    client.connection_made(_Transport())  # type: ignore[arg-type]
    count = int(os.environ.get("N", "100000"))
    best = float("inf")
    for _ in range(5):
        gc.collect()
        started = time.perf_counter()
        for _ in range(count):
            client.data_received(REQUEST)
            upstream.data_received(RESPONSE)
        best = min(best, (time.perf_counter() - started) / count * 1e6)
    assert backend.idle and client.active is None, "the upstream did not return to the pool"
    assert service.counters.requests == 5 * count
    print(f"policies={'on' if ctx.policies else 'off'} extra headers={HEADERS}: "
          f"best {best:.2f} µs per request")


if __name__ == "__main__":
    uvloop.run(main())
