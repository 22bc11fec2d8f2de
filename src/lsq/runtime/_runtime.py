"""The runtime of one app: its folder `.lsq/`, lock, guard, logs, state, supervisor.

Start-up sequence: take the app lock (a stale lock from a dead runtime is
taken over), start the guard, provision data stores, assign ports, start the
services in dependency order. Shut-down is the reverse, announced step by step.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import time
from collections.abc import Callable
from typing import Any

from lsq.errors import LsqError
from lsq.gateway import Gateway
from lsq.manifest import AppConfig
from lsq.registry import MemoryRegistry
from lsq.runtime import _data, _warm
from lsq.runtime._info import state_dir_for
from lsq.runtime._logs import LogHub, Printer
from lsq.runtime._ports import StablePorts, check_ingress, port_in_use, who_listens
from lsq.runtime._routing import GatewayFeed
from lsq.runtime._lock import AppLock, GuardProcess, become_subreaper
from lsq.runtime._spawn import group_alive, signal_group, stop_spawning
from lsq.runtime._state import StateStore
from lsq.runtime._supervisor import Addresses, Supervisor, describe_exit

EventListener = Callable[[dict[str, object]], None]
DRAIN_ALL_TIMEOUT = 10.0
_IDLE_WATCH = 5.0  # seconds between looks at an idle, unwatched gateway


def _ours(pgid: int, since: float) -> bool:
    """Is `pgid` still a group LSQ started (not a reused process id)?"""
    import psutil

    try:
        leader = psutil.Process(pgid)
        return bool(
            group_alive(pgid)
            and leader.create_time() >= since - 1
            and "LSQ_INSTANCE" in leader.environ()
        )
    except (psutil.Error, OSError):
        return False


COLLECT_AFTER = 10.0
"""Seconds into start-up after which garbage is collected again anyway."""


def collect_garbage_again() -> None:
    """Turn the cyclic garbage collector back on if `lsq up -d` turned it off
    for start-up (lsq.cli): once the services are up or have failed, or
    after `COLLECT_AFTER` seconds, whichever comes first. What start-up
    made is kept out of later collections (`gc.freeze`): it lives as long
    as the runtime."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


class Runtime:
    """Everything `lsq up` runs for one app, minus the control API."""

    def __init__(self, app: AppConfig, *, printer: Printer) -> None:
        self.app = app
        self.printer = printer
        self.dir = state_dir_for(app)
        self.registry = MemoryRegistry()
        self.started = time.time()
        self.startup: dict[str, object] = {"state": "starting", "reason": ""}
        self.selected: list[str] = []
        # What `lsq up -d` from the manifest cache took before loading (_warm).
        self._early = _warm.early
        self._lock = self._early.lock if self._early is not None else AppLock(self.dir)
        self.otlp_secret: str | None = self._early.otlp_secret if self._early else None
        self._listeners: list[EventListener] = []
        self._data_env: dict[str, dict[str, str]] = {}
        self.store: StateStore | None = None
        self.hub: LogHub | None = None
        self.guard: GuardProcess | None = None
        self.sup: Supervisor | None = None
        self.gateway_enabled = True
        self.gateway: Gateway | None = None
        self.feed: GatewayFeed | None = None
        self.ingress_port: int | None = None
        self.resilience: dict[str, dict[str, object]] = {"breakers": {}, "replicas": {}}
        self._gateway_watch: asyncio.Task[None] | None = None
        self.gateway_up = asyncio.Event()
        # Called with each gateway snapshot the runtime takes (once a second
        # while anyone listens), hop spans included: the dashboard reads traffic
        # and traces from it instead of asking the workers a second time.
        self._stats_listeners: list[Callable[[dict[str, Any]], None]] = []
        self._new_watcher = asyncio.Event()  # cuts an idle pause of the gateway watch short
        self._info: dict[str, object] = {}
        self.control_port: int | None = None
        self._groups: set[int] = set()
        self._info_pending = False
        # Set by whoever injects faults (lsq.chaos) before the gateway starts.
        self.fault_source: Callable[[str], list[dict[str, object]]] = lambda service: []

    # -- start-up -----------------------------------------------------------------

    def open(self) -> None:
        """Take the lock and prepare `.lsq/`; nothing is started yet."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock.acquire()
        self._clean_stale()
        # A process that leaves its service's group (double fork + setsid)
        # is reparented to us instead of init, so that shut-down can end it.
        become_subreaper()
        self.store = StateStore(self.dir / "state.db")
        # The last state of every instance, for `lsq ps` history and the
        # dashboard after a restart: written on each change, never per request.
        store = self.store
        self.registry.watch(
            lambda change: store.save_instance(change.instance) if change.kind == "upsert" else None
        )
        self.hub = LogHub(self.dir / "logs", self.printer)
        self.printer.widen([f"{n}-{i}" for n, s in self.app.services.items() for i in range(s.replicas)])

    def _clean_stale(self) -> None:
        # A runtime killed before its guard could act may have left groups.
        stale = self.dir / "runtime.json"
        if not stale.exists():
            return
        try:
            old = json.loads(stale.read_text())
        except ValueError:
            old = {}
        for pgid in old.get("groups", []):
            if _ours(pgid, float(old.get("started", 0))):
                signal_group(pgid, 9)
        stale.unlink(missing_ok=True)
        self.printer.note(f"removed stale state of runtime pid {old.get('pid', '?')}")

    def provision(self, names: list[str]) -> None:
        """Create each service's data store; raises ServiceError before any start."""
        data_dir = self.dir / "data"
        for name in names:
            kind = _data.kind(self.app.services[name].data)
            if kind == "sqlite":
                url = _data.sqlite_url(data_dir, name)
            elif kind == "postgres":
                url = _data.provision_postgres(self.app.name, name)
            else:
                continue
            self._data_env[name] = {"DATABASE_URL": url}

    def addresses(self) -> Addresses:
        """Each service's address: its fixed port, or one assigned and kept."""
        self.dir.mkdir(parents=True, exist_ok=True)
        ports = StablePorts(self.dir / "ports.json")
        service_ports: dict[str, int] = {}
        fixed = {s.port for s in self.app.services.values() if s.port}
        for name, svc in self.app.services.items():
            service_ports[name] = svc.port or ports.get(name, taken=fixed | set(service_ports.values()))
        settings = self.app.manifest.gateway
        taken = fixed | set(service_ports.values())
        self.ingress_port = settings.ingress_port or ports.get(":ingress", taken=taken)
        ports.save()
        return Addresses(service_ports, gateway=self.gateway_enabled)

    def data_env(self, name: str) -> dict[str, str]:
        return self._data_env.get(name, {})

    def build(self) -> Supervisor:
        addresses = self.addresses()
        if self._early is not None:
            self.guard = self._early.guard
            self.guard.watch(self._guard_ended)
        else:
            self.guard = GuardProcess(self._guard_ended, app_dir=self.app.root)
        assert self.hub is not None
        self.sup = Supervisor(
            self.app,
            registry=self.registry,
            addresses=addresses,
            event=self.event,
            line=self.hub.line,
            data_env=self.data_env,
            guard=self._guard_op,
            guard_send=self._guard_send,
        )
        return self.sup

    def check_fixed_ports(self) -> None:
        """A fixed port that another process holds fails only its service
        (naming the holder); every other service still starts."""
        assert self.sup is not None
        check_ingress(self.app)
        for name, svc in self.app.services.items():
            if svc.port is not None and port_in_use(svc.port):
                who = who_listens(svc.port)
                self.sup.block(name, f"port {svc.port} is in use{' by ' + who if who else ''}; "
                               "stop that process or change port in lsq.yaml")

    async def start_gateway(self) -> None:
        """Bind every service's stable address and the ingress port.

        A fixed port that another process holds fails only its service (with
        who holds it); every other service still gets its address.
        """
        assert self.sup is not None
        addresses = self.sup.addresses
        ports = {n: p for n, p in addresses.service_ports.items() if not self.sup.units[n].blocked}
        self.gateway = Gateway(self.app.manifest.gateway, log_dir=self.dir / "gateway")
        assert self.ingress_port is not None
        self.feed = GatewayFeed(self.app, self.registry, self.gateway, ports=ports,
                                ingress_port=self.ingress_port, faults=self.fault_source)
        self.feed.push()
        await self.gateway.start()
        self.gateway_up.set()
        self.sup.drain = self.feed.drain
        self._gateway_watch = asyncio.get_running_loop().create_task(self._watch_gateway())

    async def _watch_gateway(self) -> None:
        """Every second: the gateway's resilience state (breakers, ejections)
        for `status()`, its state changes as runtime events, and the snapshot
        (counters and hop spans) for whoever watches it.

        While nobody watches and the gateway has carried no request and
        changed no state since the last look, it is asked only every
        `_IDLE_WATCH` seconds: an idle app costs next to nothing."""
        seen = 0
        last_total = -1
        while self.gateway is not None:
            try:
                stats = await asyncio.wait_for(
                    self.gateway.stats(take_spans=True), 2.0
                )
            except (asyncio.TimeoutError, LsqError):
                await asyncio.sleep(1.0)
                continue
            for listener in list(self._stats_listeners):
                listener(stats)
            self.resilience = {
                "breakers": {n: s.get("breaker") for n, s in stats["services"].items()},
                "replicas": {
                    r: {k: d.get(k) for k in ("ejected_until", "ejections", "ewma_ms")}
                    for r, d in stats["replicas"].items()
                },
            }
            changed = False
            for event in stats.get("events", []):
                if event["seq"] > seen:
                    seen = event["seq"]
                    changed = True
                    self.event(
                        "resilience",
                        f"{event.get('kind')}: {event.get('cause', '')}",
                        str(event.get("service") or ""),
                        str(event.get("replica") or ""),
                    )
            total = sum(s.get("requests", 0) for s in stats["services"].values())
            quiet = total == last_total and not changed and not self._stats_listeners
            last_total = total
            self._new_watcher.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._new_watcher.wait(), _IDLE_WATCH if quiet else 1.0)

    def watch_gateway(self, listener: Callable[[dict[str, Any]], None]) -> Callable[[], None]:
        """Call `listener` with every gateway snapshot; returns the unsubscriber."""
        self._stats_listeners.append(listener)
        self._new_watcher.set()
        return lambda: self._stats_listeners.remove(listener)

    async def stop_gateway(self) -> None:
        if self._gateway_watch is not None:
            self._gateway_watch.cancel()
        if self.feed is not None:
            self.feed.close()
        if self.gateway is not None:
            await self.gateway.stop()
            self.gateway = None

    def write_info(self, control_port: int) -> None:
        self.control_port = control_port
        self._info = {
            "pid": os.getpid(),
            "port": control_port,
            "started": self.started,
            "app": self.app.name,
            "manifest": str(self.app.path),
            "groups": [],
        }
        self._write_info()

    def _write_info(self) -> None:
        self._info_pending = False
        if not self._info:
            return
        self._info["groups"] = sorted(self._groups)
        tmp = self.dir / "runtime.json.tmp"
        tmp.write_text(json.dumps(self._info))
        tmp.replace(self.dir / "runtime.json")

    def _guard_ended(self, code: int) -> None:
        # Without its guard, a runtime killed now would leave every group
        # running: start another and tell it every live group.
        if self.guard is None:
            return
        self.guard.close()
        self.guard = GuardProcess(self._guard_ended, app_dir=self.app.root)
        for pgid in sorted(self._groups):
            self.guard.send("+", pgid)
        self.event(
            "error",
            f"the guard process ended ({describe_exit(code)}); "
            f"started another, pid {self.guard.pid}",
        )

    def _guard_send(self, op: str, pgid: int) -> None:
        # Also on spawning threads: only the guard's pipe, whose writer locks.
        guard = self.guard
        if guard is not None:
            guard.send(op, pgid)

    def _guard_op(self, op: str, pgid: int) -> None:
        # A new group was told to the guard by the thread that started it.
        if op != "+":
            self._guard_send(op, pgid)
        # runtime.json lists live groups for stale-state clean-up; the guard
        # is the first line of defence, so the file is rewritten at most
        # every 200 ms rather than on every spawn.
        self._groups.add(pgid) if op == "+" else self._groups.discard(pgid)
        if not self._info_pending:
            self._info_pending = True
            asyncio.get_running_loop().call_later(0.2, self._write_info)

    # -- events -------------------------------------------------------------------

    def listen(self, listener: EventListener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def event(self, kind: str, message: str, service: str = "", instance: str = "") -> None:
        assert self.store is not None
        record = self.store.event(kind, message, service=service, instance=instance)
        if kind in ("state", "killed", "error", "runtime", "health", "resilience"):
            who = instance or service or "lsq"
            if kind != "health":
                self.printer.line("lsq", f"{who}: {message}" if who != "lsq" else message)
        for listener in list(self._listeners):
            listener(record)

    # -- running ------------------------------------------------------------------

    async def start(self, names: list[str] | None) -> None:
        assert self.sup is not None
        self.selected = self.sup.start(names)
        self.event("runtime", f"starting {', '.join(self.selected)}")
        loop = asyncio.get_running_loop()
        loop.create_task(self._watch_startup())
        loop.call_later(COLLECT_AFTER, collect_garbage_again)

    async def _watch_startup(self) -> None:
        assert self.sup is not None
        timeout = max([s.startup_timeout for s in self.app.services.values()] or [60.0])
        timeout *= 1 + max(0, len(self.app.dependency_order()) - 1) ** 0.5
        reason = await self.sup.wait_ready(self.selected, timeout)
        collect_garbage_again()
        # The app is up only once the gateway serves every stable address.
        await self.gateway_up.wait()
        unclaimed = _warm.discard()
        if unclaimed:
            self.printer.note(f"ended {unclaimed} early start(s) no replica took")
        if reason is None:
            self.startup = {"state": "ready", "reason": "", "seconds": round(time.time() - self.started, 3)}
            self.event("runtime", f"all {len(self.selected)} services are up")
            _warm.record(self)  # after `lsq up -d` was told: it waits for nothing here
            for name in self.selected:
                self.printer.note(f"  {name:<20} {self.sup.addresses.service_url(self.app, name)}")
            if self.ingress_port:
                self.printer.note(f"  {'(ingress)':<20} http://localhost:{self.ingress_port}/")
        else:
            self.startup = {"state": "failed", "reason": reason}
            self.event("runtime", f"start-up failed: {reason}")

    def status(self) -> dict[str, object]:
        assert self.sup is not None
        services = self.sup.snapshot()
        breakers = self.resilience["breakers"]
        ejected = self.resilience["replicas"]
        for svc in services:
            name = str(svc["name"])
            svc["address"] = self.sup.addresses.service_url(self.app, name)
            svc["breaker"] = breakers.get(name)
            for inst in svc["instances"]:  # type: ignore[attr-defined]
                inst.update(ejected.get(inst["id"]) or {})
        return {
            "app": self.app.name,
            "pid": os.getpid(),
            "ingress": f"http://localhost:{self.ingress_port}/" if self.gateway else None,
            "started": self.started,
            "startup": self.startup,
            "services": services,
        }

    async def stop(self, *, force: bool = False) -> None:
        """Stop all services (reverse dependency order), then close everything."""
        # Early starts no replica took (lsq.runtime._warm), and a worker forked
        # for a gateway that never started, are ended as ours, not as strays.
        from lsq.gateway._gateway import discard_preforked

        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, _warm.discard)
        await loop.run_in_executor(None, discard_preforked)
        if self.sup is not None:
            if force:
                self.sup.kill_all()
            self.event("runtime", "stopping services")
            if self.feed is not None and not force:
                # One drain for the whole app instead of one per replica.
                await self.feed.drain_all(DRAIN_ALL_TIMEOUT)
                self.sup.drain = None
            await self.sup.stop_all()
            self._end_escaped()
            self.event("runtime", "all services stopped")

    def _end_escaped(self) -> None:
        """End processes that left their service's group and were reparented
        to the runtime (it is their subreaper): no orphan keeps a port."""
        import psutil

        keep = {self.guard.pid} if self.guard is not None else set()
        if self.gateway is not None:
            keep |= set(self.gateway.worker_pids)
        try:
            strays = [p for p in psutil.Process().children() if p.pid not in keep]
        except psutil.Error:
            return
        if not strays:
            return
        names = ", ".join(f"pid {p.pid}" for p in strays)
        for proc in strays:
            with contextlib.suppress(psutil.Error):
                proc.terminate()
        _, alive = psutil.wait_procs(strays, timeout=2.0)
        for proc in alive:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        psutil.wait_procs(alive, timeout=2.0)
        self.event("runtime", f"ended {len(strays)} process(es) that had left their service's group: {names}")

    def close(self) -> None:
        # Starts still on their way would outlive the runtime: end them while
        # the guard still listens.
        stop_spawning()
        if self.hub is not None:
            self.hub.close()
        if self.guard is not None:
            self.guard.close()
        if self.store is not None:
            self.store.close()
        self._info = {}
        (self.dir / "runtime.json").unlink(missing_ok=True)
        self._lock.release()
