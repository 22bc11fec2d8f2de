"""The gateway: stable local addresses for services, an ingress port, and an
HTTP/1.1 proxy that runs in its own worker processes (see docs/gateway.md)."""

from typing import TYPE_CHECKING, Any

from lsq.gateway._table import Backend, PrefixRoute, RoutingTable, ServiceEntry

if TYPE_CHECKING:
    from lsq.gateway._gateway import Gateway
    from lsq.gateway._policy import effective_policy, table_policy


def __getattr__(name: str) -> Any:
    # The worker processes import this package too; loading the parent-side
    # Gateway (and through it the manifest schema) lazily keeps them small.
    if name == "Gateway":
        from lsq.gateway._gateway import Gateway

        return Gateway
    if name in ("effective_policy", "table_policy"):
        from lsq.gateway import _policy

        return getattr(_policy, name)
    raise AttributeError(name)

__all__ = [
    "Backend",
    "Gateway",
    "PrefixRoute",
    "RoutingTable",
    "ServiceEntry",
    "effective_policy",
    "table_policy",
]
