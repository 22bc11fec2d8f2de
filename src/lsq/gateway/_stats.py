"""Counters and latency histograms, per service and per replica.

Workers keep `Counters` on the hot path (`ClientConn._account` makes a few
integer increments per request; in the compiled build `Counters` is a C type,
typed by _stats.pxd); the parent merges the workers' dumps and computes
percentiles.
"""

from __future__ import annotations

from typing import Any

# The compiled build (setup.py) has the digest of the sources it was made
# from here; lsq/gateway/_compiled.py compares it with them at import.
COMPILED_FROM: str | None = None

# Log-spaced bucket upper bounds in milliseconds: 0.05 ms .. ~110 s, 4 per octave.
_PER_OCTAVE = 4
_BASE_MS = 0.05
BUCKETS: tuple[float, ...] = tuple(_BASE_MS * 2 ** (i / _PER_OCTAVE) for i in range(85))
ERROR_CLASSES = ("4xx", "5xx", "connect", "timeout", "aborted")


class Counters:
    """Requests, errors by class and a latency histogram for one target."""

    __slots__ = ("errors", "hist", "requests")

    def __init__(self) -> None:
        self.requests = 0
        self.errors = dict.fromkeys(ERROR_CLASSES, 0)
        self.hist = [0] * len(BUCKETS)

    def dump(self) -> dict[str, Any]:
        return {"requests": self.requests, "errors": self.errors, "hist": self.hist}


def merge(into: dict[str, Any], dump: dict[str, Any]) -> None:
    """Add one worker's dump of a target to an accumulated one."""
    into["requests"] = into.get("requests", 0) + dump["requests"]
    errors = into.setdefault("errors", dict.fromkeys(ERROR_CLASSES, 0))
    for key, value in dump["errors"].items():
        errors[key] = errors.get(key, 0) + value
    hist = into.setdefault("hist", [0] * len(BUCKETS))
    for i, value in enumerate(dump["hist"]):
        hist[i] += value


def percentile(hist: list[int], q: float) -> float | None:
    """Upper bound (ms) of the bucket holding quantile `q`; None when empty."""
    total = sum(hist)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for i, count in enumerate(hist):
        seen += count
        if seen >= rank:
            return round(BUCKETS[i], 3)
    return round(BUCKETS[-1], 3)


def summarize(target: dict[str, Any]) -> dict[str, Any]:
    """A merged target as the snapshot shows it: counts plus p50/p95/p99."""
    hist = target.get("hist", [0] * len(BUCKETS))
    return {
        "requests": target.get("requests", 0),
        "errors": target.get("errors", dict.fromkeys(ERROR_CLASSES, 0)),
        "latency_ms": {
            "p50": percentile(hist, 0.50),
            "p95": percentile(hist, 0.95),
            "p99": percentile(hist, 0.99),
        },
        "histogram": {"bounds_ms": list(BUCKETS), "counts": hist},
    }
