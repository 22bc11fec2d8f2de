"""The dashboard's routes on the control API, and the tasks that feed them.

Pages and assets are served by the runtime itself. The first visit carries
the token in the query (`/?token=...`); the answer sets it as an HttpOnly,
SameSite=Strict cookie and redirects to `/`, so the token leaves the address
bar. From then on the page uses the cookie for the read routes (`/ui/...`)
and for the control API's POST routes.

One server-sent event stream (`/ui/stream`) carries everything live: status,
runtime events, log lines and traffic points. It polls in-memory counters
four times a second, so an idle page costs next to nothing and a chatty
service's logs reach the page in batches.
"""

from __future__ import annotations

import asyncio
import gzip
import hmac
import io
import json
import mimetypes
import secrets
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator
from importlib import resources
from typing import TYPE_CHECKING, Any

from lsq.control._http import Request, Response
from lsq.dashboard._logring import LogRing, stored_tail
from lsq.dashboard._samplers import ProcessSampler, TrafficBook
from lsq.dashboard._traces import TraceStore, gateway_spans, parse_otlp
from lsq.errors import ControlError, LsqError

if TYPE_CHECKING:
    from lsq.control._server import ControlAPI
    from lsq.runtime import Runtime

_STATIC = {"app.js", "app.css", "favicon.svg"}
_STREAM_TICK = 0.25
_WATCH_GRACE = 10.0  # seconds of process sampling after the last viewer's read
_STREAM_BATCH = 2000
_PROCESS_EVERY = 2.0
_KEEPALIVE = 15.0
_MAX_OTLP = 16 << 20

_mounted: weakref.WeakKeyDictionary[Runtime, Dashboard] = weakref.WeakKeyDictionary()


def dashboard_url(port: int, token: str) -> str:
    """The URL to open the dashboard once; it trades the token for a cookie."""
    return f"http://127.0.0.1:{port}/?token={token}"


def otlp_endpoint(runtime: Runtime) -> str:
    """`OTEL_EXPORTER_OTLP_ENDPOINT` for the services of this runtime."""
    dash = _mounted.get(runtime)
    if dash is None or dash.api.guard is None:
        raise LsqError(
            "the OTLP receiver is not listening yet; call otlp_endpoint after the control API started"
        )
    return f"http://127.0.0.1:{dash.api.guard.port}/otlp/{dash.otlp_secret}"


def cookie_name(port: int) -> str:
    # Cookies are not kept apart by port, so two apps' dashboards in one
    # browser would overwrite each other's token without the port in the name.
    return f"lsq_token_{port}"


class Dashboard:
    """Routes, in-memory stores and the sampling tasks of one runtime."""

    def __init__(self, api: ControlAPI, runtime: Runtime) -> None:
        self.api = api
        self.runtime = runtime
        # Kept from the last start when services started early (lsq.runtime._warm)
        # were given the endpoint it names.
        self.otlp_secret = runtime.otlp_secret or secrets.token_urlsafe(24)
        runtime.otlp_secret = self.otlp_secret
        self.logs = LogRing()
        for record in stored_tail(runtime.dir / "logs"):
            self.logs.add(record)
        self.traces = TraceStore(runtime.dir / "telemetry")
        self._traffic_file = runtime.dir / "telemetry" / "traffic.json"
        self.procs = ProcessSampler()
        self._watched_until = 0.0
        self.traffic = TrafficBook()
        self.traffic.load(self._traffic_file)
        self.events: deque[dict[str, object]] = deque(maxlen=500)
        self._event_seq = 0
        self.status_version = 0
        self._status: dict[str, Any] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._unlisten = [
            self._listen_logs(),
            runtime.listen(self._on_event),
            # The runtime's once-a-second gateway snapshot: traffic and hop spans.
            runtime.watch_gateway(self._on_gateway_stats),
        ]

    def _on_gateway_stats(self, stats: dict[str, Any]) -> None:
        self.traffic.add(stats)
        if stats.get("spans"):
            self.add_gateway_spans(stats["spans"])

    def add_gateway_spans(self, hops: list[dict[str, Any]]) -> None:
        self.traces.add(gateway_spans(hops))

    def _listen_logs(self) -> Any:
        assert self.runtime.hub is not None
        return self.runtime.hub.listen(self.logs.add)

    def _on_event(self, event: dict[str, object]) -> None:
        # Live events carry no database id; the stream numbers them itself.
        self._event_seq += 1
        self.events.append({**event, "seq": self._event_seq})
        self._status = None  # rebuilt on the next read, with the new state

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._every(_PROCESS_EVERY, self._sample_processes)),
        ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for unlisten in self._unlisten:
            unlisten()
        self.traces.close()
        try:
            self._traffic_file.parent.mkdir(parents=True, exist_ok=True)
            self.traffic.save(self._traffic_file)
        except OSError as exc:  # a full disk must not stop the shut-down
            self.runtime.printer.note(f"dashboard: traffic history not saved: {exc}")

    async def _every(self, seconds: float, step: Any) -> None:
        last_failure = ""
        while True:
            try:
                await step()
                last_failure = ""
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a failed sample must not end sampling
                # Said once per distinct failure, not once a second.
                if repr(exc) != last_failure:
                    last_failure = repr(exc)
                    self.runtime.printer.note(
                        f"dashboard: {step.__name__} failed: {exc!r}"
                    )
            await asyncio.sleep(seconds)

    async def _sample_processes(self) -> None:
        self.traces.flush()
        # CPU and memory are read only while someone looks (a page, `lsq top`):
        # an app left running with no viewer costs no sampling.
        if self.runtime.sup is None or time.monotonic() > self._watched_until:
            return
        pids = {
            r.instance.pid
            for unit in self.runtime.sup.units.values()
            for r in unit.replicas
            if r.instance.pid
        }
        self.procs.sample(pids)
        self._status = None

    # -- snapshots ------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """runtime.status() plus CPU, memory, uptime and the latest traffic point."""
        self._watched_until = time.monotonic() + _WATCH_GRACE
        if self._status is not None:
            return self._status
        status = self.runtime.status()
        now = time.time()
        for svc in status["services"]:  # type: ignore[attr-defined]
            for inst in svc["instances"]:
                used = self.procs.usage.get(inst["pid"]) if inst.get("pid") else None
                inst["cpu"], inst["memory"] = used if used else (None, None)
                started = inst.get("started_at")
                inst["uptime"] = (
                    round(now - started, 1) if started and inst.get("pid") else None
                )
            series = self.traffic.services.get(svc["name"])
            svc["traffic"] = series.recent() if series else None
            svc["depends_on"] = list(self.runtime.app.services[svc["name"]].depends_on)
        status["gateway"] = getattr(self.runtime, "gateway", None) is not None
        status["otlp_endpoint"] = (
            otlp_endpoint(self.runtime) if self.api.guard else None
        )
        status["now"] = now
        self._status = status
        self.status_version += 1
        return status

    # -- routes ---------------------------------------------------------------

    def mount(self) -> None:
        r = self.api.router
        r.add("GET", "/", self.page, auth="self")
        r.add("GET", "/ui/static/{name}", self.static, auth="self")
        r.add("GET", "/ui/status", self.get_status)
        r.add("GET", "/ui/logs", self.get_logs)
        r.add("GET", "/ui/traffic", self.get_traffic)
        r.add("GET", "/ui/topology", self.get_topology)
        r.add("GET", "/ui/traces", self.get_traces)
        r.add("GET", "/ui/traces/{trace_id}", self.get_trace)
        r.add("GET", "/ui/stream", self.stream)
        r.add("GET", "/metrics", self.metrics)
        r.add("POST", "/otlp/{secret}/v1/{signal}", self.otlp, auth="self")

    async def page(self, request: Request) -> Response:
        guard = self.api.guard
        assert guard is not None
        token = request.arg("token")
        if token:
            if not hmac.compare_digest(token, guard.token):
                return _html(401, _NO_TOKEN)
            cookie = (
                f"{cookie_name(guard.port)}={token}; HttpOnly; SameSite=Strict; Path=/"
            )
            return Response(
                302, b"", "text/plain", {"Location": "/", "Set-Cookie": cookie}
            )
        if not guard.token_ok(request):
            return _html(401, _NO_TOKEN)
        return Response(
            200,
            _asset("index.html"),
            "text/html; charset=utf-8",
            {"Content-Security-Policy": _CSP, "X-Frame-Options": "DENY"},
        )

    async def static(self, request: Request) -> Response:
        name = request.params["name"]
        if name not in _STATIC:
            return Response.error(404, f"no asset {name!r}")
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        return Response(200, _asset(name), kind)

    async def get_status(self, request: Request) -> Response:
        return Response.json(self.status())

    async def get_logs(self, request: Request) -> Response:
        services = {s for s in request.arg("service").split(",") if s} or None
        try:
            before = int(request.arg("before", "0") or 0)
            limit = min(max(int(request.arg("limit", "500") or 500), 1), 5000)
        except ValueError:
            return Response.error(400, "before and limit must be whole numbers")
        began = time.perf_counter()
        lines = self.logs.search(
            query=request.arg("q"),
            services=services,
            level=request.arg("level"),
            before=before,
            limit=limit,
        )
        return Response.json(
            {
                "lines": [line.to_json() for line in lines],
                "last_seq": self.logs.last_seq,
                "searched": len(self.logs),
                "ms": round((time.perf_counter() - began) * 1000, 3),
            }
        )

    async def get_traffic(self, request: Request) -> Response:
        since = float(request.arg("since", "0") or 0)
        return Response.json(
            {
                "gateway": getattr(self.runtime, "gateway", None) is not None,
                "services": self.traffic.series(since),
                "edges": self.traffic.edge_rates(),
            }
        )

    async def get_topology(self, request: Request) -> Response:
        calls = self.traces.call_edges(time.time())
        return Response.json(topology(self.runtime, self.status(), self.traffic, calls))

    async def get_traces(self, request: Request) -> Response:
        limit = min(int(request.arg("limit", "100") or 100), 1000)
        return Response.json(
            {
                "traces": self.traces.summaries(
                    service=request.arg("service"), limit=limit
                ),
                "spans": len(self.traces),
            }
        )

    async def get_trace(self, request: Request) -> Response:
        trace_id = request.params["trace_id"]
        spans = self.traces.trace(trace_id)
        if not spans:
            return Response.error(
                404, f"no trace {trace_id!r} among the last {len(self.traces)} spans"
            )
        logs = [line.to_json() for line in self.logs.by_trace(trace_id)]
        return Response.json(
            {"trace_id": trace_id.lower(), "spans": spans, "logs": logs}
        )

    async def metrics(self, request: Request) -> Response:
        cumulative = {n: s.cumulative for n, s in self.traffic.services.items()}
        # prometheus_client is imported on the first scrape, not at start-up.
        from lsq.dashboard._metrics import render

        body = render(self.status, lambda: cumulative)
        return Response(200, body, "text/plain; version=0.0.4; charset=utf-8")

    async def otlp(self, request: Request) -> Response:
        if not hmac.compare_digest(request.params["secret"], self.otlp_secret):
            return Response.error(404, "no such OTLP endpoint")
        content_type = request.headers.get("content-type", "application/x-protobuf")
        if request.params["signal"] == "traces":
            try:
                body = _decoded(request)
                self.traces.add(parse_otlp(body, content_type))
            except ControlError as exc:
                return Response.error(exc.status or 400, str(exc))
        elif request.params["signal"] not in ("metrics", "logs"):
            return Response.error(404, f"no OTLP signal {request.params['signal']!r}")
        # Metrics and logs are accepted and dropped, so SDKs that export
        # them by default do not retry and complain.
        if "json" in content_type:
            return Response.json({})
        return Response(200, b"", "application/x-protobuf")

    # -- the live stream ------------------------------------------------------

    async def stream(self, request: Request) -> Response:
        log_seq = int(request.arg("logs_after", "-1") or -1)
        return Response(content_type="text/event-stream", stream=self._stream(log_seq))

    async def _stream(self, log_seq: int) -> AsyncIterator[bytes]:
        if log_seq < 0:
            log_seq = max(0, self.logs.last_seq - 500)
        event_seq = 0
        status_seen = -1
        traffic_seen = 0.0
        quiet_since = time.monotonic()
        yield b"retry: 2000\n\n"
        while True:
            chunks: list[bytes] = []
            status = self.status()
            if self.status_version != status_seen:
                status_seen = self.status_version
                chunks.append(_sse("status", status))
            if self._event_seq > event_seq:
                new_events = [e for e in self.events if e["seq"] > event_seq]  # type: ignore[operator]
                event_seq = self._event_seq
                chunks.append(_sse("events", new_events))
            lines = self.logs.after(log_seq, _STREAM_BATCH)
            if lines:
                skipped = lines[0].seq - log_seq - 1
                log_seq = lines[-1].seq
                chunks.append(
                    _sse(
                        "logs",
                        {"skipped": skipped, "lines": [ln.to_json() for ln in lines]},
                    )
                )
            if self.traffic.last_sample > traffic_seen:
                traffic_seen = self.traffic.last_sample
                chunks.append(
                    _sse(
                        "traffic",
                        {
                            "points": {
                                n: s.latest
                                for n, s in self.traffic.services.items()
                                if s.latest
                            },
                            "edges": self.traffic.edge_rates(),
                        },
                    )
                )
            if chunks:
                quiet_since = time.monotonic()
                yield b"".join(chunks)
            elif time.monotonic() - quiet_since > _KEEPALIVE:
                quiet_since = time.monotonic()
                yield b": keepalive\n\n"
            await asyncio.sleep(_STREAM_TICK)


def topology(
    runtime: Runtime,
    status: dict[str, Any],
    traffic: TrafficBook,
    calls: dict[tuple[str, str], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Nodes (services, with state and a layer for layout) and edges caller → callee.

    An edge's rate comes from the gateway's per-caller counters when it
    reports them, else from the gateway hops in the traces of the last
    minute (`calls`, see `TraceStore.call_edges`); a declared edge with
    neither shows rate 0.
    """
    order = runtime.app.dependency_order()
    layer: dict[str, int] = {}
    for name in order:
        deps = runtime.app.services[name].depends_on
        layer[name] = 1 + max((layer.get(d, 0) for d in deps), default=-1)
    states = {s["name"]: s["state"] for s in status["services"]}
    rates = {
        (e["from"], e["to"]): dict(e, source="gateway") for e in traffic.edge_rates()
    }
    for key, call in (calls or {}).items():
        # The gateway's own per-caller rate is the more exact one; the
        # trace counts ride along.
        rates[key] = dict(call, source="traces") | rates.get(key, {})
    edges = [
        {"from": n, "to": d, "declared": True, **_rate(rates.pop((n, d), _UNUSED))}
        for n in order
        for d in runtime.app.services[n].depends_on
    ]
    edges += [
        {"from": a, "to": b, "declared": False, **_rate(e)}
        for (a, b), e in rates.items()
    ]
    nodes = [
        {
            "name": n,
            "layer": layer.get(n, 0),
            "state": states.get(n, "unknown"),
            "external": bool(runtime.app.services[n].external),
        }
        for n in order
    ]
    return {"nodes": nodes, "edges": edges}


_UNUSED = {"rps": 0.0, "error_rate": 0.0, "requests": 0, "errors": 0, "source": None}


def _rate(edge: dict[str, Any]) -> dict[str, Any]:
    """rps, error_rate, where they came from, and the last minute's counts."""
    return {
        "rps": edge["rps"],
        "error_rate": edge["error_rate"],
        "requests": edge.get("requests"),
        "errors": edge.get("errors"),
        "source": edge.get("source"),
    }


def _decoded(request: Request) -> bytes:
    """The body, gunzipped if the exporter compressed it (bounded like the body)."""
    encoding = request.headers.get("content-encoding", "identity").lower()
    if encoding in ("", "identity"):
        return request.body
    if encoding != "gzip":
        raise ControlError(
            f"OTLP body: content-encoding {encoding!r} not supported; use gzip or none",
            status=415,
        )
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(request.body)) as file:
            data = file.read(_MAX_OTLP + 1)
    except (OSError, EOFError) as exc:
        raise ControlError(f"OTLP body: bad gzip data: {exc}", status=400) from exc
    if len(data) > _MAX_OTLP:
        raise ControlError(
            f"OTLP body: over {_MAX_OTLP >> 20} MB once unzipped", status=413
        )
    return data


def _sse(kind: str, data: object) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(data, default=str, separators=(',', ':'))}\n\n".encode()


def _asset(name: str) -> bytes:
    return resources.files("lsq.dashboard").joinpath("static", name).read_bytes()


def _html(status: int, body: str) -> Response:
    return Response(status, body.encode(), "text/html; charset=utf-8")


_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_NO_TOKEN = (
    "<!doctype html><title>LSQ</title><p>This dashboard needs the token. "
    "Run <code>lsq dashboard</code> in the app folder and open the URL it prints.</p>"
)


def mount(api: ControlAPI, runtime: Runtime) -> Dashboard:
    """Add the dashboard's routes to `api` and start its sampling tasks.

    Must be called from the running event loop. The caller should
    `await dashboard.close()` at shut-down; if it does not, the tasks end
    with the loop.
    """
    dash = Dashboard(api, runtime)
    dash.mount()
    dash.start()
    _mounted[runtime] = dash
    return dash
