"""The dashboard: pages, live stream, traffic and process samples, OTLP
receiver and trace store, and `/metrics`, all served by the runtime."""

from lsq.dashboard._dashboard import Dashboard, dashboard_url, mount, otlp_endpoint
from lsq.dashboard._logring import LogLine, LogRing
from lsq.dashboard._samplers import ProcessSampler, TrafficBook
from lsq.dashboard._traces import TraceStore, parse_otlp

__all__ = [
    "Dashboard",
    "LogLine",
    "LogRing",
    "ProcessSampler",
    "TraceStore",
    "TrafficBook",
    "dashboard_url",
    "mount",
    "otlp_endpoint",
    "parse_otlp",
]
