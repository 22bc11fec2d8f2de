"""Live per-worker state of services and backends, and the balancer.

In the compiled build (setup.py) both classes are C types, typed by
_balance.pxd, whose fields the proxy reads and writes directly.
"""

from __future__ import annotations

import math
import random
import ssl
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from lsq.gateway._faults import Fault
from lsq.gateway._policy import Policy, RetryBudget
from lsq.gateway._stats import Counters

if TYPE_CHECKING:
    from lsq.gateway._proxy import Upstream

CLOSED, OPEN, HALF_OPEN = 0, 1, 2
BREAKER_NAMES = {CLOSED: "closed", OPEN: "open", HALF_OPEN: "half-open"}
_EWMA_TAU = 10.0  # seconds for a fast sample to replace a slow one
_MARGIN = 1.5  # within this factor two candidates count as equally good
_WEIGHTED_MARGIN = 5.0

# The compiled build (setup.py) has the digest of the sources it was made
# from here; lsq/gateway/_compiled.py compares it with them at import.
COMPILED_FROM: str | None = None


class BackendState:
    """One replica (or an external URL) as a worker sees it."""

    __slots__ = (
        "active",
        "base_path",
        "counters",
        "ejected_until",
        "ejections",
        "ewma",
        "ewma_at",
        "fails",
        "host",
        "host_header",
        "id",
        "idle",
        "pid",
        "port",
        "retired",
        "server_hostname",
        "ssl",
        "weight",
        "win_fail",
        "win_total",
    )

    def __init__(self, id: str, host: str, port: int, weight: int) -> None:
        self.id = id
        self.host = host
        self.port = port
        self.weight = weight
        self.pid: int | None = None
        self.active = 0  # requests in flight from this worker
        self.idle: list[Upstream] = []  # pooled keep-alive connections, LIFO
        self.retired = False
        self.counters = Counters()
        self.ssl: ssl.SSLContext | None = None
        self.server_hostname: str | None = None
        self.host_header: bytes | None = None  # replaces Host for externals
        self.base_path = b""
        self.fails = 0  # consecutive failures
        self.ejected_until = 0.0  # loop time; 0 = in service
        self.ejections = 0
        self.ewma = 0.0  # peak-EWMA latency, ms
        self.ewma_at = 0.0
        self.win_total = 0  # requests and failures in the outlier window
        self.win_fail = 0

    def observe(self, ms: float, now: float) -> None:
        """Peak-EWMA: a slower sample counts at once, faster ones decay in."""
        if ms >= self.ewma:
            self.ewma = ms
        elif now != self.ewma_at:  # no time passed: the weight is 1, nothing moves
            weight = math.exp(-(now - self.ewma_at) / _EWMA_TAU)
            self.ewma = self.ewma * weight + ms * (1.0 - weight)
        self.ewma_at = now

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
    """One service in a worker: its backends, policy, faults and breaker."""

    __slots__ = (
        "backends",
        "breaker",
        "breaker_cause",
        "breaker_since",
        "budget",
        "counters",
        "external",
        "faults",
        "guarded",
        "name",
        "policy",
        "probe_at",
        "probing",
        "routes",
        "weighted",
    )

    def __init__(self, name: str, counters: Counters, policy: Policy) -> None:
        self.name = name
        self.backends: list[BackendState] = []
        self.counters = counters
        self.external = False
        self.policy = policy
        self.routes: tuple[tuple[bytes, Policy], ...] = ()
        self.faults: tuple[Fault, ...] = ()
        self.budget = RetryBudget(policy.budget_ratio, policy.budget_per_s)
        self.breaker = CLOSED
        self.breaker_since = 0.0
        self.breaker_cause = ""
        self.probing = False
        self.probe_at = 0.0
        self.guarded = False  # breaker not closed or faults present: slow path
        self.weighted = False  # backends differ in weight

    def policy_for(self, path: bytes) -> Policy:
        for prefix, policy in self.routes:
            if path.startswith(prefix):
                return policy
        return self.policy

    def refresh(self) -> None:
        """Recompute the flags the hot path reads after a state change."""
        self.guarded = bool(self.faults) or self.breaker != CLOSED
        self.weighted = len({b.weight for b in self.backends}) > 1

    def pick(self, exclude: tuple[BackendState, ...], now: float) -> BackendState | None:
        """Two random choices (by weight), the lower peak-EWMA load wins."""
        backends = self.backends
        if len(backends) == 1 and not exclude:
            only = backends[0]
            return only if only.weight > 0 and only.ejected_until <= now else None
        ready = [
            b
            for b in backends
            if b.weight > 0 and b.ejected_until <= now and b not in exclude
        ]
        if len(ready) <= 1:
            return ready[0] if ready else None
        if self.weighted:
            # Weights are a traffic split (canary): latency only overrides
            # them when the drawn replica is far worse than the other.
            weights = [b.weight for b in ready]
            first, second = random.choices(ready, weights, k=2)
            margin = _WEIGHTED_MARGIN
        else:
            first, second = random.sample(ready, 2)
            margin = _MARGIN
        if _load(second, now) * margin < _load(first, now):
            return second
        return first


def _load(backend: BackendState, now: float) -> float:
    # The score decays while a replica gets no requests, so one slow sample
    # cannot starve it for good: it is tried again and measured afresh.
    idle = now - backend.ewma_at
    ewma = backend.ewma * math.exp(-idle / _EWMA_TAU) if idle > 0 else backend.ewma
    return (ewma + 0.1) * (backend.active + 1)
