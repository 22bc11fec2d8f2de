"""Live per-worker state of services and backends, and the balancer."""

from __future__ import annotations

import random
import ssl
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from lsq.gateway._stats import Counters

if TYPE_CHECKING:
    from lsq.gateway._proxy import Upstream


class BackendState:
    """One replica (or an external URL) as a worker sees it."""

    __slots__ = (
        "active",
        "base_path",
        "counters",
        "host",
        "host_header",
        "id",
        "idle",
        "port",
        "retired",
        "server_hostname",
        "ssl",
        "weight",
    )

    def __init__(self, id: str, host: str, port: int, weight: int) -> None:
        self.id = id
        self.host = host
        self.port = port
        self.weight = weight
        self.active = 0  # requests in flight from this worker
        self.idle: list[Upstream] = []  # pooled keep-alive connections, LIFO
        self.retired = False
        self.counters = Counters()
        self.ssl: ssl.SSLContext | None = None
        self.server_hostname: str | None = None
        self.host_header: bytes | None = None  # replaces Host for externals
        self.base_path = b""

    def take_idle(self) -> Upstream | None:
        """A pooled connection that has not been closed by the backend."""
        while self.idle:
            upstream = self.idle.pop()
            if not upstream.closed and not upstream.transport.is_closing():
                return upstream
        return None

    def retire(self) -> None:
        """No new requests; idle connections close, busy ones after their response."""
        self.retired = True
        for upstream in self.idle:
            upstream.transport.close()
        self.idle.clear()


def external_backend(url: str) -> BackendState:
    """A backend for an `external:` URL; https gets TLS with SNI and verification."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"external must be an http(s) URL, found {url!r}")
    tls = parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    backend = BackendState("external", parts.hostname, port, 100)
    backend.host_header = parts.netloc.rsplit("@", 1)[-1].encode()
    backend.base_path = parts.path.rstrip("/").encode()
    if tls:
        backend.ssl = ssl.create_default_context()
        backend.server_hostname = parts.hostname
    return backend


class ServiceState:
    """One service in a worker: its backends and counters."""

    __slots__ = ("backends", "counters", "external", "name")

    def __init__(self, name: str, counters: Counters) -> None:
        self.name = name
        self.backends: list[BackendState] = []
        self.counters = counters
        self.external = False

    def pick(self, exclude: tuple[BackendState, ...]) -> BackendState | None:
        """Least outstanding requests per weight; ties broken at random."""
        best: BackendState | None = None
        best_score = 0.0
        ties = 0
        for backend in self.backends:
            if backend.weight <= 0 or backend in exclude:
                continue
            score = backend.active / backend.weight
            if best is None or score < best_score:
                best, best_score, ties = backend, score, 1
            elif score == best_score:
                ties += 1
                if random.random() * ties < 1.0:
                    best = backend
        return best
