"""Outlier ejection per replica and the circuit breaker per service.

A worker calls `failed()` for every failed attempt (a 5xx head, a refused or
broken connection, a timeout), `probe_done()` when the breaker's probe ends,
and `sweep()` about once a second. State changes become events.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from lsq.gateway._balance import CLOSED, HALF_OPEN, OPEN, BackendState, ServiceState
from lsq.gateway._policy import MAX_EJECTION

EVENTS_KEPT = 200
_WINDOW = 10.0  # seconds of requests behind the failure-ratio comparison
_MIN_WINDOW = 10  # requests a replica needs in the window to be compared


class Events:
    """A bounded ring of state changes, each with an increasing `seq`."""

    def __init__(self) -> None:
        self.ring: deque[dict[str, Any]] = deque(maxlen=EVENTS_KEPT)
        self.seq = 0
        self.quiet: dict[tuple[str, str], float] = {}  # rate limit per (kind, service)

    def add(self, kind: str, service: str, replica: str | None, cause: str) -> None:
        self.seq += 1
        self.ring.append(
            {
                "seq": self.seq,
                "ts": round(time.time(), 6),
                "service": service,
                "replica": replica,
                "kind": kind,
                "cause": cause,
            }
        )

    def add_limited(self, kind: str, service: str, cause: str, every: float) -> None:
        now = time.monotonic()
        if now - self.quiet.get((kind, service), -every) >= every:
            self.quiet[(kind, service)] = now
            self.add(kind, service, None, cause)

    def since(self, seq: int) -> list[dict[str, Any]]:
        return [e for e in self.ring if e["seq"] > seq]


def ratio_text(backend: BackendState) -> str:
    if not backend.win_total:
        return "no requests in the window"
    share = 100.0 * backend.win_fail / backend.win_total
    return f"error ratio {share:.0f}% of {backend.win_total} requests"


def failed(
    events: Events, service: ServiceState, backend: BackendState, cause: str, now: float
) -> None:
    """One failed attempt on `backend`: maybe eject it, maybe open the breaker."""
    backend.fails += 1
    backend.win_fail += 1
    policy = service.policy
    if backend.fails >= policy.consecutive_failures and backend.ejected_until <= now:
        why = f"{backend.fails} consecutive failures ({ratio_text(backend)}); last: {cause}"
        eject(events, service, backend, why, now)
    if policy.breaker and service.breaker == CLOSED and _all_failing(service, now):
        detail = "; ".join(f"{b.id}: {b.fails} consecutive, {ratio_text(b)}" for b in service.backends)
        open_breaker(events, service, f"every replica is failing ({detail}); last: {cause}")


def eject(
    events: Events, service: ServiceState, backend: BackendState, cause: str, now: float
) -> bool:
    """Take `backend` out for a growing period, unless too many are out."""
    policy = service.policy
    usable = [b for b in service.backends if b.weight > 0] or service.backends
    out = sum(1 for b in usable if b.ejected_until > now)
    if out + 1 > policy.max_ejected_ratio * len(usable):
        return False
    backend.ejections += 1
    period = min(MAX_EJECTION, policy.base_ejection * backend.ejections)
    backend.ejected_until = now + period
    events.add("ejected", service.name, backend.id, f"{cause}; out for {period:g}s")
    return True


def open_breaker(events: Events, service: ServiceState, cause: str) -> None:
    service.breaker = OPEN
    service.breaker_since = time.time()
    service.breaker_cause = cause
    service.probing = False
    service.refresh()
    events.add("breaker-open", service.name, None, cause)


def probe_done(
    events: Events, service: ServiceState, backend: BackendState, ok: bool, cause: str
) -> None:
    """The half-open breaker's probe ended: close on success, else open again."""
    service.probing = False
    if service.breaker != HALF_OPEN:
        return
    if not ok:
        open_breaker(events, service, f"the probe to {backend.id} failed: {cause}")
        return
    service.breaker = CLOSED
    service.breaker_since = time.time()
    service.breaker_cause = f"the probe to {backend.id} succeeded"
    service.refresh()
    events.add("breaker-closed", service.name, backend.id, service.breaker_cause)


def sweep(events: Events, services: dict[str, ServiceState], now: float) -> None:
    """Restore replicas whose ejection ended; compare failure ratios."""
    for service in services.values():
        for backend in service.backends:
            if backend.ejected_until and backend.ejected_until <= now:
                backend.ejected_until = 0.0
                backend.fails = 0
                events.add("restored", service.name, backend.id, "ejection period over")
        if len(service.backends) > 1:
            _ratio_outliers(events, service, now)


def reset_windows(services: dict[str, ServiceState]) -> None:
    for service in services.values():
        for backend in service.backends:
            backend.win_total = backend.win_fail = 0


def _ratio_outliers(events: Events, service: ServiceState, now: float) -> None:
    # A replica failing at least half its requests while its siblings fail at
    # under a third of its rate is ejected even without 5 in a row.
    for backend in service.backends:
        if backend.win_total < _MIN_WINDOW or backend.ejected_until > now:
            continue
        ratio = backend.win_fail / backend.win_total
        others = [b for b in service.backends if b is not backend]
        total = sum(b.win_total for b in others)
        if not total:
            continue
        siblings = sum(b.win_fail for b in others) / total
        if ratio >= 0.5 and ratio > 3 * siblings + 0.05:
            cause = f"{ratio_text(backend)}, siblings {100 * siblings:.0f}%"
            if eject(events, service, backend, cause, now):
                backend.win_total = backend.win_fail = 0


def _all_failing(service: ServiceState, now: float) -> bool:
    threshold = service.policy.consecutive_failures
    usable = [b for b in service.backends if b.weight > 0]
    return bool(usable) and all(
        b.fails >= threshold or b.ejected_until > now for b in usable
    )
