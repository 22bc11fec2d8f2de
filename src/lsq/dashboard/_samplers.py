"""Periodic samples the dashboard shows: CPU and memory per instance, and
gateway traffic per service, kept for the last 15 minutes.

Sampling runs on a clock, not per request, so an open dashboard (or many)
costs the runtime the same small amount.
"""

from __future__ import annotations

import json
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psutil

# Counted as errors in the error rate; 4xx are the caller's fault and shown apart.
_ERROR_CLASSES = ("5xx", "connect", "timeout", "aborted")


class ProcessSampler:
    """CPU % and resident memory of each instance's process group leader."""

    def __init__(self) -> None:
        self._procs: dict[int, psutil.Process] = {}
        self.usage: dict[int, tuple[float, int]] = {}

    def sample(self, pids: set[int]) -> None:
        # Imported on the first sample: only a viewer (a page, `lsq top`) needs it.
        import psutil

        for pid in list(self._procs):
            if pid not in pids:
                del self._procs[pid]
        usage: dict[int, tuple[float, int]] = {}
        for pid in pids:
            try:
                proc = self._procs.get(pid)
                if proc is None:
                    # The first cpu_percent() call primes the counter; it reads 0.
                    proc = self._procs[pid] = psutil.Process(pid)
                    proc.cpu_percent(None)
                with proc.oneshot():
                    usage[pid] = (proc.cpu_percent(None), proc.memory_info().rss)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                self._procs.pop(pid, None)
        self.usage = usage


def _errors(dump: dict[str, Any]) -> int:
    errors = dump.get("errors") or {}
    return sum(int(errors.get(k, 0)) for k in _ERROR_CLASSES)


def _percentile(hist: list[int], bounds: list[float], q: float) -> float | None:
    total = sum(hist)
    if total <= 0:
        return None
    seen = 0
    for i, count in enumerate(hist):
        seen += count
        if seen >= q * total:
            return round(bounds[i], 3)
    return round(bounds[-1], 3)


def _idle_point(t: float) -> list[Any]:
    return [round(t, 3), 0.0, 0.0, None, None, None]


class TrafficSeries:
    """Rates per second of one target, computed from cumulative counters.

    A point is `[t, requests/s, error share 0..1, p50, p95, p99]`; latencies
    in ms from the histogram of that second, None when it saw no request.
    """

    def __init__(self, size: int) -> None:
        self.points: deque[list[Any]] = deque(maxlen=size)
        self._last: dict[str, Any] | None = None
        self._last_t = 0.0

    def add(
        self, t: float, dump: dict[str, Any], *, idle: list[Any] | None = None
    ) -> None:
        """Add the point since the last dump; `idle` is the point to keep if
        no request came (shared by every series of one sample: points are
        never changed once added, and 15 minutes of them add up)."""
        last, last_t = self._last, self._last_t
        self._last, self._last_t = dump, t
        if last is None:
            return
        requests = int(dump.get("requests", 0)) - int(last.get("requests", 0))
        span = max(t - last_t, 1e-3)
        if requests == 0:
            # An idle second (the usual case): no rate, no latencies, and no
            # histogram to subtract.
            self.points.append(idle if idle is not None else _idle_point(t))
            return
        errors = _errors(dump) - _errors(last)
        hist = (dump.get("histogram") or {}).get("counts") or []
        old = (last.get("histogram") or {}).get("counts") or []
        if requests < 0:
            # Counters went backwards: a gateway worker restarted. Start over.
            requests, errors, old = int(dump.get("requests", 0)), _errors(dump), []
        delta = [a - (old[i] if i < len(old) else 0) for i, a in enumerate(hist)]
        bounds = (dump.get("histogram") or {}).get("bounds_ms") or []
        self.points.append(
            [
                round(t, 3),
                round(requests / span, 3),
                round(errors / requests, 4) if requests > 0 else 0.0,
                *(
                    _percentile(delta, bounds, q) if bounds else None
                    for q in (0.5, 0.95, 0.99)
                ),
            ]
        )

    def recent(self, seconds: int = 5) -> list[Any] | None:
        """The last `seconds` points as one: mean rate, error share over
        all their requests, and the newest latencies seen."""
        points = list(self.points)[-seconds:]
        if not points:
            return None
        rate = sum(p[1] for p in points) / len(points)
        errors = sum(p[1] * p[2] for p in points)
        seen = [p for p in points if p[3] is not None]
        latency = seen[-1][3:] if seen else [None, None, None]
        share = errors / (rate * len(points)) if rate > 0 else 0.0
        return [points[-1][0], round(rate, 3), round(share, 4), *latency]

    @property
    def latest(self) -> list[Any] | None:
        return self.points[-1] if self.points else None

    @property
    def cumulative(self) -> dict[str, Any]:
        return self._last or {}


class TrafficBook:
    """Every service's and edge's `TrafficSeries`, fed one gateway snapshot a second."""

    def __init__(self, *, seconds: int = 900) -> None:
        self._size = seconds
        self.services: dict[str, TrafficSeries] = {}
        self.edges: dict[tuple[str, str], TrafficSeries] = {}
        self.last_sample = 0.0

    def add(self, stats: dict[str, Any], t: float | None = None) -> None:
        t = time.time() if t is None else t
        self.last_sample = t
        idle = _idle_point(t)
        for name, dump in (stats.get("services") or {}).items():
            series = self.services.setdefault(name, TrafficSeries(self._size))
            series.add(t, dump, idle=idle)
        for edge in _edges(stats):
            key = (str(edge["from"]), str(edge["to"]))
            series = self.edges.setdefault(key, TrafficSeries(self._size))
            series.add(t, edge, idle=idle)

    def save(self, path: Path) -> None:
        """Keep the charts' points across `lsq up` runs (15 minutes at most)."""
        data = {name: list(series.points) for name, series in self.services.items()}
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(path)

    def load(self, path: Path, *, now: float | None = None) -> None:
        """Points saved by an earlier run, if they are recent enough to chart."""
        cutoff = (time.time() if now is None else now) - self._size
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return
        for name, points in data.items():
            series = self.services.setdefault(name, TrafficSeries(self._size))
            series.points.extend(p for p in points if p and p[0] > cutoff)

    def series(self, since: float = 0.0) -> dict[str, list[list[Any]]]:
        return {
            name: [p for p in s.points if p[0] > since]
            for name, s in self.services.items()
        }

    def edge_rates(self) -> list[dict[str, Any]]:
        out = []
        for (src, dst), series in self.edges.items():
            latest = series.latest
            out.append(
                {
                    "from": src,
                    "to": dst,
                    "rps": latest[1] if latest else 0.0,
                    "error_rate": latest[2] if latest else 0.0,
                }
            )
        return out


def _edges(stats: dict[str, Any]) -> list[dict[str, Any]]:
    """Per-caller edges, if the gateway reports them.

    Expected shape: `stats["edges"]` is a list of cumulative dumps, each with
    `from` (the caller service) and `to` (the called service).
    """
    edges = stats.get("edges") or []
    return [e for e in edges if isinstance(e, dict) and "from" in e and "to" in e]
