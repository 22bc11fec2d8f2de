"""Caller → callee edges from the gateway's hop spans and the services' spans."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

import pytest
from dashboard_helpers import Running, otlp_json, otlp_span, wait_for

from lsq.dashboard import TraceStore, parse_otlp
from lsq.dashboard._traces import call_edges, gateway_spans

TRACE = "0af7651916cd43dd8448eb211c80319c"


def service_span(service: str, span: str, parent: str = "", trace: str = TRACE) -> Any:
    """One span as a service would export it over OTLP/JSON, parsed by the store's parser."""
    now = time.time_ns()
    body = otlp_json(service, [otlp_span(trace, span, parent, now - 5_000_000, now)])
    (parsed,) = parse_otlp(body, "application/json")
    return parsed


def hop(
    span: str, parent: str, service: str, status: int = 200, *, age: float = 0.0
) -> dict[str, Any]:
    """A hop record as `Gateway.stats(take_spans=True)["spans"]` has it."""
    return {
        "trace_id": TRACE,
        "span_id": span,
        "parent_span_id": parent,
        "service": service,
        "replica": f"{service}-0",
        "method": "GET",
        "path": "/work",
        "status": status,
        "start": time.time() - age,
        "duration_ms": 2.5,
    }


def test_hop_records_become_proxy_spans_named_after_the_callee() -> None:
    (span,) = gateway_spans([hop("1111111111111111", "aaaaaaaaaaaaaaaa", "back", 502)])
    assert span["service"] == "gateway → back" and span["kind"] == "proxy"
    assert span["parent_id"] == "aaaaaaaaaaaaaaaa" and span["error"] is True
    assert span["end"] - span["start"] == 2_500_000
    assert span["attributes"]["lsq.replica"] == "back-0"
    assert gateway_spans([{"trace_id": TRACE}]) == []  # a broken record is skipped


def test_edges_count_requests_and_errors_per_caller_and_callee() -> None:
    spans = [
        service_span("front", "aaaaaaaaaaaaaaaa"),
        service_span("back", "bbbbbbbbbbbbbbbb", "1111111111111111"),
        service_span("worker", "cccccccccccccccc", "aaaaaaaaaaaaaaaa"),
        *gateway_spans(
            [
                hop("1111111111111111", "aaaaaaaaaaaaaaaa", "back"),
                hop("2222222222222222", "aaaaaaaaaaaaaaaa", "back", 503),
                hop("3333333333333333", "aaaaaaaaaaaaaaaa", "back", 404),
                hop("4444444444444444", "cccccccccccccccc", "back"),
                # Its caller sent no span: not counted.
                hop("5555555555555555", "dddddddddddddddd", "back"),
                # Older than the window: not counted.
                hop("6666666666666666", "aaaaaaaaaaaaaaaa", "back", age=120),
            ]
        ),
    ]
    edges = call_edges(spans, now=time.time(), window=60.0)
    assert edges == {
        ("front", "back"): {
            "requests": 3,
            "errors": 1,
            "rps": 0.05,
            "error_rate": 0.3333,
        },
        ("worker", "back"): {
            "requests": 1,
            "errors": 0,
            "rps": 0.017,
            "error_rate": 0.0,
        },
    }


def test_the_parent_must_be_in_the_same_trace() -> None:
    other = "1" * 32
    spans = [
        service_span("front", "aaaaaaaaaaaaaaaa", trace=other),
        *gateway_spans([hop("1111111111111111", "aaaaaaaaaaaaaaaa", "back")]),
    ]
    assert call_edges(spans, now=time.time()) == {}


def test_store_derives_edges_and_lists_services_without_the_hops() -> None:
    store = TraceStore(None)
    store.add([service_span("front", "aaaaaaaaaaaaaaaa")])
    store.add(gateway_spans([hop("1111111111111111", "aaaaaaaaaaaaaaaa", "back")]))
    store.add([service_span("back", "bbbbbbbbbbbbbbbb", "1111111111111111")])
    assert list(store.call_edges(time.time())) == [("front", "back")]
    (summary,) = store.summaries()
    assert summary["services"] == ["back", "front"]
    assert summary["spans"] == 3
    assert store.summaries(service="back")[0]["trace_id"] == TRACE
    waterfall = [s["service"] for s in store.trace(TRACE)]
    assert "gateway → back" in waterfall


# -- end to end, with the demo app: front calls back through the gateway --------


def test_topology_shows_front_calling_back_with_a_rate(demo: Running) -> None:
    if not demo.status()["gateway"]:
        pytest.skip("the gateway is off: no hop spans")
    front = demo.address("front")
    for i in range(5):
        with urllib.request.urlopen(f"{front}/order?tag=edge{i}", timeout=10) as resp:
            resp.read()

    def edge() -> dict[str, Any] | None:
        for e in demo.get("/ui/topology")["edges"]:
            if (e["from"], e["to"]) == ("front", "back") and e["requests"] >= 5:
                return e
        return None

    found = wait_for(edge, 15, "an edge front → back with 5 requests")
    assert found["declared"] is True
    assert found["rps"] > 0 and found["errors"] == 0
    assert found["source"] == "traces"
    trace_id = json.loads(
        urllib.request.urlopen(f"{front}/order?tag=wf", timeout=10).read()
    )["trace_id"]

    def waterfall() -> list[dict[str, Any]] | None:
        status, _, body = demo.request("GET", f"/ui/traces/{trace_id}")
        spans = json.loads(body).get("spans", []) if status == 200 else []
        return spans if len(spans) == 3 else None

    spans = {s["service"]: s for s in wait_for(waterfall, 15, "3 spans in the trace")}
    assert spans["gateway → back"]["parent_id"] == spans["front"]["span_id"]
    assert spans["back"]["parent_id"] == spans["gateway → back"]["span_id"]
