"""The HTTP/1.1 proxy on asyncio protocols: client side, upstream side.

A `ClientConn` frames requests, routes each one, and streams its body to an
`Upstream` (a pooled keep-alive connection to a backend), whose response
streams back. Neither side buffers a whole message: when one side's write
buffer is high the other side stops reading.

Two paths in each direction. The fast path covers the common message: HTTP/1.1,
a Content-Length body or none, no hop-by-hop header other than
`Connection: keep-alive|close`, no X-Forwarded-*. It finds the end of the
head itself, finds the few headers that matter with one compiled regular
expression over a lower-cased copy (a C scan instead of a Python call per
header, which httptools would make), and forwards the head as it came plus
the gateway's own lines; a second httptools parser without per-header
callbacks checks the syntax in C. Anything else goes to the careful path:
httptools with every callback, which rebuilds the head header by header. A
client connection that needed the careful path once keeps it.

The hot path avoids `bytes in bytes`: on CPython 3.11 it first tries the
operand as an integer and formats a TypeError, several times the cost of
`find`.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import time
from bisect import bisect_left
from collections import deque
from collections.abc import Callable
from typing import Any

import httptools

from lsq.gateway._balance import CLOSED, HALF_OPEN, OPEN, BackendState, ServiceState
from lsq.gateway._faults import Fault
from lsq.gateway._headers import (
    HOP_BY_HOP,
    SPECIAL,
    connection_tokens,
    forwarded_headers,
    is_trusted,
)
from lsq.gateway._policy import IDEMPOTENT, RETRY_BODY, RETRY_STATUS, Policy
from lsq.gateway._stats import BUCKETS, Counters

_bisect = bisect_left
_BOUNDS = BUCKETS
_LAST_BUCKET = len(BUCKETS) - 1

_perf = time.perf_counter
_wall = time.time

# The compiled build (setup.py) has the digest of the sources it was made
# from here; lsq/gateway/_compiled.py compares it with them at import.
COMPILED_FROM: str | None = None

HIGH_WATER = 256 * 1024
MAX_HEAD = 64 * 1024  # request line plus headers
MAX_REPLAY = 1024 * 1024  # bytes kept to resend a request on a fresh connection

_PAUSE_UPSTREAM = 1  # the upstream's write buffer is high
_PAUSE_PENDING = 2  # body buffered while the upstream connection is made
_PAUSE_QUEUE = 4  # a pipelined request waits for the one before it
_PAUSE_BAD = 8  # malformed bytes behind a request in flight: read no more

_NO_BODY, _PASS, _CHUNK, _CLOSE = 0, 1, 2, 3
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_DEADLINE = b"\r\nx-lsq-deadline:"
# The request headers the fast path reads, and those that send it to the
# careful path, found in one scan of the lower-cased head: (name, value) pairs.
_REQUEST_FIELDS = re.compile(
    rb"\r\n(host|content-length|connection|x-lsq-deadline|traceparent|idempotency-key"
    rb"|transfer-encoding|upgrade|expect|keep-alive|te|trailer|forwarded"
    rb"|(?:proxy-|x-forwarded-)[^:\r]*):[ \t]*([^\r]*)"
).findall
_RESPONSE_FIELDS = re.compile(
    rb"\r\n(content-length|connection|retry-after"
    rb"|transfer-encoding|upgrade|keep-alive|te|trailer|proxy-[^:\r]*):[ \t]*([^\r]*)"
).findall
_TRACEPARENT = b"\r\ntraceparent:"
# The same names, for the compiled scan (the prefixes it checks by hand).
_REQUEST_NAMES = tuple(
    b"host content-length connection x-lsq-deadline traceparent idempotency-key"
    b" transfer-encoding upgrade expect keep-alive te trailer forwarded".split()
)
_RESPONSE_NAMES = tuple(
    b"content-length connection retry-after transfer-encoding upgrade keep-alive"
    b" te trailer".split()
)


def _scan_fields(head: bytes, response: bool) -> list[tuple[bytes, bytes]]:
    """What `_RESPONSE_FIELDS(head.lower())` (or, for a request,
    `_REQUEST_FIELDS`) finds in a complete head that httptools has found
    valid (every CR starts a CRLF), by one pass over its bytes; each value as
    the sender wrote it.

    The compiled build uses this: typed by _proxy.pxd it runs as a C loop
    that compares names in place, ignoring case, with no lower-cased copy of
    the head and no object for a name it does not want. The source keeps the
    regular expression, which is faster in the interpreter. Both are
    compared on many heads by tests/gateway/test_compiled.py.
    """
    found = []
    names = _RESPONSE_NAMES if response else _REQUEST_NAMES
    p = head  # a char pointer in the compiled build
    n = len(head)
    i = 0
    while i < n and p[i] != 13:  # past the request or status line
        i += 1
    i += 2  # each header line starts after a CRLF
    while i < n:
        c = p[i]
        if c == 13:  # CR: the blank line that ends the head
            break
        j = i + 1
        while j < n and p[j] != 13:
            j += 1
        if 65 <= c <= 90:
            c += 32
        # Only lines whose first letters can start a wanted name are looked at.
        if response:
            wanted = c in b"crtukp"
        else:
            wanted = c in b"hcxtiuekfp" and (
                c != 120 or (p[i + 1] == 45 and (p[i + 2] | 32 == 102 or p[i + 2] | 32 == 108))
            )  # x: only x-f(orwarded-*) and x-l(sq-deadline)
        if wanted:
            k = i + 1
            while k < j and p[k] != 58:  # the colon
                k += 1
            name = None
            for candidate in names:
                if candidate[0] == c and _is_name(p, i, k, candidate, False):
                    name = candidate
                    break
            if name is None and (
                (c == 112 and _is_name(p, i, k, b"proxy-", True))
                or (c == 120 and not response and _is_name(p, i, k, b"x-forwarded-", True))
            ):
                name = p[i:k].lower()
            if name is not None and k < j:
                k += 1
                while k < j and (p[k] == 32 or p[k] == 9):
                    k += 1
                found.append((name, p[k:j]))
        i = j + 2
    return found


def _is_name(p: bytes, i: int, k: int, name: bytes, prefix: bool) -> bool:
    """Whether `p[i:k].lower()` is `name` (lower-case), or with `prefix`,
    starts with it."""
    m = len(name)
    if k - i < m or (k - i > m and not prefix):
        return False
    q = name  # char pointers in the compiled build
    t = 0
    k = i + m
    while i < k:
        c = p[i]
        if 65 <= c <= 90:
            c += 32
        if c != q[t]:
            return False
        i += 1
        t += 1
    return True


class _Syntax:
    """A protocol with no callbacks: httptools then only checks syntax, in C."""


_SYNTAX = _Syntax()
_REASONS = {
    400: "Bad Request",
    404: "Not Found",
    408: "Request Timeout",
    431: "Request Header Fields Too Large",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
_REASONS.update({429: "Too Many Requests", 500: "Internal Server Error"})


class _HeadTooLarge(Exception):
    pass


class _BadHost(Exception):
    """An HTTP/1.1 request with no Host, or more than one (RFC 9112: 400)."""


class _BadStatus(Exception):
    """A backend's status line with a code below 100 (502)."""


# Every field of a Request but `pending`, with its default. The source build
# puts these on the class, so that a request costs only what it sets; in the
# compiled build Request is a C type whose fields start at 0, False or None,
# and __init__ sets the few defaults that are something else.
_REQUEST_DEFAULTS: dict[str, object] = {
    "backend": None,
    "upstream": None,
    "service": None,
    "policy": None,
    "tried": (),
    "faults": (),
    "shape": None,  # a bandwidth or truncate fault on the response
    "replay": None,
    "replay_size": 0,
    "pending_size": 0,
    "t0": 0.0,
    "try_at": 0.0,  # loop time the current attempt started
    "deadline": 0.0,  # loop time; 0 = none
    "retries": 0,
    "status": 0,
    "bytes_out": 0,
    "body_done": False,
    "started": False,  # response head sent to the client
    "sent100": False,
    "finished": False,
    "error": None,
    "trace": None,  # trace id, hop span id, parent id
    "tunnel_rest": None,
    "slot": False,  # counted in backend.active
    "upgrade": False,
    "expect": False,
    "chunked": False,
    "keep_alive": True,
    "http10": False,
    "idem": False,  # has an Idempotency-Key
    "probe": False,  # the half-open breaker's probe
    "hang": False,
    "waiting": False,  # a retry or latency timer is pending
    "fast": False,  # the head came by the fast path
    "method": b"",
    "head": b"",
    "url": b"",
    "lower": b"",
    "headers": None,  # the careful path's (name, value) pairs
}


class ContextBase:
    """What the hot path reads of a worker's shared state on every request;
    `lsq.gateway._worker.Context` derives from it and has the rest. In the
    compiled build a C type, so that these are struct fields there."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.clock: Callable[[], float] = loop.time  # bound once
        self.now = loop.time()  # the loop's clock, refreshed by the worker's tick
        self.policies = True
        self.services: dict[str, ServiceState] = {}
        self.access: Any = None  # the access log, when asked for
        self.spans: Any = None  # hop spans of traced requests
        self.conns: set[ClientConn] = set()


class Request:
    """One request on a client connection, from its first byte to its response."""

    def __init__(self) -> None:
        self.pending: list[bytes] = []
        if COMPILED_FROM is not None:  # the C type's zero values, corrected
            self.tried = ()
            self.faults = ()
            self.keep_alive = True
            self.method = self.head = self.url = self.lower = b""


if COMPILED_FROM is None:
    for _field, _default in _REQUEST_DEFAULTS.items():
        setattr(Request, _field, _default)


class ClientConn:
    """A connection from a client to a service port or the ingress port.

    An asyncio protocol by its methods; it does not derive from
    `asyncio.Protocol` so that the compiled build can make it a C type.
    """

    def __init__(self, ctx: ContextBase, service: str | None) -> None:
        self.ctx = ctx
        self.fixed = service  # None on the ingress port
        self.check = httptools.HttpRequestParser(_SYNTAX)
        self.parser: httptools.HttpRequestParser | None = None  # careful path
        self.careful = False
        self.buf = b""
        self.body_left = 0
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.parsing: Request | None = None
        self.active: Request | None = None
        self.queue: deque[Request] = deque()
        self.tunnel: Upstream | None = None
        self.upgrading = False
        self.paused = 0
        self.out_paused = False
        self.closed = False
        self.head_at: float | None = None
        self.head_size = 0
        self.last = ctx.now
        self.peer = b""
        self.forwarded = b""
        self.tail_host: bytes | None = None  # the Host `tail` was made for
        self.tail = b""  # X-Forwarded-* lines for requests with that Host
        self.ending_line: bytes | None = None  # the deadline line `ending` has
        self.ending = b""  # what ends a head: `tail`, then that line
        self.trusted = False
        self.source: str | None | bool = False  # False = not looked up yet
        self.bad: tuple[int, str] | None = None  # a 400 to send once the queue is done

    # -- asyncio callbacks -------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.set_write_buffer_limits(HIGH_WATER)
        peer = transport.get_extra_info("peername")
        host = peer[0] if isinstance(peer, tuple) else "127.0.0.1"
        self.peer = host.encode()
        self.forwarded = (
            b"X-Forwarded-For: " + self.peer + b"\r\nX-Forwarded-Proto: http\r\n"
        )
        self.trusted = is_trusted(host, self.ctx.trusted)
        self.ctx.conns.add(self)

    def data_received(self, data: bytes) -> None:
        self.last = self.ctx.now
        if self.tunnel is not None:
            self.tunnel.transport.write(data)
            return
        if self.upgrading:
            self._hold_tunnel_bytes(data)
            return
        if self.careful:
            self._feed_careful(data)
            return
        try:
            self.check.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass  # an Upgrade head: the careful path takes it below
        except httptools.HttpParserError:
            self._malformed(data)
            return
        self._frame(data)

    def _malformed(self, data: bytes) -> None:
        """`data` goes wrong somewhere. What comes before that is still served:
        the rest of a body in progress by the fast path, then the careful
        parser takes the requests one by one and answers 400 where the bytes
        go wrong, once the requests before are answered."""
        if self.body_left:
            n = min(self.body_left, len(data))
            self._frame(data if n == len(data) else data[:n])
            data = data[n:]
            if self.closed:
                return
        rest = self.buf + data if self.buf else data
        self.buf = b""
        self._go_careful(rest)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.ctx.conns.discard(self)
        if self.tunnel is not None:
            self.tunnel.transport.close()
            return
        req = self.active
        if req is not None and not req.finished:
            req.finished = True
            _free_slot(req)
            upstream = req.upstream
            if upstream is not None:
                upstream.req = None
                upstream.client = None
                upstream.transport.abort()
            self._account(req, 499, aborted=True)

    def eof_received(self) -> bool | None:
        return None  # the transport closes; connection_lost follows

    def pause_writing(self) -> None:
        self.out_paused = True
        upstream = self.tunnel or (self.active.upstream if self.active else None)
        if upstream is not None:
            upstream.pause()

    def resume_writing(self) -> None:
        self.out_paused = False
        upstream = self.tunnel or (self.active.upstream if self.active else None)
        if upstream is not None and not upstream.closed:
            upstream.resume()

    # -- the fast path -----------------------------------------------------

    def _frame(self, data: bytes) -> None:
        """Split bytes into heads and Content-Length bodies."""
        buf = self.buf + data if self.buf else data
        self.buf = b""
        pos, size = 0, len(buf)
        while pos < size:
            if self.body_left:
                n = min(self.body_left, size - pos)
                chunk = buf if n == size else buf[pos : pos + n]
                pos += n
                self.body_left -= n
                req: Request = self.parsing  # type: ignore[assignment]
                if not self.body_left:
                    self.parsing = None
                    req.body_done = True
                self._send(req, chunk)
                continue
            end = buf.find(b"\r\n\r\n", pos)
            if end < 0 or end + 4 - pos > MAX_HEAD:
                rest = buf[pos:] if pos else buf
                if len(rest) > MAX_HEAD:
                    self._bad_request(431, "request line plus headers over 64 KiB")
                    return
                self.buf = rest
                if self.head_at is None:
                    self.head_at = self.ctx.loop.time()
                return
            end += 4
            head = buf if pos == 0 and end == size else buf[pos:end]
            if not self._fast_head(head):
                self._go_careful(buf[pos:] if pos else buf)
                return
            pos = end

    def _fast_head(self, head: bytes) -> bool:
        """Take a complete head by the fast path; False: it needs the careful one."""
        raw = head  # a char pointer in the compiled build (see the module docstring)
        size = len(head)
        if COMPILED_FROM is None:
            line_end = head.find(b"\r\n")
            sp = head.find(b" ", 0, line_end)
        else:
            line_end = _find_byte(head, 13, 0, size)
            sp = _find_byte(head, 32, 0, line_end)
        if sp <= 0 or line_end < 9 or not head.startswith(b" HTTP/1.1", line_end - 9):
            return False
        if raw[sp + 1] != 47:  # the path starts with a slash
            return False
        url = raw[sp + 1 : line_end - 9]
        method = raw[0:sp]
        lower = head.lower()
        host: bytes | None = None
        length = -1  # no Content-Length
        keep = True
        connection = idem = traced = False
        incoming = 0.0
        # One C scan finds every header the gateway reads or must not pass on.
        fields = (
            _REQUEST_FIELDS(lower) if COMPILED_FROM is None else _scan_fields(head, False)
        )
        for name, value in fields:
            if name == b"host":
                if host is not None:
                    return False
                host = value.rstrip()
            elif name == b"content-length":
                if length >= 0:
                    return False
                length = _length(value.rstrip())
                if length < 0:
                    return False
            elif name == b"connection":
                kept = _keeps(value)
                if connection or kept < 0:
                    return False
                connection = True
                keep = kept == 1
            elif name == b"x-lsq-deadline":
                if incoming:
                    return False
                incoming = _float(value) or -1.0
            elif name == b"traceparent":
                traced = True
            elif name == b"idempotency-key":
                idem = True
            else:
                return False  # hop-by-hop, Upgrade, Expect, X-Forwarded-*: careful
        if host is None:
            return False
        if host and COMPILED_FROM is None:
            # As the client wrote it: the regular expression saw the lower-cased
            # copy (the compiled scan takes values from `head`).
            at = lower.find(b"\r\nhost:") + 7
            host = head[at : lower.find(b"\r\n", at)].lstrip(b" \t").rstrip()
        if connection:
            head, lower = _cut_line(head, lower, b"\r\nconnection:")
        if incoming:
            head, lower = _cut_line(head, lower, _DEADLINE)
        req = Request()
        req.method = method
        req.fast = method != b"HEAD"  # a HEAD response has no body to count
        req.url = url
        req.keep_alive = keep
        req.lower = lower
        req.idem = idem
        if traced:
            head = _hop_head(req, head, lower)
        path = self._resolve(req, host, url)
        service = req.service
        if service is not None:
            if service.external:
                return False
            if path is not url:
                head = method + b" " + path + head[line_end - 9 :]
            if host != self.tail_host:
                self.tail_host = host
                self.tail = self.forwarded
                if host:
                    self.tail += b"X-Forwarded-Host: " + host + b"\r\n"
                self.ending_line = None
            ctx = self.ctx
            if ctx.policies:
                # _deadline, inlined for its common case: no incoming deadline,
                # and the line made for this millisecond is there to reuse.
                # A route's policy by the path as the client sent it (see
                # `_deadline`).
                policy = req.policy = (
                    service.policy_for(url) if service.routes else service.policy
                )
                now = ctx.clock()
                if incoming > 0.0 or now != policy.line_at:
                    line = self._deadline(req, service, url, incoming)
                else:
                    req.deadline = now + policy.timeout
                    line = policy.line
                if line is not self.ending_line:  # tail + line, made once per line
                    self.ending_line = line
                    self.ending = self.tail + line
                head = _chop(head, 2) + self.ending
            else:
                head = _chop(head, 2) + self.tail + b"\r\n"
        req.head = head
        self.head_at = None
        if length > 0:
            self.parsing = req
            self.body_left = length
        else:
            req.body_done = True
        self._start(req)
        return True

    def _deadline(
        self, req: Request, service: ServiceState, sent: bytes, incoming: float
    ) -> bytes:
        """Choose the request's policy and deadline; the deadline line and the
        blank line that ends the head.

        The line for a request with no incoming deadline is kept per policy
        for the loop's current millisecond (the loop clock has that
        resolution): under load most requests reuse it.
        """
        # A route's policy by the path as the client `sent` it (origin form),
        # not the upstream path, which the ingress may have stripped of the
        # route's prefix.
        policy = req.policy = service.policy_for(sent) if service.routes else service.policy
        now = self.ctx.clock()
        wall = _wall()
        limit = wall + policy.timeout
        if 0.0 < incoming < limit:
            req.deadline = now + (incoming - wall)
            return b"X-LSQ-Deadline: %.3f\r\n\r\n" % incoming
        req.deadline = now + policy.timeout
        if now != policy.line_at:
            policy.line_at = now
            policy.line = b"X-LSQ-Deadline: %.3f\r\n\r\n" % limit
        return policy.line

    def _start(self, req: Request) -> None:
        if self.active is None:
            self.active = req
            self._dispatch(req)
        else:
            self.queue.append(req)
            self._set_pause(_PAUSE_QUEUE, True)

    # -- the careful path: httptools with every callback --------------------

    def _go_careful(self, rest: bytes) -> None:
        self.careful = True
        self.check = None  # type: ignore[assignment]
        self.parser = httptools.HttpRequestParser(self)
        self._feed_careful(rest)

    def _feed_careful(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)  # type: ignore[union-attr]
        except httptools.HttpParserUpgrade as exc:
            self.upgrading = True
            rest = data[exc.args[0] :]
            if rest:
                self._hold_tunnel_bytes(rest)
        except httptools.HttpParserError as exc:
            cause = exc.__context__
            if isinstance(cause, _BadHost):
                self._bad_request(400, str(cause))
                return
            too_large = isinstance(cause, _HeadTooLarge)
            self._bad_request(431 if too_large else 400, str(exc))

    def on_message_begin(self) -> None:
        self.head_at = self.ctx.loop.time()
        self.head_size = 0
        self.parsing = Request()
        self.parsing.headers = []

    def on_url(self, url: bytes) -> None:
        self.head_size += len(url)
        if self.head_size > MAX_HEAD:
            raise _HeadTooLarge
        self.parsing.url += url  # type: ignore[union-attr]

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_size += len(name) + len(value) + 4
        if self.head_size > MAX_HEAD:
            raise _HeadTooLarge
        self.parsing.headers.append((name, value))  # type: ignore[union-attr]

    def on_headers_complete(self) -> None:
        self.head_at = None
        req: Request = self.parsing  # type: ignore[assignment]
        parser: httptools.HttpRequestParser = self.parser  # type: ignore[assignment]
        req.method = parser.get_method()
        req.keep_alive = parser.should_keep_alive()
        req.http10 = parser.get_http_version() == "1.0"
        req.upgrade = parser.should_upgrade()
        self._route(req)
        self._start(req)

    def on_body(self, body: bytes) -> None:
        req: Request = self.parsing  # type: ignore[assignment]
        if req.chunked:
            self._send(req, b"%x\r\n" % len(body))
            self._send(req, body)
            self._send(req, b"\r\n")
        else:
            self._send(req, body)

    def on_message_complete(self) -> None:
        req: Request = self.parsing  # type: ignore[assignment]
        self.parsing = None
        req.body_done = True
        if req.chunked:
            self._send(req, b"0\r\n\r\n")

    # -- routing and the request head -------------------------------------

    def _resolve(self, req: Request, host: bytes, url: bytes) -> bytes:
        """Set `req.service` (or `req.error`); the path to send upstream."""
        ctx = self.ctx
        path = url
        name = self.fixed
        if name is None:
            name, path = ctx.ingress_route(host, path)
            if name is None:
                req.error = (404, "no route", "no service matches this Host or path")
                return path
        services = ctx.services
        service = services.get(name)
        if service is None:
            req.error = (503, "service unavailable", f"service {name!r} is not routed")
            return path
        req.service = service
        return path

    def _route(self, req: Request) -> None:
        """Route a careful-path request (in a parser callback: `_BadHost` ends
        the connection with 400)."""
        host: bytes | None = None
        for name, value in req.headers:
            if len(name) == 4 and name.lower() == b"host":
                if host is not None:
                    raise _BadHost("more than one Host header")
                host = value
        if host is None:
            if not req.http10:
                raise _BadHost("an HTTP/1.1 request needs a Host header")
            host = b""
        path = req.url
        if path[:1] != b"/" and b"://" in path[:12]:
            path = b"/" + path.split(b"/", 3)[3] if path.count(b"/") >= 3 else b"/"
        sent = path
        path = self._resolve(req, host, path)
        service = req.service
        if service is None:
            return
        if service.external and service.backends:
            path = service.backends[0].base_path + path
        req.head = self._build_head(req, path, host, sent)

    def _build_head(self, req: Request, path: bytes, host: bytes, sent: bytes) -> bytes:
        lines = [req.method, b" ", path, b" HTTP/1.1\r\n"]
        found: dict[bytes, bytes] = {}
        for name, value in req.headers:
            lower = name.lower()
            if lower == b"traceparent" and req.trace is None:
                value = _hop_value(req, value) or value
            if lower in SPECIAL:
                old = found.get(lower)
                found[lower] = old + b", " + value if old else value
                continue
            lines += (name, b": ", value, b"\r\n")
        if b"connection" in found:
            lines = _drop_named(lines, connection_tokens(found[b"connection"]))
        req.expect = found.get(b"expect", b"").lower() == b"100-continue"
        te = found.get(b"transfer-encoding")
        if te is not None:
            req.chunked = True
            lines.append(b"Transfer-Encoding: " + te + b"\r\n")
        backend_host = self._target_host(req)
        lines.append(b"Host: " + (backend_host or host) + b"\r\n")
        lines += forwarded_headers(
            found, peer=self.peer, host=host, trusted=self.trusted
        )
        if req.upgrade and b"upgrade" in found:
            lines.append(
                b"Connection: upgrade\r\nUpgrade: " + found[b"upgrade"] + b"\r\n"
            )
        if self.ctx.policies and req.service is not None:
            req.idem = b"idempotency-key" in found
            incoming = _float(found.get(b"x-lsq-deadline", b""))
            lines.append(self._deadline(req, req.service, sent, incoming))
        else:
            lines.append(b"\r\n")
        return b"".join(lines)

    def _target_host(self, req: Request) -> bytes | None:
        service = req.service
        if service is not None and service.external and service.backends:
            return service.backends[0].host_header
        return None

    # -- sending the request upstream -------------------------------------

    def _dispatch(self, req: Request) -> None:
        req.t0 = _perf()
        self.last = self.ctx.now
        if req.error is not None:
            self._respond_error(req, *req.error)
            return
        service: ServiceState = req.service  # type: ignore[assignment]
        if service.guarded and self._guard(req, service):
            return
        self._try(req)

    def _try(self, req: Request) -> None:
        """One attempt: pick a replica and send the request to it."""
        ctx = self.ctx
        service: ServiceState = req.service  # type: ignore[assignment]
        backend = service.pick(req.tried, ctx.now)
        if backend is None:
            if req.tried:
                self._respond_error(req, 502, "bad gateway", _refused_cause(req))
            else:
                cause = "the service has no routable replica"
                self._respond_error(req, 503, "no healthy replica", cause)
            return
        req.backend = backend
        req.slot = True
        backend.active += 1
        req.try_at = ctx.now
        backend.win_total += 1
        budget = service.budget
        budget.tokens += budget.ratio
        if req.faults and self._apply_faults(req, backend):
            return
        self._send_to(req, backend)

    def _send_to(self, req: Request, backend: BackendState) -> None:
        req.waiting = False
        replayable = req.method == b"GET" or req.method in IDEMPOTENT or req.idem
        upstream = _take_idle(backend, not replayable)
        if upstream is not None:
            self._attach(req, upstream, True)
        else:
            self.ctx.loop.create_task(self._connect(req, backend))

    async def _connect(self, req: Request, backend: BackendState) -> None:
        ctx = self.ctx
        timeout = req.policy.connect_timeout if req.policy else ctx.connect_timeout
        try:
            _, upstream = await asyncio.wait_for(
                ctx.loop.create_connection(
                    lambda: Upstream(ctx, backend),
                    backend.host,
                    backend.port,
                    ssl=backend.ssl,
                    server_hostname=backend.server_hostname,
                ),
                timeout,
            )
        except (TimeoutError, OSError) as exc:
            self._connect_failed(req, backend, exc)
            return
        if self.closed or self.active is not req or req.finished:
            upstream.release()
            return
        self._attach(req, upstream, False)

    def _connect_failed(
        self, req: Request, backend: BackendState, exc: BaseException
    ) -> None:
        _free_slot(req)
        timeout = isinstance(exc, asyncio.TimeoutError)
        backend.counters.errors["timeout" if timeout else "connect"] += 1
        if self.closed or self.active is not req or req.finished:
            return
        req.tried += (backend,)
        cause = f"connect to {backend.host}:{backend.port} failed: " + (
            "timed out" if timeout else (exc.strerror or str(exc))  # type: ignore[attr-defined]
        )
        self.ctx.failed(req, backend, cause)
        # Nothing reached the replica: any method may go to another one.
        delay = self._retry_delay(req, sent=False)
        if delay is not None:
            self._retry_later(req, delay)
        elif timeout:
            self._respond_error(req, 504, "gateway timeout", cause)
        else:
            self._respond_error(req, 502, "bad gateway", cause)

    def _attach(self, req: Request, upstream: Upstream, reused: bool) -> None:
        upstream.client = self
        upstream.req = req
        upstream.reused = reused
        upstream.got = False
        req.upstream = upstream
        parts = [req.head, *req.pending]
        size = req.pending_size
        req.pending = []
        req.pending_size = 0
        if (
            req.replay is None
            and size + len(req.head) <= MAX_REPLAY
            and not req.started
        ):
            req.replay, req.replay_size = parts, size
        if self.out_paused:
            upstream.pause()
        # One joined write: uvloop sends a single buffer at once, while
        # writelines() defers to a later loop iteration.
        upstream.transport.write(b"".join(parts) if len(parts) > 1 else parts[0])
        if self.paused & _PAUSE_PENDING:
            self._set_pause(_PAUSE_PENDING, False)
        if req.expect and not req.sent100 and not req.body_done:
            req.sent100 = True
            self.transport.write(_CONTINUE)

    def _send(self, req: Request, data: bytes) -> None:
        if req.finished:
            return
        upstream = req.upstream
        if upstream is not None:
            upstream.transport.write(data)
            if req.replay is not None:
                req.replay_size += len(data)
                if req.replay_size > MAX_REPLAY:
                    req.replay = None
                else:
                    req.replay.append(data)
            return
        req.pending.append(data)
        req.pending_size += len(data)
        if req.pending_size > HIGH_WATER:
            self._set_pause(_PAUSE_PENDING, True)

    def retry(self, req: Request, upstream: Upstream) -> None:
        """A reused connection closed before any response byte: resend on a fresh one."""
        self._rewind(req)
        self.ctx.loop.create_task(self._connect(req, req.backend))  # type: ignore[arg-type]

    def _rewind(self, req: Request) -> None:
        """Put what was sent back into `pending`, for another attempt."""
        parts = req.replay or []
        req.upstream = None
        req.pending = parts[1:] + req.pending
        req.pending_size = sum(map(len, req.pending))
        req.replay = None

    # -- policies: guards, faults, retries --------------------------------

    def _guard(self, req: Request, service: ServiceState) -> bool:
        """Breaker and faults; True when the request was answered or deferred."""
        if service.breaker != CLOSED and not self._breaker_allows(req, service):
            cause = f"circuit open since {service.breaker_since:.3f}: {service.breaker_cause}"
            self._respond_error(req, 503, "circuit open", cause)
            return True
        if service.faults:
            req.faults = self._matching_faults(req, service)
        return False

    def _breaker_allows(self, req: Request, service: ServiceState) -> bool:
        now = time.time()
        if service.breaker == OPEN:
            if now < service.breaker_since + service.policy.base_ejection:
                return False
            service.breaker = HALF_OPEN
            service.probing = False
        # A probe that never ended (client gone, hang fault) is replaced.
        if service.probing and now - service.probe_at < service.policy.try_timeout:
            return False
        service.probing = True
        service.probe_at = now
        req.probe = True
        return True

    def _matching_faults(self, req: Request, service: ServiceState) -> tuple[Fault, ...]:
        lower = req.lower or b"\r\n".join(
            n.lower() + b":" + v for n, v in [(b"", b""), *req.headers]
        )
        found = []
        for fault in service.faults:
            if not fault.matches_request(req.method, req.url, lower):
                continue
            if fault.source is not None and self._source() != fault.source:
                continue
            found.append(fault)
        return tuple(found)

    def _source(self) -> str | None:
        """The service the calling process belongs to (looked up once)."""
        if self.source is False:
            peer = self.transport.get_extra_info("peername")
            local = self.transport.get_extra_info("sockname")
            self.source = self.ctx.source_of(peer, local)
        return self.source  # type: ignore[return-value]

    def _apply_faults(self, req: Request, backend: BackendState) -> bool:
        """Request-side faults; True when the request does not go on now."""
        for fault in req.faults:
            if fault.replica is not None and fault.replica != backend.id:
                continue
            self.ctx.fault_hit(req.service, backend, fault)  # type: ignore[arg-type]
            kind = fault.kind
            if kind == "latency" and not req.waiting:
                req.waiting = True
                req.faults = tuple(f for f in req.faults if f is not fault)
                self.ctx.loop.call_later(fault.delay(), self._after_delay, req, backend)
                return True
            if kind == "abort":
                _free_slot(req)
                self._respond_error(req, fault.status, "fault injected", f"fault {fault.id}: abort")
                return True
            if kind in ("reset", "partition"):
                _free_slot(req)
                self.abort(req)
                return True
            if kind == "hang":
                _free_slot(req)
                req.hang = True
                return True
            if kind in ("bandwidth", "truncate"):
                req.shape = fault
        return False

    def _after_delay(self, req: Request, backend: BackendState) -> None:
        if self.closed or req.finished or self.active is not req:
            _free_slot(req)
            return
        if req.faults and self._apply_faults(req, backend):
            return
        self._send_to(req, backend)

    def _retry_delay(
        self, req: Request, *, sent: bool, retry_after: float | None = None
    ) -> float | None:
        """Seconds to wait before another attempt, or None: no retry."""
        policy = req.policy
        if policy is None or req.started or self.closed or self.active is not req:
            return None
        if req.retries >= policy.attempts:
            return None
        if sent:
            if not (req.method in IDEMPOTENT or req.idem):
                return None
            if req.replay is None or req.replay_size > RETRY_BODY:
                return None
        service: ServiceState = req.service  # type: ignore[assignment]
        tried = req.tried
        if req.backend is not None and req.backend not in tried:
            tried += (req.backend,)
        if service.pick(tried, self.ctx.now) is None:
            return None  # retries go to a replica not tried yet
        delay = policy.backoff(req.retries)
        if retry_after is not None:
            delay = max(delay, retry_after)
        if req.deadline and self.ctx.loop.time() + delay >= req.deadline:
            return None
        if not service.budget.take():
            self.ctx.budget_exhausted(service)
            return None
        return delay

    def _retry_later(self, req: Request, delay: float) -> None:
        req.retries += 1
        req.waiting = True
        self.ctx.counters_retry(req.service)  # type: ignore[arg-type]
        self.ctx.loop.call_later(delay, self._retry_now, req)

    def _retry_now(self, req: Request) -> None:
        req.waiting = False
        if self.closed or req.finished or self.active is not req:
            return
        self._try(req)

    def failed_attempt(
        self, req: Request, upstream: Upstream, status: int, cause: str,
        retry_after: float | None = None,
    ) -> bool:
        """The replica answered 502/503/504 or broke: retry if safe (True)."""
        backend: BackendState = req.backend  # type: ignore[assignment]
        delay = self._retry_delay(req, sent=True, retry_after=retry_after)
        if delay is None:
            return False
        upstream.req = upstream.client = None
        upstream.closed = True
        upstream.transport.close()
        _free_slot(req)
        req.tried += (backend,)
        self._rewind(req)
        self._retry_later(req, delay)
        return True

    # -- finishing --------------------------------------------------------

    def response_done(
        self, req: Request, upstream: Upstream | None, reuse: bool
    ) -> None:
        """The response to `req` has been written in full."""
        req.finished = True
        backend = req.backend
        if req.slot:
            req.slot = False
            backend.active -= 1  # type: ignore[union-attr]
        if upstream is not None:
            upstream.req = None
            upstream.client = None
            if reuse and req.body_done and not backend.retired:  # type: ignore[union-attr]
                if upstream.paused:
                    upstream.resume()
                upstream.idle_since = self.ctx.now
                backend.idle.append(upstream)  # type: ignore[union-attr]
            else:
                upstream.transport.close()
        self._account(req, req.status)
        if self.paused & _PAUSE_UPSTREAM:
            self._set_pause(_PAUSE_UPSTREAM, False)
        self.active = None
        if not req.keep_alive or not req.body_done or self.closed:
            self.transport.close()
            return
        if self.queue:
            nxt = self.queue.popleft()
            self.active = nxt
            if not self.queue:
                self._set_pause(_PAUSE_QUEUE, False)
            self._dispatch(nxt)
        elif self.bad is not None:
            status, cause = self.bad
            self.bad = None
            self._bad_request(status, cause)

    def _account(self, req: Request, status: int, aborted: bool = False) -> None:
        service = req.service
        ctx = self.ctx
        ms = (_perf() - req.t0) * 1000.0 if req.t0 else 0.0
        backend = req.backend
        bucket = _bucket(ms)
        if service is not None:
            _count(service.counters, bucket, status, aborted)
        if backend is not None:
            _count(backend.counters, bucket, status, aborted)
            backend.observe(ms, ctx.now)
        if req.trace is not None and service is not None:
            ctx.spans.append(
                (
                    *req.trace,
                    service.name,
                    backend.id if backend else None,
                    req.method,
                    req.url,
                    status,
                    time.time() - ms / 1000.0,
                    ms,
                )
            )
        if ctx.access is not None:
            ctx.access.append(
                (
                    time.time(),
                    service.name if service else None,
                    backend.id if backend else None,
                    req.method,
                    req.url,
                    status,
                    req.bytes_out,
                    ms,
                )
            )

    def _respond_error(self, req: Request, status: int, error: str, cause: str) -> None:
        """Answer with a small JSON body, unless the response already started."""
        upstream = req.upstream
        if upstream is not None:
            upstream.req = None
            upstream.client = None
            upstream.transport.close()
            req.upstream = None
        if req.started:
            self.abort(req)
            return
        name = req.service.name if req.service else self.fixed
        body = json.dumps({"error": error, "service": name, "cause": cause}).encode()
        keep = (
            req.keep_alive
            and req.body_done
            and (status in (404, 502, 503) or error == "fault injected")
        )
        req.keep_alive = keep
        req.status = status
        req.bytes_out = len(body)
        if status == 504:
            counters = req.service.counters if req.service else None
            if counters is not None:
                counters.errors["timeout"] += 1
        head = (
            b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n%s\r\n"
            % (
                status,
                _REASONS.get(status, "Error").encode(),
                len(body),
                b"" if keep else b"Connection: close\r\n",
            )
        )
        self.transport.write(head + body)
        self.response_done(req, None, False)

    def abort(self, req: Request) -> None:
        """The response broke after it started: the client must see a broken connection."""
        if not req.finished:
            req.finished = True
            _free_slot(req)
            self._account(req, 502, aborted=True)
        self.closed = True
        self.transport.abort()

    def _bad_request(self, status: int, cause: str) -> None:
        req = self.parsing or Request()
        self.parsing = None
        if self.active is not None and self.active is not req:
            # Garbage behind a request in flight: read nothing more, let the
            # requests before it finish, then answer 400 and close.
            if self.bad is None:
                self.bad = (status, cause)
                self._set_pause(_PAUSE_BAD, True)
            return
        req.body_done = False
        req.keep_alive = False
        self.active = req
        error = "header block too large" if status == 431 else "malformed request"
        self._respond_error(req, status, error, cause)

    # -- tunnels, pausing, timeouts ---------------------------------------

    def _hold_tunnel_bytes(self, data: bytes) -> None:
        req = self.active
        if req is None:
            self.transport.close()
            return
        if req.tunnel_rest is None:
            req.tunnel_rest = []
        req.tunnel_rest.append(data)
        if sum(map(len, req.tunnel_rest)) > HIGH_WATER:
            self._set_pause(_PAUSE_PENDING, True)

    def start_tunnel(self, req: Request, upstream: Upstream) -> None:
        """After a 101: from now on, bytes pass both ways untouched."""
        req.finished = True
        _free_slot(req)
        self._account(req, 101)
        self.tunnel = upstream
        self.active = None
        upstream.tunnel = self
        self.head_at = None
        if req.tunnel_rest:
            upstream.transport.writelines(req.tunnel_rest)
        self._set_pause(_PAUSE_PENDING, False)

    def _set_pause(self, flag: int, on: bool) -> None:
        before = self.paused
        self.paused = before | flag if on else before & ~flag
        if self.closed:
            return
        if before and not self.paused:
            self.transport.resume_reading()
        elif self.paused and not before:
            self.transport.pause_reading()

    def check_timeouts(self, now: float) -> None:
        """Called by the worker's sweeper a few times a second."""
        if self.tunnel is not None or self.closed:
            return
        ctx = self.ctx
        if self.head_at is not None and now - self.head_at >= ctx.header_timeout:
            if self.active is None:
                self.closed = True
                self.transport.abort()
            return
        req = self.active
        if req is not None and req.policy is not None and not req.started:
            if self._policy_timeouts(req, now):
                return
        if now - self.last < ctx.idle_timeout:
            return
        if req is None:
            self.closed = True
            self.transport.close()
        elif req.started:
            if req.upstream is not None:
                req.upstream.transport.abort()
            self.abort(req)
        elif not req.body_done:
            self._respond_error(req, 408, "request timeout", "the request body stalled")
        else:
            cause = f"no response within idle_timeout ({ctx.idle_timeout:g}s)"
            self._respond_error(req, 504, "gateway timeout", cause)

    def _policy_timeouts(self, req: Request, now: float) -> bool:
        """The overall deadline and the per-try timeout; True if one fired."""
        policy: Policy = req.policy  # type: ignore[assignment]
        if req.deadline and now >= req.deadline:
            if req.slot:
                self.ctx.failed(req, req.backend, "deadline passed")  # type: ignore[arg-type]
            cause = "the request's deadline passed (policy timeout or X-LSQ-Deadline)"
            self._respond_error(req, 504, "gateway timeout", cause)
            return True
        if req.slot and req.upstream is not None and now - req.try_at >= policy.try_timeout:
            backend: BackendState = req.backend  # type: ignore[assignment]
            cause = f"no response from {backend.id} within try_timeout ({policy.try_timeout:g}s)"
            self.ctx.failed(req, backend, cause)
            backend.counters.errors["timeout"] += 1
            if not self.failed_attempt(req, req.upstream, 504, cause):
                self._respond_error(req, 504, "gateway timeout", cause)
            return True
        return False


def _hop_head(req: Request, head: bytes, lower: bytes) -> bytes:
    """`head` with its traceparent pointing at a new hop span, if sampled."""
    at = lower.find(_TRACEPARENT) + len(_TRACEPARENT)
    stop = lower.find(b"\r\n", at)
    if lower.find(_TRACEPARENT, stop) >= 0:
        return head  # two traceparent lines: invalid, passed on untouched
    value = _hop_value(req, lower[at:stop])
    if value is None:
        return head
    return head[:at] + b" " + value + head[stop:]


def _hop_value(req: Request, value: bytes) -> bytes | None:
    """For a sampled W3C traceparent: set `req.trace` and return the value
    with the gateway's new span as the parent. None: pass it on as it is."""
    value = value.strip().lower()
    if value.find(b" ") >= 0 or len(value) < 55 or value[:2] == b"ff":
        return None
    if value[55:56] not in (b"", b"-"):  # a later version: the same first fields
        return None
    if value[2:3] != b"-" or value[35:36] != b"-" or value[52:53] != b"-":
        return None
    trace, parent, flags = value[3:35], value[36:52], value[53:55]
    try:
        sampled = int(flags, 16) & 1
        bytes.fromhex(trace.decode() + parent.decode())
    except ValueError:
        return None
    if not sampled or trace == b"0" * 32 or parent == b"0" * 16:
        return None
    span = os.urandom(8).hex().encode()
    req.trace = (trace.decode(), span.decode(), parent.decode())
    return b"00-" + trace + b"-" + span + b"-" + flags


def _drop_named(lines: list[bytes], names: set[bytes]) -> list[bytes]:
    # `lines` is [method, sp, path, ver, name, ": ", value, CRLF, ...].
    names = names - {b"close", b"keep-alive", b"upgrade"}
    if not names:
        return lines
    kept = lines[:4]
    for i in range(4, len(lines), 4):
        if lines[i].lower() not in names:
            kept += lines[i : i + 4]
    return kept


def _refused_cause(req: Request) -> str:
    names = ", ".join(f"{b.host}:{b.port}" for b in req.tried)
    return f"every replica refused the connection ({names})"


def _single(lower: bytes, name: bytes, head: bytes | None = None) -> bytes | None:
    """The stripped value of a header that occurs at most once; b"" when
    absent, None when repeated. From `head` (original case) when given."""
    at = lower.find(name)
    if at < 0:
        return b""
    stop = lower.find(b"\r\n", at + 2)
    if lower.find(name, stop) >= 0:  # not `in`: that tries int first, and raises
        return None
    return (head if head is not None else lower)[at + len(name) : stop].strip()


def _cut_line(head: bytes, lower: bytes, name: bytes) -> tuple[bytes, bytes]:
    """`head` and `lower` without the header line that starts with `name`."""
    at = lower.find(name)
    stop = lower.find(b"\r\n", at + 2)
    return head[:at] + head[stop:], lower[:at] + lower[stop:]


def _float(value: bytes) -> float:
    try:
        return float(value.strip())
    except ValueError:
        return 0.0


def _count(counters: Counters, bucket: int, status: int, aborted: bool) -> None:
    """One finished request in a service's or a replica's counters."""
    counters.requests += 1
    counters.hist[bucket] += 1
    if status >= 400:
        counters.errors["5xx" if status >= 500 else "4xx"] += 1
    if aborted:
        counters.errors["aborted"] += 1


def _chop(data: bytes, n: int) -> bytes:
    """`data[:-n]` for 0 < n <= len(data); in the compiled build a copy from
    a char pointer, with no slice object."""
    p = data  # a char pointer in the compiled build
    return p[0 : len(data) - n]


def _keeps(value: bytes) -> int:
    """A Connection value the fast path takes, in any case and with any
    trailing space: 1 for keep-alive, 0 for close; -1 for anything else."""
    value = value.rstrip()
    if value != b"keep-alive" and value != b"close":
        value = value.lower()
    return 1 if value == b"keep-alive" else 0 if value == b"close" else -1


def _length(value: bytes) -> int:
    """A Content-Length value as a number; -1 when it is not all ASCII
    digits, or empty, or too long for one (the careful path takes those)."""
    n = len(value)
    if n == 0 or n > 18:
        return -1
    p = value  # a char pointer in the compiled build
    size = 0
    i = 0
    while i < n:
        d = p[i] - 48
        if d < 0 or d > 9:
            return -1
        size = size * 10 + d
        i += 1
    return size


def _find_byte(data: bytes, byte: int, start: int, stop: int) -> int:
    """`data.find(bytes([byte]), start, stop)` for 0 <= start <= stop <=
    len(data), by a loop that the compiled build makes C (bytes.find parses
    its arguments on every call, which costs more than a short search)."""
    p = data  # a char pointer in the compiled build
    i = start
    while i < stop:
        if p[i] == byte:
            return i
        i += 1
    return -1


def _bucket(ms: float) -> int:
    """`bisect_left(BUCKETS, ms)`, at most the last bucket: bisect itself in
    the source, a binary search in C in the compiled build."""
    if COMPILED_FROM is None:
        bucket = _bisect(BUCKETS, ms)
        return bucket if bucket < _LAST_BUCKET else _LAST_BUCKET
    lo = 0
    hi = _LAST_BUCKET
    while lo < hi:
        mid = (lo + hi) >> 1
        bound = _BOUNDS[mid]
        if bound < ms:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _free_slot(req: Request) -> None:
    if req.slot:
        req.slot = False
        req.backend.active -= 1  # type: ignore[union-attr]


def _take_idle(backend: BackendState, probe: bool) -> Upstream | None:
    """A pooled connection to `backend` that the backend has not closed.

    With `probe`, also peek at the socket: a FIN or stray bytes the event
    loop has not processed yet make the connection unusable. Requests that
    must not be sent twice use this, since they are never retried.
    """
    idle = backend.idle
    while idle:
        upstream = idle.pop()
        if upstream.closed or upstream.transport.is_closing():
            continue
        if probe and not _quiet(upstream):
            upstream.transport.close()
            continue
        return upstream
    return None


def _quiet(upstream: Upstream) -> bool:
    """True if nothing (no data, no FIN) is waiting on the idle connection."""
    sock = upstream.transport.get_extra_info("socket")
    if sock is None:
        return True
    # uvloop hands out a stand-in socket without recv; peek through a
    # temporary socket object on the same descriptor, then let it go.
    peek = socket.socket(fileno=sock.fileno())
    try:
        peek.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        peek.detach()
    return False


class Upstream:
    """One connection to a backend; pooled between requests (an asyncio
    protocol by its methods, as `ClientConn`)."""

    def __init__(self, ctx: ContextBase, backend: BackendState) -> None:
        self.ctx = ctx
        self.backend = backend
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.parser: httptools.HttpResponseParser | None = None  # careful path
        self.client: ClientConn | None = None
        self.req: Request | None = None
        self.tunnel: ClientConn | None = None
        self.closed = False
        self.paused = False
        self.reused = False
        self.got = False
        self.info = False
        self.mode = _PASS
        self.buf = b""
        self.body_left = -1  # fast path: body bytes still to come; -1 = none
        self.reuse = True
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.out: list[bytes] = []
        self.idle_since = 0.0
        self.throttle: _Throttle | None = None
        # Fast path: checks the syntax of what passes, in C (no callbacks).
        self.check: httptools.HttpResponseParser | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.set_write_buffer_limits(HIGH_WATER)

    def pause_writing(self) -> None:
        client = self.tunnel or self.client
        if client is not None:
            client._set_pause(_PAUSE_UPSTREAM, True)

    def resume_writing(self) -> None:
        client = self.tunnel or self.client
        if client is not None:
            client._set_pause(_PAUSE_UPSTREAM, False)

    def pause(self) -> None:
        if not self.paused:
            self.paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        # Only when paused: an unneeded resume_reading() costs a system call.
        if self.paused and self.throttle is None:
            self.paused = False
            self.transport.resume_reading()

    def release(self) -> None:
        """Back into the pool, reading again so that a close by the backend is seen."""
        self.resume()
        self.idle_since = self.ctx.now
        self.backend.idle.append(self)

    def data_received(self, data: bytes) -> None:
        if self.tunnel is not None:
            self.tunnel.transport.write(data)
            return
        client = self.client
        if client is None:
            # Bytes on an idle pooled connection: it is unusable now.
            self.closed = True
            self.transport.close()
            return
        self.got = True
        client.last = self.ctx.now
        left = self.body_left
        if left > 0:
            self._fast_body(client, data, left)
        elif self.parser is not None:
            self._feed_careful(data)
        else:
            self._fast_head(client, data)

    # -- the fast path -----------------------------------------------------

    def _fast_head(self, client: ClientConn, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > MAX_HEAD:
                self._broken("the backend's response head is over 64 KiB")
            elif buf.find(b"\n\n") >= 0:
                self._go_careful(buf)  # a head with bare LF lines: httptools decides
            else:
                self.buf = buf
            return
        self.buf = b""
        raw = buf  # a char pointer in the compiled build (see the module docstring)
        req: Request = self.req  # type: ignore[assignment]
        # The status code of an HTTP/1.1 status line; 0 sends it to the careful path.
        status = 0
        if end >= 12 and buf.startswith(b"HTTP/1.1 ") and raw[12] == 32:
            d1 = raw[9] - 48
            d2 = raw[10] - 48
            d3 = raw[11] - 48
            if 0 <= d1 <= 9 and 0 <= d2 <= 9 and 0 <= d3 <= 9:
                status = d1 * 100 + d2 * 10 + d3
        end += 4
        if status < 200 or status in (204, 304) or not req.fast or req.shape is not None:
            self._go_careful(buf)
            return
        head = buf if end == len(buf) else raw[0:end]
        # httptools checks the syntax first, as for requests: a malformed head
        # from a backend is never passed on (the careful path's parser does
        # the same), and the scan below only ever sees a valid head.
        check = self.check
        if check is None:
            check = self.check = httptools.HttpResponseParser(_SYNTAX)
        try:
            check.feed_data(head)
        except httptools.HttpParserUpgrade:
            self._go_careful(buf)
            return
        except httptools.HttpParserError as exc:
            self._broken(f"invalid response from the backend: {exc}")
            return
        length = b""
        reuse = True
        connection = False  # a Connection line was seen
        if COMPILED_FROM is None:
            lower = head.lower()
            fields = _RESPONSE_FIELDS(lower)
        else:  # the compiled scan needs no lower-cased copy; the rare paths make one
            lower = b""
            fields = _scan_fields(head, True)
        for name, value in fields:
            if name == b"content-length":
                if length:
                    self._go_careful(buf)
                    return
                length = value.rstrip()
            elif name == b"connection":
                kept = _keeps(value)
                if connection or kept < 0:
                    self._go_careful(buf)
                    return
                connection = True
                reuse = kept == 1
            elif name != b"retry-after":
                self._go_careful(buf)  # hop-by-hop, chunked, Upgrade
                return
        size = _length(length)
        if size < 0:
            self._go_careful(buf)
            return
        # The backend's Connection line is for the gateway's connection to it.
        # `keep-alive` is also what the client's connection is, so it stays
        # as it is; otherwise it goes, and `close` is said below if needed.
        if connection and not (reuse and req.keep_alive):
            head, lower = _cut_line(head, lower or head.lower(), b"\r\nconnection:")
        body = raw[end : len(buf)] if end < len(buf) else b""
        got = len(body)
        if got > size:
            body = body[:size]  # bytes past the body: the connection is spoiled
            reuse = False
            got = size
        if body:
            check.feed_data(body)  # keeps it in step; a body has no syntax to fail
        if status >= 500 and self._failed_status(req, client, status, lower or head.lower()):
            return
        if not req.keep_alive:
            head = head[:-2] + b"Connection: close\r\n\r\n"
        self._head_ok(req, status)
        req.bytes_out = got
        client.transport.write(head + body if body else head)
        if got == size:
            client.response_done(req, self, reuse)
        else:
            self.reuse = reuse
            self.body_left = size - got

    def _fast_body(self, client: ClientConn, data: bytes, left: int) -> None:
        req: Request = self.req  # type: ignore[assignment]
        size = len(data)
        if size > left:
            data = data[:left]
            self.reuse = False
            size = left
        req.bytes_out += size
        self.check.feed_data(data)  # keeps it in step; a body has no syntax to fail
        client.transport.write(data)
        left -= size
        self.body_left = left
        if not left:
            self.body_left = -1
            client.response_done(req, self, self.reuse)

    def _failed_status(
        self, req: Request, client: ClientConn, status: int, lower: bytes
    ) -> bool:
        """A 5xx head: count it against the replica; True if retried instead."""
        cause = f"{req.backend.id} answered {status}"  # type: ignore[union-attr]
        self.ctx.failed(req, req.backend, cause)  # type: ignore[arg-type]
        if status not in RETRY_STATUS:
            return False
        retry_after = _retry_after(_single(lower, b"\r\nretry-after:") or b"")
        backend: BackendState = req.backend  # type: ignore[assignment]
        if not client.failed_attempt(req, self, status, cause, retry_after):
            return False
        # The client gets another replica's answer, but this one answered: a
        # request and a 5xx in its own counters (the service counts the
        # client's request once, when it ends).
        _count(backend.counters, _bucket((self.ctx.now - req.try_at) * 1000.0), status, False)
        return True

    def _head_ok(self, req: Request, status: int) -> None:
        req.status = status
        req.started = True
        req.replay = None
        if status < 500:
            backend: BackendState = req.backend  # type: ignore[assignment]
            if backend.fails:
                backend.fails = 0
            if req.probe:
                self.ctx.probe_done(req.service, backend, True)  # type: ignore[arg-type]

    # -- the careful path --------------------------------------------------

    def _go_careful(self, data: bytes) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.check = None  # out of step now; the next fast response gets a new one
        self._feed_careful(data)

    def _feed_careful(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)  # type: ignore[union-attr]
        except httptools.HttpParserUpgrade as exc:
            rest = data[exc.args[0] :]
            if rest and self.tunnel is not None:
                self.out.append(rest)
        except httptools.HttpParserError as exc:
            self._flush()
            cause = exc.__context__ if isinstance(exc.__context__, _BadStatus) else exc
            self._broken(f"invalid response from the backend: {cause}")
            return
        self._flush()

    def _flush(self) -> None:
        client = self.client or self.tunnel
        if client is not None:
            self._flush_to(client)

    def _flush_to(self, client: ClientConn) -> None:
        out = self.out
        if out:
            self.out = []
            data = b"".join(out) if len(out) > 1 else out[0]
            if self.throttle is not None:
                self.throttle.push(data)
            else:
                client.transport.write(data)

    def eof_received(self) -> bool | None:
        self.closed = True
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.tunnel is not None:
            self.tunnel.transport.close()
            return
        req, client = self.req, self.client
        if req is None or client is None or req.finished:
            return
        if (
            not self.got
            and self.reused
            and req.replay is not None
            and not req.started
            and (req.method in IDEMPOTENT or req.idem)
        ):
            # Only a request that is safe to repeat is sent again: the backend
            # may have read a POST before closing. A POST got a probed
            # connection instead (see _take_idle).
            self.req = self.client = None
            client.retry(req, self)
        elif req.started and self.mode == _CLOSE and self.parser is not None:
            self.req = self.client = None
            self._flush_to(client)
            if not req.http10:
                client.transport.write(b"0\r\n\r\n")
            client.response_done(req, None, False)
        elif not req.started:
            cause = "the backend closed the connection before its response"
            self.ctx.failed(req, self.backend, cause)
            if not client.failed_attempt(req, self, 502, cause):
                self._broken(cause)
        else:
            self._broken("the backend closed the connection")

    def _broken(self, cause: str) -> None:
        req, client = self.req, self.client
        self.req = self.client = None
        self.closed = True
        self.transport.abort()
        if req is None or client is None or req.finished:
            return
        client._respond_error(req, 502, "bad gateway", cause)

    # -- httptools callbacks ----------------------------------------------

    def on_message_begin(self) -> None:
        self.reason = b""
        self.headers = []

    def on_status(self, status: bytes) -> None:
        self.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        req: Request = self.req  # type: ignore[assignment]
        status = self.parser.get_status_code()  # type: ignore[union-attr]
        if status < 100:  # not a status: never passed on as an interim response
            raise _BadStatus(f"the status code {status:03d} is not one")
        if status < 200 and status != 101:
            self.info = True
            if status != 100:  # 100 is answered by the gateway itself
                self.out.append(
                    b"HTTP/1.1 %d %s\r\n%s\r\n"
                    % (status, self.reason, b"".join(_response_lines(self.headers)[0]))
                )
            return
        self.info = False
        client: ClientConn = self.client  # type: ignore[assignment]
        if status >= 500 and req.policy is not None:
            found = {n.lower(): v for n, v in self.headers}
            lower = b"\r\nretry-after:" + found.get(b"retry-after", b"") + b"\r\n"
            if self._failed_status(req, client, status, lower):
                self.req = None  # the rest of this response is dropped
                return
        lines, has_length, close_delimited = _response_lines(self.headers)
        self._head_ok(req, status)
        if status == 101:
            upgrade = {n.lower(): v for n, v in self.headers}.get(b"upgrade", b"")
            lines.append(b"Connection: upgrade\r\nUpgrade: " + upgrade + b"\r\n")
            mode = _NO_BODY
        elif req.method == b"HEAD" or status in (204, 304):
            mode = _NO_BODY
        elif has_length:
            mode = _PASS
        else:
            mode = _CLOSE if close_delimited else _CHUNK
            if req.http10:
                req.keep_alive = False
            else:
                lines.append(b"Transfer-Encoding: chunked\r\n")
        self.mode = mode
        if status != 101:
            if not req.keep_alive:
                lines.append(b"Connection: close\r\n")
            elif req.http10:
                lines.append(b"Connection: keep-alive\r\n")
        self.out.append(b"HTTP/1.1 %d %s\r\n" % (status, self.reason))
        self.out.extend(lines)
        self.out.append(b"\r\n")
        if req.shape is not None and req.shape.kind == "bandwidth":
            self.throttle = _Throttle(self, req.shape.bytes_per_s)
        if status == 101:
            self._flush()
            client.start_tunnel(req, self)
        elif req.method == b"HEAD":
            self._flush()
            client.response_done(req, self, False)

    def on_body(self, body: bytes) -> None:
        req = self.req
        if req is None or self.info:
            return
        shape = req.shape
        if shape is not None and shape.kind == "truncate":
            room = shape.after_bytes - req.bytes_out
            if len(body) >= room:
                self._truncate(req, body[: max(room, 0)])
                return
        req.bytes_out += len(body)
        if self.mode == _PASS or req.http10:
            self.out.append(body)
        else:
            self.out += (b"%x\r\n" % len(body), body, b"\r\n")

    def _truncate(self, req: Request, body: bytes) -> None:
        """The truncate fault: pass `body`, then break both connections."""
        req.bytes_out += len(body)
        if body:
            self.out += (body,) if self.mode == _PASS else (b"%x\r\n" % len(body), body)
        client = self.client
        self._flush()
        self.req = self.client = None
        self.closed = True
        self.transport.abort()
        if client is not None:
            client.abort(req)

    def on_message_complete(self) -> None:
        if self.info:
            self.info = False
            return
        self.parser = None  # the next response may take the fast path again
        req, client = self.req, self.client
        if req is None or client is None or req.finished:
            return
        if self.mode in (_CHUNK, _CLOSE) and not req.http10:
            self.out.append(b"0\r\n\r\n")
        self._flush()
        reuse = self.mode != _CLOSE
        if self.throttle is not None:
            self.throttle.then = lambda: client.response_done(req, self, False)
            return
        client.response_done(req, self, reuse)


class _Throttle:
    """The bandwidth fault: response bytes leave at most `rate` a second."""

    def __init__(self, upstream: Upstream, rate: float) -> None:
        self.upstream = upstream
        self.rate = rate
        self.queue: deque[bytes] = deque()
        self.then: Callable[[], None] | None = None
        self.busy = False
        self.slice = max(1, int(rate / 20))  # about 20 writes a second

    def push(self, data: bytes) -> None:
        for i in range(0, len(data), self.slice):
            self.queue.append(data[i : i + self.slice])
        self.upstream.pause()
        if not self.busy:
            self._next()

    def _next(self) -> None:
        upstream = self.upstream
        client = upstream.client
        if not self.queue or client is None or client.closed:
            self.busy = False
            if self.then is not None and not self.queue:
                then, self.then = self.then, None
                upstream.throttle = None
                then()
            elif not self.queue:
                upstream.paused = True
                upstream.throttle = None
                upstream.resume()
            return
        self.busy = True
        piece = self.queue.popleft()
        client.transport.write(piece)
        upstream.ctx.loop.call_later(len(piece) / self.rate, self._next)


def _retry_after(value: bytes) -> float | None:
    """Retry-After in seconds; an HTTP-date is not honoured (None)."""
    value = value.strip()
    return float(value) if value.isdigit() else None


def _response_lines(
    headers: list[tuple[bytes, bytes]],
) -> tuple[list[bytes], bool, bool]:
    """Header lines to pass on, whether a Content-Length is among them, and
    whether the backend framed the body by closing the connection."""
    drop: set[bytes] = set()
    chunked = False
    has_length = False
    for name, value in headers:
        lower = name.lower()
        if lower == b"connection":
            drop |= connection_tokens(value)
        elif lower == b"transfer-encoding":
            chunked = True
        elif lower == b"content-length":
            has_length = True
    lines = []
    for name, value in headers:
        lower = name.lower()
        if lower in HOP_BY_HOP or (drop and lower in drop):
            continue
        lines.append(name + b": " + value + b"\r\n")
    return lines, has_length, not chunked and not has_length
