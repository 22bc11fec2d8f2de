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

    def trace(self, trace_id: str) -> list[Span]:
        return sorted(self._traces.get(trace_id.lower(), []), key=lambda s: s["start"])

    def summaries(self, *, service: str = "", limit: int = 100) -> list[dict[str, Any]]:
        """The newest traces first: root name, services, span count, duration."""
        out: list[dict[str, Any]] = []
        for trace_id in reversed(self._traces):
            spans = self._traces[trace_id]
            services = sorted({s["service"] for s in spans})
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
