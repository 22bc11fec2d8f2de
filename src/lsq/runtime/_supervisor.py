"""The supervisor: converges real processes toward the app's desired state.

One `Unit` per service, one `Replica` per process slot. Each replica is a task
that waits for its service's dependencies, spawns, probes health, and on exit
decides whether and when to start again. Every change is published to the
registry (which the gateway and the control API read) and recorded as an
event. Nothing here knows about HTTP or the terminal.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lsq.errors import ServiceError
from lsq.registry import Instance, MemoryRegistry, State
from lsq.runtime._health import ProbeResult, probe
from lsq.runtime._ports import REPLICA_RANGE, port_in_use, stable_candidate, who_listens
from lsq.runtime import _warm
from lsq.runtime._env import service_env
from lsq.runtime._spawn import (
    Child,
    adopt,
    argv_for,
    group_alive,
    group_gone,
    signal_group,
    signal_number,
    spawn,
)

if TYPE_CHECKING:  # the runtime reads a frozen app (lsq.manifest._frozen), not the schema
    from lsq.manifest import AppConfig, Service

EventSink = Callable[[str, str, str, str], None]
"""(kind, message, service, instance) for every event."""

GROUP_EXIT_WAIT = 5.0
OUTPUT_CLOSE_WAIT = 0.5
FAST_PROBE = 0.05
REFUSED_PROBE = 0.02  # while nothing listens yet: a refused connect costs the service nothing
FAST_PROBE_FOR = 5.0
START_PROBE_MAX = 1.0  # until the first success, probes never wait longer
SETTLE = 0.5


class DependencyFailed(Exception):
    pass


@dataclass
class Addresses:
    """Where each service and replica is reached.

    `service_port` is the stable address other services get; `replica_port`
    is where a replica listens. Without a gateway in front, replica 0 of a
    service listens on the service's own address.
    """

    service_ports: dict[str, int]
    gateway: bool = False

    def service_url(self, app: AppConfig, name: str) -> str:
        svc = app.services[name]
        if svc.external is not None and not self.gateway:
            return svc.external.rstrip("/")
        return f"http://127.0.0.1:{self.service_ports[name]}"

    def replica_port(self, name: str, index: int, taken: set[int]) -> int:
        if not self.gateway and index == 0:
            return self.service_ports[name]
        return stable_candidate(taken | set(self.service_ports.values()), REPLICA_RANGE)


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Exponential back-off with ±20% jitter: base, 2·base, 4·base, ... ≤ cap."""
    # The exponent stops growing long before a float would overflow: a
    # service crashing all night reaches attempt 1024 and more.
    delay = min(cap, base * (2 ** min(max(0, attempt), 60)))
    return float(min(cap, delay * random.uniform(0.8, 1.2)))


SPAWN_FAILED = -1000  # not an exit code: the process could not be started


def describe_exit(code: int, spawn_error: str = "") -> str:
    """"exit code 1", "killed by SIGKILL", or why it never started."""
    if code == SPAWN_FAILED:
        return spawn_error
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def cannot_run(command: str | list[str], cwd: Path, exc: OSError) -> str:
    """Why a command could not be started, naming the missing piece.

    The event loop's error may not carry the file name, so the working
    folder is checked here to tell the two ENOENT cases apart."""
    prefix = f"cannot run {command!r}"
    if not cwd.is_dir():
        return f"{prefix}: working folder {str(cwd)!r} not found"
    program = command if isinstance(command, str) else command[0]
    # A name with a slash is a path (relative to the working folder); a bare
    # name is looked up on PATH.
    path = (cwd / program) if "/" in program else None
    if isinstance(exc, FileNotFoundError):
        if path is not None:
            return f"{prefix}: {str(path)!r} not found"
        return f"{prefix}: command {program!r} not found on PATH"
    if path is not None and path.is_dir():
        return f"{prefix}: {str(path)!r} is a folder, not a program"
    if isinstance(exc, PermissionError) and path is not None:
        return f"{prefix}: {str(path)!r} is not executable (chmod +x it, or run it with its interpreter)"
    return f"{prefix}: {exc.strerror or exc}"


@dataclass(frozen=True)
class Version:
    """What one version of a service runs (see lsq.deploy).

    `service` and `env` replace the manifest's entry, `cwd` its folder (a
    release from a git ref runs in its own worktree); None keeps the unit's.
    `tagged` puts the label in instance ids, so two versions can coexist.
    """

    label: str = ""
    service: Service | None = None
    env: dict[str, str] | None = None
    cwd: Path | None = None
    tagged: bool = False


class Replica:
    """One process slot of a service, with its own life-cycle task."""

    def __init__(self, unit: Unit, index: int, version: Version | None = None) -> None:
        self.unit = unit
        self.sup = unit.sup
        self.version = version or unit.version
        self.instance = Instance(
            service=unit.name, index=index, port=0,
            version=self.version.label, tagged=self.version.tagged,
        )
        self.child: Child | None = None
        self.task: asyncio.Task[None] | None = None
        self.stopping = False
        self._wake = asyncio.Event()
        self._crashes = 0
        self._last_stderr = ""
        # What the last start ran: command, folder, environment (lsq.runtime._warm).
        self.launched: tuple[str | list[str], Path, dict[str, str]] | None = None

    @property
    def id(self) -> str:
        return self.instance.id

    @property
    def service(self) -> Service:
        return self.version.service or self.unit.service

    @property
    def cwd(self) -> Path:
        return self.version.cwd or self.sup.app.cwd(self.unit.name)

    def env(self, port: int) -> dict[str, str]:
        return self.sup.env_for(self.unit.name, self.id, port, own_env=self.version.env)

    def start(self) -> None:
        self.stopping = False
        self.task = asyncio.create_task(self._life(), name=f"replica {self.id}")

    def _set(
        self, state: State, reason: str | None = None, said: str | None = None, **fields: object
    ) -> None:
        """Set the replica's state and reason, publish it, and on a change add
        an event with the reason (or `said`, where the event says more)."""
        inst = self.instance
        changed = inst.state is not state or (reason is not None and reason != inst.reason and state is State.WAITING)
        inst.state = state
        if reason is not None:
            inst.reason = reason
        for key, value in fields.items():
            setattr(inst, key, value)
        if state is not State.RUNNING:
            inst.healthy = False
        self.sup.publish(inst)
        if changed:
            said = said or reason
            detail = f": {said}" if said else ""
            self.sup.event("state", f"{state.value}{detail}", self.unit.name, self.id)

    async def _life(self) -> None:
        try:
            await self._run()
        except DependencyFailed as exc:
            self._set(State.FAILED, f"dependency failed: {exc}")
        except asyncio.CancelledError:
            await self._kill_now()
            raise
        except Exception as exc:
            # A bug of ours must not leave a replica shown as starting (or
            # running) with nobody watching it: end it and say so.
            await self._kill_now()
            self.sup.event("error", f"internal error: {exc!r}", self.unit.name, self.id)
            self._set(State.FAILED, f"internal error in lsq ({exc!r}); please report it", pid=None,
                      next_retry=None)

    async def _run(self) -> None:
        self._set(State.WAITING, "")
        await self.unit.wait_dependencies(self)
        while not self.stopping:
            code = await self._run_once()
            if self.stopping or code is None:
                break
            if not await self._after_exit(code):
                break
        if self.stopping:
            self._set(State.STOPPED, "", pid=None, next_retry=None)

    async def _run_once(self) -> int | None:
        """Spawn, watch health, and return the exit code (None: do not restart)."""
        svc = self.service
        self._last_stderr = ""
        early = _warm.claim(self.id)
        if early is not None:
            env = self.env(early.port)
            if early.matches(argv_for(svc.command or "", env), self.cwd, env):
                self.instance.port = early.port
            else:
                # Not what this replica would start now: end it, start anew.
                early.abandon()
                self.sup.event("runtime", "its early start did not match; starting it anew",
                               self.unit.name, self.id)
                early = None
        if early is None:
            port = self.sup.addresses.replica_port(self.unit.name, self.instance.index, self.sup.taken_ports())
            self.instance.port = port
            if port_in_use(port):
                who = who_listens(port)
                return self._spawn_failed(f"port {port} is in use{' by ' + who if who else ''}")
            env = self.env(port)
        try:
            if early is not None:
                self.child = await adopt(early.start, early.future, sink=self._line)
            else:
                self.child = await spawn(
                    svc.command or "", cwd=self.cwd, env=env, sink=self._line,
                    guard=self.sup.guard_send,
                )
        except OSError as exc:
            cwd = self.cwd
            self._set(State.FAILED, cannot_run(svc.command or "", cwd, exc), pid=None, next_retry=None)
            return None
        child = self.child
        assert child is not None
        self.launched = (svc.command or "", self.cwd, env)
        self.sup.guard_add(child.pid)
        started = time.monotonic()
        self._set(State.STARTING, "", pid=child.pid, started_at=time.time(), next_retry=None)
        health = asyncio.create_task(self._watch_health(child), name=f"health {self.id}")
        try:
            code = await child.exited
        finally:
            health.cancel()
            # Let a health command in progress be killed now, not after the
            # shut-down looked for processes left behind.
            await asyncio.wait([health])
        await self._reap_group(child)
        self.instance.last_exit = code
        self._uptime = time.monotonic() - started
        return code

    def _spawn_failed(self, reason: str) -> int:
        self._last_stderr = reason
        self.instance.last_exit = None
        self._uptime = 0.0
        return SPAWN_FAILED

    def _line(self, stream: str, text: str, partial: bool) -> None:
        if stream == "stderr" and text.strip():
            self._last_stderr = text.strip()[:200]
        self.sup.line(self.unit.name, self.id, stream, text, partial)

    async def _reap_group(self, child: Child) -> None:
        # The leader is gone; end whatever it left in its group so that no
        # orphan keeps a port, then collect the last output.
        pgid = child.pid
        if group_alive(pgid):
            signal_group(pgid, signal.SIGTERM)
            if not await group_gone(pgid, 2.0):
                signal_group(pgid, signal.SIGKILL)
                await group_gone(pgid, GROUP_EXIT_WAIT)
        await child.wait_output_closed(OUTPUT_CLOSE_WAIT)
        self.sup.guard_remove(pgid)

    async def _after_exit(self, code: int) -> bool:
        """Decide what follows an exit; True to run again."""
        svc = self.service
        policy = svc.restart
        how = describe_exit(code, self._last_stderr)
        if code in (126, 127):
            self._set(State.FAILED, f"command not found or not executable ({how}): {self._last_stderr}", pid=None)
            return False
        if code == 0 and policy.policy != "always":
            self._set(State.EXITED, "completed (exit code 0)", pid=None)
            return False
        if policy.policy == "no":
            self._set(State.FAILED if code else State.EXITED, f"exited ({how}); restart: no", pid=None)
            return False
        if self._uptime >= policy.reset_after:
            self._crashes = 0
        if policy.max_restarts is not None and self._crashes >= policy.max_restarts:
            self._set(
                State.FAILED,
                f"gave up after {self._crashes} restarts (max_restarts: {policy.max_restarts}); last {how}",
                pid=None,
            )
            return False
        delay = backoff_delay(self._crashes, policy.backoff, policy.backoff_max)
        self._crashes += 1
        self.instance.crashes = self._crashes
        last = f"; last error: {self._last_stderr}" if self._last_stderr and code >= 0 else ""
        # The reason stays true while it waits (`next_retry` says when); the
        # event says when as of now. Neither counts: the RESTARTS column
        # (`instance.restarts`, grown when the restart is made) does.
        self._set(
            State.BACKOFF,
            f"{how}{last}",
            said=f"{how}; restarting in {delay:.1f}s{last}",
            pid=None,
            next_retry=time.time() + delay,
        )
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), delay)
        except asyncio.TimeoutError:
            pass
        if self.stopping:
            return False
        self.instance.restarts += 1
        return True

    async def _watch_health(self, child: Child) -> None:
        svc = self.service
        check = svc.health
        if check is None:
            # Without a health check, "up" means "still running after a short
            # while": a command that dies at once (not found, bad config) is
            # never reported as running, and `lsq up -d` reports the failure.
            await asyncio.sleep(SETTLE)
            if not self.stopping:
                self._set(State.RUNNING, "", healthy=True)
            return
        inst = self.instance
        # Only a command probe runs in the instance's environment.
        env = self.env(inst.port) if check.command is not None else {}
        cwd = self.cwd
        started = time.monotonic()
        ok_run = fail_run = 0
        wait = FAST_PROBE
        # Just started: nothing listens yet, most likely (see `probe`).
        result = ProbeResult(False, "", refused=True)
        while not child.exited.done() and not self.stopping:
            forced = self.sup.health_override(self.id)
            if forced:
                result = ProbeResult(False, forced)
            else:
                result = await probe(check, host=inst.host, port=inst.port, cwd=cwd, env=env,
                                     refused_before=result.refused)
            if self.stopping:
                # Being drained: a passing probe must not make it routable again.
                return
            if result.ok:
                ok_run, fail_run = ok_run + 1, 0
                if ok_run >= check.success_threshold and not inst.healthy:
                    self._set(State.RUNNING, "")
                    inst.healthy = True
                    self.sup.publish(inst)
                    self.sup.event("health", "healthy", self.unit.name, self.id)
            else:
                ok_run, fail_run = 0, fail_run + 1
                in_start = time.monotonic() - started < check.start_period
                if inst.healthy and fail_run >= check.failure_threshold and not in_start:
                    self._set(State.UNHEALTHY, result.detail)
                elif not inst.healthy:
                    inst.reason = result.detail
            # Probe every 50 ms for the first seconds so that start-up is seen
            # at once, then slow down, to at most a second until the first
            # success, and to the configured pace after it. While the port
            # refuses connections, look every 20 ms: only the kernel answers
            # those, so the service starting up is not slowed by them.
            if inst.healthy or inst.state is State.UNHEALTHY:
                wait = check.interval
            elif time.monotonic() - started > FAST_PROBE_FOR:
                wait = min(check.interval, START_PROBE_MAX, wait * 1.5)
            await asyncio.sleep(REFUSED_PROBE if result.refused and wait == FAST_PROBE else wait)

    async def stop(self) -> None:
        """Stop this replica: signal, wait stop_timeout, SIGKILL, wait for the group."""
        self.stopping = True
        self._wake.set()
        child = self.child
        if child is not None and not child.exited.done():
            await self._stop_child(child)
        elif self.task is not None and not self.task.done():
            self.task.cancel()  # waiting for dependencies or a back-off: nothing runs
        if self.task is not None:
            try:
                await self.task
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise
            except Exception as exc:  # a bug in one life cycle must not stop the shutdown
                self.sup.event("error", f"internal error: {exc!r}", self.unit.name, self.id)
        if self.instance.state is not State.STOPPED:
            self._set(State.STOPPED, "", pid=None, next_retry=None)

    async def _stop_child(self, child: Child) -> None:
        svc = self.service
        pgid = child.pid
        self._set(State.STOPPING, "")
        if self.sup.drain is not None:
            # Take it out of the gateway's table and let in-flight requests end
            # before the signal, so no client sees a reset.
            await self.sup.drain(self.instance)
        signal_group(pgid, signal_number(svc.stop_signal))
        deadline = time.monotonic() + svc.stop_timeout
        # The leader's exit is an event; only stragglers in its group need polling.
        await asyncio.wait([child.exited], timeout=svc.stop_timeout)
        gone = child.exited.done() and await group_gone(
            pgid, max(0.0, deadline - time.monotonic())
        )
        if not gone:
            signal_group(pgid, signal.SIGKILL)
            self.sup.event(
                "killed",
                f"killed with SIGKILL after stop_timeout {svc.stop_timeout:g}s",
                self.unit.name,
                self.id,
            )

    def kill_now(self) -> None:
        self.stopping = True
        self._wake.set()
        child = self.child
        if child is not None and not child.exited.done():
            signal_group(child.pid, signal.SIGKILL)

    async def _kill_now(self) -> None:
        self.kill_now()
        if self.child is not None:
            await self._reap_group(self.child)


class Unit:
    """A service: its replicas and its dependencies."""

    def __init__(self, sup: Supervisor, name: str) -> None:
        self.sup = sup
        self.name = name
        self.service: Service = sup.app.services[name]
        self.version = Version()
        self.replicas: list[Replica] = []
        # A release's new version while it is being tried (lsq.deploy).
        self.candidates: list[Replica] = []
        self.wanted = False
        self.blocked = ""

    @property
    def external(self) -> bool:
        return self.service.external is not None

    def scale_to(self, count: int) -> list[Replica]:
        """Create or drop replica slots; returns the ones that must be stopped."""
        while len(self.replicas) < count:
            replica = Replica(self, len(self.replicas))
            self.replicas.append(replica)
            if self.blocked:
                # A blocked service never runs: its slots only show why.
                replica._set(State.FAILED, self.blocked)
            elif self.wanted:
                replica.start()
        extra = self.replicas[count:]
        del self.replicas[count:]
        return extra

    def start(self) -> None:
        self.wanted = True
        if self.external:
            return
        if self.blocked:
            if not self.replicas:
                self.scale_to(self.service.replicas)
            for replica in self.replicas:
                replica._set(State.FAILED, self.blocked)
            return
        if not self.replicas:
            self.scale_to(self.service.replicas)
            return
        for replica in self.replicas:
            if replica.task is None or replica.task.done():
                replica.start()

    async def stop(self) -> None:
        self.wanted = False
        await asyncio.gather(*(r.stop() for r in self.replicas + self.candidates))

    def condition_met(self, condition: str) -> bool:
        if self.external:
            return True
        states = [r.instance for r in self.replicas]
        if not self.wanted:
            return False
        if condition == "started":
            return all(i.state in (State.STARTING, State.RUNNING, State.UNHEALTHY, State.EXITED) for i in states)
        if condition == "healthy":
            return all(i.state is State.RUNNING and i.healthy for i in states)
        return all(i.state is State.EXITED and i.last_exit == 0 for i in states)

    def failure(self) -> str | None:
        for replica in self.replicas:
            if replica.instance.state is State.FAILED:
                return f"{replica.id} failed: {replica.instance.reason}"
        return None

    async def wait_dependencies(self, replica: Replica) -> None:
        for dep, condition in self.service.depends_on.items():
            unit = self.sup.units[dep]
            cond = condition or "started"
            if unit.condition_met(cond):
                continue
            replica._set(State.WAITING, f"waits for {dep} to be {cond}")
            deadline = unit.service.startup_timeout
            ok = await self.sup.wait_until(
                lambda: unit.condition_met(cond) or unit.failure() is not None, deadline
            )
            failure = unit.failure()
            if failure is not None:
                raise DependencyFailed(f"{dep}: {failure}")
            if not ok:
                raise DependencyFailed(f"{dep} was not {cond} within startup_timeout {deadline:g}s")

    def snapshot(self) -> dict[str, object]:
        instances = [r.instance.snapshot() for r in self.replicas + self.candidates]
        return {
            "name": self.name,
            "state": self.state(),
            "health": self.health(),
            "external": self.service.external,
            "replicas": len(self.replicas),
            "instances": instances,
        }

    def state(self) -> str:
        if self.external:
            return "external"
        states = {r.instance.state for r in self.replicas}
        if not states:
            return "stopped" if not self.wanted else "running"
        for state in (State.FAILED, State.BACKOFF, State.STOPPING, State.WAITING, State.STARTING, State.UNHEALTHY):
            if state in states:
                if state is State.BACKOFF:
                    # One crash is a restart; a repeated one is a crash loop.
                    looping = any(r._crashes > 1 for r in self.replicas)
                    return "crash-loop" if looping else "restarting"
                return state.value
        if states <= {State.EXITED}:
            return "exited"
        if states <= {State.STOPPED}:
            return "stopped"
        return "running"

    def health(self) -> str:
        if self.external or self.service.health is None:
            return "none"
        live = [r.instance for r in self.replicas if r.instance.state in (State.RUNNING, State.UNHEALTHY, State.STARTING)]
        if not live:
            return "unknown"
        healthy = sum(1 for i in live if i.healthy)
        if healthy == len(live):
            return "healthy"
        return "unhealthy" if healthy == 0 else "degraded"


class Supervisor:
    """All units of an app, the registry they publish to, and their ordering."""

    def __init__(
        self,
        app: AppConfig,
        *,
        registry: MemoryRegistry,
        addresses: Addresses,
        event: EventSink,
        line: Callable[[str, str, str, str, bool], None],
        data_env: Callable[[str], dict[str, str]],
        guard: Callable[[str, int], None] = lambda op, pgid: None,
        guard_send: Callable[[str, int], object] = lambda op, pgid: None,
    ) -> None:
        self.app = app
        self.registry = registry
        self.addresses = addresses
        self._event = event
        self.line = line
        self._data_env = data_env
        self._guard = guard
        # Tells the guard of a group from the thread that starts (or ends
        # unseen) its process; thread-safe. `guard` keeps the loop's records.
        self.guard_send = guard_send
        self._changed = asyncio.Condition()
        self._pending_notify = False
        self.units = {name: Unit(self, name) for name in app.dependency_order()}
        self._base_env = dict(os.environ)
        self.drain: Callable[[Instance], Awaitable[None]] | None = None
        # Variables every service gets unless its own env sets them (telemetry).
        self.service_defaults: Callable[[str], dict[str, str]] = lambda service: {}
        # A reason to fail an instance's health check on purpose (fault injection).
        self.health_override: Callable[[str], str | None] = lambda instance_id: None

    # -- plumbing used by replicas ------------------------------------------------

    def publish(self, instance: Instance) -> None:
        self.registry.publish(instance)
        if not self._pending_notify:
            self._pending_notify = True
            asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(self._notify()))

    async def _notify(self) -> None:
        self._pending_notify = False
        async with self._changed:
            self._changed.notify_all()

    async def wait_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait until `predicate()` holds, re-checked on every change and every 100 ms."""
        deadline = time.monotonic() + timeout
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            async with self._changed:
                try:
                    await asyncio.wait_for(self._changed.wait(), min(left, 0.1))
                except asyncio.TimeoutError:
                    pass
        return True

    def event(self, kind: str, message: str, service: str = "", instance: str = "") -> None:
        self._event(kind, message, service, instance)

    def guard_add(self, pgid: int) -> None:
        self._guard("+", pgid)

    def guard_remove(self, pgid: int) -> None:
        self._guard("-", pgid)

    def taken_ports(self) -> set[int]:
        return _warm.pending_ports() | {
            r.instance.port
            for u in self.units.values()
            for r in u.replicas + u.candidates
            if r.instance.port
        }

    def env_for(
        self, service: str, instance: str, port: int, own_env: dict[str, str] | None = None
    ) -> dict[str, str]:
        return service_env(
            self.app,
            service,
            instance=instance,
            port=port,
            addresses=self.addresses,
            data_env=self._data_env(service),
            own_env=own_env,
            defaults=self.service_defaults(service),
            base=self._base_env,
        )

    # -- what the runtime calls ---------------------------------------------------

    def with_dependencies(self, names: list[str]) -> list[str]:
        wanted: list[str] = []

        def add(name: str) -> None:
            if name in wanted:
                return
            for dep in self.app.services[name].depends_on:
                add(dep)
            wanted.append(name)

        for name in names:
            add(name)
        return wanted

    def start(self, names: list[str] | None = None) -> list[str]:
        selected = self.with_dependencies(names) if names else list(self.units)
        for name in self.app.dependency_order():
            if name in selected:
                self.units[name].start()
        return selected

    async def wait_ready(self, names: list[str], timeout: float) -> str | None:
        """None once every named service is up (or completed); else the reason."""

        def settled() -> bool:
            return all(self._ready(n) or self._failure(n) for n in names)

        await self.wait_until(settled, timeout)
        for name in names:
            failure = self._failure(name)
            if failure:
                return failure
        for name in names:
            if not self._ready(name):
                unit = self.units[name]
                reasons = "; ".join(f"{r.id} {r.instance.state.value}: {r.instance.reason}" for r in unit.replicas)
                return f"{name} not ready within {timeout:g}s ({reasons})"
        return None

    def _ready(self, name: str) -> bool:
        unit = self.units[name]
        if unit.external:
            return True
        return all(
            (r.instance.state is State.RUNNING and r.instance.healthy)
            or (r.instance.state is State.EXITED and r.instance.last_exit == 0)
            for r in unit.replicas
        )

    def _failure(self, name: str) -> str | None:
        return self.units[name].failure()

    async def stop_all(self) -> None:
        """Stop every unit after the units that depend on it have stopped."""
        done = {name: asyncio.Event() for name in self.units}
        dependents: dict[str, list[str]] = {name: [] for name in self.units}
        for name, unit in self.units.items():
            for dep in unit.service.depends_on:
                dependents[dep].append(name)

        async def stop_one(name: str) -> None:
            for other in dependents[name]:
                await done[other].wait()
            try:
                await self.units[name].stop()
            finally:
                done[name].set()

        await asyncio.gather(*(stop_one(name) for name in self.units))

    def block(self, name: str, reason: str) -> None:
        """Never start `name`; its replicas show as failed with `reason`."""
        self.units[name].blocked = reason

    def kill_all(self) -> None:
        for unit in self.units.values():
            for replica in unit.replicas + unit.candidates:
                replica.kill_now()

    async def stop_service(self, name: str) -> None:
        await self.units[name].stop()

    def start_service(self, name: str) -> None:
        self.units[name].start()

    async def restart_service(self, name: str) -> None:
        unit = self.units[name]
        if unit.wanted and not unit.blocked and unit.replicas:
            await self._rolling_restart(unit)
            return
        await unit.stop()
        for replica in unit.replicas:
            replica.instance.restarts += 1
            replica._crashes = 0
        unit.start()

    async def _rolling_restart(self, unit: Unit) -> None:
        """One replica at a time: drain and stop it, start it, wait until it
        is healthy, then the next; the others keep serving meanwhile."""
        timeout = unit.service.startup_timeout
        for replica in list(unit.replicas):
            await replica.stop()
            replica.instance.restarts += 1
            replica._crashes = 0
            replica.start()
            inst = replica.instance
            # A crash ends the wait too: the replica restarts on its policy's
            # back-off, which a crash loop would wait out for the whole timeout.
            await self.wait_until(
                lambda: (inst.state is State.RUNNING and inst.healthy)
                or inst.state in (State.FAILED, State.EXITED, State.BACKOFF),
                timeout,
            )
            if inst.state is State.BACKOFF:
                raise ServiceError(
                    f"{replica.id} crashed after its restart ({inst.reason or 'no detail'}); "
                    "it is restarted again after its back-off, and the replicas after it "
                    f"were not restarted; see `lsq logs {unit.name}`"
                )
            if not (inst.state is State.RUNNING and inst.healthy):
                raise ServiceError(
                    f"{replica.id} was not healthy within {timeout:g}s after its restart "
                    f"(state {inst.state.value}: {inst.reason or 'no detail'}); "
                    "the replicas after it were not restarted; see `lsq logs`"
                )

    # -- versions (lsq.deploy) ----------------------------------------------------

    def start_candidates(self, name: str, version: Version, count: int) -> list[Replica]:
        """Start `count` replicas of `version` beside the current ones, at
        weight 0: healthy, but no traffic until the release gives them some."""
        unit = self.units[name]
        replicas = [Replica(unit, i, version) for i in range(count)]
        for replica in replicas:
            replica.instance.weight = 0
            unit.candidates.append(replica)
            replica.start()
        return replicas

    def promote(self, name: str) -> list[Replica]:
        """Make the candidates the service's replicas; returns the old ones
        (still running, for the caller to drain and stop)."""
        unit = self.units[name]
        old, unit.replicas, unit.candidates = unit.replicas, unit.candidates, []
        if unit.replicas:
            unit.version = unit.replicas[0].version
            unit.service = unit.version.service or unit.service
        unit.candidates = old  # still running until stopped
        return old

    async def stop_candidates(self, name: str) -> None:
        """Drain, stop and forget the candidates (or the old version after a
        promotion)."""
        unit = self.units[name]
        replicas = list(unit.candidates)
        await asyncio.gather(*(r.stop() for r in replicas))
        for replica in replicas:
            if replica in unit.candidates:
                unit.candidates.remove(replica)
            self.registry.remove(replica.id)

    async def scale(self, name: str, count: int) -> None:
        unit = self.units[name]
        removed = unit.scale_to(count)
        await asyncio.gather(*(r.stop() for r in removed))
        for replica in removed:
            self.registry.remove(replica.id)

    def snapshot(self) -> list[dict[str, object]]:
        return [unit.snapshot() for unit in self.units.values()]

