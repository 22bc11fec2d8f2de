"""The runtime's local HTTP API (token, Host and Origin checked) and its client."""

from typing import TYPE_CHECKING

from lsq._lazy import lazy_exports

if TYPE_CHECKING:
    from lsq.control._client import ControlClient
    from lsq.control._server import ControlAPI, serve

__all__ = ["ControlAPI", "ControlClient", "serve"]


# The CLI needs only the client and the runtime only the server; importing
# each on demand keeps httpx out of the runtime and the runtime out of `lsq ps`.
__getattr__ = lazy_exports(
    "lsq.control", {"ControlClient": "_client", "ControlAPI": "_server", "serve": "_server"}
)
