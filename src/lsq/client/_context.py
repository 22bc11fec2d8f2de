"""The request context a service passes on: its deadline and its trace.

A service sets them from the request it is handling (`incoming(headers)`);
every call made through `lsq.client` in that context then carries the same
deadline (`X-LSQ-Deadline`, absolute epoch seconds) and a `traceparent` of
the same trace with a new span. Outside any context a call starts a trace.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar

DEADLINE_HEADER = "X-LSQ-Deadline"
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")

_deadline: ContextVar[float | None] = ContextVar("lsq_deadline", default=None)
_traceparent: ContextVar[str | None] = ContextVar("lsq_traceparent", default=None)


def current_deadline() -> float | None:
    """The absolute deadline (epoch seconds) of the work in progress, if any."""
    return _deadline.get()


def current_traceparent() -> str | None:
    return _traceparent.get()


def new_traceparent(parent: str | None = None) -> str:
    """A `traceparent` for an outgoing call: a child span of `parent`'s trace,
    or the first span of a new trace when `parent` is missing or malformed."""
    found = _TRACEPARENT.match(parent.strip().lower()) if parent else None
    trace = found[1] if found else secrets.token_hex(16)
    flags = found[3] if found else "01"
    return f"00-{trace}-{secrets.token_hex(8)}-{flags}"


def parse_deadline(value: str | None) -> float | None:
    if not value:
        return None
    try:
        deadline = float(value)
    except ValueError:
        return None
    return deadline if deadline > 0 else None


@contextmanager
def incoming(headers: Mapping[str, str]) -> Iterator[None]:
    """Run the handling of one request with its deadline and trace as context."""
    lower = {k.lower(): v for k, v in headers.items()}
    with context(
        deadline=parse_deadline(lower.get(DEADLINE_HEADER.lower())),
        traceparent=lower.get("traceparent"),
    ):
        yield


@contextmanager
def context(*, deadline: float | None = None, timeout: float | None = None,
            traceparent: str | None = None) -> Iterator[None]:
    """Set the deadline (absolute, or `timeout` seconds from now; the earlier
    one wins over an outer context's) and the trace for the calls inside."""
    if timeout is not None:
        deadline = min(filter(None, (deadline, time.time() + timeout)))
    outer = _deadline.get()
    if outer is not None and (deadline is None or outer < deadline):
        deadline = outer
    tokens = (_deadline.set(deadline), _traceparent.set(traceparent or _traceparent.get()))
    try:
        yield
    finally:
        _traceparent.reset(tokens[1])
        _deadline.reset(tokens[0])
