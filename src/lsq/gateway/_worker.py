"""A gateway worker process: listeners, the live routing table, counters.

Started by `Gateway` as `python -m lsq.gateway._worker FD PARENT_PID`. FD is
one end of a socket pair; both ends speak JSON lines. The parent sends
`config` (once), `table`, `sync`, `stats` and `stop`; the worker answers
`sync` and `stats` with the same `id`.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import logging
import os
import signal
import socket
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

import uvloop

from lsq.gateway import _outlier
from lsq.gateway._balance import (
    BREAKER_NAMES,
    BackendState,
    ServiceState,
    external_backend,
)
from lsq.gateway._faults import Fault, parse_faults, peer_pid, service_of_pid
from lsq.gateway._headers import Network, parse_networks
from lsq.gateway._policy import Policy, RetryBudget, route_policies
from lsq.gateway._proxy import ClientConn, ContextBase, Request
from lsq.gateway._stats import Counters
from lsq.gateway._table import RoutingTable, ServiceEntry

log = logging.getLogger("lsq.gateway")

_TICK = 0.1  # resolution of header, idle and policy timeouts
_POOL_IDLE = 15.0  # pooled connections unused this long are closed
_CONTROL_LIMIT = 256 << 20  # bytes in one line from the runtime (a routing table)
_PR_SET_PDEATHSIG = 1


class AccessLog:
    """JSON lines, buffered in memory and appended about once a second."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.rows: list[tuple[Any, ...]] = []
        self.append = self.rows.append

    def flush(self) -> None:
        rows, self.rows[:] = list(self.rows), []
        if not rows:
            return
        lines = [_access_line(row) for row in rows]
        os.write(self.fd, "".join(lines).encode())

    def close(self) -> None:
        self.flush()
        os.close(self.fd)


def _access_line(row: tuple[Any, ...]) -> str:
    ts, service, replica, method, path, status, size, ms = row
    return (
        json.dumps(
            {
                "ts": round(ts, 6),
                "service": service,
                "replica": replica,
                "method": method.decode("latin-1"),
                "path": path.decode("latin-1"),
                "status": status,
                "bytes": size,
                "duration_ms": round(ms, 3),
            }
        )
        + "\n"
    )


SPANS_KEPT = 5000  # per worker, between two stats requests
# The fields of a hop span, in the order `ClientConn._account` records them.
_SPAN_KEYS = (
    "trace_id",
    "span_id",
    "parent_span_id",
    "service",
    "replica",
    "method",
    "path",
    "status",
    "start",
    "duration_ms",
)


class Context(ContextBase):
    """Everything a worker's protocols share (what they read per request is
    in `ContextBase`)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, config: dict[str, Any]) -> None:
        super().__init__(loop)
        self.header_timeout = float(config["header_timeout"])
        self.idle_timeout = float(config["idle_timeout"])
        self.connect_timeout = float(config.get("connect_timeout", 5.0))
        self.trusted: tuple[Network, ...] = parse_networks(config["trusted_proxies"])
        log_path = config.get("access_log")
        self.access = AccessLog(Path(log_path)) if log_path else None
        self.backends: dict[tuple[str, str, int, str], BackendState] = {}
        self.retiring: set[BackendState] = set()  # out of the table, requests in flight
        self.counters: dict[str, Counters] = {}
        self.prefixes: list[tuple[bytes, bool, str]] = []
        self.listeners: dict[int, tuple[str | None, asyncio.AbstractServer]] = {}
        # Policies can be switched off for the benchmark's comparison only.
        self.policies = os.environ.get("LSQ_GATEWAY_POLICIES", "on") != "off"
        self.events = _outlier.Events()
        self.fault_hits: dict[str, int] = {}
        # Hop spans of sampled traced requests, until the next stats request.
        self.spans: deque[tuple[Any, ...]] = deque(maxlen=SPANS_KEPT)
        self.retries: dict[str, int] = {}
        self.budgets: dict[str, RetryBudget] = {}
        self.pids: dict[int, str] = {}

    # -- called by the proxy on failures and faults --------------------------

    def failed(self, req: Request, backend: BackendState, cause: str) -> None:
        service = req.service
        if not self.policies or service is None:
            return
        if req.probe:
            req.probe = False
            backend.fails += 1
            _outlier.probe_done(self.events, service, backend, False, cause)
            return
        _outlier.failed(self.events, service, backend, cause, self.now)

    def probe_done(self, service: ServiceState, backend: BackendState, ok: bool) -> None:
        _outlier.probe_done(self.events, service, backend, ok, "")

    def fault_hit(self, service: ServiceState, backend: BackendState, fault: Fault) -> None:
        hits = self.fault_hits.get(fault.id, 0)
        self.fault_hits[fault.id] = hits + 1
        if not hits:
            cause = f"fault {fault.id} ({fault.kind}) matched a request"
            self.events.add("fault-hit", service.name, backend.id, cause)

    def budget_exhausted(self, service: ServiceState) -> None:
        cause = "retry budget exhausted; failed requests are not retried for now"
        self.events.add_limited("budget-exhausted", service.name, cause, 1.0)

    def counters_retry(self, service: ServiceState) -> None:
        self.retries[service.name] = self.retries.get(service.name, 0) + 1

    def source_of(self, peer: Any, local: Any) -> str | None:
        """The service of the calling process (a `source` fault is active)."""
        if not isinstance(peer, tuple) or not isinstance(local, tuple):
            return None
        return service_of_pid(peer_pid(peer[:2], local[:2]), self.pids)

    def ingress_route(self, host: bytes, path: bytes) -> tuple[str | None, bytes]:
        """Service for a request on the ingress port, by Host then by prefix."""
        name = _host_service(host)
        if name is not None and name in self.services:
            return name, path
        for prefix, strip, service in self.prefixes:
            if _matches(path, prefix):
                if not strip:
                    return service, path
                rest = path[len(prefix) :]
                return service, rest if rest[:1] == b"/" else b"/" + rest
        return None, path

    # -- the table --------------------------------------------------------

    async def apply(self, table: RoutingTable) -> list[str]:
        """Make services, backends and listeners match `table`."""
        services: dict[str, ServiceState] = {}
        seen: dict[tuple[str, str, int, str], BackendState] = {}
        errors: list[str] = []
        self.pids = {}
        for name, entry in table.services.items():
            service = self._service(name, entry)
            if entry.external:
                key = ("external", entry.external, 0, name)
                backend = self.backends.get(key) or external_backend(entry.external)
                backend.id = f"{name}-external"
                seen[key] = backend
                service.backends = [backend]
                service.external = True
            for b in entry.backends:
                key = (b.id, b.host, b.port, name)
                backend = self.backends.get(key) or BackendState(
                    b.id, b.host, b.port, b.weight
                )
                backend.weight = b.weight
                backend.pid = b.pid
                if b.pid is not None:
                    self.pids[b.pid] = name
                seen[key] = backend
                service.backends.append(backend)
            service.refresh()
            services[name] = service
        for key, backend in self.backends.items():
            if key not in seen:
                backend.retire()
                if backend.active:
                    self.retiring.add(backend)
        self.backends = seen
        self.services = services
        self.prefixes = sorted(
            (
                (r.prefix.encode(), r.strip, n)
                for n, e in table.services.items()
                for r in e.routes
            ),
            key=lambda item: -len(item[0]),
        )
        wanted: dict[int, str | None] = {e.port: n for n, e in table.services.items()}
        if table.ingress_port:
            wanted[table.ingress_port] = None
        await self._listen(wanted, errors)
        return errors

    def _service(self, name: str, entry: ServiceEntry) -> ServiceState:
        """A service's state for a new table; the breaker and budget carry over."""
        data = entry.policy or {}
        policy = Policy(data)
        service = ServiceState(name, self.counters.setdefault(name, Counters()), policy)
        service.routes = route_policies(data)
        if self.policies:
            try:
                service.faults = parse_faults(entry.faults)
            except (KeyError, TypeError, ValueError) as exc:
                log.error("gateway: ignoring the faults of %s: %s", name, exc)
        old = self.services.get(name)
        budget = self.budgets.get(name)
        if budget is None or (budget.ratio, budget.per_s) != (
            policy.budget_ratio,
            policy.budget_per_s,
        ):
            budget = self.budgets[name] = RetryBudget(
                policy.budget_ratio, policy.budget_per_s
            )
        service.budget = budget
        if old is not None:
            service.breaker = old.breaker
            service.breaker_since = old.breaker_since
            service.breaker_cause = old.breaker_cause
            service.probing = old.probing
            service.probe_at = old.probe_at
        return service

    async def _listen(self, wanted: dict[int, str | None], errors: list[str]) -> None:
        for port in list(self.listeners):
            name, server = self.listeners[port]
            if wanted.get(port, "\0") != name:
                server.close()
                del self.listeners[port]
        for port, name in wanted.items():
            if port in self.listeners or not port:
                continue
            try:
                server = await self.loop.create_server(
                    lambda name=name: ClientConn(self, name), sock=_listen_socket(port)
                )
            except OSError as exc:
                errors.append(f"port {port} ({name or 'ingress'}): {exc.strerror}")
                continue
            self.listeners[port] = (name, server)

    # -- periodic work ----------------------------------------------------

    async def tick(self) -> None:
        """Coarse clock, timeouts, ejections, the pool's idle limit, the access log."""
        rounds = 0
        while True:
            await asyncio.sleep(_TICK)
            self.now = now = self.loop.time()
            for conn in list(self.conns):
                conn.check_timeouts(now)
            rounds += 1
            if rounds % 10 == 0:
                self._close_stale_pooled(now)
                if self.access is not None:
                    self.access.flush()
                if self.policies:
                    self._expire_faults()
                    _outlier.sweep(self.events, self.services, now)
            if rounds % 100 == 0:
                _outlier.reset_windows(self.services)

    def _expire_faults(self) -> None:
        wall = time.time()
        for service in self.services.values():
            if any(f.expires_at is not None and f.expires_at <= wall for f in service.faults):
                service.faults = tuple(
                    f for f in service.faults if f.expires_at is None or f.expires_at > wall
                )
                service.refresh()

    def _close_stale_pooled(self, now: float) -> None:
        for backend in self.backends.values():
            stale = [u for u in backend.idle if now - u.idle_since > _POOL_IDLE]
            for upstream in stale:
                backend.idle.remove(upstream)
                upstream.transport.close()

    def dump(self, since: int = 0) -> dict[str, Any]:
        replicas: dict[str, Any] = {}
        wall, now = time.time(), self.loop.time()
        # A backend taken out of the table still reports its in-flight
        # requests until they end, so that a drain can wait for them.
        self.retiring = {b for b in self.retiring if b.active}
        for backend in [*self.backends.values(), *self.retiring]:
            until = backend.ejected_until
            replicas[backend.id] = dict(
                backend.counters.dump(),
                active=backend.active,
                ejected_until=round(wall + until - now, 3) if until > now else None,
                ejections=backend.ejections,
                consecutive_failures=backend.fails,
                ewma_ms=round(backend.ewma, 3),
            )
        breakers = {
            name: {
                "state": BREAKER_NAMES[s.breaker],
                "since": round(s.breaker_since, 6) if s.breaker_since else None,
                "cause": s.breaker_cause,
            }
            for name, s in self.services.items()
        }
        return {
            "services": {n: c.dump() for n, c in self.counters.items()},
            "replicas": replicas,
            "breakers": breakers,
            "retries": dict(self.retries),
            "fault_hits": dict(self.fault_hits),
            "events": self.events.since(since),
            "spans": self._take_spans(),
        }

    def _take_spans(self) -> list[dict[str, Any]]:
        keys = _SPAN_KEYS
        spans = [dict(zip(keys, span, strict=True)) for span in self.spans]
        self.spans.clear()
        for span in spans:
            span["method"] = span["method"].decode("latin-1")
            span["path"] = span["path"].decode("latin-1")[:500]
            span["start"] = round(span["start"], 6)
            span["duration_ms"] = round(span["duration_ms"], 3)
        return spans

    async def close(self) -> None:
        for _, server in self.listeners.values():
            server.close()
        self.listeners.clear()
        for conn in list(self.conns):
            conn.transport.close()
        if self.access is not None:
            self.access.close()


def _host_service(host: bytes) -> str | None:
    host = host.lower()
    if host.startswith(b"["):
        return None
    name = host.rsplit(b":", 1)[0] if b":" in host else host
    if name.endswith(b".localhost"):
        return name[: -len(b".localhost")].decode("latin-1")
    return None


def _matches(path: bytes, prefix: bytes) -> bool:
    if not path.startswith(prefix):
        return False
    if prefix.endswith(b"/") or len(path) == len(prefix):
        return True
    return path[len(prefix)] in b"/?"


def _listen_socket(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind(("127.0.0.1", port))
        sock.listen(1024)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


# -- the control channel ----------------------------------------------------


async def serve(fd: int) -> None:
    """Run until the parent says stop or closes its end."""
    loop = asyncio.get_running_loop()
    # A routing table is one line: hundreds of services with their policies
    # take far more than asyncio's default 64 KiB line limit.
    reader, writer = await asyncio.open_unix_connection(
        sock=socket.socket(fileno=fd), limit=_CONTROL_LIMIT
    )
    line = await reader.readline()
    if not line:  # a pre-forked worker that was not needed
        writer.close()
        return
    first = json.loads(line)
    ctx = Context(loop, first["config"])
    ticker = loop.create_task(ctx.tick())
    try:
        while line := await reader.readline():
            if not await _handle(ctx, json.loads(line), writer):
                break
    finally:
        ticker.cancel()
        await ctx.close()
        writer.close()


async def _handle(
    ctx: Context, msg: dict[str, Any], writer: asyncio.StreamWriter
) -> bool:
    op = msg["op"]
    if op == "table":
        errors = await ctx.apply(RoutingTable.from_json(msg["table"]))
        for error in errors:
            log.error("gateway worker %d: cannot listen on %s", os.getpid(), error)
        return True
    if op == "sync":
        reply: dict[str, Any] = {"op": "sync", "id": msg["id"]}
    elif op == "stats":
        data = ctx.dump(int(msg.get("since", 0)))
        reply = {"op": "stats", "id": msg["id"], "data": data}
    elif op == "policies":  # the benchmark's same-process comparison only
        ctx.policies = bool(msg["on"])
        reply = {"op": "policies", "id": msg["id"]}
    else:
        return False
    writer.write(json.dumps(reply).encode() + b"\n")
    await writer.drain()
    return True


def _die_with_parent(parent: int) -> None:
    # Linux only: the kernel sends SIGTERM when the parent goes away. The
    # parent may already be gone before prctl ran, hence the check after it.
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        sys.exit(0)


def main(argv: list[str]) -> None:
    fd, parent = int(argv[0]), int(argv[1])
    # Before the parent-death signal is asked for, so that it finds its handler.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the runtime's to handle
    _die_with_parent(parent)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    uvloop.run(serve(fd))


if __name__ == "__main__":
    main(sys.argv[1:])
