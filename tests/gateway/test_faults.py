"""HTTP-level faults from the routing table, against real backends."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from gateway_helpers import (
    Backend,
    Client,
    Seen,
    async_test,
    get,
    running_gateway,
    table,
)


def _tbl(backends: list[dict[str, Any]], faults: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return table({"web": {"backends": backends, "faults": faults, **extra}})


async def _big(seen: Seen, writer: asyncio.StreamWriter) -> None:
    body = b"x" * 40_000
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))


async def _timed(coro: Any) -> tuple[Any, float]:
    started = time.monotonic()
    result = await coro
    return result, time.monotonic() - started


@async_test(timeout=40)
async def test_b50_latency_fault_reaches_open_and_new_connections() -> None:
    backend = await Backend().start()
    tbl = _tbl([backend.entry("web-1")], [])
    async with running_gateway(tbl) as gw:
        old = await Client.connect(gw.ports["web"])
        assert (await old.request()).status == 200
        fault = {"id": "lat", "kind": "latency", "params": {"ms": 500}}
        gw.update(_tbl([backend.entry("web-1")], [fault]))
        await gw.wait_applied()
        on_old = [await _timed(old.request()) for _ in range(20)]
        await old.close()
        on_new = await asyncio.gather(*(_timed(get(gw.ports["web"])) for _ in range(20)))
        stats = await gw.stats()
    for response, took in [*on_old, *on_new]:
        assert response.status == 200
        assert took >= 0.5
    assert stats["fault_hits"]["lat"] == 40
    assert any(e["kind"] == "fault-hit" for e in stats["events"])


@async_test()
async def test_abort_reset_and_hang_faults() -> None:
    backend = await Backend().start()
    faults = [
        {"id": "a", "kind": "abort", "params": {"status": 418}, "match": {"prefix": "/a"}},
        {"id": "r", "kind": "reset", "match": {"prefix": "/r"}},
        {"id": "h", "kind": "hang", "match": {"prefix": "/h"}},
    ]
    tbl = _tbl([backend.entry("web-1")], faults, policy={"timeout": 0.5})
    async with running_gateway(tbl) as gw:
        aborted = await get(gw.ports["web"], "/a")
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.ports["web"])
        writer.write(b"GET /r HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            reset = await reader.read(100)
        except ConnectionError:
            reset = b""
        writer.close()
        hung, took = await _timed(get(gw.ports["web"], "/h"))
        fine = await get(gw.ports["web"], "/ok")
    assert aborted.status == 418 and aborted.json()["error"] == "fault injected"
    assert reset == b""
    assert hung.status == 504 and 0.4 <= took < 3.0
    assert fine.status == 200
    assert [s.path for s in backend.seen] == ["/ok"]


@async_test()
async def test_bandwidth_and_truncate_faults_shape_the_response_body() -> None:
    backend = await Backend(_big).start()
    faults = [
        {"id": "bw", "kind": "bandwidth", "params": {"bytes_per_s": 20_000}, "match": {"prefix": "/slow"}},
        {"id": "cut", "kind": "truncate", "params": {"after_bytes": 100}, "match": {"prefix": "/cut"}},
    ]
    async with running_gateway(_tbl([backend.entry("web-1")], faults)) as gw:
        slow, took = await _timed(get(gw.ports["web"], "/slow"))
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.ports["web"])
        writer.write(b"GET /cut HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        try:
            while chunk := await reader.read(65536):
                data += chunk
        except ConnectionError:
            pass
        writer.close()
    assert slow.status == 200 and len(slow.body) == 40_000
    assert took >= 1.5  # 40 kB at 20 kB/s
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and body == b"x" * 100


@async_test()
async def test_fault_scope_by_method_header_percent_replica_and_expiry() -> None:
    one = await Backend().start()
    two = await Backend().start()
    past = time.time() - 1
    faults = [
        {"id": "m", "kind": "abort", "params": {"status": 501}, "match": {"method": "DELETE"}},
        {"id": "hd", "kind": "abort", "params": {"status": 502}, "match": {"headers": {"X-Test": "1"}}},
        {"id": "p0", "kind": "abort", "params": {"status": 500}, "match": {"percent": 0}},
        {"id": "old", "kind": "abort", "params": {"status": 500}, "expires_at": past},
        {"id": "rep", "kind": "abort", "params": {"status": 507}, "match": {"replica": "web-2", "prefix": "/rep"}},
    ]
    tbl = _tbl([one.entry("web-1"), two.entry("web-2")], faults)
    async with running_gateway(tbl) as gw:
        client = await Client.connect(gw.ports["web"])
        deleted = (await client.request("DELETE", "/x")).status
        header = (await client.request(headers={"X-Test": "1"})).status
        other_header = (await client.request(headers={"X-Test": "2"})).status
        plain = [(await client.request()).status for _ in range(20)]
        await client.close()
        # Concurrent, so that the balancer spreads them over both replicas.
        replica = [
            r.status
            for r in await asyncio.gather(*(get(gw.ports["web"], "/rep") for _ in range(30)))
        ]
        gw.update(_tbl([one.entry("web-1")], faults))  # the same faults, web-1 only
        await gw.wait_applied()
        only_one = [(await get(gw.ports["web"], "/rep")).status for _ in range(5)]
    assert (deleted, header, other_header) == (501, 502, 200)
    assert plain == [200] * 20
    assert set(replica) <= {200, 507} and only_one == [200] * 5
    assert not any(s.path == "/rep" for s in two.seen)
    assert replica.count(200) + 5 == sum(1 for s in one.seen if s.path == "/rep")


_CALLER = """
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /src HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n")
print(s.recv(100).split(b" ")[1].decode())
"""


_WRAPPER = (
    "import subprocess, sys\n"
    "port = sys.stdin.readline().strip()\n"
    "run = subprocess.run([sys.executable, '-c', sys.argv[1], port],"
    " capture_output=True, text=True)\n"
    "print(run.stdout.strip(), flush=True)\n"
)


@async_test()
async def test_source_scoped_fault_applies_only_to_callers_of_that_service() -> None:
    backend = await Backend().start()
    # The wrapper stands for an `orders` instance; its child makes the call,
    # the way a replica's worker process would.
    wrapper = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _WRAPPER,
        _CALLER,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    orders = {"id": "orders-1", "host": "127.0.0.1", "port": 9, "pid": wrapper.pid}
    faults = [
        {"id": "part", "kind": "abort", "params": {"status": 503}, "match": {"source": "orders"}}
    ]
    tbl = table(
        {
            "web": {"backends": [backend.entry("web-1")], "faults": faults},
            "orders": {"backends": [orders]},
        }
    )
    try:
        async with running_gateway(tbl) as gw:
            ours = await get(gw.ports["web"], "/src")
            out, _ = await asyncio.wait_for(
                wrapper.communicate(b"%d\n" % gw.ports["web"]), 15
            )
    finally:
        if wrapper.returncode is None:
            wrapper.kill()
            await wrapper.wait()
    assert ours.status == 200
    assert out.decode().strip() == "503"
    assert [s.path for s in backend.seen] == ["/src"]
