"""The HTTP/1.1 proxy on asyncio protocols: client side, upstream side.

A `ClientConn` parses requests with httptools, routes each one, and streams
its body to an `Upstream` (a pooled keep-alive connection to a backend),
whose response streams back. Neither side buffers a whole message: when one
side's write buffer is high the other side stops reading.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from typing import TYPE_CHECKING

import httptools

from lsq.gateway._balance import BackendState, ServiceState
from lsq.gateway._headers import (
    HOP_BY_HOP,
    SPECIAL,
    connection_tokens,
    forwarded_headers,
    is_trusted,
)
from lsq.gateway._stats import bucket_of

if TYPE_CHECKING:
    from lsq.gateway._worker import Context

HIGH_WATER = 256 * 1024
MAX_HEAD = 64 * 1024  # request line plus headers
MAX_REPLAY = 1024 * 1024  # bytes kept to resend a request on a fresh connection

_PAUSE_UPSTREAM = 1  # the upstream's write buffer is high
_PAUSE_PENDING = 2  # body buffered while the upstream connection is made
_PAUSE_QUEUE = 4  # a pipelined request waits for the one before it

_NO_BODY, _PASS, _CHUNK, _CLOSE = 0, 1, 2, 3
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_REASONS = {
    400: "Bad Request",
    404: "Not Found",
    408: "Request Timeout",
    431: "Request Header Fields Too Large",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class _HeadTooLarge(Exception):
    pass


class Request:
    """One request on a client connection, from its first byte to its response."""

    __slots__ = (
        "backend",
        "body_done",
        "bytes_out",
        "chunked",
        "error",
        "expect",
        "finished",
        "head",
        "headers",
        "http10",
        "keep_alive",
        "method",
        "pending",
        "pending_size",
        "replay",
        "replay_size",
        "sent100",
        "service",
        "slot",
        "started",
        "status",
        "t0",
        "tried",
        "tunnel_rest",
        "upgrade",
        "upstream",
        "url",
    )

    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body_done = False
        self.pending: list[bytes] = []
        self.pending_size = 0
        self.replay: list[bytes] | None = None
        self.replay_size = 0
        self.service: ServiceState | None = None
        self.backend: BackendState | None = None
        self.upstream: Upstream | None = None
        self.tried: tuple[BackendState, ...] = ()
        self.t0 = 0.0
        self.status = 0
        self.bytes_out = 0
        self.started = False  # response head sent to the client
        self.sent100 = False
        self.finished = False
        self.error: tuple[int, str, str] | None = None
        self.tunnel_rest: list[bytes] | None = None
        self.slot = False  # counted in backend.active
        self.upgrade = False
        self.expect = False
        self.chunked = False
        self.keep_alive = True
        self.http10 = False
        self.method = b""
        self.head = b""


class ClientConn(asyncio.Protocol):
    """A connection from a client to a service port or the ingress port."""

    def __init__(self, ctx: Context, service: str | None) -> None:
        self.ctx = ctx
        self.fixed = service  # None on the ingress port
        self.parser = httptools.HttpRequestParser(self)
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
        self.trusted = False

    # -- asyncio callbacks -------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.set_write_buffer_limits(HIGH_WATER)
        peer = transport.get_extra_info("peername")
        host = peer[0] if isinstance(peer, tuple) else "127.0.0.1"
        self.peer = host.encode()
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
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self.upgrading = True
            rest = data[exc.args[0] :]
            if rest:
                self._hold_tunnel_bytes(rest)
        except httptools.HttpParserError as exc:
            too_large = isinstance(exc.__context__, _HeadTooLarge)
            self._bad_request(431 if too_large else 400, str(exc))

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

    # -- httptools callbacks ----------------------------------------------

    def on_message_begin(self) -> None:
        self.head_at = self.ctx.loop.time()
        self.head_size = 0
        self.parsing = Request()

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
        parser = self.parser
        req.method = parser.get_method()
        req.keep_alive = parser.should_keep_alive()
        req.http10 = parser.get_http_version() == "1.0"
        req.upgrade = parser.should_upgrade()
        self._route(req)
        if self.active is None:
            self.active = req
            self._dispatch(req)
        else:
            self.queue.append(req)
            self._set_pause(_PAUSE_QUEUE, True)

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

    def _route(self, req: Request) -> None:
        ctx = self.ctx
        host = b""
        for name, value in req.headers:
            if len(name) == 4 and name.lower() == b"host":
                host = value
                break
        path = req.url
        if path[:1] != b"/" and b"://" in path[:12]:
            path = b"/" + path.split(b"/", 3)[3] if path.count(b"/") >= 3 else b"/"
        name = self.fixed
        if name is None:
            name, path = ctx.ingress_route(host, path)
            if name is None:
                req.error = (404, "no route", "no service matches this Host or path")
                return
        service = ctx.services.get(name)
        if service is None:
            req.error = (503, "service unavailable", f"service {name!r} is not routed")
            return
        req.service = service
        if service.external and service.backends:
            path = service.backends[0].base_path + path
        req.head = self._build_head(req, path, host)

    def _build_head(self, req: Request, path: bytes, host: bytes) -> bytes:
        lines = [req.method, b" ", path, b" HTTP/1.1\r\n"]
        found: dict[bytes, bytes] = {}
        for name, value in req.headers:
            lower = name.lower()
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
        lines.append(b"\r\n")
        return b"".join(lines)

    def _target_host(self, req: Request) -> bytes | None:
        service = req.service
        if service is not None and service.external and service.backends:
            return service.backends[0].host_header
        return None

    # -- sending the request upstream -------------------------------------

    def _dispatch(self, req: Request) -> None:
        ctx = self.ctx
        req.t0 = time.perf_counter()
        self.last = ctx.now
        if req.error is not None:
            self._respond_error(req, *req.error)
            return
        service: ServiceState = req.service  # type: ignore[assignment]
        backend = service.pick(req.tried)
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
        upstream = backend.take_idle()
        if upstream is not None:
            self._attach(req, upstream, reused=True)
        else:
            ctx.loop.create_task(self._connect(req, backend))

    async def _connect(self, req: Request, backend: BackendState) -> None:
        ctx = self.ctx
        try:
            _, upstream = await asyncio.wait_for(
                ctx.loop.create_connection(
                    lambda: Upstream(ctx, backend),
                    backend.host,
                    backend.port,
                    ssl=backend.ssl,
                    server_hostname=backend.server_hostname,
                ),
                ctx.connect_timeout,
            )
        except (TimeoutError, OSError) as exc:
            self._connect_failed(req, backend, exc)
            return
        if self.closed or self.active is not req or req.finished:
            upstream.release()
            return
        self._attach(req, upstream, reused=False)

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
        if timeout:
            self._respond_error(req, 504, "gateway timeout", cause)
        elif req.service.pick(req.tried) is not None:  # type: ignore[union-attr]
            req.backend = None
            self._dispatch(req)
        else:
            self._respond_error(req, 502, "bad gateway", cause)

    def _attach(self, req: Request, upstream: Upstream, *, reused: bool) -> None:
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
        parts = req.replay or []
        req.upstream = None
        req.pending = parts[1:]
        req.pending_size = sum(map(len, req.pending))
        req.replay = None
        self.ctx.loop.create_task(self._connect(req, req.backend))  # type: ignore[arg-type]

    # -- finishing --------------------------------------------------------

    def response_done(
        self, req: Request, upstream: Upstream | None, reuse: bool
    ) -> None:
        """The response to `req` has been written in full."""
        req.finished = True
        _free_slot(req)
        if upstream is not None:
            upstream.req = None
            upstream.client = None
            if reuse and req.body_done and not req.backend.retired:  # type: ignore[union-attr]
                upstream.release()
            else:
                upstream.transport.close()
        self._account(req, req.status)
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

    def _account(self, req: Request, status: int, aborted: bool = False) -> None:
        service = req.service
        ctx = self.ctx
        ms = (time.perf_counter() - req.t0) * 1000.0 if req.t0 else 0.0
        backend = req.backend
        bucket = bucket_of(ms)
        if service is not None:
            service.counters.record(status, bucket)
            if aborted:
                service.counters.errors["aborted"] += 1
        if backend is not None:
            backend.counters.record(status, bucket)
            if aborted:
                backend.counters.errors["aborted"] += 1
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
        keep = req.keep_alive and req.body_done and status in (404, 502, 503)
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
            # Garbage behind a request in flight: finish nothing more.
            self.abort(self.active)
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
        if now - self.last < ctx.idle_timeout:
            return
        req = self.active
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


def _free_slot(req: Request) -> None:
    if req.slot:
        req.slot = False
        req.backend.active -= 1  # type: ignore[union-attr]


class Upstream(asyncio.Protocol):
    """One connection to a backend; pooled between requests."""

    def __init__(self, ctx: Context, backend: BackendState) -> None:
        self.ctx = ctx
        self.backend = backend
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.parser = httptools.HttpResponseParser(self)
        self.client: ClientConn | None = None
        self.req: Request | None = None
        self.tunnel: ClientConn | None = None
        self.closed = False
        self.paused = False
        self.reused = False
        self.got = False
        self.info = False
        self.mode = _PASS
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.out: list[bytes] = []
        self.idle_since = 0.0

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
        if self.paused:
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
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            rest = data[exc.args[0] :]
            if rest and self.tunnel is not None:
                self.out.append(rest)
        except httptools.HttpParserError as exc:
            self._flush()
            self._broken(f"invalid response from the backend: {exc}")
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
            client.transport.write(b"".join(out) if len(out) > 1 else out[0])

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
        if not self.got and self.reused and req.replay is not None and not req.started:
            self.req = self.client = None
            client.retry(req, self)
        elif req.started and self.mode == _CLOSE:
            self.req = self.client = None
            self._flush_to(client)
            if not req.http10:
                client.transport.write(b"0\r\n\r\n")
            client.response_done(req, None, False)
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
        status = self.parser.get_status_code()
        if status < 200 and status != 101:
            self.info = True
            if status != 100:  # 100 is answered by the gateway itself
                self.out.append(
                    b"HTTP/1.1 %d %s\r\n%s\r\n"
                    % (status, self.reason, b"".join(_response_lines(self.headers)[0]))
                )
            return
        self.info = False
        lines, has_length, close_delimited = _response_lines(self.headers)
        req.status = status
        req.started = True
        req.replay = None
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
        client: ClientConn = self.client  # type: ignore[assignment]
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
        req.bytes_out += len(body)
        if self.mode == _PASS or req.http10:
            self.out.append(body)
        else:
            self.out += (b"%x\r\n" % len(body), body, b"\r\n")

    def on_message_complete(self) -> None:
        if self.info:
            self.info = False
            return
        req, client = self.req, self.client
        if req is None or client is None or req.finished:
            return
        if self.mode in (_CHUNK, _CLOSE) and not req.http10:
            self.out.append(b"0\r\n\r\n")
        self._flush()
        client.response_done(req, self, self.parser.should_keep_alive())


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
