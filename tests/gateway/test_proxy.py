"""Forwarding, keep-alive, pooling, streaming bodies and error answers.

Each test runs twice: against the compiled hot path that set-up builds, and
against its Python source (LSQ_GATEWAY_BUILD=source, which the gateway's
worker processes inherit), so that the two builds are held to one behaviour.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from typing import Any

import pytest

from gateway_helpers import (
    Backend,
    Client,
    Seen,
    async_test,
    get,
    read_response,
    running_gateway,
    serving,
    table,
)


@pytest.fixture(autouse=True, params=["compiled", "source"])
def build(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "source":
        monkeypatch.setenv("LSQ_GATEWAY_BUILD", "source")
    return str(request.param)


@async_test()
async def test_keep_alive_reuses_client_and_upstream_connections() -> None:
    backend = await Backend().start()
    async with serving(backend) as gw:
        client = await Client.connect(gw.ports["api"])
        conns = [
            (await client.request(path=f"/r{i}")).json()["conn"] for i in range(20)
        ]
        await client.close()
    assert backend.connections == 1
    assert set(conns) == {1}
    assert [s.path for s in backend.seen] == [f"/r{i}" for i in range(20)]


@async_test()
async def test_stale_pooled_connection_never_gives_502() -> None:
    backend = await Backend(idle_close=0.1).start()
    async with serving(backend) as gw:
        statuses = []
        for i in range(12):
            client = await Client.connect(gw.ports["api"])
            statuses.append(
                (await client.request("POST", "/p", body=b"x" * 100)).status
            )
            await client.close()
            # Gaps around the backend's idle limit, so some land right on it.
            await asyncio.sleep((0.08, 0.1, 0.12, 0.2)[i % 4])
    assert statuses == [200] * 12
    assert backend.connections > 1  # the backend did close idle connections
    assert len(backend.seen) == 12  # and no POST reached it twice


async def _chunked_backend(seen: Seen, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    for part in (b"alpha", b"-", b"omega"):
        writer.write(b"%x\r\n%s\r\n" % (len(part), part))
        await writer.drain()
    writer.write(b"0\r\n\r\n")


@async_test()
async def test_chunked_request_and_response_are_reframed_and_complete() -> None:
    backend = await Backend(_chunked_backend).start()
    async with serving(backend) as gw:
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.ports["api"])
        writer.write(
            b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"
        )
        response = await read_response(reader)
        writer.close()
    assert response.status == 200
    assert response.body == b"alpha-omega"
    assert backend.seen[0].length == 7
    assert backend.seen[0].sha256 == hashlib.sha256(b"abcdefg").hexdigest()


@async_test(timeout=60)
async def test_20mb_upload_streams_with_identical_hash() -> None:
    backend = await Backend().start()
    payload = os.urandom(1 << 20) * 20
    async with serving(backend) as gw:
        client = await Client.connect(gw.ports["api"])
        response = await client.request("PUT", "/upload", body=payload)
        await client.close()
    assert response.status == 200
    assert response.json()["length"] == len(payload)
    assert response.json()["sha256"] == hashlib.sha256(payload).hexdigest()


@async_test()
async def test_no_replica_gives_503_json() -> None:
    async with running_gateway(table({"api": {}})) as gw:
        response = await get(gw.ports["api"])
    assert response.status == 503
    assert response.headers["content-type"] == "application/json"
    assert response.json()["service"] == "api"
    assert set(response.json()) == {"error", "service", "cause"}


@async_test()
async def test_connect_refused_gives_502_json() -> None:
    dead = await Backend().start()
    await dead.stop()
    async with running_gateway(
        table({"api": {"backends": [dead.entry("api-0")]}})
    ) as gw:
        response = await get(gw.ports["api"])
        stats = await gw.stats()
    assert response.status == 502
    assert "refused" in response.json()["cause"]
    assert stats["replicas"]["api-0"]["errors"]["connect"] == 1
    assert stats["services"]["api"]["errors"]["5xx"] == 1


async def _silent(seen: Seen, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(10)


@async_test()
async def test_backend_that_never_answers_gives_504_json() -> None:
    backend = await Backend(_silent).start()
    tbl = table({"api": {"backends": [backend.entry("api-0")]}})
    async with running_gateway(tbl, idle_timeout=1.0) as gw:
        response = await get(gw.ports["api"])
    assert response.status == 504
    assert response.json()["error"] == "gateway timeout"


@async_test()
async def test_malformed_request_gives_400() -> None:
    backend = await Backend().start()
    async with serving(backend) as gw:
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.ports["api"])
        writer.write(b"GET / HTTP/1.1\r\nBad Header\r\n\r\n")
        response = await read_response(reader)
        writer.close()
    assert response.status == 400
    assert backend.seen == []


@async_test()
async def test_huge_header_block_gives_431() -> None:
    backend = await Backend().start()
    async with serving(backend) as gw:
        response = await get(gw.ports["api"], headers={"X-Big": "a" * 100_000})
    assert response.status == 431
    assert backend.seen == []


async def _dies_midway(seen: Seen, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000)
    await writer.drain()
    await asyncio.sleep(0.2)
    writer.transport.abort()


@async_test()
async def test_backend_dying_mid_response_aborts_the_client_connection() -> None:
    backend = await Backend(_dies_midway).start()
    async with serving(backend) as gw:
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.ports["api"])
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := await reader.read(65536):
            data += chunk
        writer.close()
        stats = await gw.stats()
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert body == b"x" * 1000  # no error text appended, no second status line
    assert stats["services"]["api"]["errors"]["aborted"] == 1


_MALFORMED_HEADS = [
    # A CR not followed by LF hides or invents header lines, depending on who
    # reads it (found by comparing the two builds).
    b"HTTP/1.1 200 OK\r\nX: a\r\rContent-Length: 5\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\nX: a\r\r\nContent-Length: 5\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX: a\r\rContent-Length: 9\r\n\r\nhelloWORLD",
    # Lines that are no header at all.
    b"HTTP/1.1 200 OK\r\nBad Header\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.1 200 OK\r\nX Y: z\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n: empty-name\r\n\r\nok",
]


async def _answering(raws: list[bytes]) -> dict[str, Any]:
    """A table with services s0, s1, ... whose one replica answers every
    request with the raw bytes of the same index."""
    backends = []
    for raw in raws:

        async def answer(seen: Seen, writer: asyncio.StreamWriter, raw: bytes = raw) -> None:
            writer.write(raw)

        backends.append(await Backend(answer).start())
    return table({f"s{i}": {"backends": [b.entry(f"s{i}-0")]} for i, b in enumerate(backends)})


@async_test()
async def test_a_malformed_response_head_gives_502() -> None:
    """Never passed on to the client, in the fast path as in the careful one."""
    async with running_gateway(await _answering(_MALFORMED_HEADS)) as gw:
        for i in range(len(_MALFORMED_HEADS)):
            response = await get(gw.ports[f"s{i}"])
            assert response.status == 502, (_MALFORMED_HEADS[i], response)
            assert b"bad gateway" in response.body


async def _slow_head(seen: Seen, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


@async_test()
async def test_head_request_response_has_no_body() -> None:
    backend = await Backend(_slow_head).start()
    async with serving(backend) as gw:
        client = await Client.connect(gw.ports["api"])
        head = await client.request("HEAD", "/")
        await client.close()
    assert head.status == 200
    assert head.headers["content-length"] == "2"


async def _shouting_backend(seen: Seen, writer: asyncio.StreamWriter) -> None:
    writer.write(
        b"HTTP/1.1 200 OK\r\nCONTENT-LENGTH: 2\r\nCONNECTION: keep-alive\r\n"
        b"Te-Note: kept\r\nRetry-After: 3\r\n\r\nok"
    )


@async_test()
async def test_header_scan_reads_names_in_any_case_and_keeps_look_alikes() -> None:
    backend = await Backend().start()
    shouting = await Backend(_shouting_backend).start()
    async with running_gateway(
        table(
            {
                "api": {"backends": [backend.entry("api-0")]},
                "loud": {"backends": [shouting.entry("loud-0")]},
            }
        )
    ) as gw:
        client = await Client.connect(gw.ports["api"])
        first = await client.request(
            path="/a",
            headers={
                "Host": "Shop.Example",
                "CONNECTION": "keep-alive",
                "Te-Custom": "1",  # starts like `TE`, is not hop-by-hop
                "Hosting": "no",  # starts like `Host`
                "X-Lsq-Deadline": "4102444800.000",
            },
        )
        # A second request on the same connection: still served, the
        # connection header was understood as keep-alive.
        second = await client.request(path="/b", headers={"Host": "shop.example"})
        await client.close()
        loud = await get(gw.ports["loud"])
    assert first.status == second.status == 200
    sent = backend.seen[0]
    names = [name.lower() for name, _ in sent.raw_headers]
    assert names.count("x-lsq-deadline") == 1 and "connection" not in names
    assert sent.headers["te-custom"] == "1" and sent.headers["hosting"] == "no"
    assert sent.headers["host"] == "Shop.Example"
    assert sent.headers["x-forwarded-host"] == "Shop.Example"
    # An incoming deadline later than the policy's is replaced by the policy's.
    assert float(sent.headers["x-lsq-deadline"]) < 4102444800.0
    assert backend.seen[1].headers["x-forwarded-host"] == "shop.example"
    assert loud.status == 200 and loud.body == b"ok"
    # The backend's keep-alive is what the client's connection is too.
    assert loud.headers["connection"] == "keep-alive"
    assert loud.headers["te-note"] == "kept" and loud.headers["retry-after"] == "3"


@async_test()
async def test_missing_or_repeated_host_gets_400() -> None:
    backend = await Backend().start()
    async with serving(backend) as gw:
        answers = []
        for head in (
            b"GET /x HTTP/1.1\r\n\r\n",
            b"GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            b"GET /ok HTTP/1.0\r\n\r\n",  # HTTP/1.0 needs no Host
        ):
            reader, writer = await asyncio.open_connection("127.0.0.1", gw.ports["api"])
            writer.write(head)
            answers.append(await read_response(reader))
            writer.close()
    assert [a.status for a in answers] == [400, 400, 200]
    assert "Host" in answers[0].json()["cause"] and "Host" in answers[1].json()["cause"]
    assert [s.path for s in backend.seen] == ["/ok"]


async def _slow_ok(seen: Seen, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(0.3)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")


@async_test()
async def test_garbage_behind_a_request_in_flight_waits_for_its_response_then_400() -> None:
    backend = await Backend(_slow_ok).start()
    async with serving(backend) as gw:
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.ports["api"])
        writer.write(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
        await asyncio.sleep(0.05)  # the request is with the backend now
        writer.write(b"GARBAGE\r\n\r\n")
        first = await read_response(reader)
        second = await read_response(reader)
        rest = await reader.read()  # the gateway closes after the 400
        writer.close()
    assert (first.status, first.body) == (200, b"hello")
    assert second.status == 400 and rest == b""


@async_test()
async def test_requests_before_malformed_bytes_in_the_same_read_are_answered() -> None:
    """Garbage, or a request after `Connection: close`, in the same write as
    valid requests: those before it are served, then 400 (or the close)."""
    backend = await Backend(_slow_ok).start()
    async with serving(backend) as gw:
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.ports["api"])
        writer.write(
            b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n"
            b"POST /second HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
            b"GARBAGE\r\n\r\n"
        )
        first = await read_response(reader)
        second = await read_response(reader)
        third = await read_response(reader)
        rest = await reader.read()
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.ports["api"])
        writer.write(
            b"GET /closing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        closing = await read_response(reader)
        after = await reader.read()
        writer.close()
    assert [first.status, second.status, third.status] == [200, 200, 400]
    assert rest == b""
    assert closing.status == 200 and after == b""
    assert [s.path for s in backend.seen] == ["/first", "/second", "/closing"]
    assert backend.seen[1].length == 3


@async_test()
async def test_a_zero_content_length_written_00_ends_the_request() -> None:
    backend = await Backend().start()
    async with serving(backend) as gw:
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.ports["api"])
        writer.write(
            b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 00\r\n\r\n"
            b"GET /second HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        first = await read_response(reader)
        second = await read_response(reader)
        writer.write(b"GET /third HTTP/1.1\r\nHost: x\r\n\r\n")
        third = await read_response(reader)
        writer.close()
    assert [first.status, second.status, third.status] == [200, 200, 200]
    assert [s.path for s in backend.seen] == ["/p", "/second", "/third"]
    assert backend.connections == 1  # the upstream connection was reused


_NOT_A_STATUS = [
    b"HTTP/1.1 099 X\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 000 X\r\nContent-Length: 0\r\n\r\n",
    # Lines ended by a bare LF: httptools decides at once, never a timeout.
    b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
]


@async_test()
async def test_a_status_below_100_or_a_bare_lf_head_gives_502_at_once() -> None:
    async with running_gateway(await _answering(_NOT_A_STATUS)) as gw:
        for i in range(len(_NOT_A_STATUS)):
            response = await asyncio.wait_for(get(gw.ports[f"s{i}"]), 5)
            assert response.status in (200, 502), (_NOT_A_STATUS[i], response)
            if i < 2:
                assert response.status == 502 and b"not one" in response.body, response


async def _retry_then_ok(seen: Seen, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 503 Busy\r\nRETRY-AFTER: 0\r\nContent-Length: 0\r\n\r\n")


@async_test()
async def test_a_retried_5xx_counts_in_the_replica_that_answered_it() -> None:
    failing = await Backend(_retry_then_ok).start()
    good = await Backend().start()
    async with running_gateway(
        table({"api": {"backends": [failing.entry("api-0"), good.entry("api-1")]}})
    ) as gw:
        statuses = [(await get(gw.ports["api"], f"/r{i}")).status for i in range(20)]
        stats = await gw.stats()
    assert statuses == [200] * 20
    answered = len(failing.seen)
    assert answered >= 1  # two random choices: the failing replica got some
    replica = stats["replicas"]["api-0"]
    assert replica["requests"] == answered
    assert replica["errors"]["5xx"] == answered
    assert stats["services"]["api"]["requests"] == 20
    assert stats["services"]["api"]["errors"]["5xx"] == 0
