"""The gateway: stable local addresses for services, an ingress port, and an
HTTP/1.1 proxy that runs in its own worker processes (see docs/gateway.md)."""

from lsq.gateway._gateway import Gateway
from lsq.gateway._policy import effective_policy, table_policy
from lsq.gateway._table import Backend, PrefixRoute, RoutingTable, ServiceEntry

__all__ = [
    "Backend",
    "Gateway",
    "PrefixRoute",
    "RoutingTable",
    "ServiceEntry",
    "effective_policy",
    "table_policy",
]
