"""The routing table: what the runtime tells the gateway, as plain values.

A table is a frozen dataclass that converts to and from a JSON-able dict, so
it can cross the pipe to the worker processes as one JSON line::

    {
      "ingress_port": 8080,              # or null for no ingress listener
      "services": {
        "api": {
          "port": 7001,                  # stable listen port on 127.0.0.1; 0 = pick one
          "backends": [{"id": "api-0", "host": "127.0.0.1", "port": 40111, "weight": 100}],
          "external": null,              # or "http://127.0.0.1:9400" (then no backends)
          "routes": [{"prefix": "/api", "strip": true}],
          "policy": {...},               # optional: resilience policy (see _policy.py)
          "faults": [{...}]              # optional: active HTTP faults (see _faults.py)
        }
      }
    }

Only routable replicas belong in `backends`: a replica that is absent gets no
new requests, while requests already on it finish.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Backend:
    """One healthy replica of a service."""

    id: str
    host: str
    port: int
    weight: int = 100
    pid: int | None = None  # lets a worker map a calling process to its service


@dataclass(frozen=True)
class PrefixRoute:
    """A path prefix on the ingress port; `strip` removes it before forwarding."""

    prefix: str
    strip: bool = True


@dataclass(frozen=True)
class ServiceEntry:
    """One service: its stable port and where its requests go."""

    port: int
    backends: tuple[Backend, ...] = ()
    external: str | None = None
    routes: tuple[PrefixRoute, ...] = ()
    faults: tuple[dict[str, Any], ...] = ()  # active HTTP-level faults (lsq.chaos)
    policy: Mapping[str, Any] | None = None  # resilience policy; None = defaults

    def to_json(self) -> dict[str, Any]:
        return {
            "port": self.port,
            "backends": [vars(b) for b in self.backends],
            "external": self.external,
            "routes": [vars(r) for r in self.routes],
            "faults": [dict(f) for f in self.faults],
            "policy": dict(self.policy) if self.policy is not None else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ServiceEntry:
        return cls(
            port=int(data.get("port", 0)),
            backends=tuple(Backend(**b) for b in data.get("backends", ())),
            external=data.get("external"),
            routes=tuple(PrefixRoute(**r) for r in data.get("routes", ())),
            faults=tuple(dict(f) for f in data.get("faults") or ()),
            policy=data.get("policy"),
        )


@dataclass(frozen=True)
class RoutingTable:
    """Every service the gateway serves, plus the shared ingress port."""

    services: Mapping[str, ServiceEntry] = field(default_factory=dict)
    ingress_port: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "ingress_port": self.ingress_port,
            "services": {n: s.to_json() for n, s in self.services.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RoutingTable:
        services = {
            name: ServiceEntry.from_json(entry)
            for name, entry in data.get("services", {}).items()
        }
        return cls(services=services, ingress_port=data.get("ingress_port"))
