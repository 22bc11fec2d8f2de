"""The gateway: stable local addresses for services, an ingress port, and an
HTTP/1.1 proxy that runs in its own worker processes (see docs/gateway.md)."""

from pathlib import Path
from typing import TYPE_CHECKING

from lsq._lazy import lazy_exports
from lsq.gateway._compiled import select

# Before anything imports the hot path: compiled build or source (see _compiled).
select(Path(__file__).parent)

from lsq.gateway._table import Backend, PrefixRoute, RoutingTable, ServiceEntry  # noqa: E402

if TYPE_CHECKING:
    from lsq.gateway._gateway import Gateway
    from lsq.gateway._policy import effective_policy, table_policy


# The worker processes import this package too; loading the parent-side
# Gateway (and through it the manifest schema) lazily keeps them small.
__getattr__ = lazy_exports(
    "lsq.gateway",
    {"Gateway": "_gateway", "effective_policy": "_policy", "table_policy": "_policy"},
)

__all__ = [
    "Backend",
    "Gateway",
    "PrefixRoute",
    "RoutingTable",
    "ServiceEntry",
    "effective_policy",
    "table_policy",
]
