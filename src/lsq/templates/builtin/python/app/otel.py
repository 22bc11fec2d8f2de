"""OpenTelemetry trace export over OTLP/HTTP (JSON), with no extra packages.

Imported only when OTEL_EXPORTER_OTLP_ENDPOINT is set. One span per request is
queued and a background thread posts batches to <endpoint>/v1/traces; a failed
post is dropped (telemetry must never slow or break the service).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

import httpx

from app import settings

_spans: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=10_000)
log = logging.getLogger("app.otel")


def record_span(
    *,
    trace_id: str,
    span_id: str,
    parent_id: str | None,
    name: str,
    start_ns: int,
    end_ns: int,
    status: int,
) -> None:
    span = {
        "traceId": trace_id,
        "spanId": span_id,
        "name": name,
        "kind": 2,  # SERVER
        "startTimeUnixNano": str(start_ns),
        "endTimeUnixNano": str(end_ns),
        "attributes": [
            {"key": "http.response.status_code", "value": {"intValue": str(status)}}
        ],
        "status": {"code": 2 if status >= 500 else 0},
    }
    if parent_id:
        span["parentSpanId"] = parent_id
    try:
        _spans.put_nowait(span)
    except queue.Full:
        pass


def _payload(spans: list[dict[str, Any]]) -> dict[str, Any]:
    resource = {
        "attributes": [
            {"key": "service.name", "value": {"stringValue": settings.SERVICE}},
            {"key": "service.instance.id", "value": {"stringValue": settings.INSTANCE}},
        ]
    }
    scope = {"scope": {"name": "app"}, "spans": spans}
    return {"resourceSpans": [{"resource": resource, "scopeSpans": [scope]}]}


def _export_forever(endpoint: str) -> None:
    url = endpoint.rstrip("/") + "/v1/traces"
    with httpx.Client(timeout=5.0) as client:
        while True:
            batch = [_spans.get()]
            time.sleep(0.5)
            while not _spans.empty() and len(batch) < 512:
                batch.append(_spans.get_nowait())
            try:
                client.post(url, json=_payload(batch))
            except httpx.HTTPError as exc:
                log.debug("span export failed: %s", exc)


def start(endpoint: str) -> None:
    threading.Thread(
        target=_export_forever, args=(endpoint,), name="otlp", daemon=True
    ).start()
