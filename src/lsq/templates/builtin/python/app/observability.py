"""Trace context (W3C traceparent), JSON logs and Prometheus metrics."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import secrets
import sys
import time
from dataclasses import dataclass

from prometheus_client import Counter, Histogram

from app import settings

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


@dataclass(frozen=True)
class TraceContext:
    """The current request's place in a trace."""

    trace_id: str
    span_id: str
    parent_id: str | None = None

    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-01"


current_trace: contextvars.ContextVar[TraceContext | None] = contextvars.ContextVar(
    "current_trace", default=None
)


def trace_from_header(value: str | None) -> TraceContext:
    """Continue the caller's trace, or start a new one if the header is absent or bad."""
    match = _TRACEPARENT.match((value or "").strip().lower())
    span_id = secrets.token_hex(8)
    if match and set(match.group(1)) != {"0"} and set(match.group(2)) != {"0"}:
        return TraceContext(match.group(1), span_id, match.group(2))
    return TraceContext(secrets.token_hex(16), span_id)


REQUESTS = Counter(
    "http_requests_total", "HTTP requests answered.", ["method", "route", "status"]
)
ERRORS = Counter(
    "http_request_errors_total", "Requests that failed with a 5xx.", ["method", "route"]
)
LATENCY = Histogram(
    "http_request_duration_seconds", "Time to answer a request.", ["method", "route"]
)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the current trace id when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "service": settings.SERVICE,
            "instance": settings.INSTANCE,
        }
        trace = current_trace.get()
        if trace is not None:
            event["trace_id"] = trace.trace_id
            event["span_id"] = trace.span_id
        event.update(getattr(record, "fields", {}))
        if record.exc_info:
            event["error"] = self.formatException(record.exc_info)
        return json.dumps(event, default=str)


class _StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    # Looks sys.stdout up at each write, so a replaced stdout (tests) still works.
    @property
    def stream(self):  # type: ignore[no-untyped-def]
        return sys.stdout

    @stream.setter
    def stream(self, value: object) -> None:
        pass


def setup_logging() -> None:
    handler = _StdoutHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.LOG_LEVEL)
