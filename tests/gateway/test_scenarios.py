"""Rows B31-B40 of the failure-scenarios table, shortened to test time."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from pathlib import Path

import websockets
from gateway_helpers import (
    Backend,
    Client,
    Seen,
    async_test,
    read_response,
    running_gateway,
    serving,
    table,
)


async def _sse(seen: Seen, writer: asyncio.StreamWriter) -> None:
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
        b"Cache-Control: no-cache\r\nConnection: close\r\n\r\n"
    )
    for i in range(5):
        await asyncio.sleep(0.2)
        writer.write(b"data: %d %.6f\n\n" % (i, time.monotonic()))
        await writer.drain()
    writer.close()


async def _event_delays(port: int) -> list[float]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
    await reader.readuntil(b"\r\n\r\n")
    delays: list[float] = []
    buf = b""
    while len(delays) < 5:
        chunk = await reader.read(4096)
        assert chunk, "stream ended early"
        buf += chunk
        while b"data: " in buf and b"\n\n" in buf.split(b"data: ", 1)[1]:
            event, buf = buf.split(b"data: ", 1)[1].split(b"\n\n", 1)
            delays.append(time.monotonic() - float(event.split()[-1]))
    writer.close()
    return delays


@async_test()
async def test_b31_sse_events_arrive_as_written() -> None:
    backend = await Backend(_sse).start()
    async with running_gateway(
        table({"ev": {"backends": [backend.entry("ev-0")]}})
    ) as gw:
        through = await _event_delays(gw.ports["ev"])
    direct = await _event_delays(backend.port)
    assert len(through) == 5
    # Each event shows up well before the next one is written (200 ms later).
    assert max(through) < 0.15, (through, direct)


@async_test(timeout=40)
async def test_b33_websocket_subprotocol_idle_gap_and_close() -> None:
    closed_by_client = asyncio.Event()

    async def handler(ws: websockets.ServerConnection) -> None:
        async for message in ws:
            await ws.send(f"echo:{message}")
        closed_by_client.set()

    def choose(conn: object, protocols: list[str]) -> str | None:
        return "mqtt" if "mqtt" in protocols else None

    server = await websockets.serve(
        handler,
        "127.0.0.1",
        0,
        subprotocols=["mqtt"],  # type: ignore[list-item]
        select_subprotocol=choose,
    )
    port = server.sockets[0].getsockname()[1]  # type: ignore[index]
    tbl = table(
        {"ws": {"backends": [{"id": "ws-0", "host": "127.0.0.1", "port": port}]}}
    )
    try:
        async with running_gateway(tbl, idle_timeout=1.0, header_timeout=1.0) as gw:
            url = f"ws://127.0.0.1:{gw.ports['ws']}/mqtt"
            async with websockets.connect(
                url,
                subprotocols=["mqtt"],  # type: ignore[list-item]
                ping_interval=None,
            ) as ws:
                assert ws.subprotocol == "mqtt"
                await ws.send("one")
                assert await ws.recv() == "echo:one"
                await asyncio.sleep(2.5)  # idle longer than idle_timeout
                await ws.send("two")
                assert await ws.recv() == "echo:two"
            await asyncio.wait_for(closed_by_client.wait(), 5)
    finally:
        server.close()
        await server.wait_closed()


@async_test()
async def test_b33_server_side_close_reaches_the_client() -> None:
    async def handler(ws: websockets.ServerConnection) -> None:
        await ws.send("bye")
        await ws.close(code=4001, reason="done")

    server = await websockets.serve(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]  # type: ignore[index]
    tbl = table(
        {"ws": {"backends": [{"id": "ws-0", "host": "127.0.0.1", "port": port}]}}
    )
    try:
        async with (
            running_gateway(tbl) as gw,
            websockets.connect(f"ws://127.0.0.1:{gw.ports['ws']}/") as ws,
        ):
            assert await ws.recv() == "bye"
            await asyncio.wait_for(ws.wait_closed(), 5)
            assert ws.close_code == 4001
    finally:
        server.close()
        await server.wait_closed()


@async_test(timeout=40)
async def test_b34_expect_continue_with_curl(tmp_path_factory: object = None) -> None:
    backend = await Backend().start()
    payload = os.urandom(2 << 20)
    path = f"/tmp/lsq-gw-b34-{os.getpid()}.bin"
    Path(path).write_bytes(payload)
    try:
        async with serving(backend) as gw:
            proc = await asyncio.create_subprocess_exec(
                "curl",
                "-sv",
                "--data-binary",
                f"@{path}",
                f"http://127.0.0.1:{gw.ports['api']}/up",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            _, err = await proc.communicate()
    finally:
        os.unlink(path)
    assert b"Expect: 100-continue" in err
    assert err.count(b"< HTTP/1.1 100") <= 1
    assert b"< HTTP/1.1 200" in err
    assert backend.seen[0].sha256 == hashlib.sha256(payload).hexdigest()


@async_test()
async def test_b34_client_waiting_for_100_gets_exactly_one() -> None:
    backend = await Backend().start()
    payload = os.urandom(2 << 20)
    async with serving(backend) as gw:
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.ports["api"])
        writer.write(
            b"POST /up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            b"Content-Length: %d\r\n\r\n" % len(payload)
        )
        interim = await asyncio.wait_for(read_response(reader), 5)
        writer.write(payload)
        final = await read_response(reader)
        writer.close()
    assert interim.status == 100
    assert final.status == 200
    assert "expect" not in backend.seen[0].headers
    assert backend.seen[0].sha256 == hashlib.sha256(payload).hexdigest()


@async_test()
async def test_b35_post_retried_on_healthy_replica_after_refusal() -> None:
    healthy = await Backend().start()
    dead = await Backend().start()
    await dead.stop()
    payload = os.urandom(64 * 1024)
    backends = [dead.entry("api-0"), healthy.entry("api-1")]
    async with running_gateway(table({"api": {"backends": backends}})) as gw:
        statuses = []
        for _ in range(6):  # the balancer picks the dead one first sometimes
            client = await Client.connect(gw.ports["api"])
            statuses.append((await client.request("POST", "/b", body=payload)).status)
            await client.close()
        stats = await gw.stats()
    assert statuses == [200] * 6
    assert all(s.sha256 == hashlib.sha256(payload).hexdigest() for s in healthy.seen)
    assert len(healthy.seen) == 6
    assert stats["replicas"]["api-0"]["errors"]["connect"] >= 1


@async_test()
async def test_b37_forwarded_headers_replaced_for_untrusted_and_appended_for_trusted() -> (
    None
):
    backend = await Backend().start()
    tbl = table({"api": {"backends": [backend.entry("api-0")]}})
    forged = {"X-Forwarded-For": "1.2.3.4", "X-Forwarded-Proto": "https"}
    async with running_gateway(tbl, trusted_proxies=["127.0.0.2/32"]) as gw:
        for source in ("127.0.0.1", "127.0.0.2"):
            client = await Client.connect(gw.ports["api"], source=source)
            await client.request(headers=forged)
            await client.close()
    untrusted, trusted = (s.headers for s in backend.seen)
    assert untrusted["x-forwarded-for"] == "127.0.0.1"
    assert untrusted["x-forwarded-proto"] == "http"
    assert trusted["x-forwarded-for"] == "1.2.3.4, 127.0.0.2"
    assert trusted["x-forwarded-proto"] == "https"


async def _redirect(seen: Seen, writer: asyncio.StreamWriter) -> None:
    location = f"http://{seen.headers['host']}/login"
    writer.write(
        f"HTTP/1.1 302 Found\r\nLocation: {location}\r\n"
        "Content-Length: 0\r\n\r\n".encode()
    )


@async_test()
async def test_b38_host_is_kept_and_redirects_point_to_it() -> None:
    backend = await Backend(_redirect).start()
    async with running_gateway(
        table({"app": {"backends": [backend.entry("app-0")]}})
    ) as gw:
        client = await Client.connect(gw.ports["app"])
        response = await client.request(headers={"Host": "app.localtest.me"})
        await client.close()
    assert response.status == 302
    assert response.headers["location"] == "http://app.localtest.me/login"
    assert backend.seen[0].headers["host"] == "app.localtest.me"
    assert backend.seen[0].headers["x-forwarded-host"] == "app.localtest.me"


async def _slow_upload(port: int, payload: bytes) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"PUT /slow HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(payload)
    )
    step = 20 * 1024
    for i in range(0, len(payload), step):  # ~200 KB/s
        writer.write(payload[i : i + step])
        await writer.drain()
        await asyncio.sleep(0.1)
    response = await read_response(reader)
    writer.close()
    return response.status


async def _trickle(port: int) -> float:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    start = time.monotonic()
    try:
        for byte in b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: yes\r\n\r\n":
            writer.write(bytes([byte]))
            await writer.drain()
            if await _closed_within(reader, 1.5):
                return time.monotonic() - start
    except ConnectionError:
        return time.monotonic() - start
    finally:
        writer.close()
    raise AssertionError("the header trickler was never dropped")


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    try:
        data = await asyncio.wait_for(reader.read(1), seconds)
    except TimeoutError:
        return False
    except ConnectionError:
        return True
    return data == b""


@async_test(timeout=60)
async def test_b40_slow_steady_upload_succeeds_and_header_trickler_is_dropped() -> None:
    backend = await Backend().start()
    payload = os.urandom(2 << 20)
    tbl = table({"api": {"backends": [backend.entry("api-0")]}})
    async with running_gateway(tbl, idle_timeout=2.0, header_timeout=1.0) as gw:
        status, dropped_after = await asyncio.gather(
            _slow_upload(gw.ports["api"], payload), _trickle(gw.ports["api"])
        )
    assert status == 200
    assert backend.seen[0].sha256 == hashlib.sha256(payload).hexdigest()
    assert 0.9 <= dropped_after < 6.0
    assert all(s.path != "/" for s in backend.seen)
