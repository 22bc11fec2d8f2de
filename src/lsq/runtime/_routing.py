"""Feeds the gateway: the registry's routable instances as a routing table.

Every registry change schedules one table push on the next loop iteration, so
a burst of changes costs one update, and a table equal to the last one sent
is not sent again. A replica that is being stopped is
drained first: the table without it is pushed and applied by every worker,
then its in-flight requests get up to `drain_timeout` seconds to finish.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lsq.gateway import (
    Backend,
    Gateway,
    PrefixRoute,
    RoutingTable,
    ServiceEntry,
    table_policy,
)
from lsq.registry import Change, Instance, MemoryRegistry

if TYPE_CHECKING:  # the runtime reads a frozen app (lsq.manifest._frozen), not the schema
    from lsq.manifest import AppConfig, Service

DRAIN_POLL = 0.05


class GatewayFeed:
    def __init__(
        self,
        app: AppConfig,
        registry: MemoryRegistry,
        gateway: Gateway,
        *,
        ports: dict[str, int],
        ingress_port: int,
        drain_timeout: float = 30.0,
        faults: Callable[[str], list[dict[str, Any]]] = lambda service: [],
    ) -> None:
        self._app = app
        self._registry = registry
        self.gateway = gateway
        self._ports = ports
        self._ingress = ingress_port
        self._drain_timeout = drain_timeout
        self._faults = faults
        self._scheduled = False
        # Instances being drained stay in the table at weight 0: no new
        # requests, but the workers keep (and report) their in-flight count.
        # A backend dropped from the table disappears from the workers'
        # stats at once, so its in-flight requests could not be waited for.
        self._draining: dict[str, Instance] = {}
        self._pushed: RoutingTable | None = None
        self._static: dict[str, tuple[Service, tuple[PrefixRoute, ...], dict[str, Any]]] = {}
        self._unwatch = registry.watch(self._changed)
        self._stopping = False

    def table(self) -> RoutingTable:
        services: dict[str, ServiceEntry] = {}
        for name, svc in self._app.services.items():
            if name not in self._ports:
                continue  # blocked: its fixed port is held by another process
            routes, policy = self._declared(name, svc)
            routable = self._registry.routable(name)
            shares = [0] * len(routable) if self._stopping else weights(routable)
            backends = tuple(
                Backend(i.id, i.host, i.port, w, i.pid)
                for i, w in zip(routable, shares, strict=True)
            ) + tuple(
                Backend(i.id, i.host, i.port, 0, i.pid)
                for i in self._draining.values()
                if i.service == name and i not in routable
            )
            faults = tuple(self._faults(name))
            services[name] = ServiceEntry(
                self._ports[name], backends, svc.external, routes, faults, policy
            )
        return RoutingTable(services=services, ingress_port=self._ingress)

    def _declared(self, name: str, svc: Service) -> tuple[tuple[PrefixRoute, ...], dict[str, Any]]:
        """The service's routes and policy, as lsq.yaml declares them: made
        once, not at every push (a start-up of 50 services pushes often)."""
        cached = self._static.get(name)
        if cached is None or cached[0] is not svc:
            routes = tuple(PrefixRoute(r.prefix, r.strip) for r in svc.routes)
            cached = self._static[name] = (svc, routes, table_policy(svc))
        return cached[1], cached[2]

    def push(self) -> None:
        self._scheduled = False
        table = self.table()
        # Most registry changes (waiting, starting, a restart count) leave
        # the routable set as it was; the workers need no copy of that.
        if table != self._pushed:
            self._pushed = table
            self.gateway.update(table)

    def _changed(self, change: Change) -> None:
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.push)

    async def drain(self, instance: Instance) -> None:
        """Stop routing new requests to `instance` (weight 0), wait for its
        in-flight requests (up to the drain timeout), then drop it."""
        svc = self._app.services.get(instance.service)
        release = svc.release if svc is not None else None
        timeout = release.drain_timeout if release is not None else self._drain_timeout
        self._draining[instance.id] = instance
        try:
            await self.push_applied()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                stats = await self.gateway.stats()
                if not stats["replicas"].get(instance.id, {}).get("active", 0):
                    break
                await asyncio.sleep(DRAIN_POLL)
        finally:
            self._draining.pop(instance.id, None)
        await self.push_applied()

    async def drain_all(self, timeout: float) -> None:
        """The whole app is stopping: no new requests to any replica (one
        table push for all of them), then wait for in-flight ones to end."""
        self._stopping = True
        await self.push_applied()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            stats = await self.gateway.stats()
            if not any(r.get("active", 0) for r in stats["replicas"].values()):
                return
            await asyncio.sleep(DRAIN_POLL)

    async def push_applied(self) -> None:
        """Push the table now and wait until every worker uses it."""
        self.push()
        await self.gateway.wait_applied()

    def close(self) -> None:
        self._unwatch()


def weights(instances: list[Instance]) -> list[int]:
    """The gateway weight of each routable instance. When all are 0 (a
    release's new version went unhealthy while the old one stood at 0),
    they share the traffic equally rather than serve no one."""
    found = [max(0, i.weight) for i in instances]
    if found and not any(found):
        return [1] * len(found)
    return found
