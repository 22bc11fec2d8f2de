"""Hop spans: a sampled traceparent gets a gateway span between caller and callee."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from gateway_helpers import Backend, Client, async_test, serving

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER = "00f067aa0ba902b7"


def _parts(traceparent: str) -> list[str]:
    version, trace, parent, flags = traceparent.split("-")
    assert (len(version), len(trace), len(parent), len(flags)) == (2, 32, 16, 2)
    return [version, trace, parent, flags]


async def _spans(gw: Any, want: int) -> list[dict[str, Any]]:
    """Take spans until `want` arrived (bounded to 5 s)."""
    spans: list[dict[str, Any]] = []
    deadline = time.monotonic() + 5.0
    while len(spans) < want and time.monotonic() < deadline:
        spans += (await gw.stats(take_spans=True))["spans"]
        await asyncio.sleep(0.05)
    return spans


@pytest.mark.parametrize("careful", [False, True])
@async_test()
async def test_sampled_traceparent_gets_a_hop_span_that_parents_the_backend(
    careful: bool,
) -> None:
    backend = await Backend().start()
    async with serving(backend) as gw:
        client = await Client.connect(gw.ports["api"])
        headers = {"traceparent": f"00-{TRACE}-{CALLER}-01"}
        if careful:  # a client X-Forwarded-For sends the head the careful way
            headers["X-Forwarded-For"] = "10.0.0.1"
        started = time.time()
        resp = await client.request("GET", "/orders?id=7", headers=headers)
        await client.close()
        spans = await _spans(gw, 1)
    assert resp.status == 200
    sent = _parts(backend.seen[0].headers["traceparent"])
    assert sent[1] == TRACE
    assert sent[2] != CALLER
    assert sent[3] == "01"
    assert len(spans) == 1
    span = spans[0]
    assert span["span_id"] == sent[2]
    assert (span["trace_id"], span["parent_span_id"]) == (TRACE, CALLER)
    assert (span["service"], span["replica"]) == ("api", "api-0")
    assert (span["method"], span["path"], span["status"]) == (
        "GET",
        "/orders?id=7",
        200,
    )
    assert started - 1.0 <= span["start"] <= time.time()
    assert 0.0 <= span["duration_ms"] < 10_000


@pytest.mark.parametrize(
    "traceparent",
    [
        None,
        f"00-{TRACE}-{CALLER}-00",  # not sampled
        f"00-{TRACE}-0000000000000000-01",  # invalid parent
        "00-not-a-trace-01",
    ],
)
@async_test()
async def test_unsampled_or_absent_traceparent_gets_no_span_and_passes_as_is(
    traceparent: str | None,
) -> None:
    backend = await Backend().start()
    async with serving(backend) as gw:
        client = await Client.connect(gw.ports["api"])
        headers = {"traceparent": traceparent} if traceparent else {}
        resp = await client.request("GET", "/", headers=headers)
        # A sampled request after it proves spans do get through.
        sampled = {"traceparent": f"00-{TRACE}-{CALLER}-01"}
        await client.request("GET", "/after", headers=sampled)
        await client.close()
        spans = await _spans(gw, 1)
    assert resp.status == 200
    assert backend.seen[0].headers.get("traceparent") == traceparent
    assert [s["path"] for s in spans] == ["/after"]


@async_test()
async def test_spans_wait_in_the_gateway_until_taken() -> None:
    backend = await Backend().start()
    async with serving(backend, workers=2) as gw:
        for i in range(6):
            client = await Client.connect(gw.ports["api"])
            await client.request(
                "GET", f"/r{i}", headers={"traceparent": f"00-{TRACE}-{CALLER}-01"}
            )
            await client.close()
        # A reader that does not take (the dashboard, a deploy) leaves them.
        assert (await gw.stats())["spans"] == []
        spans = await _spans(gw, 6)
        assert (await gw.stats(take_spans=True))["spans"] == []
    assert sorted(s["path"] for s in spans) == [f"/r{i}" for i in range(6)]
    assert len({s["span_id"] for s in spans}) == 6
