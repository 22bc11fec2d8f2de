"""The runtime's chaos controller: the list of faults and their life cycle.

HTTP-level faults live in the routing table: every change pushes a new table
and waits until every gateway worker has applied it, so a fault is in effect
when `add` returns. Process-level faults act on one replica through the
supervisor: `kill` sends SIGKILL to its process group once, `pause` stops the
group with SIGSTOP until the fault ends, `fail-health` makes its health
probe fail until the fault ends.

While any fault is active one watcher task expires faults and evaluates halt
conditions from the gateway's counters once a second; it ends with the last
fault. Every change is a runtime event of kind `chaos`.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lsq.chaos._measure import Snapshot, snapshot, window
from lsq.chaos._model import MAX_DURATION, Fault, parse_fault
from lsq.errors import UsageError
from lsq.registry import State
from lsq.runtime._spawn import group_alive, signal_group

if TYPE_CHECKING:
    from lsq.runtime import Runtime
    from lsq.runtime._supervisor import Replica

TICK = 0.25
HALT_EVERY = 1.0
_LIVE = (State.STARTING, State.RUNNING, State.UNHEALTHY)


class ChaosController:
    """Owns every fault of one runtime."""

    def __init__(self, runtime: Runtime, *, max_duration: float = MAX_DURATION) -> None:
        self._runtime = runtime
        self.max_duration = max_duration
        self._faults: dict[str, Fault] = {}
        self._paused: dict[str, int] = {}  # fault id -> process group
        self.failing_health: dict[str, str] = {}  # instance id -> fault id
        self._task: asyncio.Task[None] | None = None
        self._halt_base: Snapshot | None = None
        self._unlisten = runtime.listen(self._on_event)

    # -- what the gateway feed and the supervisor read --------------------------------

    def health_override(self, instance_id: str) -> str | None:
        """Why `instance_id`'s health check must fail now, or None."""
        fault = self.failing_health.get(instance_id)
        return None if fault is None else f"health check failed on purpose (chaos fault {fault})"

    def faults_for(self, service: str) -> list[dict[str, Any]]:
        """Active HTTP-level faults of `service`, as the routing table carries them."""
        return [
            f.gateway_json()
            for f in self._faults.values()
            if f.service == service and f.http and f.state == "active"
        ]

    def list(self) -> list[dict[str, Any]]:
        return [f.to_json() for f in self._faults.values()]

    # -- changes ------------------------------------------------------------------------

    async def add(self, spec: Mapping[str, Any]) -> Fault:
        """Check, apply and record one fault; raises UsageError if it cannot apply."""
        fault = parse_fault(spec, max_duration=self.max_duration)
        self._check_service(fault)
        if fault.http:
            self._faults[fault.id] = fault
            self._event(fault, f"added {fault.id}: {fault.describe()}{self._until(fault)}")
            await self._push()
        else:
            self._apply_process(fault)
        self._watch()
        return fault

    async def remove(self, fault_id: str, *, reason: str = "removed") -> Fault:
        fault = self._faults.get(fault_id)
        if fault is None:
            known = ", ".join(self._faults) or "none"
            raise UsageError(f"no active fault {fault_id!r}; active: {known}")
        self._lift(fault, reason)
        if fault.http:
            await self._push()
        return fault

    async def clear(self, *, reason: str = "removed") -> list[Fault]:
        faults = list(self._faults.values())
        for fault in faults:
            self._lift(fault, reason)
        if any(f.http for f in faults):
            await self._push()
        return faults

    def close(self) -> None:
        """End every fault at once (paused groups get SIGCONT); used at shut-down."""
        for fault in list(self._faults.values()):
            self._lift(fault, "runtime stopping")
        if self._task is not None:
            self._task.cancel()
        self._unlisten()

    # -- process-level faults -------------------------------------------------------

    def _apply_process(self, fault: Fault) -> None:
        replica = self._replica(fault)
        fault.match["replica"] = replica.id
        assert replica.child is not None
        pgid = replica.child.pid
        if fault.kind == "kill":
            signal_group(pgid, signal.SIGKILL)
            fault.state, fault.reason = "done", f"SIGKILL sent to process group {pgid}"
            self._event(fault, f"{fault.id}: killed {replica.id} (pid {pgid}) with SIGKILL")
            return
        self._faults[fault.id] = fault
        if fault.kind == "pause":
            signal_group(pgid, signal.SIGSTOP)
            self._paused[fault.id] = pgid
            what = f"paused {replica.id} (pid {pgid}) with SIGSTOP"
        else:
            self.failing_health[replica.id] = fault.id
            what = f"health check of {replica.id} fails on purpose"
        self._event(fault, f"added {fault.id}: {what}{self._until(fault)}")

    def _replica(self, fault: Fault) -> Replica:
        sup = self._runtime.sup
        assert sup is not None
        unit = sup.units[fault.service]
        if unit.external:
            raise UsageError(
                f"fault {fault.kind}: service {fault.service!r} is external; LSQ runs no "
                "process for it (use an HTTP-level fault such as abort or latency)"
            )
        if fault.kind == "fail-health" and unit.service.health is None:
            raise UsageError(
                f"fault fail-health: service {fault.service!r} has no health check; "
                "add health: to it in lsq.yaml or use kill or pause"
            )
        live = [r for r in unit.replicas if r.child is not None and r.instance.state in _LIVE]
        wanted = fault.match.get("replica")
        if wanted:
            known = [r.id for r in unit.replicas]
            chosen = [r for r in live if r.id == wanted]
            if not chosen:
                raise UsageError(
                    f"fault {fault.kind}: replica {wanted!r} of {fault.service!r} is not "
                    f"running; replicas: {', '.join(known) or 'none'}"
                )
            return chosen[0]
        if not live:
            raise UsageError(f"fault {fault.kind}: no replica of {fault.service!r} is running")
        return random.choice(live)

    # -- ending faults ----------------------------------------------------------------

    def _lift(self, fault: Fault, reason: str) -> None:
        """End one fault now (no table push: the caller does it once)."""
        self._faults.pop(fault.id, None)
        fault.state = (
            "halted" if reason.startswith("halted") else "expired" if reason == "expired" else "removed"
        )
        fault.reason = reason
        pgid = self._paused.pop(fault.id, None)
        if pgid is not None and group_alive(pgid):
            signal_group(pgid, signal.SIGCONT)
        replica = fault.match.get("replica")
        if replica and self.failing_health.get(replica) == fault.id:
            del self.failing_health[replica]
        self._event(fault, f"{fault.id} ended ({reason}): {fault.describe()}")

    def _on_event(self, record: Mapping[str, object]) -> None:
        # A replica being stopped must not stay frozen: SIGTERM would wait
        # for SIGCONT until stop_timeout and end as a SIGKILL.
        kind, message = record.get("kind"), str(record.get("message", ""))
        if kind == "runtime" and message == "stopping services":
            for fault in list(self._faults.values()):
                self._lift(fault, "runtime stopping")
        elif kind == "state" and message.startswith("stopping"):
            for fault in list(self._faults.values()):
                if fault.kind == "pause" and fault.match.get("replica") == record.get("instance"):
                    self._lift(fault, "replica stopping")

    # -- the watcher ------------------------------------------------------------------

    def _watch(self) -> None:
        if self._faults and (self._task is None or self._task.done()):
            self._halt_base = None
            self._task = asyncio.get_running_loop().create_task(self._run_watch())

    async def _run_watch(self) -> None:
        next_halt = time.monotonic() + HALT_EVERY
        while self._faults:
            await asyncio.sleep(TICK)
            changed = self._expire()
            if time.monotonic() >= next_halt:
                next_halt = time.monotonic() + HALT_EVERY
                changed |= await self._check_halts()
            if changed:
                await self._push()

    def _expire(self) -> bool:
        now = time.time()
        ended = [f for f in self._faults.values() if f.expires_at <= now]
        for fault in ended:
            self._lift(fault, "expired")
        return any(f.http for f in ended)

    async def _check_halts(self) -> bool:
        watched = [f for f in self._faults.values() if f.halt is not None]
        gateway = self._runtime.gateway
        if not watched or gateway is None:
            return False
        current = snapshot(await gateway.stats())
        base, self._halt_base = self._halt_base, current
        if base is None:
            return False
        changed = False
        for fault in watched:
            assert fault.halt is not None
            target = fault.halt.service or fault.service
            measured = window(base, current, target).value(fault.halt.metric)
            if measured is not None and fault.halt.holds(measured) and fault.id in self._faults:
                self._lift(fault, f"halted: {target} {fault.halt.metric} was {measured:g}")
                changed |= fault.http
        return changed

    # -- plumbing ---------------------------------------------------------------------

    async def _push(self) -> None:
        feed, gateway = self._runtime.feed, self._runtime.gateway
        if feed is None or gateway is None:
            return
        feed.push()
        await gateway.wait_applied()

    def _check_service(self, fault: Fault) -> None:
        services = self._runtime.app.services
        for name in (fault.service, fault.match.get("source"), fault.halt and fault.halt.service):
            if name and name not in services:
                raise UsageError(
                    f"fault {fault.kind}: no service {name!r}; known: {', '.join(services)}"
                )

    def _until(self, fault: Fault) -> str:
        left = max(0.0, fault.expires_at - time.time())
        halt = f", halts if {fault.halt}" if fault.halt else ""
        return f" for {left:.0f}s{halt}"

    def _event(self, fault: Fault, message: str) -> None:
        instance = str(fault.match.get("replica", ""))
        self._runtime.event("chaos", message, fault.service, instance)
        self._runtime.printer.line("lsq", f"chaos: {message}")
