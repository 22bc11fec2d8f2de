"""Spans received over OTLP/HTTP: parsing, a bounded store, and its file.

Exporters post `ExportTraceServiceRequest` as protobuf (the default) or as
JSON. Both are turned into one flat dict per span. The store keeps the newest
`max_spans` spans in memory and appends each span to
`.lsq/telemetry/spans.jsonl`; past `max_bytes` that file becomes
`spans.jsonl.1` (the older `.1` is dropped), so the folder holds at most
about twice `max_bytes` and a restarted runtime reloads the newest spans.
"""

from __future__ import annotations

import base64
import json
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from lsq.errors import ControlError

_KINDS = {
    0: "unspecified",
    1: "internal",
    2: "server",
    3: "client",
    4: "producer",
    5: "consumer",
}
_MAX_ATTRS = 32
# The kind of the spans the gateway adds for each hop it proxied.
GATEWAY_KIND = "proxy"


Span = dict[str, Any]


def parse_otlp(body: bytes, content_type: str) -> list[Span]:
    """The spans of one export request; raises ControlError (status 400) on a bad body."""
    if "json" in content_type:
        try:
            data = json.loads(body or b"{}")
        except ValueError as exc:
            raise ControlError(
                f"OTLP JSON body is not JSON: {exc}", status=400
            ) from exc
        if not isinstance(data, dict):
            raise ControlError(
                "OTLP JSON body: expected an object with resourceSpans", status=400
            )
        return _spans_from_json(data)
    return _spans_from_protobuf(body)


def _spans_from_protobuf(body: bytes) -> list[Span]:
    from google.protobuf.json_format import MessageToDict
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except DecodeError as exc:
        raise ControlError(
            f"OTLP protobuf body could not be decoded: {exc}", status=400
        ) from exc
    # MessageToDict gives the OTLP JSON mapping, except that ids come out
    # base64 rather than hex; `_id` accepts both.
    return _spans_from_json(MessageToDict(request))


def _spans_from_json(data: dict[str, Any]) -> list[Span]:
    spans: list[Span] = []
    for rs in data.get("resourceSpans") or []:
        resource = _attrs((rs.get("resource") or {}).get("attributes"))
        service = str(resource.get("service.name", "unknown"))
        for ss in rs.get("scopeSpans") or rs.get("instrumentationLibrarySpans") or []:
            for raw in ss.get("spans") or []:
                spans.append(_span(raw, service))
    return spans


def _span(raw: dict[str, Any], service: str) -> Span:
    status = raw.get("status") or {}
    code = status.get("code", 0)
    error = code in (2, "STATUS_CODE_ERROR")
    kind = raw.get("kind", 0)
    if isinstance(kind, str):
        kind = kind.removeprefix("SPAN_KIND_").lower()
    else:
        kind = _KINDS.get(int(kind), "unspecified")
    return {
        "trace_id": _id(raw.get("traceId", ""), 16),
        "span_id": _id(raw.get("spanId", ""), 8),
        "parent_id": _id(raw.get("parentSpanId", ""), 8),
        "name": str(raw.get("name", ""))[:200],
        "service": service,
        "kind": kind,
        "start": int(raw.get("startTimeUnixNano") or 0),
        "end": int(raw.get("endTimeUnixNano") or 0),
        "error": error,
        "status": str(status.get("message", ""))[:200],
        "attributes": _attrs(raw.get("attributes")),
    }


def _id(value: str, size: int) -> str:
    """Hex id from OTLP JSON (hex) or protobuf-as-JSON (base64)."""
    if not value:
        return ""
    if len(value) == size * 2:
        try:
            bytes.fromhex(value)
            return value.lower()
        except ValueError:
            pass
    try:
        return base64.b64decode(value).hex()
    except ValueError:
        return ""


def _attrs(items: list[dict[str, Any]] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in (items or [])[:_MAX_ATTRS]:
        value = item.get("value") or {}
        for key in ("stringValue", "intValue", "doubleValue", "boolValue"):
            if key in value:
                found = value[key]
                out[str(item.get("key", ""))] = (
                    str(found)[:500] if key == "stringValue" else found
                )
                break
    return out


class TraceStore:
    """The newest `max_spans` spans, indexed by trace id, mirrored to a file."""

    def __init__(
        self, folder: Path | None, *, max_spans: int = 10_000, max_bytes: int = 8 << 20
    ) -> None:
        self._spans: deque[Span] = deque()
        self._traces: dict[str, list[Span]] = {}
        self._max = max_spans
        self._max_bytes = max_bytes
        self._path = folder / "spans.jsonl" if folder else None
        self._file: IO[bytes] | None = None
        self._size = 0
        if self._path is not None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._load()
            self._open()

    def __len__(self) -> int:
        return len(self._spans)

    def add(self, spans: list[Span]) -> None:
        for span in spans:
            self._keep(span)
            self._write(span)

    def _keep(self, span: Span) -> None:
        if not span["trace_id"]:
            return
        self._spans.append(span)
        self._traces.setdefault(span["trace_id"], []).append(span)
        while len(self._spans) > self._max:
            old = self._spans.popleft()
            same = self._traces.get(old["trace_id"], [])
            for i, kept in enumerate(same):
                if kept is old:
                    del same[i]
                    break
            if not same:
                self._traces.pop(old["trace_id"], None)

    def call_edges(
        self, now: float, *, window: float = 60.0
    ) -> dict[tuple[str, str], dict[str, Any]]:
        """Caller → callee counts over the last `window` seconds; see `call_edges`."""
        return call_edges(self._spans, now=now, window=window)

    def trace(self, trace_id: str) -> list[Span]:
        return sorted(self._traces.get(trace_id.lower(), []), key=lambda s: s["start"])

    def summaries(self, *, service: str = "", limit: int = 100) -> list[dict[str, Any]]:
        """The newest traces first: root name, services, span count, duration."""
        out: list[dict[str, Any]] = []
        for trace_id in reversed(self._traces):
            spans = self._traces[trace_id]
            services = _services(spans)
            if service and service not in services:
                continue
            out.append(_summary(trace_id, spans, services))
            if len(out) >= limit:
                break
        return out

    # -- the file -----------------------------------------------------------

    def _load(self) -> None:
        assert self._path is not None
        for path in (self._path.with_name(self._path.name + ".1"), self._path):
            try:
                data = path.read_bytes()
            except OSError:
                continue
            for raw in data.splitlines():
                try:
                    self._keep(json.loads(raw))
                except (ValueError, KeyError, TypeError):
                    continue

    def _open(self) -> None:
        assert self._path is not None
        self._file = open(self._path, "ab")  # noqa: SIM115 - open until close()
        self._size = self._file.tell()

    def _write(self, span: Span) -> None:
        if self._file is None:
            return
        data = (json.dumps(span, separators=(",", ":")) + "\n").encode()
        if self._size + len(data) > self._max_bytes and self._size:
            self._file.close()
            assert self._path is not None
            self._path.replace(self._path.with_name(self._path.name + ".1"))
            self._open()
        self._file.write(data)
        self._size += len(data)

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _services(spans: list[Span]) -> list[str]:
    # Gateway hops repeat the callee's name; list them only when nothing else
    # of the trace arrived (the services do not export spans).
    own = {s["service"] for s in spans if s["kind"] != GATEWAY_KIND}
    return sorted(own or {s["service"] for s in spans})


def _summary(trace_id: str, spans: list[Span], services: list[str]) -> dict[str, Any]:
    ids = {s["span_id"] for s in spans}
    roots = [s for s in spans if not s["parent_id"] or s["parent_id"] not in ids]
    root = min(roots or spans, key=lambda s: s["start"])
    start = min(s["start"] for s in spans)
    end = max(s["end"] for s in spans)
    return {
        "trace_id": trace_id,
        "name": f"{root['service']}: {root['name']}",
        "services": services,
        "spans": len(spans),
        "start": start / 1e9,
        "duration_ms": round((end - start) / 1e6, 3),
        "error": any(s["error"] for s in spans),
    }


# -- the gateway's hop spans --------------------------------------------------


def gateway_spans(hops: list[dict[str, Any]]) -> list[Span]:
    """The gateway's hop records (`Gateway.stats(take_spans=True)["spans"]`)
    as store spans: service `gateway → <service>`, kind `proxy`."""
    spans: list[Span] = []
    for hop in hops:
        try:
            spans.append(_hop_span(hop))
        except (KeyError, TypeError, ValueError):
            continue
    return spans


def _hop_span(hop: dict[str, Any]) -> Span:
    start = int(float(hop["start"]) * 1e9)
    status = int(hop["status"])
    service = str(hop["service"])
    return {
        "trace_id": str(hop["trace_id"]).lower(),
        "span_id": str(hop["span_id"]).lower(),
        "parent_id": str(hop.get("parent_span_id") or "").lower(),
        "name": f"{hop.get('method', '')} {hop.get('path', '')}"[:200],
        "service": f"gateway → {service}",
        "kind": GATEWAY_KIND,
        "start": start,
        "end": start + int(float(hop.get("duration_ms", 0.0)) * 1e6),
        "error": status >= 500,
        "status": str(status),
        "attributes": {
            "lsq.service": service,
            "lsq.replica": hop.get("replica"),
            "http.method": hop.get("method"),
            "http.target": hop.get("path"),
            "http.status_code": status,
        },
    }


def call_edges(
    spans: Iterable[Span], *, now: float, window: float = 60.0
) -> dict[tuple[str, str], dict[str, Any]]:
    """Caller → callee counts from gateway hops that ended in the last `window` s.

    A hop counts for the edge A → B when its parent is a span that service A
    sent (over OTLP) and B is the service the gateway routed it to. Hops whose
    parent is unknown (the caller does not export spans, or its span has not
    arrived yet) are not counted.
    """
    spans = list(spans)
    owners = {
        (s["trace_id"], s["span_id"]): s["service"]
        for s in spans
        if s["kind"] != GATEWAY_KIND
    }
    since = int((now - window) * 1e9)
    counts: dict[tuple[str, str], dict[str, Any]] = {}
    for span in spans:
        if span["kind"] != GATEWAY_KIND or span["end"] < since:
            continue
        caller = owners.get((span["trace_id"], span["parent_id"]))
        callee = span["attributes"].get("lsq.service")
        if caller is None or not callee:
            continue
        edge = counts.setdefault((caller, str(callee)), {"requests": 0, "errors": 0})
        edge["requests"] += 1
        edge["errors"] += 1 if span["error"] else 0
    for edge in counts.values():
        edge["rps"] = round(edge["requests"] / window, 3)
        edge["error_rate"] = round(edge["errors"] / edge["requests"], 4)
    return counts
