"""The control API routes, and `serve`: the runtime plus its API, until stopped."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING

from lsq import _signals
from lsq._signals import STOP_SIGNALS
from lsq.control._auth import Guard, new_token
from lsq.control._http import HttpServer, Request, Response, Router
from lsq.errors import LsqError, UsageError
from lsq.manifest import AppConfig
from lsq.manifest._rules import MAX_REPLICAS
from lsq.runtime import Printer, Runtime

if TYPE_CHECKING:
    from lsq.dashboard import Dashboard

SAME_SIGNAL = 0.5  # seconds within which a replayed stop signal comes again from the loop


class ControlAPI:
    def __init__(self, runtime: Runtime, stop: asyncio.Event) -> None:
        self.runtime = runtime
        self._stop = stop
        self.router = Router()
        self.guard: Guard | None = None
        r = self.router
        r.add("GET", "/v1/status", self.status)
        r.add("GET", "/v1/events", self.events)
        r.add("POST", "/v1/down", self.down)
        r.add("POST", "/v1/services/{name}/start", self.start)
        r.add("POST", "/v1/services/{name}/stop", self.stop)
        r.add("POST", "/v1/services/{name}/restart", self.restart)
        r.add("POST", "/v1/services/{name}/scale", self.scale)

    async def __call__(self, request: Request) -> Response:
        assert self.guard is not None
        route, params, exists = self.router.match(request.method, request.path)
        refused = self.guard.refuse(request, need_token=route is None or route.auth == "token")
        if refused is not None:
            return Response.error(*refused)
        if route is None:
            if exists:
                return Response.error(405, f"{request.method} not allowed on {request.path}; state changes need POST")
            return Response.error(404, f"no route {request.path}")
        request.params = params
        try:
            return await route.handler(request)
        except UsageError as exc:
            return Response.error(400, str(exc))
        except LsqError as exc:
            return Response.error(409, str(exc))

    def _unit(self, request: Request) -> str:
        name = request.params["name"]
        assert self.runtime.sup is not None
        if name not in self.runtime.sup.units:
            raise UsageError(f"no service {name!r}; known: {', '.join(self.runtime.sup.units)}")
        if self.runtime.sup.units[name].external:
            raise UsageError(f"service {name!r} is external; LSQ does not run it")
        return name

    async def status(self, request: Request) -> Response:
        return Response.json(self.runtime.status())

    async def events(self, request: Request) -> Response:
        assert self.runtime.store is not None
        since = int(request.arg("since", "0") or 0)
        if request.arg("follow") != "1":
            return Response.json(self.runtime.store.events(since_id=since))
        return Response(content_type="text/event-stream", stream=self._event_stream(since))

    async def _event_stream(self, since: int) -> AsyncIterator[bytes]:
        queue: asyncio.Queue[dict[str, object]] = asyncio.Queue(maxsize=1000)
        unlisten = self.runtime.listen(lambda e: queue.put_nowait(e) if not queue.full() else None)
        try:
            assert self.runtime.store is not None
            for event in self.runtime.store.events(since_id=since):
                yield f"data: {json.dumps(event)}\n\n".encode()
            while True:
                event = await queue.get()
                yield f"data: {json.dumps(event)}\n\n".encode()
        finally:
            unlisten()

    async def down(self, request: Request) -> Response:
        self._stop.set()
        return Response.json({"stopping": True}, 202)

    async def start(self, request: Request) -> Response:
        name = self._unit(request)
        assert self.runtime.sup is not None
        self.runtime.sup.start_service(name)
        return Response.json({"started": name})

    async def stop(self, request: Request) -> Response:
        name = self._unit(request)
        assert self.runtime.sup is not None
        await self.runtime.sup.stop_service(name)
        return Response.json({"stopped": name})

    async def restart(self, request: Request) -> Response:
        name = self._unit(request)
        assert self.runtime.sup is not None
        await self.runtime.sup.restart_service(name)
        return Response.json({"restarted": name})

    async def scale(self, request: Request) -> Response:
        name = self._unit(request)
        try:
            body = request.json()
            count = body["replicas"]  # type: ignore[index]
        except (ValueError, KeyError, TypeError):
            count = None
        if not isinstance(count, int) or isinstance(count, bool):  # as strict as the manifest
            return Response.error(400, 'expected a JSON body {"replicas": N}, N a whole number')
        if not 0 <= count <= MAX_REPLICAS:
            return Response.error(
                400, f"replicas must be between 0 and {MAX_REPLICAS}, found {count}"
            )
        svc = self.runtime.app.services[name]
        if svc.port is not None and count > 1 and not self.runtime.gateway_enabled:
            return Response.error(
                409, f"service {name!r} has fixed port {svc.port}; only one replica can listen on it"
            )
        assert self.runtime.sup is not None
        await self.runtime.sup.scale(name, count)
        return Response.json({"service": name, "replicas": count})


async def serve(
    app: AppConfig,
    *,
    services: list[str] | None,
    printer: Printer,
    on_start: Callable[[Runtime], object] | None = None,
) -> int:
    """Run the app until a signal or `lsq down`; returns the exit code.

    `on_start` is called with the runtime before anything happens, so that it
    can listen to every event (`lsq up -d` reports start-up that way).
    """
    # git runs on a thread while the runtime sets up (lsq.deploy labels the
    # versions with the commit). After `run_runtime`'s fork, never before.
    from lsq.deploy._version import look_at_tree_soon

    look_at_tree_soon(app.root)
    runtime = Runtime(app, printer=printer)
    if on_start is not None:
        on_start(runtime)
    runtime.open()
    stop = asyncio.Event()
    force = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals_seen = 0
    replayed: dict[int, float] = {}

    def on_signal(signum: int) -> None:
        # A signal noted before the loop took over (lsq._signals) may reach
        # this handler too: uvloop sets its wakeup descriptor when the loop
        # starts, before the handlers are added. That is the same signal.
        if time.monotonic() - replayed.pop(signum, -SAME_SIGNAL) < SAME_SIGNAL:
            return
        count(signum)

    def count(signum: int) -> None:
        nonlocal signals_seen
        signals_seen += 1
        if signals_seen == 1:
            printer.note(
                f"got {signal.Signals(signum).name}: stopping gracefully "
                "(press Ctrl-C again to kill everything at once)"
            )
            stop.set()
        else:
            printer.note("second signal: killing every service now")
            force.set()
            runtime.sup and runtime.sup.kill_all()

    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, on_signal, sig)
    # `lsq up` held these until now; one that came meanwhile is handled here.
    # Before any process starts, as children inherit the mask.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    for sig in _signals.caught:  # noted by a warm start (lsq._signals)
        replayed[sig] = time.monotonic()
        count(sig)
    _signals.caught.clear()

    server: HttpServer | None = None
    dashboard = None
    stopped = False
    try:
        # Prepare: processes and data stores, then the control API and its parts.
        sup = runtime.build()
        runtime.provision(sup.with_dependencies(services) if services else list(app.services))
        api = ControlAPI(runtime, stop)
        _mount_chaos(api, runtime)
        _mount_deploy(api, runtime)
        server = HttpServer(api)
        early = runtime._early
        port = await server.start("127.0.0.1", 0, sock=early.control if early else None)
        api.guard = Guard(new_token(runtime.dir / "token"), port)
        dashboard = _mount_dashboard(api, runtime)
        runtime.write_info(port)
        if dashboard is not None:
            from lsq.dashboard import dashboard_url

            printer.note(f"dashboard: {dashboard_url(port, api.guard.token)}")

        # Start: services and the gateway's workers come up side by side;
        # none if a stop signal came while the runtime was setting up.
        runtime.check_fixed_ports()
        if not stop.is_set():
            await asyncio.gather(runtime.start(services), _after_spawns(runtime.start_gateway()))
            flusher = loop.create_task(_flush_logs(runtime))
            await stop.wait()
            flusher.cancel()
        stopping = loop.create_task(runtime.stop())
        done, _ = await asyncio.wait([stopping, loop.create_task(force.wait())], return_when=asyncio.FIRST_COMPLETED)
        if force.is_set():
            await asyncio.wait([stopping], timeout=3)
            stopped = True  # every group was killed when the second signal came
            return 130
        await stopping
        stopped = True
        return 0
    finally:
        if not stopped:
            # Start-up failed (or a bug of ours): what did start must not
            # outlive us, as the guard is about to be told all is well.
            try:
                await runtime.stop(force=True)
            except Exception as exc:  # report, and still close the rest
                printer.note(f"error while stopping after a failure: {exc!r}")
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)
        if dashboard is not None:
            await dashboard.close()
        if server is not None:
            await server.close()
        await runtime.stop_gateway()
        runtime.close()


async def _after_spawns(step: Awaitable[None]) -> None:
    # The replicas' first starts go to the spawning threads before this
    # step's own work (the gateway's table and workers): a start waits for
    # nothing else, so each service gets its CPU as early as it can.
    await asyncio.sleep(0)
    await step


def _mount_dashboard(api: ControlAPI, runtime: Runtime) -> Dashboard | None:
    try:
        from lsq.dashboard import mount, otlp_endpoint
    except ImportError:  # the dashboard package is optional in a minimal install
        return None
    dashboard = mount(api, runtime)
    # Every service exports its traces to the runtime's OTLP receiver, unless
    # its own env says otherwise.
    endpoint = otlp_endpoint(runtime)
    assert runtime.sup is not None
    runtime.sup.service_defaults = lambda name: {
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_SERVICE_NAME": name,
    }
    return dashboard


def _mount_deploy(api: ControlAPI, runtime: Runtime) -> None:
    # Before the services start: it labels the version each one starts with
    # and closes releases a dead runtime left open.
    from lsq.deploy import mount

    mount(api, runtime)


def _mount_chaos(api: ControlAPI, runtime: Runtime) -> None:
    # Faults reach the gateway through the routing table and the supervisor
    # through its health override; both hooks must be set before they start.
    from lsq.chaos import ChaosController, mount

    chaos = ChaosController(runtime)
    runtime.chaos = chaos  # type: ignore[attr-defined]
    runtime.fault_source = chaos.faults_for
    assert runtime.sup is not None
    runtime.sup.health_override = chaos.health_override
    mount(api, runtime)


async def _flush_logs(runtime: Runtime) -> None:
    while True:
        await asyncio.sleep(0.25)
        if runtime.hub is not None:
            runtime.hub.flush()
