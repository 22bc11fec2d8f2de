"""OTLP parsing (protobuf and JSON) and the bounded, persisted trace store."""

from __future__ import annotations

from pathlib import Path

import pytest

from dashboard_helpers import otlp_json, otlp_span

from lsq.dashboard import TraceStore, parse_otlp
from lsq.errors import ControlError

TRACE = "0af7651916cd43dd8448eb211c80319c"


def json_request(spans: list[tuple[str, str, str]], service: str = "api") -> bytes:
    return otlp_json(
        service,
        [
            otlp_span(
                trace,
                span,
                parent,
                1000,
                5000,
                status={"code": 2, "message": "boom"},
                attributes=[{"key": "http.status_code", "value": {"intValue": "500"}}],
            )
            for trace, span, parent in spans
        ],
    )


def test_json_export_is_parsed() -> None:
    (span,) = parse_otlp(
        json_request([(TRACE, "b7ad6b7169203331", "")]), "application/json"
    )
    assert span["trace_id"] == TRACE and span["span_id"] == "b7ad6b7169203331"
    assert span["service"] == "api" and span["kind"] == "server"
    assert span["error"] is True and span["status"] == "boom"
    assert span["end"] - span["start"] == 4000
    assert span["attributes"] == {"http.status_code": "500"}


def test_protobuf_export_is_parsed() -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

    request = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource={
                    "attributes": [
                        KeyValue(
                            key="service.name", value=AnyValue(string_value="shop")
                        )
                    ]
                },
                scope_spans=[
                    ScopeSpans(
                        spans=[
                            Span(
                                trace_id=bytes.fromhex(TRACE),
                                span_id=bytes.fromhex("00f067aa0ba902b7"),
                                parent_span_id=bytes.fromhex("b7ad6b7169203331"),
                                name="charge",
                                kind=Span.SPAN_KIND_CLIENT,
                                start_time_unix_nano=10,
                                end_time_unix_nano=30,
                            )
                        ]
                    )
                ],
            )
        ]
    )
    (span,) = parse_otlp(request.SerializeToString(), "application/x-protobuf")
    assert span["trace_id"] == TRACE
    assert span["span_id"] == "00f067aa0ba902b7"
    assert span["parent_id"] == "b7ad6b7169203331"
    assert (span["service"], span["name"], span["kind"]) == ("shop", "charge", "client")
    assert (span["start"], span["end"], span["error"]) == (10, 30, False)


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b"\xff\xff\xff", "application/x-protobuf"),
        (b"[1]", "application/json"),
        (b"{", "application/json"),
    ],
)
def test_bad_bodies_raise_control_errors(body: bytes, kind: str) -> None:
    with pytest.raises(ControlError) as caught:
        parse_otlp(body, kind)
    assert caught.value.status == 400


def span_ids(n: int) -> list[tuple[str, str, str]]:
    return [(f"{i // 2:032x}", f"{i + 1:016x}", "") for i in range(n)]


def test_store_keeps_the_newest_spans_and_drops_empty_traces(tmp_path: Path) -> None:
    store = TraceStore(None, max_spans=10)
    store.add(parse_otlp(json_request(span_ids(30)), "application/json"))
    assert len(store) == 10
    summaries = store.summaries(limit=100)
    assert len(summaries) == 5
    assert summaries[0]["trace_id"] == f"{14:032x}"
    assert store.trace(f"{0:032x}") == []


def test_store_survives_a_restart_within_its_size_cap(tmp_path: Path) -> None:
    store = TraceStore(tmp_path, max_spans=100, max_bytes=4000)
    store.add(parse_otlp(json_request(span_ids(60)), "application/json"))
    store.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["spans.jsonl", "spans.jsonl.1"]
    assert all(p.stat().st_size <= 4000 for p in tmp_path.iterdir())
    again = TraceStore(tmp_path, max_spans=100)
    assert 0 < len(again) < 60
    newest = again.summaries(limit=1)[0]
    assert newest["trace_id"] == f"{29:032x}" and newest["spans"] == 2
    again.close()
