"""The benchmarks' health poller: GET / on each port every 20 ms until all
answer 200. Only asyncio and time, so that the bare launcher
(`bare_launcher.py`) can use it without loading anything else."""

from __future__ import annotations

import asyncio
import time

POLL_INTERVAL = 0.02


async def _probe(port: int) -> bool:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    try:
        writer.write(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        line = await asyncio.wait_for(reader.readline(), 2.0)
        return line.split(b" ")[1:2] == [b"200"]
    except (OSError, TimeoutError, IndexError):
        return False
    finally:
        writer.close()


async def _until_healthy(port: int, deadline: float) -> None:
    while not await _probe(port):
        if time.monotonic() > deadline:
            raise TimeoutError(f"127.0.0.1:{port} not healthy in time")
        await asyncio.sleep(POLL_INTERVAL)


async def wait_healthy(ports: list[int], timeout: float) -> None:
    """Poll each port's `/` every 20 ms until all answer 200."""
    deadline = time.monotonic() + timeout
    await asyncio.gather(*(_until_healthy(p, deadline) for p in ports))
