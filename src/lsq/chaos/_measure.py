"""What a service did between two reads of the gateway's counters.

The gateway's counters only grow, so a window is the difference of two
snapshots: requests, failures (5xx and aborted responses; a 4xx is the
caller's mistake, not a fault) and the latency histogram, whose percentiles
are the upper bounds of the buckets that hold them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

Snapshot = dict[str, dict[str, Any]]
"""service -> {"requests": n, "failures": n, "hist": [counts], "bounds": [ms]}."""


@dataclass(frozen=True)
class Window:
    """One service's traffic over an interval."""

    requests: int
    failures: int
    p50: float | None
    p95: float | None
    p99: float | None

    @property
    def error_rate(self) -> float:
        return self.failures / self.requests if self.requests else 0.0

    def value(self, metric: str) -> float | None:
        if metric == "error_rate":
            return self.error_rate if self.requests else None
        return getattr(self, metric)  # type: ignore[no-any-return]

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "failures": self.failures,
            "error_rate": round(self.error_rate, 4),
            "p50_ms": self.p50,
            "p95_ms": self.p95,
            "p99_ms": self.p99,
        }


def snapshot(stats: Mapping[str, Any]) -> Snapshot:
    """The parts of `Gateway.stats()` a window needs, per service."""
    out: Snapshot = {}
    for name, svc in stats.get("services", {}).items():
        errors = svc.get("errors", {})
        histogram = svc.get("histogram", {})
        out[name] = {
            "requests": int(svc.get("requests", 0)),
            "failures": int(errors.get("5xx", 0)) + int(errors.get("aborted", 0)),
            "hist": list(histogram.get("counts", [])),
            "bounds": list(histogram.get("bounds_ms", [])),
        }
    return out


def window(before: Snapshot, after: Snapshot, service: str) -> Window:
    """`service`'s traffic between two snapshots (zeros when it had none)."""
    new = after.get(service)
    if new is None:
        return Window(0, 0, None, None, None)
    old = before.get(service, {})
    requests = new["requests"] - old.get("requests", 0)
    failures = min(requests, new["failures"] - old.get("failures", 0))
    old_hist = old.get("hist") or [0] * len(new["hist"])
    hist = [a - b for a, b in zip(new["hist"], old_hist, strict=False)]
    bounds = new["bounds"]
    return Window(
        requests,
        max(0, failures),
        _percentile(hist, bounds, 0.50),
        _percentile(hist, bounds, 0.95),
        _percentile(hist, bounds, 0.99),
    )


def _percentile(hist: list[int], bounds: list[float], q: float) -> float | None:
    total = sum(hist)
    if total <= 0 or not bounds:
        return None
    seen = 0
    for i, count in enumerate(hist):
        seen += count
        if seen >= q * total:
            return round(bounds[min(i, len(bounds) - 1)], 3)
    return round(bounds[-1], 3)
