"""`/metrics`: the runtime's state in the Prometheus text format."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

Snapshot = Callable[[], dict[str, Any]]


class _Collector:
    def __init__(self, services: Snapshot, traffic: Snapshot) -> None:
        self._services = services
        self._traffic = traffic

    def collect(self) -> Iterator[Metric]:
        yield from _instance_metrics(self._services())
        yield from _gateway_metrics(self._traffic())


def _instance_metrics(status: dict[str, Any]) -> Iterator[Metric]:
    labels = ["service", "instance"]
    up = GaugeMetricFamily(
        "lsq_instance_up", "1 when the instance is running and healthy.", labels=labels
    )
    state = GaugeMetricFamily(
        "lsq_instance_state",
        "1 for the instance's current state.",
        labels=[*labels, "state"],
    )
    restarts = CounterMetricFamily(
        "lsq_instance_restarts", "Restarts of the instance.", labels=labels
    )
    uptime = GaugeMetricFamily(
        "lsq_instance_uptime_seconds",
        "Seconds since the instance started.",
        labels=labels,
    )
    cpu = GaugeMetricFamily(
        "lsq_instance_cpu_percent",
        "CPU use of the instance process, % of one core.",
        labels=labels,
    )
    mem = GaugeMetricFamily(
        "lsq_instance_memory_bytes",
        "Resident memory of the instance process.",
        labels=labels,
    )
    for svc in status.get("services", []):
        for inst in svc.get("instances", []):
            key = [str(svc["name"]), str(inst["id"])]
            up.add_metric(
                key, 1.0 if inst["state"] == "running" and inst.get("healthy") else 0.0
            )
            state.add_metric([*key, str(inst["state"])], 1.0)
            restarts.add_metric(key, float(inst.get("restarts") or 0))
            uptime.add_metric(key, float(inst.get("uptime") or 0.0))
            if inst.get("cpu") is not None:
                cpu.add_metric(key, float(inst["cpu"]))
                mem.add_metric(key, float(inst.get("memory") or 0))
    yield from (up, state, restarts, uptime, cpu, mem)


def _gateway_metrics(cumulative: dict[str, Any]) -> Iterator[Metric]:
    if not cumulative:
        return
    requests = CounterMetricFamily(
        "lsq_gateway_requests", "Requests through the gateway.", labels=["service"]
    )
    errors = CounterMetricFamily(
        "lsq_gateway_errors", "Failed requests by class.", labels=["service", "class"]
    )
    latency = HistogramMetricFamily(
        "lsq_gateway_request_duration_milliseconds",
        "Request latency at the gateway.",
        labels=["service"],
    )
    for name, dump in cumulative.items():
        requests.add_metric([name], float(dump.get("requests", 0)))
        for cls, count in (dump.get("errors") or {}).items():
            errors.add_metric([name, cls], float(count))
        hist = dump.get("histogram") or {}
        counts, bounds = hist.get("counts") or [], hist.get("bounds_ms") or []
        buckets, seen = [], 0
        for bound, count in zip(bounds, counts):
            seen += count
            buckets.append((f"{bound:.6g}", float(seen)))
        buckets.append(("+Inf", float(seen)))
        latency.add_metric([name], buckets, sum_value=None)
    yield from (requests, errors, latency)


def render(services: Snapshot, traffic: Snapshot) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(services, traffic))
    return generate_latest(registry)
