#!/usr/bin/env python3
"""Retry storm: one of three replicas fails, does the gateway multiply load?

Starts three tiny HTTP backends on 127.0.0.1 (one answers every request
with 503, two with 200), a gateway with the default policy in front, and
sends GET requests at a fixed rate for a bounded time, each on its own
connection. Reports upstream attempts per client request (target <= 1.2)
and the client success rate.

Usage: .venv/bin/python bench/gateway/retry_storm.py [--rate 200] [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from lsq.gateway import Gateway
from lsq.manifest._schema import Gateway as Settings

MAX_SECONDS = 120.0


class Replica:
    def __init__(self, status: int) -> None:
        self.status = status
        self.seen = 0
        self.port = 0

    async def start(self) -> asyncio.Server:
        server = await asyncio.start_server(self.serve, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        return server

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                self.seen += 1
                writer.write(b"HTTP/1.1 %d X\r\nContent-Length: 2\r\n\r\nok" % self.status)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()


async def one_request(port: int) -> int:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        line = await asyncio.wait_for(reader.readline(), 10)
        writer.close()
        return int(line.split()[1])
    except (TimeoutError, OSError, IndexError, ValueError):
        return 0


async def main(rate: float, seconds: float) -> dict[str, float]:
    replicas = [Replica(503), Replica(200), Replica(200)]
    servers = [await r.start() for r in replicas]
    gw = Gateway(Settings())
    backends = [
        {"id": f"web-{i}", "host": "127.0.0.1", "port": r.port}
        for i, r in enumerate(replicas)
    ]
    gw.update({"ingress_port": None, "services": {"web": {"port": 0, "backends": backends}}})
    await gw.start()
    port = gw.ports["web"]
    tasks = []
    start = time.monotonic()
    for i in range(int(rate * seconds)):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one_request(port)))
    statuses = await asyncio.gather(*tasks)
    stats = await gw.stats()
    await gw.stop()
    for server in servers:
        server.close()
    attempts = sum(r.seen for r in replicas)
    ok = sum(1 for s in statuses if s == 200)
    return {
        "client_requests": len(statuses),
        "upstream_attempts": attempts,
        "attempts_per_request": round(attempts / len(statuses), 4),
        "success_rate": round(ok / len(statuses), 4),
        "failing_replica_attempts": replicas[0].seen,
        "retries": stats["services"]["web"]["retries"],
        "events": [e["kind"] for e in stats["events"]],
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.rate, min(args.seconds, MAX_SECONDS))), indent=2))
