"""Feeds the gateway: the registry's routable instances as a routing table.

Every registry change schedules one table push on the next loop iteration, so
a burst of changes costs one update. A replica that is being stopped is
drained first: the table without it is pushed and applied by every worker,
then its in-flight requests get up to `drain_timeout` seconds to finish.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from lsq.gateway import (
    Backend,
    Gateway,
    PrefixRoute,
    RoutingTable,
    ServiceEntry,
    table_policy,
)
from lsq.manifest import AppConfig
from lsq.registry import Change, Instance, MemoryRegistry

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
        self._unwatch = registry.watch(self._changed)

    def table(self) -> RoutingTable:
        services: dict[str, ServiceEntry] = {}
        for name, svc in self._app.services.items():
            routes = tuple(PrefixRoute(r.prefix, r.strip) for r in svc.routes)
            backends = tuple(
                Backend(i.id, i.host, i.port, i.weight, i.pid) for i in self._registry.routable(name)
            )
            faults = tuple(self._faults(name))
            services[name] = ServiceEntry(
                self._ports[name], backends, svc.external, routes, faults, table_policy(svc)
            )
        return RoutingTable(services=services, ingress_port=self._ingress)

    def push(self) -> None:
        self._scheduled = False
        self.gateway.update(self.table())

    def _changed(self, change: Change) -> None:
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.push)

    async def drain(self, instance: Instance) -> None:
        """Stop routing to `instance`, then wait for its in-flight requests."""
        self.push()
        await self.gateway.wait_applied()
        deadline = time.monotonic() + self._drain_timeout
        while time.monotonic() < deadline:
            stats = await self.gateway.stats()
            if not stats["replicas"].get(instance.id, {}).get("active", 0):
                return
            await asyncio.sleep(DRAIN_POLL)

    def close(self) -> None:
        self._unwatch()
